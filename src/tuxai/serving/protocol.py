"""The Open Inference Protocol (KServe v2) on the wire: datatypes, JSON tensors, Triton's binary
tensor extension. Pure: bytes and dicts in, numpy arrays out, and back.

    POST /v2/models/mlp/infer
    Inference-Header-Content-Length: 140
    {"inputs":[{"name":"x","shape":[1,256],"datatype":"FP32","parameters":{"binary_data_size":1024}}]}<1024 bytes>
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuxai.errors import InferenceInputError

DATATYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
HEADER = "inference-header-content-length"
DTYPE_NAMES = {np.dtype(kind): name for name, kind in DATATYPES.items() if kind is not np.object_}

try:  # orjson parses and writes JSON several times faster; the standard library otherwise
    import orjson

    def _loads(data: bytes) -> Any:
        return orjson.loads(data)

    def _dumps(data: Any) -> bytes:
        return orjson.dumps(data)

    _JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError, UnicodeDecodeError)
except ImportError:  # pragma: no cover

    def _loads(data: bytes) -> Any:
        return json.loads(data)

    def _dumps(data: Any) -> bytes:
        return json.dumps(data, separators=(",", ":")).encode()

    _JSON_ERRORS = (ValueError, UnicodeDecodeError)


def datatype_of(dtype: np.dtype[Any]) -> str:
    """numpy dtype → v2 datatype (``BYTES`` for strings and objects)."""
    if dtype.kind in ("O", "S", "U"):
        return "BYTES"
    name = DTYPE_NAMES.get(dtype)
    if name is not None:
        return name
    raise InferenceInputError(f"numpy type {dtype} has no Open Inference Protocol datatype")


@dataclass(frozen=True)
class Requested:
    """One decoded request: its tensors, which outputs to send (None: all), and how."""

    inputs: dict[str, np.ndarray[Any, Any]]
    outputs: list[str] | None
    binary_outputs: set[str]
    binary_default: bool
    request_id: str | None


def _bytes_elements(blob: bytes) -> list[bytes]:
    """BYTES in binary form: each element a 4-byte little-endian length, then the bytes."""
    items, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise InferenceInputError("BYTES tensor data is truncated (a length prefix is cut)")
        (size,) = struct.unpack_from("<I", blob, offset)
        offset += 4
        if offset + size > len(blob):
            raise InferenceInputError("BYTES tensor data is truncated (an element is cut)")
        items.append(blob[offset : offset + size])
        offset += size
    return items


def _shape(value: object, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value):
        raise InferenceInputError(f"input '{name}': shape must be a list of non-negative integers, got {value!r}")
    return tuple(value)


def decode_tensor(spec: dict[str, Any], blob: bytes | None) -> np.ndarray[Any, Any]:
    """One tensor of a request or a response: ``{name, datatype, shape, data}``, or its binary data.

    Raises:
        InferenceInputError: no name, an unknown datatype, a bad shape, data that does not fit it.
    """
    name = spec.get("name")
    if not isinstance(name, str):
        raise InferenceInputError("every input needs a string 'name'")
    datatype = spec.get("datatype")
    if datatype not in DATATYPES:
        raise InferenceInputError(f"input '{name}': unknown datatype {datatype!r} (one of {', '.join(DATATYPES)})")
    shape = _shape(spec.get("shape"), name)
    count = math.prod(shape)
    dtype = DATATYPES[datatype]
    if blob is not None:
        if datatype == "BYTES":
            items = _bytes_elements(blob)
            if len(items) != count:
                raise InferenceInputError(f"input '{name}': {len(items)} BYTES elements for shape {list(shape)}")
            return np.array(items, dtype=np.object_).reshape(shape)
        expected = count * np.dtype(dtype).itemsize
        if len(blob) != expected:
            raise InferenceInputError(
                f"input '{name}': {len(blob)} bytes of binary data, {expected} expected for {shape}"
            )
        return np.frombuffer(blob, dtype=dtype).reshape(shape)
    data = spec.get("data")
    if data is None:
        raise InferenceInputError(f"input '{name}' has neither 'data' nor binary data")
    try:
        if datatype == "BYTES":
            flat = np.array([d.encode() if isinstance(d, str) else d for d in _flatten(data)], dtype=np.object_)
        else:
            flat = np.asarray(_flatten(data), dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InferenceInputError(f"input '{name}': data is not {datatype}: {exc}") from None
    if flat.size != count:
        raise InferenceInputError(f"input '{name}': {flat.size} values for shape {list(shape)} ({count} expected)")
    return flat.reshape(shape)


def _flatten(data: object) -> list[Any]:
    if isinstance(data, list):
        if data and isinstance(data[0], list):
            out: list[Any] = []
            for item in data:
                out.extend(_flatten(item))
            return out
        return data
    return [data]


def decode_request(body: bytes, header_length: int | None) -> Requested:
    """The request body (JSON, or JSON + binary with the header length) → tensors.

    Raises:
        InferenceInputError: malformed JSON, unknown datatype, wrong sizes, truncated binary data.
    """
    if header_length is not None:
        if header_length < 0:
            raise InferenceInputError("Inference-Header-Content-Length must be the JSON header's length in bytes")
        if header_length > len(body):
            raise InferenceInputError(
                f"Inference-Header-Content-Length {header_length} is beyond the body ({len(body)})"
            )
        head, rest = body[:header_length], memoryview(body)[header_length:]
    else:
        head, rest = body, memoryview(b"")
    try:
        request = _loads(head)
    except _JSON_ERRORS as exc:
        raise InferenceInputError(f"the request is not JSON: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list) or not request["inputs"]:
        raise InferenceInputError("the request must be an object with a non-empty 'inputs' list")
    inputs, offset = {}, 0
    for spec in request["inputs"]:
        if not isinstance(spec, dict):
            raise InferenceInputError("every input must be an object")
        if isinstance(spec.get("name"), str) and spec["name"] in inputs:
            raise InferenceInputError(f"input '{spec['name']}' appears twice in the request: name each input once")
        parameters = spec.get("parameters") or {}
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        blob = None
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(rest):
                raise InferenceInputError(f"input '{spec.get('name')}': binary_data_size {size!r} is beyond the body")
            blob = bytes(rest[offset : offset + size])
            offset += size
        tensor = decode_tensor(spec, blob)
        inputs[spec["name"]] = tensor
    if offset != len(rest):
        raise InferenceInputError(f"{len(rest) - offset} bytes of binary data belong to no input")
    parameters = request.get("parameters") or {}
    binary_default = bool(parameters.get("binary_data_output", False)) if isinstance(parameters, dict) else False
    outputs, binary = None, set()
    if isinstance(request.get("outputs"), list):
        outputs, seen = [], set[str]()
        for item in request["outputs"]:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise InferenceInputError("every requested output must be an object with a 'name'")
            if item["name"] in seen:
                raise InferenceInputError(f"output '{item['name']}' is requested twice: name each output once")
            seen.add(item["name"])
            outputs.append(item["name"])
            options = item.get("parameters")
            wanted = options.get("binary_data", binary_default) if isinstance(options, dict) else binary_default
            if wanted:
                binary.add(item["name"])
    request_id = request.get("id") if isinstance(request.get("id"), str) else None
    return Requested(inputs, outputs, binary, binary_default, request_id)


def encode_response(
    model: str, version: str, outputs: dict[str, np.ndarray[Any, Any]], requested: Requested
) -> tuple[bytes, int | None]:
    """Outputs → the response body and, when any output is binary, the JSON header's length."""
    names = requested.outputs if requested.outputs is not None else list(outputs)
    described, blobs = [], []
    for name in names:
        binary = name in requested.binary_outputs or (requested.outputs is None and requested.binary_default)
        entry, blob = describe_tensor(name, outputs[name], binary)
        described.append(entry)
        if blob is not None:
            blobs.append(blob)
    response: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": described}
    if requested.request_id is not None:
        response["id"] = requested.request_id
    head = _dumps(response)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)


def describe_tensor(name: str, array: np.ndarray[Any, Any], binary: bool) -> tuple[dict[str, Any], bytes | None]:
    """A tensor on the wire: ``{name, datatype, shape, data}``, or with ``binary`` its
    ``parameters.binary_data_size`` and the bytes that go after the JSON (a request's inputs, a response's outputs)."""
    datatype = datatype_of(array.dtype)
    entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    if binary:
        blob = tensor_bytes(array, datatype)
        entry["parameters"] = {"binary_data_size": len(blob)}
        return entry, blob
    if datatype == "BYTES":
        entry["data"] = [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in array.ravel()]
    else:
        entry["data"] = array.ravel().tolist()
    return entry, None


def tensor_bytes(array: np.ndarray[Any, Any], datatype: str) -> bytes:
    """A tensor as binary tensor data: its raw bytes, or for BYTES each element length-prefixed."""
    if datatype != "BYTES":
        return np.ascontiguousarray(array).tobytes()
    parts = []
    for value in array.ravel():
        raw = value if isinstance(value, bytes) else str(value).encode()
        parts.append(struct.pack("<I", len(raw)) + raw)
    return b"".join(parts)
