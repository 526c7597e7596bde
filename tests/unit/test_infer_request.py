"""`tuxai infer`'s request building and answer reading (cli/infer.py), checked against the server's
own decoder and encoder (serving/protocol.py), not against a copy of the protocol."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tuxai.cli.infer import Answer, InputArg, as_json, build_request, input_array, parse_input, read_response, render
from tuxai.errors import ServingError, UsageError
from tuxai.serving.protocol import decode_request, encode_response


def test_parse_input_reads_a_file_or_json() -> None:
    assert parse_input("x=@/tmp/in.npy") == InputArg("x", file=Path("/tmp/in.npy"))
    assert parse_input("x=[[1, 2.5]]") == InputArg("x", value=[[1, 2.5]])
    assert parse_input('text=["a=b"]') == InputArg("text", value=["a=b"])  # only the first = splits
    assert parse_input(" n =3") == InputArg("n", value=3)
    for bad, said in (("x", "is not NAME=@file.npy or NAME=JSON"), ("=1", "is not NAME"), ("x=[1,", "is not JSON")):
        with pytest.raises(UsageError, match=said):
            parse_input(bad)


def test_json_values_take_their_shape_and_the_models_datatype() -> None:
    assert input_array(InputArg("x", value=3), None).shape == ()
    assert input_array(InputArg("x", value=[1, 2, 3]), None).shape == (3,)
    as_model = input_array(InputArg("x", value=[[1, 2], [3, 4]]), "FP32")
    assert as_model.dtype == np.float32 and as_model.shape == (2, 2)  # whole numbers for an FP32 input
    assert input_array(InputArg("x", value=[1, 2]), None).dtype == np.int64
    assert input_array(InputArg("x", value=[1.5]), None).dtype == np.float32  # floats: FP32 unless told
    assert input_array(InputArg("x", value=[True, False]), None).dtype == np.bool_
    assert input_array(InputArg("x", value=[1.5]), "FP64").dtype == np.float64
    assert input_array(InputArg("x", value=[0, 255]), "UINT8").tolist() == [0, 255]
    words = input_array(InputArg("s", value=[["a", "bé"]]), None)
    assert words.dtype == object and words.shape == (1, 2) and words[0, 1] == "bé".encode()


@pytest.mark.parametrize(
    ("value", "datatype", "said"),
    [
        ([[1, 2], [3]], None, "ragged"),
        ({"a": 1}, None, "a number or a (nested) list"),
        (None, None, "a number or a (nested) list"),
        ([1.5, 2.0], "INT64", "do not fit the model's INT64"),
        ([300], "UINT8", "out of range for UINT8"),
        (["a"], "FP32", "do not fit the model's FP32"),
        ([-1], "UINT8", "out of range for UINT8"),
        ([1e40], "FP32", "out of range for FP32"),
    ],
)
def test_json_values_that_do_not_fit_are_refused(value: object, datatype: str | None, said: str) -> None:
    with pytest.raises(UsageError, match=re.escape(said)):
        input_array(InputArg("x", value=value), datatype)


def test_a_npy_file_keeps_its_own_datatype(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.arange(6, dtype=np.float64).reshape(2, 3))
    array = input_array(InputArg("x", file=tmp_path / "x.npy"), "FP32")
    assert array.dtype == np.float64 and array.shape == (2, 3)  # the server says if the model wants FP32
    with pytest.raises(UsageError, match=r"cannot read .* as a \.npy array"):
        input_array(InputArg("x", file=tmp_path / "missing.npy"), None)
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(UsageError, match="cannot read"):
        input_array(InputArg("x", file=tmp_path / "text.npy"), None)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(UsageError, match="cannot read"):  # pickles are not loaded
        input_array(InputArg("x", file=tmp_path / "objects.npy"), None)


INPUTS = {
    "x": np.arange(8, dtype=np.float32).reshape(2, 4),
    "ids": np.array([3, -1], dtype=np.int64),
    "words": np.array([b"a", "bé".encode()], dtype=object),
}


@pytest.mark.parametrize("binary", [False, True])
def test_the_server_decodes_what_the_client_builds(binary: bool) -> None:
    body, head = build_request(INPUTS, binary=binary, outputs=("y",), request_id="r1")
    assert (head is not None) == binary
    decoded = decode_request(body, head)
    assert list(decoded.inputs) == ["x", "ids", "words"]
    for name, array in INPUTS.items():
        assert decoded.inputs[name].shape == array.shape and decoded.inputs[name].dtype == array.dtype
        assert decoded.inputs[name].tolist() == array.tolist()
    assert decoded.outputs == ["y"] and decoded.binary_outputs == ({"y"} if binary else set())
    assert decoded.request_id == "r1"
    if binary:
        assert json.loads(body[:head])["inputs"][0]["parameters"] == {"binary_data_size": 32}
        everything, all_head = build_request(INPUTS, binary=True)
        assert decode_request(everything, all_head).binary_default is True  # no --output: every output binary


@pytest.mark.parametrize("binary", [False, True])
def test_the_client_reads_what_the_server_encodes(binary: bool) -> None:
    outputs = {"y": np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3), "label": np.array([2, 0], dtype=np.int64),
               "name": np.array([b"cat", b"dog"], dtype=object)}  # fmt: skip
    body, head = build_request({"x": np.zeros((2, 4), dtype=np.float32)}, binary=binary, request_id="7")
    response, length = encode_response("m", "3", outputs, decode_request(body, head))
    assert (length is not None) == binary
    answer = read_response(response, length)
    assert (answer.model_name, answer.model_version, answer.request_id) == ("m", "3", "7")
    np.testing.assert_allclose(answer.outputs["y"], outputs["y"])
    assert answer.outputs["label"].dtype == np.int64 and answer.outputs["label"].tolist() == [2, 0]
    assert answer.outputs["name"].tolist() == [b"cat", b"dog"]
    printed = as_json(answer)
    assert printed["outputs"][2] == {"name": "name", "datatype": "BYTES", "shape": [2], "data": ["cat", "dog"]}
    assert printed["outputs"][0]["shape"] == [2, 3] and len(printed["outputs"][0]["data"]) == 6


def test_an_answer_that_is_not_an_inference_response_is_one_error() -> None:
    for body, length in ((b"<html>", None), (b'{"outputs": 3}', None), (b'{"outputs": [{"name": "y"}]}', None),
                         (b'{"outputs": [{"name": "y", "datatype": "FP32", "shape": [2],'
                          b' "parameters": {"binary_data_size": 8}}]}', 87)):  # fmt: skip
        with pytest.raises(ServingError, match="not an inference response"):
            read_response(body, length)


def test_render_names_each_output_and_cuts_long_tensors() -> None:
    answer = Answer("mlp", "2", {"y": np.arange(10_000, dtype=np.float32).reshape(100, 100),
                                 "label": np.array([1, 2], dtype=np.int64)})  # fmt: skip
    text = render(answer, 0.0042)
    lines = text.splitlines()
    assert lines[0] == "model mlp version 2 (4.2 ms)"
    assert "y  FP32  [100, 100]" in lines and "label  INT64  [2]" in lines
    assert "..." in text and len(lines) < 15 and all(len(line) <= 102 for line in lines)
    assert lines[-1] == "  [1, 2]"


def test_the_default_url_is_where_tuxai_serve_listens_by_default() -> None:
    from tuxai.cli.infer import DEFAULT_URL, InferOptions, server_url
    from tuxai.serving.server import ServeOptions

    served = ServeOptions(Path("model.onnx"))
    assert server_url(InferOptions("m", ("x=1",))) == DEFAULT_URL == f"http://{served.host}:{served.port}"
    assert server_url(InferOptions("m", ("x=1",), url="http://10.0.0.2:9000/")) == "http://10.0.0.2:9000"
    assert server_url(InferOptions("m", ("x=1",), url="127.0.0.1:9000")) == "http://127.0.0.1:9000"
    for bad in ("ftp://host", "http://"):
        with pytest.raises(UsageError, match="is not an http"):
            server_url(InferOptions("m", ("x=1",), url=bad))
