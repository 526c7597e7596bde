"""The ``tuxai`` command line: thin commands that parse, call once and render."""
