"""Whether a job's image is where podman will look for it, asked at submit (``tuxai up --slurm``).

A ``localhost/`` image (``tuxai image build``'s, or one podman built or loaded) has no registry to be
pulled from: absent from podman's image store, the job could only fail on its node with podman's
"image not known". Such a job is refused at submit in one line instead. Asked of this host's podman
(``podman image exists``) and only for the daemon's own user's jobs (root's under a root daemon):
another user's job runs under that user's own podman and store on its node (rootless), which the
daemon does not open for them. A registry reference is left to podman, which pulls it.
"""

from __future__ import annotations

import os
import subprocess

from tuxai.daemon.config import Caller
from tuxai.errors import UsageError
from tuxai.executor.podman import podman_environment
from tuxai.model.container import LOCAL
from tuxai.model.job import JobSpec

TIMEOUT_S = 30.0


def check_image_present(spec: JobSpec, caller: Caller) -> None:
    """Refuse a job whose ``localhost/`` image this host's podman does not have (the daemon's own user's jobs).

    Raises:
        UsageError: the image is not in podman's store, in one line with how to get it there.
    """
    if not spec.image.startswith(LOCAL) or caller.uid != os.getuid():
        return
    try:
        done = subprocess.run(
            ["podman", "image", "exists", spec.image],
            env=podman_environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return  # podman cannot answer: the node's podman says what it finds
    if done.returncode == 1 and not done.stderr.strip():  # 1 and nothing said: not there (125: podman's error)
        raise UsageError(
            f"image {spec.image} is not in podman's image store here, and a localhost/ image has no registry "
            "to be pulled from",
            hint="build it on this host and on the nodes (tuxai image build …; tuxai image ls lists them), "
            "or name a registry reference",
        )
