"""A Slurm job with ``image:`` (issue 19): each node's rank runs in the image through podman on its node,
with the GPU Slurm gave it there by CDI name; a ``localhost/`` image podman lacks is refused at submit.

Needs podman and the containers tier's small image (``tuxai image build --name tier-python --package
python3-minimal``: found in podman in 0.3 s once built, cached by its key).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import DaemonProcess
from tests.slurm.cluster import Cluster
from tests.slurm.test_slurm_daemon import _logs, _tuxai, _wait
from tuxai.errors import UsageError
from tuxai.images.build import build
from tuxai.images.recipe import Recipe, check_recipe
from tuxai.model.job import JobState

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(300)]  # a cold image build is minutes; cached 2 s

CDI_SPEC = Path("/etc/cdi/tuxai-slurm-tier.json")
KIND = "tuxai.dev/slurmgpu"

INSIDE = """
ls /dev/fakegpu* > /dev/null 2>&1 && gpus=$(echo /dev/fakegpu*) || gpus=none
[ -e /run/.containerenv ] && where=podman || where=bare
[ -e /usr/bin/sbatch ] && sbatch=yes || sbatch=no
master="$MASTER_ADDR:$MASTER_PORT"
echo "node $TUXAI_NODE_RANK in $where sbatch $sbatch master $master cuda $CUDA_VISIBLE_DEVICES gpus $gpus"
echo "saved by node $TUXAI_NODE_RANK" > "$TUXAI_CHECKPOINT_DIR/node-$TUXAI_NODE_RANK"
[ "$TUXAI_NODE_RANK" = 0 ] && echo "http://127.0.0.1:8000" > "$TUXAI_ENDPOINT_FILE"
exit $((TUXAI_NODE_RANK * 5))
"""


@pytest.fixture(scope="module")
def image() -> str:
    """The containers tier's small Python image (a cache hit once built: the CLI's hit is tested there)."""
    return build(check_recipe(Recipe(packages=("python3-minimal",), name="tier-python")), {}).reference


@pytest.fixture(scope="module")
def slurm_gpus_in_cdi(slurm: Cluster) -> Iterator[None]:
    """A CDI spec naming the cluster's two fake GPUs "0" and "1" as /dev/fakegpu0 and 1 inside a container."""
    devices = [
        {"name": str(i), "containerEdits": {"deviceNodes": [{"path": f"/dev/fakegpu{i}", "hostPath": str(path)}]}}
        for i, path in enumerate(sorted(slurm.root.glob("fakegpu[0-9]")))
    ]
    CDI_SPEC.parent.mkdir(parents=True, exist_ok=True)
    CDI_SPEC.write_text(json.dumps({"cdiVersion": "0.5.0", "kind": KIND, "devices": devices}))
    try:
        yield
    finally:
        CDI_SPEC.unlink(missing_ok=True)


def test_I19_1_each_node_runs_in_the_image_with_only_the_gpu_slurm_gave_it(
    daemon: DaemonProcess, image: str, slurm_gpus_in_cdi: None
) -> None:
    spec = {"command": ["sh", "-c", INSIDE], "image": image, "nodes": 2, "gpus_per_node": 1, "launcher": "none"}
    job_id = daemon.client.submit(spec, {"PATH": "/usr/bin:/bin"})
    job = _wait(daemon, job_id, lambda j: j.state.terminal)
    log = _logs(daemon, job_id)
    assert (job.state, job.exit_code) == (JobState.FAILED, 5), (job, log)  # node 1's exit, as any Slurm job's
    places = re.search(r"^ *nodes +n1:(\d) n2:(\d)$", _tuxai(daemon, "show", str(job_id)), re.MULTILINE)
    assert places, _tuxai(daemon, "show", str(job_id))
    lines = re.findall(r"node (\d) in (\S+) sbatch (\S+) master (\S+) cuda (\S+) gpus (.+)", log)
    assert len(lines) == 2, log
    masters = {master for _, _, _, master, _, _ in lines}
    assert len(masters) == 1 and not masters.pop().startswith(":"), log  # one MASTER_ADDR:PORT for both ranks
    for rank, where, sbatch, _, cuda, gpus in lines:
        assert (where, sbatch) == ("podman", "no"), log  # in the image (no Slurm client there), through podman
        assert cuda == "0" and gpus == f"/dev/fakegpu{places.group(int(rank) + 1)}", log  # only Slurm's GPU
    checkpoints = daemon.home / "jobs" / str(job_id) / "checkpoint"
    assert (checkpoints / "node-1").read_text() == "saved by node 1\n"  # mounted at its own path
    endpoint = daemon.home / "jobs" / str(job_id) / "endpoint"  # submit --serve --image's URL reaches show (E6)
    assert endpoint.read_text() == "http://127.0.0.1:8000\n"


def test_I19_1_a_localhost_image_podman_lacks_is_refused_at_submit_in_one_line(daemon: DaemonProcess) -> None:
    with pytest.raises(UsageError) as refused:
        daemon.client.submit({"command": ["true"], "image": "localhost/tuxai/nowhere:0123456789abcdef"}, {})
    assert refused.value.message == (
        "image localhost/tuxai/nowhere:0123456789abcdef is not in podman's image store here, and a localhost/ "
        "image has no registry to be pulled from"
    )
    assert "\n" not in refused.value.message
