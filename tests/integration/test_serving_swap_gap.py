"""A version swap that lands while a request's body is still arriving (the CI failure of session 4:
1 of 964 requests under load answered 500). Driven through the ASGI app itself, so the gap is exact."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

from tests.serving_models import mlp_onnx
from tuxai.serving.app import InferenceApp
from tuxai.serving.repository import ModelConfig, Repository


def test_a_swap_while_the_body_arrives_answers_from_the_new_version(tmp_path: Path) -> None:
    root = tmp_path / "models"
    mlp_onnx(root / "mlp" / "1" / "model.onnx", sizes=(4, 8, 2), seed=1)
    repository = Repository(root, ModelConfig())
    app = InferenceApp(repository, "secret")
    body = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0.5] * 4}]}).encode()
    sent: list[dict[str, Any]] = []

    async def scenario() -> None:
        await repository.load("mlp")
        assert repository.resolve("mlp", None).number == 1

        async def receive() -> dict[str, Any]:
            # Version 2 appears and the watch swaps it in while this request's body is in flight.
            staging = tmp_path / "staging" / "model.onnx"
            mlp_onnx(staging, sizes=(4, 8, 2), seed=2)
            shutil.copytree(staging.parent, root / "mlp" / "2")
            await repository.load("mlp", "watch")
            assert sorted(repository.versions["mlp"]) == [2]
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "path": "/v2/models/mlp/infer", "method": "POST",
                 "headers": [(b"authorization", b"Bearer secret"), (b"content-type", b"application/json")]}  # fmt: skip
        await app(scope, receive, send)
        await repository.unload("mlp")

    asyncio.run(scenario())
    start = next(m for m in sent if m["type"] == "http.response.start")
    answer = json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
    assert start["status"] == 200, answer
    assert answer["model_version"] == "2"
