"""Serving's pure parts: the wire format, the merge rule, model configs and version policies."""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from tuxai.errors import InferenceInputError, ModelOverloaded, UsageError
from tuxai.model.exposition import labels
from tuxai.serving.batcher import Batcher, Pending, merge, split
from tuxai.serving.metrics import Metrics
from tuxai.serving.protocol import decode_request, encode_response
from tuxai.serving.repository import ModelConfig, Repository, parse_config


def test_binary_request_with_bytes_and_fp32_round_trips() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    words = b"".join(struct.pack("<I", len(w)) + w for w in (b"hi", b"there"))
    head = json.dumps({
        "id": "r1",
        "inputs": [
            {"name": "x", "shape": [2, 3], "datatype": "FP32", "parameters": {"binary_data_size": x.nbytes}},
            {"name": "s", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": len(words)}},
        ],
        "outputs": [{"name": "y", "parameters": {"binary_data": True}}, {"name": "t"}],
    }).encode()  # fmt: skip
    request = decode_request(head + x.tobytes() + words, len(head))
    np.testing.assert_array_equal(request.inputs["x"], x)
    assert request.inputs["s"].tolist() == [b"hi", b"there"] and request.request_id == "r1"
    body, length = encode_response("m", "1", {"y": x * 2, "t": np.array([b"ok"], dtype=object)}, request)
    assert length is not None
    answer = json.loads(body[:length])
    assert answer["id"] == "r1" and answer["outputs"][0]["parameters"]["binary_data_size"] == x.nbytes
    assert answer["outputs"][1] == {"name": "t", "datatype": "BYTES", "shape": [1], "data": ["ok"]}
    np.testing.assert_array_equal(np.frombuffer(body[length:], dtype=np.float32).reshape(2, 3), x * 2)


@pytest.mark.parametrize(
    ("body", "header", "message"),
    [
        (b'{"inputs": []}', None, "non-empty 'inputs'"),
        (b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1]}]}', None, "1 values for shape"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]}xxxx',
         -1, "beyond the body"),
        (b'{"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]}', None, "non-negative"),
        (b"[1, 2]", None, "must be an object"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": [999]}]}', None, "is not INT8"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]},'
         b' {"name": "x", "shape": [1], "datatype": "FP32", "data": [2]}]}', None, "input 'x' appears twice"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],'
         b' "outputs": [{"name": "y"}, {"name": "y"}]}', None, "output 'y' is requested twice"),
    ],
)  # fmt: skip
def test_bad_requests_are_protocol_errors(body: bytes, header: int | None, message: str) -> None:
    if header == -1:  # the JSON part's length: what comes after it is the binary data
        header = body.rindex(b"}") + 1
    with pytest.raises(InferenceInputError) as caught:
        decode_request(body, header)
    assert message in str(caught.value)


def test_merge_and_split_are_inverse() -> None:
    loop = asyncio.new_event_loop()
    try:
        parts = [
            Pending({"x": np.full((n, 2), n, dtype=np.float32)}, n, loop.create_future()) for n in (1, 3, 2)
        ]
        merged = merge(parts)
        assert merged["x"].shape == (6, 2)
        back = split({"y": merged["x"] * 10}, [1, 3, 2])
        assert [b["y"][:, 0].tolist() for b in back] == [[10.0], [30.0] * 3, [20.0] * 2]
        other = Pending({"x": np.zeros((1, 3))}, 1, loop.create_future())
        assert parts[0].key == parts[1].key and other.key != parts[0].key
    finally:
        loop.close()


def test_full_queue_is_overloaded() -> None:
    async def scenario() -> None:
        batcher = Batcher(lambda inputs: inputs, max_batch_size=1, max_queue=2)
        batcher.start()
        batcher.slots = asyncio.Semaphore(0)  # no instance free: everything waits
        waiting = [asyncio.create_task(batcher.submit({"x": np.zeros((1, 1))}, 1)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(ModelOverloaded):
            await batcher.submit({"x": np.zeros((1, 1))}, 1)
        for task in waiting:
            task.cancel()
        batcher.close()

    asyncio.run(scenario())


def test_config_and_version_policies(tmp_path: Path) -> None:
    config = parse_config("max_batch_size: 8\nversion_policy: {latest: 2}\ninstances: 2\n", "c.yaml", ModelConfig())
    assert (config.max_batch_size, config.latest, config.instances) == (8, 2, 2)
    for version in (1, 2, 3):
        (tmp_path / "m" / str(version)).mkdir(parents=True)
        (tmp_path / "m" / str(version) / "model.onnx").write_bytes(b"")
    (tmp_path / "m" / "4").mkdir()  # no model file: not a version
    repository = Repository(tmp_path, ModelConfig())
    assert sorted(repository.wanted("m", config)) == [2, 3]
    specific = parse_config("version_policy: {specific: [1, 3]}\n", "c.yaml", ModelConfig())
    assert sorted(repository.wanted("m", specific)) == [1, 3]
    assert sorted(repository.wanted("m", parse_config("version_policy: all\n", "c", ModelConfig()))) == [1, 2, 3]
    bad_configs = (
        ("max_batch_size: -1\n", "max_batch_size"),
        ("colour: red\n", "unknown settings"),
        ("version_policy: {latest: 0}\n", "version_policy"),
        ("inputs: [{name: x}]\n", "datatype"),
    )
    for bad, message in bad_configs:
        with pytest.raises(UsageError, match=message):
            parse_config(bad, "c.yaml", ModelConfig())


def test_E7_label_values_are_escaped_as_the_text_format_says() -> None:
    assert labels(model='a"b\\c\nd', version="1") == 'model="a\\"b\\\\c\\nd",version="1"'
    metrics = Metrics()
    metrics.request('m"\n', "1", 200, 0.001)
    assert all(line.startswith(("# ", "tuxai_serve_")) for line in metrics.render().splitlines())
    assert 'tuxai_serve_requests_total{model="m\\"\\n",version="1",code="200"} 1' in metrics.render()
