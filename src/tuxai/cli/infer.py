"""``tuxai infer MODEL --input NAME=@file.npy | NAME=JSON``: one request to a KServe v2 model server.

    tuxai infer add_sub --input a='[[1, 2, 3, 4]]' --input b='[[4, 3, 2, 1]]'
    tuxai infer classify --input x=@x.npy --binary --json
    tuxai infer mlp --job 12 --input x=@x.npy          # a model served as a job (`submit --serve`)

A ``.npy`` file keeps its own datatype and shape; a JSON value (a number, a list, nested lists,
strings) gets its shape from its nesting and the datatype the model's metadata gives that input
(FP32 for floats, INT64 for whole numbers, BOOL, BYTES for strings when the model does not say).
The request is JSON, or Triton's binary tensors with ``--binary`` (both ways). Building the
request and reading the answer are pure (``parse_input``, ``input_array``, ``build_request``,
``read_response``); ``run_infer`` does the I/O.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from tuxai.errors import InferenceInputError, ServingError, TuxaiError, UsageError
from tuxai.serving.protocol import DATATYPES, HEADER, datatype_of, decode_tensor, describe_tensor

DEFAULT_URL = "http://127.0.0.1:8000"  # where `tuxai serve` listens by default
Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class InputArg:
    """One ``--input``: its name, and a ``.npy`` file or a parsed JSON value."""

    name: str
    file: Path | None = None
    value: object = None


@dataclass(frozen=True)
class InferOptions:
    """The flags of ``tuxai infer``."""

    model: str
    inputs: tuple[str, ...]
    version: str | None = None
    url: str | None = None
    job: int | None = None
    home: Path | None = None
    token_file: Path | None = None
    outputs: tuple[str, ...] = ()
    binary: bool = False
    as_json: bool = False
    timeout_s: float = 60.0


@dataclass(frozen=True)
class Answer:
    """A server's answer: the model and version that ran, and each output by name (in order)."""

    model_name: str
    model_version: str
    outputs: dict[str, Array] = field(default_factory=dict)
    request_id: str | None = None


def parse_input(text: str) -> InputArg:
    """``NAME=@file.npy`` or ``NAME=JSON`` → ``InputArg``.

    ``x=@in.npy`` → ``InputArg("x", Path("in.npy"))``; ``x=[[1, 2]]`` → ``InputArg("x", value=[[1, 2]])``.

    Raises:
        UsageError: no ``=``, an empty name, JSON that does not parse.
    """
    name, sep, rest = text.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"--input {text!r} is not NAME=@file.npy or NAME=JSON", hint="e.g. --input x='[[1, 2, 3]]'")
    name = name.strip()
    if rest.startswith("@"):
        return InputArg(name, file=Path(rest[1:]).expanduser())
    try:
        return InputArg(name, value=json.loads(rest))
    except json.JSONDecodeError as exc:
        hint = f"a number or a list such as {name}='[[1.0, 2.0]]', or {name}=@file.npy"
        raise UsageError(f"--input {name}: {rest!r} is not JSON ({exc.msg})", hint=hint) from None


def _guess_datatype(raw: Array) -> str:
    """What a JSON value's numbers are when the model does not say: FP32, INT64, BOOL or BYTES."""
    if raw.dtype.kind == "b":
        return "BOOL"
    if raw.dtype.kind in "iu":
        return "INT64"
    if raw.dtype.kind == "f":
        return "FP32"
    return "BYTES"


