"""``python -m tuxai``."""

from tuxai.cli.main import run

run()
