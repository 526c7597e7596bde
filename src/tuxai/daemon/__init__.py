"""The daemon: the control loop that wires store, scheduler and executor, and its server."""
