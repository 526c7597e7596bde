"""tuxai: a Linux machine with accelerators as a good home for AI work."""

__version__ = "0.1.0"
