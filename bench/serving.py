"""Serving: one MLP (256→1024→1024→10, fp32, ONNX) served the ways users run it, against LitServe's
baseline, repeated: each point is the median of ``--repeat`` runs with their spread (min–max).

    python bench/serving.py [--seconds 5] [--repeat 5] [--no-litserve] [--litserve-python PY] [--json FILE]

- the floor: raw in-process ONNX Runtime at batch 1 and 32 (µs per item);
- ``tuxai serve mlp.onnx``: the defaults a user gets for one model file;
- ``tuxai serve repo/``: a repository with its watch on (the default);
- ``tuxai serve repo/ --no-watch --threads 1``: the configuration measured before (for comparison);
- LitServe (from PyPI) serving the same model with the same JSON body (the ratios' baseline).
Every server runs at once, pinned to CPU 1 (ONNX Runtime sizes its pool from that affinity: one
thread), wrk (Debian's) on CPU 0, at concurrency 1, 8 and 64; the points are measured in rounds,
each round visiting every server, so a noisy minute on a shared machine hits all of them alike.
Ratios against LitServe are taken round by round (the same minute), then summarised.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Served:
    """One server under test: how it starts, where it answers, which bodies it takes."""

    name: str
    argv: list[str]
    port: int
    ready: str = "/v2/models/mlp/ready"  # answers 200 once it serves
    infer: str = "/v2/models/mlp/infer"
    kinds: tuple[str, ...] = ("json", "binary")

    def url(self, path: str) -> str:
        """``http://127.0.0.1:PORT`` + ``path``."""
        return f"http://127.0.0.1:{self.port}{path}"


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


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(argv: list[str], ready: str, timeout_s: float = 180.0) -> subprocess.Popen[bytes]:
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


def servers(tmp: Path, model: Path, litserve: str | None) -> list[Served]:
    """The servers under test (see the module's docstring), on free ports."""
    single = tmp / "mlp.onnx"  # `tuxai serve mlp.onnx` names the model after the file: mlp
    shutil.copy(model, single)
    tuxai = [sys.executable, "-m", "tuxai", "serve"]
    ports = [free_port() for _ in range(4)]
    out = [
        Served("tuxai serve mlp.onnx", [*tuxai, str(single), "--port", str(ports[0])], ports[0]),
        Served("tuxai serve repo/", [*tuxai, str(tmp / "repo"), "--port", str(ports[1])], ports[1]),
        Served("repo/ --no-watch --threads 1",
               [*tuxai, str(tmp / "repo"), "--port", str(ports[2]), "--no-watch", "--threads", "1"], ports[2]),
    ]  # fmt: skip
    if litserve is not None:
        script = tmp / "litserve_mlp.py"
        script.write_text(LITSERVE)
        argv = [litserve, str(script), str(model), str(ports[3])]
        out.insert(0, Served("LitServe", argv, ports[3], "/health", "/predict", ("json",)))
    return out


def spread(values: list[float], digits: int = 0) -> str:
    """``median (min–max)``: ``[4400, 10600, 9000]`` → ``9,000 (4,400–10,600)``."""
    return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def threads(process: subprocess.Popen[bytes]) -> int:
    """Threads of a server process (``taskset`` execs it: same pid)."""
    status = Path(f"/proc/{process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Threads:")).split()[1])


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    """Measure every point ``--repeat`` times; print the table and the ratios against LitServe."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="length of one wrk run")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each point (median and min–max reported)")
    parser.add_argument("--no-litserve", action="store_true")
    parser.add_argument("--litserve-python", default=sys.executable, help="a Python with litserve and onnxruntime")
    parser.add_argument("--json", type=Path, help="also write every run's numbers here")
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("taskset"):
        sys.exit("needs wrk and taskset: apt-get install wrk util-linux")
    runs: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    started_load, started = loadavg(), time.strftime("%Y-%m-%d %H:%M")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        model = mlp_onnx(tmp / "repo" / "mlp" / "1" / "model.onnx")
        floor = raw_ort(model)
        requests = bodies(tmp)
        under_test = servers(tmp, model, None if args.no_litserve else args.litserve_python)
        processes = []
        try:
            for served in under_test:
                processes.append(start(served.argv, served.url(served.ready)))
            counted = ", ".join(f"{s.name} {threads(p)}" for s, p in zip(under_test, processes, strict=True))
            for _ in range(args.repeat):
                for served in under_test:
                    for kind in served.kinds:
                        for connections in CONCURRENCY:
                            answer = wrk(served.url(served.infer), *requests[kind], connections, args.seconds, tmp)
                            runs.setdefault((served.name, kind, connections), []).append(answer)
        finally:
            for process in processes:
                stop(process)
    print(f"{started}, load {started_load} → {loadavg()}, {os.cpu_count()} CPUs, {args.repeat} runs of "
          f"{args.seconds} s per point; raw onnxruntime (1 thread): {floor[1]:.1f} µs/item at batch 1, "
          f"{floor[32]:.1f} at batch 32; threads once up (one CPU each): {counted}\n")  # fmt: skip
    print("| server | body | " + " | ".join(f"c={c} req/s" for c in CONCURRENCY) + " | p50 ms c=1 | p50 ms c=64 |")
    print("|---|---|" + "---:|" * (len(CONCURRENCY) + 2))
    for served in under_test:
        for kind in served.kinds:
            rates = [spread([r for r, _ in runs[(served.name, kind, c)]]) for c in CONCURRENCY]
            p50 = [spread([p for _, p in runs[(served.name, kind, c)]], 2) for c in (1, 64)]
            print(f"| {served.name} | {kind} | " + " | ".join(rates + p50) + " |")
    if not args.no_litserve:
        lit = runs[("LitServe", "json", 64)]
        print("\nat c=64, round by round against LitServe (median (min–max) of the per-round ratios):")
        for served in under_test[1:]:
            for kind in served.kinds:
                ratios = [t[0] / b[0] for t, b in zip(runs[(served.name, kind, 64)], lit, strict=True)]
                print(f"  {served.name} {kind}: × {spread(ratios, 1)}")
    if args.json is not None:
        every = {"|".join(map(str, key)): value for key, value in runs.items()}
        record = {"date": started, "load": [started_load, loadavg()], "floor_us": floor, "runs": every}
        args.json.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
