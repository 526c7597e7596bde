"""``tuxai serve MODEL --image IMAGE``: the model server run as a job in the image, attached.

The same job as ``tuxai submit --serve MODEL --image IMAGE`` (``cli.jobs.image_serve_command``), run as an
interactive session (``tuxai run``): its output here, Ctrl-C sent to the server, which stops; its GPUs by
CDI name, the model mounted read-only, its URL in the job's endpoint (``tuxai show JOB``,
``tuxai infer MODEL --job JOB``). The server listens on a free loopback port of the host (the
container shares the host's network), so the flags that choose where it listens are the job's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tuxai.errors import UsageError


def serve_in_image(target: Path, image: str, gpus: int, home: Path | None, fixed: Mapping[str, object]) -> int:
    """Run ``tuxai serve TARGET`` inside ``image`` as a job with ``gpus`` GPUs, attached; its exit status.

    ``fixed``: the ``tuxai serve`` flags the job decides itself (any given refuses, naming it).

    Raises:
        UsageError: such a flag given, a registry alias, or no such model.
    """
    given = sorted(name for name, value in fixed.items() if value)
    if given:
        raise UsageError(
            f"{', '.join(given)} cannot be used with --image: the server in the image listens on a free loopback "
            "port and writes its URL to the job's endpoint",
            hint="tuxai show JOB gives the endpoint; tuxai infer MODEL --job JOB sends to it",
        )
    from tuxai.cli.jobs import build_spec, image_serve_command
    from tuxai.cli.session import run_session

    flags: dict[str, object] = {"image": image, "gpus": gpus, "session": "pipe"}
    command = image_serve_command(target, flags)
    flags["name"] = f"serve-{Path(str(flags['serve_model'])).name}"
    return run_session(home, build_spec(None, flags, command), None)
