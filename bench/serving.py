"""Serving: one MLP (256→1024→1024→10, fp32, ONNX) three ways, in one run, with wrk.

    python bench/serving.py [--seconds 5] [--no-litserve]

- the floor: raw in-process ONNX Runtime at batch 1 and 32 (µs per item);
- LitServe (from PyPI) serving the same model with the same JSON body;
- tuxai (`tuxai serve`) with JSON tensors and with Triton's binary tensors.
Servers are pinned to CPU 1 and wrk (Debian's) to CPU 0, at concurrency 1, 8 and 64.
ONNX Runtime gets one thread in every server (one core each).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.serving_models import mlp_onnx  # noqa: E402

CONCURRENCY = (1, 8, 64)
LITSERVE = textwrap.dedent(
    """
    import sys
    import numpy as np
    import onnxruntime as ort
    import litserve as ls

    class API(ls.LitAPI):
        def setup(self, device):
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            self.session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])

        def decode_request(self, request):
            return np.asarray(request["inputs"][0]["data"], dtype=np.float32).reshape(1, 256)

        def predict(self, x):
            return self.session.run(None, {"x": x})[0]

        def encode_response(self, output):
            return {"outputs": [{"name": "y", "datatype": "FP32", "shape": [1, 10], "data": output.ravel().tolist()}]}

    if __name__ == "__main__":
        ls.LitServer(API(), accelerator="cpu", workers_per_device=1).run(
            host="127.0.0.1", port=int(sys.argv[2]), generate_client_file=False, log_level="warning"
        )
    """
)


def raw_ort(model: Path) -> dict[int, float]:
    """µs per item of ``session.run`` at batch 1 and 32, one thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    out = {}
    for batch in (1, 32):
        x = np.random.default_rng(0).standard_normal((batch, 256)).astype(np.float32)
        for _ in range(50):
            session.run(None, {"x": x})
        runs = 2000 // batch
        started = time.perf_counter()
        for _ in range(runs):
            session.run(None, {"x": x})
        out[batch] = (time.perf_counter() - started) / runs / batch * 1e6
    return out


def bodies(tmp: Path) -> dict[str, tuple[Path, dict[str, str]]]:
    """The JSON and binary request bodies (files for wrk) and their headers."""
    x = np.random.default_rng(1).standard_normal((1, 256)).astype(np.float32)
    plain = json.dumps({"inputs": [{"name": "x", "shape": [1, 256], "datatype": "FP32", "data": x.ravel().tolist()}]})
    (tmp / "json.body").write_text(plain)
    tensor = {"name": "x", "shape": [1, 256], "datatype": "FP32", "parameters": {"binary_data_size": x.nbytes}}
    head = json.dumps({"inputs": [tensor], "outputs": [{"name": "y", "parameters": {"binary_data": True}}]})
    (tmp / "binary.body").write_bytes(head.encode() + x.tobytes())
    return {
        "json": (tmp / "json.body", {"Content-Type": "application/json"}),
        "binary": (tmp / "binary.body", {"Inference-Header-Content-Length": str(len(head.encode()))}),
    }


def wrk(
    url: str, body: Path, headers: dict[str, str], connections: int, seconds: int, tmp: Path
) -> tuple[float, float]:
    """Requests/s and p50 latency (ms) from ``wrk`` on CPU 0."""
    script = tmp / f"{body.stem}.lua"
    lines = ['wrk.method = "POST"', f'local f = io.open("{body}", "rb")', "wrk.body = f:read('*all')", "f:close()"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        ["taskset", "-c", "0", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", done.stdout)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p50.group(2)]  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed responses\n{done.stdout}")
    return rate, float(p50.group(1)) * scale  # type: ignore[union-attr]


def start(argv: list[str], ready: str, timeout_s: float = 120.0) -> subprocess.Popen[bytes]:
    """A server on CPU 1; waits until ``ready`` answers 200."""
    process = subprocess.Popen(["taskset", "-c", "1", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(ready, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError(f"{argv[:4]} did not come up")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's group, SIGKILL if it lingers."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def main() -> int:
    """Run everything; print the table and the ratios against the targets."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--no-litserve", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("taskset"):
        sys.exit("needs wrk and taskset: apt-get install wrk util-linux")
    results: dict[tuple[str, int], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        model = mlp_onnx(tmp / "repo" / "mlp" / "1" / "model.onnx")
        floor = raw_ort(model)
        print(f"raw onnxruntime (1 thread): {floor[1]:.1f} µs/item at batch 1, {floor[32]:.1f} µs/item at batch 32")
        requests = bodies(tmp)
        port = 18000 + os.getpid() % 1000
        server = start([sys.executable, "-m", "tuxai", "serve", str(tmp / "repo"), "--port", str(port),
                        "--threads", "1", "--no-watch"], f"http://127.0.0.1:{port}/v2/models/mlp/ready")  # fmt: skip
        try:
            for kind in ("json", "binary"):
                for connections in CONCURRENCY:
                    url = f"http://127.0.0.1:{port}/v2/models/mlp/infer"
                    results[(f"tuxai {kind}", connections)] = wrk(url, *requests[kind], connections, args.seconds, tmp)
        finally:
            stop(server)
        if not args.no_litserve:
            script = tmp / "litserve_mlp.py"
            script.write_text(LITSERVE)
            server = start([sys.executable, str(script), str(model), str(port + 1)],
                           f"http://127.0.0.1:{port + 1}/health")  # fmt: skip
            try:
                for connections in CONCURRENCY:
                    url = f"http://127.0.0.1:{port + 1}/predict"
                    answer = wrk(url, *requests["json"], connections, args.seconds, tmp)
                    results[("litserve json", connections)] = answer
            finally:
                stop(server)
    print(f"\n{'':16}" + "".join(f"{'c=' + str(c) + ' req/s':>14}{'p50 ms':>9}" for c in CONCURRENCY))
    for name in ("litserve json", "tuxai json", "tuxai binary"):
        if (name, 1) in results:
            cells = "".join(f"{results[(name, c)][0]:14.0f}{results[(name, c)][1]:9.2f}" for c in CONCURRENCY)
            print(f"{name:16}{cells}")
    if ("litserve json", 64) in results:
        lit = {c: results[("litserve json", c)][0] for c in CONCURRENCY}
        binary_ratio = results[("tuxai binary", 64)][0] / lit[64]
        json_ratio = results[("tuxai json", 64)][0] / lit[64]
        print(f"\nat c=64: binary × {binary_ratio:.1f} LitServe (target ≥ 10), JSON × {json_ratio:.1f} (target ≥ 4)")
        every = all(results[("tuxai json", c)][0] > lit[c] for c in CONCURRENCY)
        print("more requests/s than LitServe at every concurrency (JSON):", "yes" if every else "NO")
    print(f"binary p50 at c=1: {results[('tuxai binary', 1)][1]:.3f} ms (target < 0.5 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