def input_array(arg: InputArg, datatype: str | None) -> Array:
    """The tensor of one input: the ``.npy`` file as it is, or the JSON value as ``datatype``.

    Raises:
        UsageError: an unreadable file, ragged lists, a value that does not fit the datatype.
    """
    if arg.file is not None:
        try:
            array: Array = np.load(arg.file, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise UsageError(f"--input {arg.name}: cannot read {arg.file} as a .npy array: {exc}",
                             hint="save it with numpy.save (numbers or strings, no objects)") from None  # fmt: skip
        if not isinstance(array, np.ndarray):
            raise UsageError(f"--input {arg.name}: {arg.file} holds several arrays", hint="pass one .npy file each")
        datatype_of(array.dtype)  # refuses what the protocol cannot carry
        return array
    if isinstance(arg.value, dict) or arg.value is None:
        raise UsageError(f"--input {arg.name}: a number or a (nested) list, not {json.dumps(arg.value)}",
                         hint=f"e.g. {arg.name}='[[1.0, 2.0]]'")  # fmt: skip
    try:
        raw = np.array(arg.value)
    except ValueError:
        raw = np.array([], dtype=object)  # ragged: numpy refuses it
    if raw.dtype == object:
        raise UsageError(f"--input {arg.name}: the lists are ragged, mixed or too large for 64 bits",
                         hint="every row needs the same length, every value the same kind")  # fmt: skip
    wanted = datatype or _guess_datatype(raw)
    if wanted == "BYTES":
        return np.array([str(v).encode() for v in raw.ravel()], dtype=object).reshape(raw.shape)
    target = np.dtype(DATATYPES[wanted])
    fits = {"b": "biuf", "i": "iuf", "u": "iuf", "f": "f"}  # JSON's kind → the datatypes it may become
    if target.kind not in fits.get(raw.dtype.kind, ""):
        raise UsageError(f"--input {arg.name}: {raw.dtype.name} values do not fit the model's {wanted}",
                         hint=f"give {wanted} values, or a .npy file of that type")  # fmt: skip
    try:
        with np.errstate(over="raise"):
            return np.array(arg.value, dtype=target)
    except (OverflowError, FloatingPointError, ValueError) as exc:
        raise UsageError(f"--input {arg.name}: a value is out of range for {wanted} ({exc})", hint="check it") from None


def build_request(inputs: Mapping[str, Array], *, binary: bool, outputs: Sequence[str] = (),
                  request_id: str | None = None) -> tuple[bytes, int | None]:  # fmt: skip
    """The body of ``POST …/infer``, and the JSON header's length when tensors go binary.

    JSON: ``{"inputs": [{"name", "shape", "datatype", "data": [flat values]}]}``; binary: the same
    header with ``parameters.binary_data_size`` in place of ``data`` (and binary outputs asked
    for), the tensors' bytes after it in order.
    """
    described, blobs = [], []
    for name, array in inputs.items():
        entry, blob = describe_tensor(name, array, binary)
        described.append(entry)
        if blob is not None:
            blobs.append(blob)
    request: dict[str, Any] = {"inputs": described}
    if request_id is not None:
        request["id"] = request_id
    if outputs:
        request["outputs"] = [{"name": o, "parameters": {"binary_data": binary}} for o in outputs]
    elif binary:
        request["parameters"] = {"binary_data_output": True}
    head = json.dumps(request, separators=(",", ":")).encode()
    return (head + b"".join(blobs), len(head)) if binary else (head, None)


def read_response(body: bytes, header_length: int | None) -> Answer:
    """A ``…/infer`` answer (JSON, or a JSON header and binary tensors) → ``Answer``.

    Raises:
        ServingError: the body is not an inference response.
    """
    head = body if header_length is None else body[:header_length]
    try:
        response = json.loads(head)
        if not isinstance(response, dict) or not isinstance(response.get("outputs"), list):
            raise ValueError("no 'outputs' list")
        outputs, offset = {}, header_length or 0
        for spec in response["outputs"]:
            size = (spec.get("parameters") or {}).get("binary_data_size")
            blob = None if size is None else body[offset : offset + int(size)]
            offset += 0 if size is None else int(size)
            outputs[spec["name"]] = decode_tensor(spec, blob)
    except (ValueError, TypeError, KeyError, AttributeError, InferenceInputError) as exc:
        raise ServingError(f"the server's answer is not an inference response: {exc}",
                           hint="is --url a KServe v2 server?") from None  # fmt: skip
    return Answer(str(response.get("model_name", "")), str(response.get("model_version", "")), outputs,
                  response.get("id") if isinstance(response.get("id"), str) else None)  # fmt: skip


def _plain(array: Array) -> Array:
    """BYTES shown as text."""
    if array.dtype == object:
        return np.array([v.decode(errors="replace") if isinstance(v, bytes) else v for v in array.ravel()],
                        dtype=object).reshape(array.shape)  # fmt: skip
    return array


def render(answer: Answer, elapsed_s: float) -> str:
    """The answer for people: the model and version, then each output's name, datatype, shape and
    values (long tensors cut to their first and last three along each axis, as numpy prints them)."""
    lines = [f"model {answer.model_name} version {answer.model_version} ({elapsed_s * 1000:.1f} ms)"]
    for name, array in answer.outputs.items():
        lines.append(f"{name}  {datatype_of(array.dtype)}  {list(array.shape)}")
        text = np.array2string(_plain(array), threshold=64, edgeitems=3, precision=6, separator=", ",
                               max_line_width=100, suppress_small=True)  # fmt: skip
        lines += [f"  {line}" for line in text.splitlines()]
    return "\n".join(lines)


def as_json(answer: Answer) -> dict[str, Any]:
    """The answer in KServe's JSON response form, binary outputs turned into ``data`` lists."""
    outputs = [{"name": name, "datatype": datatype_of(array.dtype), "shape": list(array.shape),
                "data": _plain(array).ravel().tolist()} for name, array in answer.outputs.items()]  # fmt: skip
    out: dict[str, Any] = {"model_name": answer.model_name, "model_version": answer.model_version, "outputs": outputs}
    if answer.request_id is not None:
        out["id"] = answer.request_id
    return out


def _error(status: int, body: bytes, url: str, token: bool) -> TuxaiError:
    """The one-line error of a non-2xx answer, with the server's own message."""
    try:
        said = json.loads(body).get("error", "")
    except (ValueError, AttributeError):
        said = ""
    said = " ".join(str(said or body[:200].decode(errors="replace") or "no message").split())
    hints = {
        401: "the token in --token-file is not the server's" if token else "pass --token-file FILE (the server's)",
        404: f"`curl {url}/v2/models` lists the models the server has",
        413: "send less, or ask the server's owner to raise `tuxai serve --max-body`",
        503: "retry in a moment",
    }  # fmt: skip
    return ServingError(f"the model server answered {status}: {said}", hint=hints.get(status, ""))


def _input_datatypes(metadata: bytes) -> dict[str, str]:
    """The model's metadata → each input's datatype (empty when the metadata does not say)."""
    try:
        described = json.loads(metadata).get("inputs", [])
        return {str(i["name"]): str(i["datatype"]) for i in described if i.get("datatype") in DATATYPES}
    except (ValueError, AttributeError, TypeError, KeyError):
        return {}


def server_url(options: InferOptions) -> str:
    """Where the model server is: ``--url``, the endpoint of ``--job``, or ``DEFAULT_URL``.

    Raises:
        UsageError: both given; ServingError: the job serves nothing (yet); DaemonError, JobNotFound.
    """
    if options.job is None:
        url = (options.url or DEFAULT_URL).strip()
        url = url if "://" in url else f"http://{url}"  # 127.0.0.1:8000, as tritonclient takes it
        url = url.split("://", 1)[0] + "://" + url.split("://", 1)[1].rstrip("/")
        if not url.startswith(("http://", "https://")) or url.endswith("://"):
            raise UsageError(
                f"--url {options.url!r} is not an http(s) address", hint="e.g. --url http://127.0.0.1:8000"
            )
        return url
    if options.url is not None:
        raise UsageError("--url and --job both name the server", hint="give one")
    from tuxai.cli.common import daemon_client

    with daemon_client(options.home) as client:
        job = client.job(options.job)
    endpoint = getattr(job, "endpoint", None)
    if not endpoint:
        hint = "`tuxai submit --serve` serves one; `tuxai show JOB` gives its endpoint once it runs"
        raise ServingError(f"job {options.job} serves no model now (it is {job.state})", hint=hint)
    return str(endpoint).rstrip("/")


def run_infer(options: InferOptions) -> int:
    """Send one inference request and print the answer; a failure is one ``TuxaiError``."""
    import httpx

    from tuxai.serving.tokens import read_token_file

    if not options.timeout_s > 0:
        raise UsageError(f"--timeout must be more than 0 seconds, got {options.timeout_s:g}", hint="e.g. --timeout 60")
    args = [parse_input(text) for text in options.inputs]
    if not args:
        raise UsageError("no --input given", hint="e.g. --input x='[[1.0, 2.0]]' or --input x=@x.npy")
    seen = [a.name for a in args]
    if len(set(seen)) != len(seen):
        raise UsageError(f"an input is given twice: {seen}", hint="give each input once")
    url = server_url(options)
    headers = {}
    if options.token_file is not None:
        headers["Authorization"] = f"Bearer {read_token_file(options.token_file.expanduser())}"
    base = f"{url}/v2/models/{quote(options.model, safe='')}"
    if options.version is not None:
        base += f"/versions/{quote(options.version, safe='')}"
    try:
        with httpx.Client(timeout=options.timeout_s, headers=headers) as http:
            datatypes: dict[str, str] = {}
            if any(a.file is None for a in args):  # JSON values take the model's datatypes
                metadata = http.get(base)
                if metadata.status_code != 200:
                    raise _error(metadata.status_code, metadata.content, url, options.token_file is not None)
                datatypes = _input_datatypes(metadata.content)
            tensors = {a.name: input_array(a, datatypes.get(a.name)) for a in args}
            body, head = build_request(tensors, binary=options.binary, outputs=options.outputs)
            sent = {"content-type": "application/octet-stream" if head is not None else "application/json"}
            if head is not None:
                sent[HEADER] = str(head)
            started = time.perf_counter()
            answer = http.post(f"{base}/infer", content=body, headers=sent)
            elapsed = time.perf_counter() - started
    except httpx.TimeoutException:
        raise ServingError(f"the model server at {url} did not answer within {options.timeout_s:g} s",
                           hint="raise --timeout, or check the server's log") from None  # fmt: skip
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        hint = "start one with `tuxai serve MODEL`, or point at one with --url URL or --job JOB"
        raise ServingError(f"no model server answers at {url} ({exc})", hint=hint) from None
    if answer.status_code != 200:
        raise _error(answer.status_code, answer.content, url, options.token_file is not None)
    length = answer.headers.get(HEADER)
    result = read_response(answer.content, int(length) if length and length.isdigit() else None)
    print(json.dumps(as_json(result)) if options.as_json else render(result, elapsed))
    return 0


__all__ = ["DEFAULT_URL", "InferOptions", "build_request", "input_array", "parse_input", "read_response", "run_infer"]
