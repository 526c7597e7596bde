"""The launch contract (model.launch; its port check: executor.launch): every variable and word a node gets."""

from __future__ import annotations

import socket

import pytest

from tuxai.daemon.gang import check_gang
from tuxai.errors import UsageError
from tuxai.executor.launch import free_port, port_is_free
from tuxai.model.gang import Launcher, torchrun_target
from tuxai.model.inventory import Inventory
from tuxai.model.jobfile import spec_from_dict, spec_to_dict
from tuxai.model.launch import (
    PORT_HIGH,
    PORT_LOW,
    gang_of,
    node_command,
    node_environment,
    node_launch,
    preferred_port,
)

HOSTS = ("10.0.0.1", "10.0.0.2")


def test_every_variable_of_node_1_of_a_two_node_torchrun_gang() -> None:
    env = node_environment(gang_of(2, 4, Launcher.TORCHRUN), HOSTS, 29511, 1, 12, 3)
    assert env == {
        "MASTER_ADDR": "10.0.0.1",
        "MASTER_PORT": "29511",
        "WORLD_SIZE": "8",
        "NNODES": "2",
        "NODE_RANK": "1",
        "NPROC_PER_NODE": "4",
        "PET_NNODES": "2",
        "PET_NPROC_PER_NODE": "4",
        "PET_NODE_RANK": "1",
        "PET_MASTER_ADDR": "10.0.0.1",
        "PET_MASTER_PORT": "29511",
        "PET_RDZV_BACKEND": "static",
        "PET_RDZV_ENDPOINT": "10.0.0.1:29511",
        "PET_RDZV_ID": "tuxai-12-3",
        "PET_MAX_RESTARTS": "0",
        "TUXAI_NODES": "10.0.0.1,10.0.0.2",
        "TUXAI_NNODES": "2",
        "TUXAI_NODE_RANK": "1",
        "TUXAI_NPROC_PER_NODE": "4",
        "TUXAI_LAUNCHER": "torchrun",
        "TUXAI_MASTER_ADDR": "10.0.0.1",
        "TUXAI_MASTER_PORT": "29511",
    }


def test_pet_names_are_the_ones_torchrun_reads() -> None:
    # torchrun's parser reads PET_<DEST> for each option: the names must match its dests.
    import torch.distributed.run as run  # the venv has torch (the torch extra): the real parser

    dests = {f"PET_{a.dest.upper()}" for a in run.get_args_parser()._actions}
    env = node_environment(gang_of(2, 1, Launcher.TORCHRUN), HOSTS, 29500, 1, 1, 1)
    assert {k for k in env if k.startswith("PET_")} <= dests
    with pytest.MonkeyPatch.context() as patch:  # the parser reads PET_* as it is built
        for key, value in env.items():
            patch.setenv(key, value)
        args = run.get_args_parser().parse_args(["train.py"])
    assert (args.nnodes, args.nproc_per_node, args.node_rank) == ("2", "1", 1)
    assert (args.master_addr, args.master_port, args.max_restarts) == ("10.0.0.1", 29500, 0)
    assert (args.rdzv_backend, args.rdzv_endpoint, args.rdzv_id) == ("static", "10.0.0.1:29500", "tuxai-1-1")


def test_one_node_gang_without_gpus_runs_one_process() -> None:
    env = node_environment(gang_of(1, 0, Launcher.NONE), ["127.0.0.1"], 20001, 0, 5, 1)
    assert (env["WORLD_SIZE"], env["NPROC_PER_NODE"], env["TUXAI_LAUNCHER"]) == ("1", "1", "none")


def test_ipv6_master_is_bracketed_in_the_endpoint() -> None:
    env = node_environment(gang_of(1, 1, Launcher.TORCHRUN), ["fd00::1"], 29500, 0, 1, 1)
    assert env["PET_RDZV_ENDPOINT"] == "[fd00::1]:29500" and env["MASTER_ADDR"] == "fd00::1"


@pytest.mark.parametrize(
    ("command", "program", "tail"),
    [
        (("python", "train.py", "--lr", "3"), "torchrun", ("train.py", "--lr", "3")),
        (("python3", "-m", "pkg.train", "-x"), "torchrun", ("-m", "pkg.train", "-x")),
        (("python3.11", "t.py"), "torchrun", ("t.py",)),
        (("/venv/bin/python", "t.py"), "/venv/bin/torchrun", ("t.py",)),
        (("./train.py", "a"), "torchrun", ("./train.py", "a")),
    ],
)
def test_torchrun_wraps_the_command(command: tuple[str, ...], program: str, tail: tuple[str, ...]) -> None:
    argv = node_command(gang_of(2, 2, Launcher.TORCHRUN), command, HOSTS, 29500, 1)
    head = ("--nnodes", "2", "--nproc-per-node", "2", "--node-rank", "1", "--master-addr", "10.0.0.1")
    assert argv == (program, *head, "--master-port", "29500", "--max-restarts", "0", *tail)


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (("bash", "run.sh"), "cannot run 'bash run.sh'"),
        (("python", "-u", "t.py"), "an interpreter option"),
        (("python", "-c", "print(1)"), "an interpreter option"),
        (("python",), "no script"),
        (("python", "-m"), "an interpreter option"),
        (("torchrun", "t.py"), "is torchrun already"),
        (("python", "-m", "torch.distributed.run", "t.py"), ""),  # a module: torchrun runs it as given
    ],
)
def test_a_command_torchrun_cannot_take_is_one_line(command: tuple[str, ...], words: str) -> None:
    if not words:
        assert torchrun_target(command).args == command[1:]
        return
    with pytest.raises(UsageError) as caught:
        torchrun_target(command)
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert "--launcher none" in str(caught.value) or "give the script" in str(caught.value)


