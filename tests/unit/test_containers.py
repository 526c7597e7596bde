"""Issue 19, containers: the pure parts — a job spec's image, CDI names from the allocation,
podman's line from a launch (tests/containers runs it for real)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tuxai.daemon.containers import check_container_submit, container_for
from tuxai.errors import UsageError
from tuxai.executor.podman import (
    ENV_FILE,
    Host,
    Limits,
    cgroup_parent,
    env_file_text,
    remove_groups,
    run_argv,
)
from tuxai.executor.rundir import Launch, read_launch, write_launch
from tuxai.hardware.containers import read_cdi_specs
from tuxai.model.cgroup import CgroupPlan
from tuxai.model.container import (
    DEFAULT_SHM_BYTES,
    CdiSpec,
    Container,
    cdi_names,
    check_image,
    choose_runtime,
    parse_cdi_spec,
)
from tuxai.model.job import JobSpec
from tuxai.model.jobfile import spec_from_dict, spec_to_dict
from tuxai.model.resources import Allocation, GpuShare

FAKE = CdiSpec("tuxai.dev/gpu", ("0", "1", "all"), "/etc/cdi/fake.json")
NVIDIA = CdiSpec("nvidia.com/gpu", ("0", "1", "GPU-aaa", "GPU-bbb", "MIG-m1", "all"), "/etc/cdi/nvidia.yaml")
HOST = Host(Limits((1024, 4096), (512, 512)))


def _launch(**fields: object) -> Launch:
    base: dict[str, object] = {
        "job_id": 7,
        "attempt": 1,
        "command": ("python3", "train.py"),
        "env": {"TUXAI_JOB_ID": "7", "SECRET": "s3cret", "PATH": "/host/bin"},
        "cwd": "/home/ana/proj",
        "log_path": "/var/lib/tuxai/jobs/7/output.log",
        "job_dir": "/var/lib/tuxai/jobs/7",
        "user": (1000, 1000, (1000, 44)),
        "cgroup": CgroupPlan(1, {"pids": "/sys/fs/cgroup/pids/tuxai/j7", "memory": "/sys/fs/cgroup/memory/a/tuxai/j7"}),
    }
    return Launch(**{**base, **fields})  # type: ignore[arg-type]


def test_I19_gpus_go_in_by_cdi_name_of_exactly_the_allocated_ones() -> None:
    one = Allocation("n", (GpuShare(1, "GPU-bbb"),))
    assert cdi_names(one, [FAKE, NVIDIA]) == ("nvidia.com/gpu=GPU-bbb",)  # NVIDIA's spec, by UUID
    assert cdi_names(one, [FAKE]) == ("tuxai.dev/gpu=1",)  # a spec without UUIDs: by index
    mig = Allocation("n", (GpuShare(0, "GPU-aaa", mig_uuid="MIG-m1", mig_index=1),))
    assert cdi_names(mig, [NVIDIA]) == ("nvidia.com/gpu=MIG-m1",)  # a MIG instance: its own UUID, not the GPU
    assert cdi_names(Allocation("n"), [NVIDIA]) == ()


def test_I19_a_gpu_no_cdi_spec_names_is_refused_with_the_remedy() -> None:
    with pytest.raises(UsageError, match=r"no CDI device for GPU GPU-ccc") as caught:
        cdi_names(Allocation("n", (GpuShare(5, "GPU-ccc"),)), [FAKE, NVIDIA])
    assert "nvidia-ctk cdi generate" in caught.value.hint
    with pytest.raises(UsageError, match="MIG-zz"):  # a MIG instance never falls back to its GPU (or all)
        cdi_names(Allocation("n", (GpuShare(0, "GPU-aaa", mig_uuid="MIG-zz"),)), [NVIDIA])


def test_I19_cdi_specs_are_read_as_json_or_yaml() -> None:
    yaml_text = "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n  - name: '0'\n  - name: GPU-aaa\n"
    assert parse_cdi_spec(yaml_text).devices == ("0", "GPU-aaa")
    assert parse_cdi_spec('{"kind": "tuxai.dev/gpu", "devices": []}').kind == "tuxai.dev/gpu"
    for bad in ("kind: nogpu", "[1, 2]", "kind: a/b\ndevices: [{path: x}]", "{not json"):
        with pytest.raises(ValueError):
            parse_cdi_spec(bad)


def test_I19_podman_line_carries_devices_shm_user_mounts_and_limits() -> None:
    container = Container("localhost/py:1", DEFAULT_SHM_BYTES, ("tuxai.dev/gpu=1",), "runc")
    run_dir = Path("/var/lib/tuxai/jobs/7/run-1")
    argv = run_argv(_launch(), container, run_dir, HOST)
    assert argv[:3] == ["podman", "--runtime=runc", "--cgroup-manager=cgroupfs"]
    assert argv[-1] == "localhost/py:1" and argv.count("run") == 1
    assert "--device=tuxai.dev/gpu=1" in argv and not [
        a for a in argv if a.startswith("--device") and a.endswith("=all")
    ]
    assert f"--shm-size={8 << 30}" in argv
    assert "--user=1000:1000" in argv and "--group-add=44" in argv and "--group-add=1000" not in argv
    assert "--cap-drop=all" in argv and "--security-opt=no-new-privileges" in argv  # root inside via setuid: no
    assert "--volume=/home/ana/proj:/home/ana/proj" in argv and "--workdir=/home/ana/proj" in argv
    assert "--volume=/var/lib/tuxai/jobs/7/checkpoint:/var/lib/tuxai/jobs/7/checkpoint" in argv
    assert "--cgroup-parent=/a/tuxai/j7" in argv  # under the job's memory group: its limit holds
    assert argv[argv.index("--ulimit") + 1] == "nofile=1024:4096"
    assert f"--env-file={run_dir / ENV_FILE}" in argv
    assert not [a for a in argv if "s3cret" in a]  # never on the command line (world-readable)


def test_I19_no_groups_no_cgroup_parent_and_rootless_keeps_the_user() -> None:
    launch = _launch(cgroup=CgroupPlan(), cwd="")
    argv = run_argv(launch, Container("img"), Path("/r/jobs/7/run-1"), Host(HOST.limits, rootless=True, stdin=True))
    assert not [a for a in argv if a.startswith(("--cgroup", "--user=", "--workdir", "--runtime"))]
    assert "--userns=keep-id" in argv and "-i" in argv and "-t" not in argv
    assert cgroup_parent(CgroupPlan(2, {"unified": "/sys/fs/cgroup/tuxai/j"})) == "/tuxai/j"


def test_I19_env_file_leaves_out_host_places_and_what_it_cannot_carry() -> None:
    text, dropped = env_file_text({"A": "1", "PATH": "/x", "F": "a\nb", "B": "x=y  "})
    assert text == "A=1\nB=x=y  \n"
    assert dropped == ("F", "PATH")


def test_I19_launch_json_carries_the_container(tmp_path: Path) -> None:
    container = Container("img:1", 1 << 30, ("tuxai.dev/gpu=0",), "runc", "")
    write_launch(tmp_path / "run-1", _launch(container=container))
    assert read_launch(tmp_path / "run-1").container == container
    write_launch(tmp_path / "run-2", _launch())
    assert read_launch(tmp_path / "run-2").container is None


def test_I19_job_file_image_and_shm_size() -> None:
    spec = spec_from_dict({"command": "python t.py", "image": " localhost/py:1 ", "shm_size": "16GiB"}, "job.yaml")
    assert (spec.image, spec.shm_bytes) == ("localhost/py:1", 16 << 30)
    assert spec_from_dict(spec_to_dict(spec)) == spec
    with pytest.raises(UsageError, match="shm_size"):
        spec_from_dict({"command": "x", "shm_size": "lots"})


def test_I19_container_for_names_gpus_from_the_specs_on_the_host(tmp_path: Path) -> None:
    (tmp_path / "fake.json").write_text('{"kind": "tuxai.dev/gpu", "devices": [{"name": "0"}, {"name": "1"}]}')
    (tmp_path / "broken.yaml").write_text("kind: [")
    specs, problems = read_cdi_specs([str(tmp_path), str(tmp_path / "missing")])
    assert [s.kind for s in specs] == ["tuxai.dev/gpu"] and [p.split(":")[0] for p in problems] == [
        str(tmp_path / "broken.yaml")
    ]
    assert container_for(JobSpec(("x",)), Allocation("n")) is None
    made = container_for(JobSpec(("x",), image="img"), Allocation("n"))
    assert made is not None and made.shm_bytes == DEFAULT_SHM_BYTES and made.cdi_devices == ()
    refused = container_for(JobSpec(("x",), image="img"), Allocation("n", (GpuShare(9, "GPU-zzz"),)))
    assert refused is not None and "no CDI device for GPU GPU-zzz" in refused.error


def test_I19_runtime_is_runc_where_crun_refuses_the_cgroups() -> None:
    assert choose_runtime(1, True, ["crun", "runc"]) == "runc"
    assert choose_runtime(2, False, ["crun", "runc"]) == "crun"
    assert choose_runtime(1, False, ["crun"]) == "crun"
    assert choose_runtime(2, False, []) == ""


def test_I19_groups_podman_made_are_removed_bottom_up(tmp_path: Path) -> None:
    plan = CgroupPlan(1, {"memory": "/sys/fs/cgroup/memory/a/tuxai/j7"})
    for hierarchy in ("memory", "cpuset"):
        (tmp_path / hierarchy / "a/tuxai/j7/libpod-1/x").mkdir(parents=True)
    (tmp_path / "cpuset/a/tuxai/other").mkdir()
    remove_groups(plan, [tmp_path / "memory", tmp_path / "cpuset", tmp_path / "pids"])
    assert not (tmp_path / "memory/a/tuxai/j7").exists() and not (tmp_path / "cpuset/a/tuxai/j7").exists()
    assert (tmp_path / "cpuset/a/tuxai/other").is_dir() and os.path.isdir(tmp_path / "memory/a/tuxai")


@pytest.mark.parametrize("image", ["--privileged", "-v=/:/host", "img --privileged", "", "img\nx", "a;b"])
def test_I19_an_image_can_never_be_read_as_a_podman_flag(image: str) -> None:
    with pytest.raises(UsageError, match="image"):
        spec_from_dict({"command": "x", "image": image or " "}) if image else check_image(image)
    with pytest.raises(UsageError):  # launch.json is the shim's only input: checked there too
        run_argv(_launch(), Container(image), Path("/r/jobs/7/run-1"), HOST)


def test_I19_a_container_jobs_workdir_cannot_add_to_its_mount() -> None:
    for workdir in ("/tmp/x:/etc", "/tmp/a,ro"):
        with pytest.raises(UsageError, match="workdir"):
            spec_from_dict({"command": "x", "image": "img", "workdir": workdir})
    assert spec_from_dict({"command": "x", "image": "localhost/a/b@sha256:" + "0" * 64}).image.startswith("localhost")
    assert spec_from_dict({"command": "x", "workdir": "/tmp/x:y"}).workdir == "/tmp/x:y"  # a bare job: no mount


def test_I19_submit_refuses_an_image_with_env_or_without_podman(monkeypatch: pytest.MonkeyPatch) -> None:
    check_container_submit(JobSpec(("x",), env_path="/venv"))  # no image: not ours to refuse
    with pytest.raises(UsageError, match="--env and --image cannot be used together"):
        check_container_submit(JobSpec(("x",), image="img", env_path="/venv"))
    monkeypatch.setenv("PATH", "/nonexistent")  # podman is in /usr/bin: not found on this PATH
    with pytest.raises(UsageError, match="no podman") as caught:
        check_container_submit(JobSpec(("x",), image="img"))
    assert "apt-get install" in caught.value.hint


def test_I19_a_shared_gpu_slice_gets_the_hosts_ipc_and_the_mps_pipes() -> None:
    slice_env = {"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "50", "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT": "0=8192M"}
    checked = Host(HOST.limits, mps_source="/run/tuxai/workdirs/c.mps")  # podman.mps_pipes checked and bound it (U1)
    argv = run_argv(_launch(env=slice_env), Container("img"), Path("/r/jobs/7/run-1"), checked)
    assert "--ipc=host" in argv and "--volume=/run/tuxai/workdirs/c.mps:/tmp/nvidia-mps" in argv
    assert not [a for a in argv if a.startswith("--shm-size")]
    text, _ = env_file_text(slice_env)
    assert "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=8192M" in text  # its memory cap goes in with the rest
    pipe_env = {**slice_env, "CUDA_MPS_PIPE_DIRECTORY": "/root"}
    own = run_argv(_launch(env=pipe_env), Container("img"), Path("/r/x"), checked)
    assert "--volume=/root:/root" not in own  # a path from the job's variables is never mounted
    with pytest.raises(UsageError, match="MPS pipe directory"):  # nor one left unchecked (U1)
        run_argv(_launch(env=slice_env), Container("img"), Path("/r/x"), HOST)


@pytest.mark.parametrize(
    "image",
    ["oci-archive:/root/secret.tar", "docker-archive:/etc/x.tar", "dir:/root", "docker-daemon:img:1",
     "containers-storage:img", "oci:/var/lib/x", "oci:5000/x", "sif:img", "ostree:img", "tarball:/x.tgz",
     "docker://evil.example/x", "img\n", "Img", "a//b", "a:b:c"],
)  # fmt: skip
def test_S3_an_image_is_never_a_transport_podman_would_read_as_root(image: str) -> None:
    with pytest.raises(UsageError, match="image"):
        check_image(image)
    with pytest.raises(UsageError):  # the shim's check of launch.json too
        run_argv(_launch(), Container(image), Path("/r/jobs/7/run-1"), HOST)


@pytest.mark.parametrize(
    "image",
    ["img", "py:1", "python:3.12-slim", "localhost/tuxai/train:3f2a9c01d4e5b6a7", "localhost:5000/team/x:v1.2",
     "docker.io/library/python@sha256:" + "0" * 64, "ghcr.io/a-b/c__d.e:latest", "3f2a9c01d4e5"],
)  # fmt: skip
def test_S3_image_references_as_registries_name_them_still_pass(image: str) -> None:
    assert check_image(image) == image


def test_S3_a_users_container_job_never_pulls_with_roots_credentials() -> None:
    users = run_argv(_launch(), Container("img"), Path("/r/jobs/7/run-1"), HOST)
    assert "--pull=never" in users and users.index("--pull=never") < users.index("img")
    roots = run_argv(_launch(user=(0, 0, ())), Container("img"), Path("/r/jobs/7/run-1"), HOST)
    rootless = run_argv(_launch(), Container("img"), Path("/r/x"), Host(HOST.limits, rootless=True))
    assert "--pull=never" not in roots and "--pull=never" not in rootless  # podman's own user's credentials
