"""Build the example model repository: two tiny ONNX models made here, nothing downloaded.

    python examples/models/build.py [REPO]      # REPO defaults to examples/models/repo

    REPO/add_sub/1/model.onnx   a, b FP32 [-1, 4] → sum = a + b, difference = a − b (Triton's "simple")
    REPO/classify/1/model.onnx  x FP32 [-1, 4] → probabilities FP32 [-1, 3], label INT64 [-1]
    REPO/classify/config.yaml   its serving settings (batching, versions)

Then ``tuxai serve examples/models/repo`` and ask it (docs/serving.md, "Asking a model"):

    tuxai infer add_sub --input a='[[1, 2, 3, 4]]' --input b='[[4, 3, 2, 1]]'

Needs the ``onnx`` package (``pip install onnx``) to write the graphs; serving them needs
ONNX Runtime (``pip install 'tuxai[serve]'``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent

CLASSIFY_CONFIG = """\
# Requests merge into batches of up to 32 rows; one that finds the queue idle runs at once.
max_batch_size: 32
max_queue_delay_ms: 1
version_policy: {latest: 1}   # a new directory 2/ replaces 1/ without dropping a request
"""


def _write(graph: onnx.GraphProto, path: Path) -> Path:
    """Check the graph and save it as an ONNX model (opset 17, readable by ONNX Runtime ≥ 1.14)."""
    built = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    built.ir_version = 8
    onnx.checker.check_model(built)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(built, str(path))
    return path


def _floats(name: str, width: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", width])


def add_sub(path: Path) -> Path:
    """a, b FP32 [-1, 4] → sum, difference FP32 [-1, 4]."""
    nodes = [helper.make_node("Add", ["a", "b"], ["sum"]), helper.make_node("Sub", ["a", "b"], ["difference"])]
    graph = helper.make_graph(nodes, "add_sub", [_floats("a", 4), _floats("b", 4)],
                              [_floats("sum", 4), _floats("difference", 4)])  # fmt: skip
    return _write(graph, path)


def classify(path: Path) -> Path:
    """x FP32 [-1, 4] → softmax(x·W + b) FP32 [-1, 3] and its argmax INT64 [-1]: a fixed linear classifier."""
    weights = np.array([[2.0, -1.0, -1.0], [-1.0, 2.0, -1.0], [-1.0, -1.0, 2.0], [0.5, 0.5, 0.5]], dtype=np.float32)
    bias = np.zeros(3, dtype=np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "weights", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]
    label = helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"])
    constants = [numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")]
    graph = helper.make_graph(nodes, "classify", [_floats("x", 4)], [_floats("probabilities", 3), label], constants)
    return _write(graph, path)


def build(repo: Path) -> Path:
    """Write the example repository into ``repo`` (models and config; existing files replaced)."""
    add_sub(repo / "add_sub" / "1" / "model.onnx")
    classify(repo / "classify" / "1" / "model.onnx")
    (repo / "classify" / "config.yaml").write_text(CLASSIFY_CONFIG)
    return repo


if __name__ == "__main__":
    target = build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "repo")
    print(f"built {target}: serve it with `tuxai serve {target}`")