def test_launcher_none_runs_the_command_as_given() -> None:
    launch = node_launch(gang_of(2, 1, Launcher.NONE), ("bash", "run.sh"), HOSTS, 29500, 0, (4, 2))
    assert launch.command == ("bash", "run.sh") and launch.env["NODE_RANK"] == "0"


@pytest.mark.parametrize(
    ("hosts", "rank", "port", "words"),
    [(("a",), 0, 29500, "given 1 address"), (HOSTS, 2, 29500, "node rank 2"), (HOSTS, 0, 70000, "not a TCP port")],
)
def test_a_node_list_that_does_not_fit_the_gang_is_refused(
    hosts: tuple[str, ...], rank: int, port: int, words: str
) -> None:
    with pytest.raises(UsageError, match=words):
        node_environment(gang_of(2, 1, Launcher.NONE), hosts, port, rank, 1, 1)


def test_master_port_is_deterministic_and_checked_free() -> None:
    port = preferred_port(7, 1)
    assert port == preferred_port(7, 1) and PORT_LOW <= port <= PORT_HIGH and port != preferred_port(7, 2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        assert not port_is_free("127.0.0.1", port)
        chosen = free_port("127.0.0.1", port)
        assert chosen != port and port_is_free("127.0.0.1", chosen)
    assert free_port("127.0.0.1", port) == port


def test_gang_fields_in_the_job_file_round_trip() -> None:
    spec = spec_from_dict({"command": "python ddp.py", "nodes": 1, "gpus_per_node": 2, "launcher": "torchrun"})
    assert (spec.nodes, spec.launcher, spec.request.gpus) == (1, Launcher.TORCHRUN, 2)
    assert spec_from_dict(spec_to_dict(spec)) == spec
    only_nodes = spec_from_dict({"command": "sh x", "nodes": 3})
    assert only_nodes.launcher is Launcher.NONE and only_nodes.nodes == 3
    plain = spec_from_dict({"command": "sh x", "gpus": 2})
    assert plain.launcher is None and "nodes" not in spec_to_dict(plain)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"nodes": 0}, "nodes must be an integer between 1"),
        ({"launcher": "mpirun"}, "launcher must be one of none, torchrun"),
        ({"gpus": 1, "gpus_per_node": 2}, "gpus (1) and gpus_per_node (2) differ"),
        ({"launcher": "torchrun", "command": "bash x.sh"}, "--launcher torchrun cannot run 'bash x.sh'"),
    ],
)
def test_bad_gang_fields_name_the_field(data: dict[str, object], words: str) -> None:
    with pytest.raises(UsageError) as caught:
        spec_from_dict({"command": "python t.py", **data}, "job.yaml")
    assert words in str(caught.value)


def test_two_nodes_are_refused_naming_this_daemons_shape() -> None:
    spec = spec_from_dict({"command": "python t.py", "nodes": 2, "gpus_per_node": 1, "launcher": "torchrun"})
    with pytest.raises(UsageError) as caught:
        check_gang(spec, _inventory())
    assert "this daemon runs one node (local executor: 2 GPUs)" in str(caught.value)
    assert "--nodes 2 needs a cluster engine (tuxai up --ray" in str(caught.value)
    check_gang(spec_from_dict({"command": "python t.py", "nodes": 1, "launcher": "torchrun"}), _inventory())


def _inventory() -> Inventory:
    from tests.daemon_helpers import TWO_GPUS
    from tuxai.hardware.simulated import load_inventory_file

    return load_inventory_file(TWO_GPUS)


def test_the_ddp_example_job_file_is_a_one_node_torchrun_gang() -> None:
    from tests.daemon_helpers import REPO
    from tuxai.model.jobfile import load_job_file

    path = REPO / "examples" / "jobs" / "ddp.yaml"
    spec = spec_from_dict(load_job_file(path.read_text(), str(path)), str(path), slurm_time=True)
    assert (spec.command, spec.nodes, spec.request.gpus) == (("python", "ddp.py"), 1, 2)
    assert spec.launcher is Launcher.TORCHRUN


def test_a_gang_cannot_export_a_variable_of_the_launch_contract() -> None:
    spec = spec_from_dict({"command": "python t.py", "launcher": "torchrun", "export": {"MASTER_PORT": "1", "X": "y"}})
    with pytest.raises(UsageError, match="export: MASTER_PORT is set by tuxai for a multi-node job"):
        check_gang(spec, _inventory())
    check_gang(spec_from_dict({"command": "python t.py", "export": {"MASTER_PORT": "1"}}), _inventory())  # not a gang


def test_a_job_file_with_queue_says_it_is_for_the_k8s_export() -> None:
    with pytest.raises(UsageError, match=r"unknown field queue \(queue is for `tuxai export k8s`\)"):
        spec_from_dict({"command": "python t.py", "queue": "x"}, "job.yaml")  # image: runs in podman (issue 19)


def test_nproc_per_node_sets_the_ranks_on_each_node() -> None:
    spec = spec_from_dict({"command": "python t.py", "nproc_per_node": 4, "launcher": "torchrun"})
    assert (spec.procs_per_node, spec.request.gpus, spec.launcher) == (4, 0, Launcher.TORCHRUN)
    assert spec_from_dict(spec_to_dict(spec)) == spec
    env = node_environment(gang_of(2, 0, Launcher.TORCHRUN, spec.procs_per_node), HOSTS, 29500, 0, 1, 1)
    assert (env["WORLD_SIZE"], env["NPROC_PER_NODE"], env["PET_NPROC_PER_NODE"]) == ("8", "4", "4")
