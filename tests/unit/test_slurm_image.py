"""A Slurm job with ``image:`` (issue 19): the node runner's launch keeps the image, each node's GPUs by CDI name."""

from __future__ import annotations

from pathlib import Path

from tuxai.executor.podman import Host, Limits, run_argv
from tuxai.executor.rundir import Launch, read_launch, write_launch
from tuxai.executor.slurm import SlurmExecutor
from tuxai.executor.slurm_container import node_container, slurm_gpus
from tuxai.executor.slurm_node import node_run
from tuxai.model.container import CdiSpec, Container, read_cdi_specs
from tuxai.model.job import JobSpec

IMAGE = "localhost/tuxai/train:3f2a9c01d4e5b6a7"


def test_I19_1_a_slurm_nodes_launch_keeps_the_image_and_mounts_the_checkpoint(tmp_path: Path) -> None:
    # Before: launch.json carried the container as a plain mapping and the node runner failed on it
    # (AttributeError: 'dict' object has no attribute 'to_dict'): the job failed with no status.
    job_dir = tmp_path / "jobs" / "7"
    job_dir.mkdir(parents=True)
    spec = JobSpec(("python3", "train.py"), image=IMAGE, nodes=2)
    launch = Launch(7, 1, spec.command, {"A": "1"}, "", str(job_dir / "output.log"), job_dir=str(job_dir))
    launch = Launch(**{**launch.__dict__, "container": Container(IMAGE, 2 << 30, runtime="runc")})
    handle = SlurmExecutor(lambda _: spec).prepare(launch)
    run_dir = Path(handle.removeprefix("slurm:"))
    node_dir, node = node_run(run_dir, {"SLURM_NODEID": "1", "SLURM_JOB_NODELIST": "n[1-2]"})
    write_launch(node_dir, node)
    container = read_launch(node_dir).container
    checkpoint = str(job_dir / "checkpoint")
    endpoint = str(job_dir / "endpoint")  # every container job's, as on one box (E6)
    assert container == Container(IMAGE, 2 << 30, (), "runc", mounts=(checkpoint, endpoint))
    argv = run_argv(read_launch(node_dir), container, node_dir, Host(Limits((1024, 1024), (64, 64)), rootless=True))
    assert f"--volume={checkpoint}:{checkpoint}" in argv and argv[-1] == IMAGE
    assert not [a for a in argv if a.startswith("--device")]  # no GPU asked: none given


def test_I19_1_each_nodes_gpus_go_in_by_cdi_name_from_slurms_choice_never_all() -> None:
    nvidia = CdiSpec("nvidia.com/gpu", ("0", "1", "2", "3", "all"), "/etc/cdi/nvidia.yaml")
    environ = {"SLURM_STEP_GPUS": "1,3", "SLURM_JOB_GPUS": "0,1,2,3", "CUDA_VISIBLE_DEVICES": "1,3"}
    container, inside = node_container({"image": IMAGE}, environ, [nvidia], "/j/7/checkpoint")
    assert container.cdi_devices == ("nvidia.com/gpu=1", "nvidia.com/gpu=3") and not container.error
    assert inside == {"CUDA_VISIBLE_DEVICES": "0,1"}  # the container holds two GPUs: 0 and 1 inside
    assert slurm_gpus({"SLURM_JOB_GPUS": "2", "CUDA_VISIBLE_DEVICES": "0"}) == (2,)  # constrained: renumbered
    assert slurm_gpus({"CUDA_VISIBLE_DEVICES": "1"}) == (1,) and slurm_gpus({}) == ()
    cpu_only, none_inside = node_container({"image": IMAGE}, {"CUDA_VISIBLE_DEVICES": ""}, [nvidia], "")
    assert (cpu_only.cdi_devices, none_inside, cpu_only.mounts) == ((), {}, ())


def test_I19_1_a_gpu_no_spec_of_the_node_names_fails_the_rank_with_the_remedy(tmp_path: Path) -> None:
    environ = {"SLURM_STEP_GPUS": "1", "SLURMD_NODENAME": "n2"}
    container, _ = node_container({"image": IMAGE}, environ, [CdiSpec("tuxai.dev/gpu", ("0",))], "")
    assert container.cdi_devices == () and container.error.startswith("node n2: no CDI device for GPU 1")
    assert "nvidia-ctk cdi generate" in container.error  # the shim fails the rank at start with it
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "fake.json").write_text('{"kind": "tuxai.dev/gpu", "devices": [{"name": "0"}, {"name": "1"}]}')
    specs, problems = read_cdi_specs([str(tmp_path), str(tmp_path / "missing")])  # one unreadable, one dir absent
    assert [p.split(":")[0] for p in problems] == [str(tmp_path / "bad.json")]
    assert [(s.kind, s.devices) for s in specs] == [("tuxai.dev/gpu", ("0", "1"))]
