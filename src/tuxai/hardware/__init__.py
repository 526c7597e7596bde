"""Probes that build an ``Inventory``: parsers of tool output, and the thin code that runs the tools."""
