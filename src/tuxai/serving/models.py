"""Model loaders: ONNX Runtime, TorchScript (or torch.export), TensorFlow SavedModel.

Each gives its signature (``TensorSpec`` in and out) and ``run(inputs) -> outputs`` on numpy
arrays. Frameworks are imported when a model of theirs is loaded, with an install hint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tuxai.errors import InferenceInputError, ModelLoadError
from tuxai.serving.protocol import DATATYPES, DTYPE_NAMES

FILES = {"model.onnx": "onnxruntime_onnx", "model.pt": "pytorch_libtorch", "model.savedmodel": "tensorflow_savedmodel"}


@dataclass(frozen=True)
class TensorSpec:
    """A named tensor: its v2 datatype and shape (-1 for a free dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def describe(self) -> dict[str, Any]:
        """As model metadata shows it."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


class Model(Protocol):
    """A loaded model."""

    platform: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def run(self, inputs: dict[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        """One (batched) forward pass."""
        ...


_ONNX_TYPES = {
    "tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(float16)": "FP16", "tensor(int64)": "INT64",
    "tensor(int32)": "INT32", "tensor(int16)": "INT16", "tensor(int8)": "INT8", "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16", "tensor(uint32)": "UINT32", "tensor(uint64)": "UINT64", "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}  # fmt: skip


def _dims(shape: Any) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) and d >= 0 else -1 for d in shape)


def _import(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ModelLoadError(f"{module} is not installed (pip install 'tuxai[{extra}]')") from None


class OnnxModel:
    """``model.onnx`` through ONNX Runtime: CUDA or ROCm execution provider when present, else CPU."""

    platform = "onnxruntime_onnx"

    def __init__(self, path: Path, threads: int = 0) -> None:
        ort = _import("onnxruntime", "onnx")
        options = ort.SessionOptions()
        # ONNX Runtime sizes its pool by the machine's cores, not by the CPUs this process may
        # use: a server pinned to 2 CPUs of a 64-core box (a --serve job) would start 64 threads.
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        available = ort.get_available_providers()
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset") != ""
        wanted = [p for p in ("CUDAExecutionProvider", "ROCMExecutionProvider") if p in available and visible]
        try:
            self.session = ort.InferenceSession(str(path), options, providers=[*wanted, "CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 (ONNX Runtime raises its own, undocumented types)
            raise ModelLoadError(f"ONNX Runtime cannot load {path}: {exc}") from None
        def spec(node: Any) -> TensorSpec:
            return TensorSpec(node.name, _ONNX_TYPES.get(node.type, "FP32"), _dims(node.shape))

        self.inputs = [spec(i) for i in self.session.get_inputs()]
        self.outputs = [spec(o) for o in self.session.get_outputs()]
        self._names = [o.name for o in self.outputs]

    def run(self, inputs: dict[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        """``session.run``."""
        return dict(zip(self._names, self.session.run(self._names, inputs), strict=True))


class TorchModel:
    """``model.pt``: TorchScript (``torch.jit.save``) or ``torch.export`` (``torch.export.save``).

    Its signature comes from ``config.yaml`` (``inputs``/``outputs``): a TorchScript file does
    not say it.
    """

    platform = "pytorch_libtorch"

    def __init__(self, path: Path, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> None:
        torch = _import("torch", "torch")
        if not inputs or not outputs:
            raise ModelLoadError(f"{path}: a PyTorch model needs inputs and outputs in its config.yaml")
        try:
            self.module = torch.export.load(str(path)).module()
        except Exception:  # noqa: BLE001 (not torch.export's format: try TorchScript)
            try:
                self.module = torch.jit.load(str(path), map_location="cpu")
                self.module.eval()
            except Exception as exc:  # noqa: BLE001
                raise ModelLoadError(f"PyTorch cannot load {path} as torch.export or TorchScript: {exc}") from None
        self.torch, self.inputs, self.outputs = torch, inputs, outputs

    def run(self, inputs: dict[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        """The module's forward, without autograd, on CPU tensors."""
        with self.torch.inference_mode():
            result = self.module(*(self.torch.from_numpy(np.ascontiguousarray(inputs[s.name])) for s in self.inputs))
        values = result if isinstance(result, tuple | list) else (result,)
        return {spec.name: v.numpy() for spec, v in zip(self.outputs, values, strict=True)}


class SavedModel:
    """``model.savedmodel/`` through TensorFlow: its ``serving_default`` signature."""

    platform = "tensorflow_savedmodel"

    def __init__(self, path: Path) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        tf = _import("tensorflow", "tf")
        try:
            loaded = tf.saved_model.load(str(path))
            self.function = loaded.signatures["serving_default"]
        except Exception as exc:  # noqa: BLE001 (TensorFlow raises many kinds)
            raise ModelLoadError(f"TensorFlow cannot load {path}: {exc}") from None
        self._keep = loaded
        args = self.function.structured_input_signature[1]
        self.inputs = [
            TensorSpec(name, _tf_type(spec.dtype), _dims(spec.shape.as_list())) for name, spec in sorted(args.items())
        ]
        outs = self.function.structured_outputs
        self.outputs = [
            TensorSpec(name, _tf_type(spec.dtype), _dims(spec.shape.as_list())) for name, spec in sorted(outs.items())
        ]
        self.tf = tf

    def run(self, inputs: dict[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        """The signature function on constant tensors."""
        result = self.function(**{name: self.tf.constant(value) for name, value in inputs.items()})
        return {name: value.numpy() for name, value in result.items()}


def _tf_type(dtype: Any) -> str:
    name = "BYTES" if dtype.name == "string" else None
    if name:
        return name
    for key, kind in DATATYPES.items():
        if kind is not np.object_ and np.dtype(kind) == np.dtype(dtype.as_numpy_dtype):
            return key
    raise ModelLoadError(f"TensorFlow type {dtype.name} has no Open Inference Protocol datatype")


def load_model(directory: Path, inputs: list[TensorSpec], outputs: list[TensorSpec], threads: int = 0) -> Model:
    """The model file in a version directory.

    Raises:
        ModelLoadError: no model file, or its framework cannot load it.
    """
    if directory.is_file() and directory.suffix == ".onnx":
        return OnnxModel(directory, threads)
    if directory.is_file() and directory.suffix == ".pt":
        return TorchModel(directory, inputs, outputs)
    if directory.is_dir() and directory.suffix == ".savedmodel":
        return SavedModel(directory)
    if (directory / "model.onnx").is_file():
        return OnnxModel(directory / "model.onnx", threads)
    if (directory / "model.pt").is_file():
        return TorchModel(directory / "model.pt", inputs, outputs)
    if (directory / "model.savedmodel").is_dir():
        return SavedModel(directory / "model.savedmodel")
    raise ModelLoadError(f"{directory} has no model.onnx, model.pt or model.savedmodel/")


def check_inputs(model: Model, inputs: dict[str, np.ndarray[Any, Any]], max_batch_size: int) -> int:
    """The batch size of a request that matches the model's signature.

    Raises:
        InferenceInputError: a wrong name, datatype or shape; the message names the expected signature.
    """
    def expected() -> str:  # built only for an error message: this runs on every request
        return ", ".join(f"{s.name} {s.datatype} {list(s.shape)}" for s in model.inputs)

    if len(inputs) != len(model.inputs) or any(s.name not in inputs for s in model.inputs):
        raise InferenceInputError(f"inputs {sorted(inputs)} do not match the model's: {expected()}")
    batch = None
    for spec in model.inputs:
        array = inputs[spec.name]
        datatype = "BYTES" if array.dtype == np.object_ else DTYPE_NAMES.get(array.dtype, str(array.dtype))
        if datatype != spec.datatype:
            raise InferenceInputError(f"input '{spec.name}' is {datatype}; the model expects {expected()}")
        shape = array.shape
        if len(shape) != len(spec.shape) or not all(w == -1 or w == g for w, g in zip(spec.shape, shape, strict=True)):
            raise InferenceInputError(f"input '{spec.name}' has shape {list(shape)}; the model expects {expected()}")
        if max_batch_size:
            if not array.shape or array.shape[0] < 1:
                raise InferenceInputError(
                    f"input '{spec.name}' needs a batch dimension; the model expects {expected()}"
                )
            if batch is not None and array.shape[0] != batch:
                raise InferenceInputError("all inputs must have the same batch size")
            batch = array.shape[0]
            if batch > max_batch_size:
                raise InferenceInputError(f"batch of {batch} is over the model's max_batch_size {max_batch_size}")
    return batch or 1
