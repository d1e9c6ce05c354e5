"""/v1/score throughput with concurrent clients: micro-batching on vs batch size 1.

Starts a real `evoq serve` twice (same tiny model, same data directory), once with
EVOQ_BATCH_MAX_SIZE=1 and once with batching on, drives both with the same concurrent
clients, and prints throughput, p50/p99 latency and the throughput ratio measured in this run.

    OMP_NUM_THREADS=1 python benchmarks/bench_score_throughput.py [--clients 16] [--requests 480]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.badinputs import image_bytes  # noqa: E402
from tests.support.services import base_env, evoq_argv, free_port, start_process, stop, wait_http  # noqa: E402


def run(data_dir: Path, batch: int, clients: int, requests: int, size: int, form: dict) -> dict:
    port = free_port()
    env = base_env(
        EVOQ_DATA_DIR=str(data_dir),
        EVOQ_PORT=str(port),
        EVOQ_EMBEDDED_WORKER="false",
        EVOQ_BATCH_MAX_SIZE=str(batch),
        EVOQ_BATCH_MAX_WAIT_MS="5",
    )
    server = start_process(evoq_argv("serve"), env, data_dir.parent / f"server-b{batch}.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/readyz", timeout=300, proc=server)
        payloads = [image_bytes("PNG", (size, size), seed=i) for i in range(32)]
        latencies: list[float] = []
        lock = threading.Lock()
        budget = iter(range(requests))

        def client() -> None:
            with httpx.Client(timeout=120) as http:
                for i in budget:
                    files = [("files", ("i.png", payloads[i % len(payloads)], "image/png"))]
                    start = time.perf_counter()
                    r = http.post(f"{url}/v1/score", files=files, data=form)
                    r.raise_for_status()
                    with lock:
                        latencies.append(time.perf_counter() - start)

        for warm in range(4):  # first requests pay lazy initialisation
            httpx.post(f"{url}/v1/score", files=[("files", ("w.png", payloads[warm], "image/png"))])
        threads = [threading.Thread(target=client) for _ in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        metrics = httpx.get(f"{url}/metrics").text
    finally:
        stop(server)
    count = float(re.search(r"^evoq_batch_size_count (\S+)", metrics, re.M).group(1))
    total = float(re.search(r"^evoq_batch_size_sum (\S+)", metrics, re.M).group(1))
    ms = np.array(latencies) * 1000
    return {
        "throughput": len(latencies) / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "mean_batch": total / count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=480)
    parser.add_argument("--batch", type=int, default=16, help="Max batch when batching is on.")
    parser.add_argument("--size", type=int, default=224, help="Image side in pixels.")
    parser.add_argument("--mode", choices=["fast", "sampled"], default="fast")
    parser.add_argument("--samples", type=int, default=4, help="Samples per image (sampled).")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="evoq-bench-tp-")) / "data"
    form = {"mode": args.mode, "samples": str(args.samples)}
    single = run(data_dir, 1, args.clients, args.requests, args.size, form)
    batched = run(data_dir, args.batch, args.clients, args.requests, args.size, form)
    print(f"mode {args.mode}, {args.clients} clients, {args.requests} requests, {args.size} px")
    for name, r in (("batch size 1", single), (f"batching (max {args.batch})", batched)):
        print(
            f"{name:22s} {r['throughput']:7.1f} req/s  p50 {r['p50']:7.1f} ms  "
            f"p99 {r['p99']:7.1f} ms  mean batch {r['mean_batch']:.1f}"
        )
    print(f"throughput ratio (batching / batch size 1): {batched['throughput'] / single['throughput']:.2f}x")


if __name__ == "__main__":
    main()
