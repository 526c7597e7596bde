"""`uv pip install ARGS` into this venv, from exactly where pip would install: pip's configuration carried over.

Run with the venv's Python: `.venv/bin/python .ci/uv_pip.py -e '.[dev]'`. uv reads no pip.conf and no PIP_*
variable; tuxai's job environments already carry them over (`tuxai.envs`: find-links, index URLs, constraints,
the certificate, pip's best-version-of-every-source), and this uses the same code from src/ (stdlib only, so it
runs before tuxai is installed). The packages are the ones pip installs (`pip freeze` compared); they are
compiled to bytecode as pip does (CI sets PYTHONDONTWRITEBYTECODE: without it every process compiles what it
imports). uv downloads in parallel and keeps its cache in ~/.cache/uv for the next clone.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from tuxai.envs import read_pip_settings, uv_flags


def main(args: list[str]) -> None:
    """Exec `uv pip install --python <this python> <pip's settings as flags> ARGS`."""
    settings = read_pip_settings(sys.executable)
    uv = str(Path(sys.executable).parent / "uv")
    env = {**os.environ, "UV_NO_CONFIG": "1"}
    if settings.cert:
        env.setdefault("SSL_CERT_FILE", settings.cert)
    flags = ["--quiet", "--compile-bytecode", "--python", sys.executable, *uv_flags(settings)]
    os.execve(uv, [uv, "pip", "install", *flags, *args], env)


if __name__ == "__main__":
    main(sys.argv[1:])
