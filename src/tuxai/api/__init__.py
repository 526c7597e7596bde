"""The HTTP API over the daemon (``app``) and the Python SDK (``client``)."""
