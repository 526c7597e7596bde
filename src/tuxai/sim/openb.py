"""The Alibaba GPU trace v2023 (``openb``): node list and pod list CSVs. Pure parsers."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from tuxai.errors import UsageError

NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
# What time mode reads beyond the resource columns: the QoS class marks best-effort pods preemptible.
TIME_COLUMNS = ("gpu_spec", "qos")


@dataclass(frozen=True)
class OpenbNode:
    """One machine of the trace's cluster."""

    name: str
    cpu_milli: int
    memory_mib: int
    gpus: int
    model: str


@dataclass(frozen=True)
class OpenbPod:
    """One pod (job) of the trace: its resource request and class."""

    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int
    gpu_spec: tuple[str, ...] = ()
    qos: str = ""

    @property
    def gpu_milli_total(self) -> int:
        """The pod's GPU request in milli-GPUs: ``num_gpu × gpu_milli``."""
        return self.num_gpu * self.gpu_milli


def _rows(text: str, origin: str, required: tuple[str, ...]) -> tuple[list[dict[str, str]], tuple[str, ...]]:
    reader = csv.DictReader(io.StringIO(text))
    columns = tuple(reader.fieldnames or ())
    missing = [c for c in required if c not in columns]
    if missing:
        raise UsageError(
            f"{origin} lacks the column(s) {', '.join(missing)} (it has {', '.join(columns) or 'none'})",
            hint="pass the openb CSV files: --jobs openb_pod_list_*.csv --cluster openb_node_list_gpu_node.csv",
        )
    return list(reader), columns


def _int(row: dict[str, str], column: str, origin: str, line: int) -> int:
    value = (row.get(column) or "").strip()
    try:
        return int(float(value))
    except ValueError:
        raise UsageError(
            f"{origin} line {line}: {column} must be a number, got {value!r}", hint="fix the CSV"
        ) from None


def parse_nodes(text: str, origin: str = "node list") -> tuple[OpenbNode, ...]:
    """``sn,cpu_milli,memory_mib,gpu,model`` rows → nodes sorted by name.

    Raises:
        UsageError: a column is missing or a value is not a number.
    """
    rows, _ = _rows(text, origin, NODE_COLUMNS)
    nodes = [
        OpenbNode(
            name=row["sn"],
            cpu_milli=_int(row, "cpu_milli", origin, line),
            memory_mib=_int(row, "memory_mib", origin, line),
            gpus=_int(row, "gpu", origin, line),
            model=row["model"].strip(),
        )
        for line, row in enumerate(rows, start=2)
    ]
    if not nodes:
        raise UsageError(f"{origin} has no nodes", hint="pass a non-empty node list")
    return tuple(sorted(nodes, key=lambda n: n.name))


def parse_pods(text: str, origin: str = "pod list", require: tuple[str, ...] = ()) -> tuple[OpenbPod, ...]:
    """Pod rows → pods, in file order; ``require`` names extra columns a mode needs.

    Raises:
        UsageError: a required column is missing or a value is not a number.
    """
    rows, columns = _rows(text, origin, POD_COLUMNS + require)
    pods = []
    for line, row in enumerate(rows, start=2):
        spec = (row.get("gpu_spec") or "").strip()
        pods.append(
            OpenbPod(
                name=row["name"],
                cpu_milli=_int(row, "cpu_milli", origin, line),
                memory_mib=_int(row, "memory_mib", origin, line),
                num_gpu=_int(row, "num_gpu", origin, line),
                gpu_milli=_int(row, "gpu_milli", origin, line),
                gpu_spec=tuple(s for s in spec.split("|") if s),
                qos=(row.get("qos") or "").strip() if "qos" in columns else "",
            )
        )
    if not pods:
        raise UsageError(f"{origin} has no pods", hint="pass a non-empty pod list")
    return tuple(pods)
