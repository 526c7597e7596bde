"""Small models built in the tests (nothing downloaded): ONNX graphs by hand, TorchScript, a SavedModel."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def mlp_onnx(path: Path, sizes: tuple[int, ...] = (256, 1024, 1024, 10), seed: int = 0) -> Path:
    """x FP32 [-1, 256] → Gemm/Relu … → y FP32 [-1, 10] (the benchmark's MLP)."""
    rng = np.random.default_rng(seed)
    nodes, inits, current = [], [], "x"
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        weight = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
        bias = (rng.standard_normal(n_out) * 0.01).astype(np.float32)
        inits += [numpy_helper.from_array(weight, f"w{i}"), numpy_helper.from_array(bias, f"b{i}")]
        out = "y" if i == len(sizes) - 2 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [current, f"w{i}", f"b{i}"], [f"g{i}" if out != "y" else "y"]))
        if out != "y":
            nodes.append(helper.make_node("Relu", [f"g{i}"], [out]))
        current = out
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", sizes[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", sizes[-1]])],
        inits,
    )
    return _save(graph, path)


def batch_size_onnx(path: Path) -> Path:
    """x FP32 [-1, 4] → n FP32 [-1, 1]: every row holds the batch size the model was run with."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["rows"], axis=0),
        helper.make_node("Cast", ["rows"], ["rows_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["x", "one_axis"], ["sum"], keepdims=1),
        helper.make_node("Mul", ["sum", "zero_f"], ["zeros"]),
        helper.make_node("Add", ["zeros", "rows_f"], ["n"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "one_axis"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero_f"),
    ]
    graph = helper.make_graph(
        nodes,
        "batch_size",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("n", TensorProto.FLOAT, ["batch", 1])],
        inits,
    )
    return _save(graph, path)


def slow_onnx(path: Path, width: int = 2048, layers: int = 6) -> Path:
    """x FP32 [-1, 2048] through six 2048×2048 MatMuls: a few ms a request, to fill a queue."""
    rng = np.random.default_rng(1)
    nodes, inits, current = [], [], "x"
    for i in range(layers):
        weight = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
        inits.append(numpy_helper.from_array(weight, f"w{i}"))
        out = "y" if i == layers - 1 else f"h{i}"
        nodes.append(helper.make_node("MatMul", [current, f"w{i}"], [out]))
        current = out
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])],
        inits,
    )
    return _save(graph, path)


def torch_export(directory: Path, scale: float = 2.0) -> Path:
    """model.pt (``torch.export``, a dynamic batch: y = x · scale + 1, x FP32 [-1, 3]).

    (TorchScript is deprecated in torch 2.13 and warns; the loader still reads it.)
    """
    import torch

    class Affine(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * scale + 1.0

    directory.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(Affine(), (torch.ones(2, 3),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, str(directory / "model.pt"))
    return directory / "model.pt"


TORCH_CONFIG = """\
max_batch_size: 8
inputs: [{name: x, datatype: FP32, shape: [-1, 3]}]
outputs: [{name: y, datatype: FP32, shape: [-1, 3]}]
"""


def saved_model(directory: Path) -> Path:
    """model.savedmodel/: serving_default(x FP32 [-1, 4]) → {"y": x · 3 − 1, "label": argmax INT64}."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": x * 3.0 - 1.0, "label": tf.argmax(x, axis=1)}

    module = Module()
    target = directory / "model.savedmodel"
    tf.saved_model.save(module, str(target), signatures={"serving_default": module.serve})
    return target


def control_token_path(log: str) -> Path:
    """Where ``tuxai serve`` (no ``--token-file``) said it wrote the token that repository control needs."""
    match = re.search(r"needs the bearer token in (/\S+)$", log, re.MULTILINE)
    if match is None:
        raise AssertionError(f"the server named no control token file:\n{log}")
    return Path(match.group(1))
