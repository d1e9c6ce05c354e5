"""Soak: 16 clients for 10 minutes against a real embedded `evoq serve` (tiny model, SQLite):
scores, compares and corpus uploads, with one hot swap per minute between two versions.

Prints, per minute: requests, errors, p50/p99 latency, and the swap made; then the API
process's RSS after warm-up and at the end (goal: growth < 10%). The client is the one of
bench_hot_swap.py (httpx threads), not a load framework.

    OMP_NUM_THREADS=1 python benchmarks/bench_soak.py [--minutes 10] [--clients 16]
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from bench_hot_swap import TOKEN, percentiles, register_second_version

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.badinputs import image_bytes  # noqa: E402
from tests.support.services import (  # noqa: E402
    base_env,
    evoq_argv,
    free_port,
    start_process,
    stop,
    wait_http,
)

# The request mix: mostly scores, some compares, a few corpus uploads (new images each time).
MIX = ["score"] * 7 + ["compare"] * 2 + ["upload"]


@dataclass
class Record:
    at: float
    kind: str
    latency: float
    status: int


def _request(http: httpx.Client, url: str, kind: str, rng: random.Random, fresh) -> int:  # noqa: ANN001
    if kind == "score":
        seed = rng.randrange(64)
        files = [("files", ("s.png", image_bytes("PNG", (48, 48), seed=seed), "image/png"))]
        return http.post(f"{url}/v1/score", files=files).status_code
    if kind == "compare":
        a, b = rng.sample(range(64), 2)
        files = [
            ("files", ("a.png", image_bytes("PNG", (40, 40), seed=a), "image/png")),
            ("files", ("b.png", image_bytes("PNG", (40, 40), seed=b), "image/png")),
        ]
        return http.post(f"{url}/v1/compare", files=files).status_code
    files = [
        ("files", (f"u{n}.png", image_bytes("PNG", (32, 32), seed=n), "image/png"))
        for n in (next(fresh), next(fresh))
    ]
    return http.post(f"{url}/v1/corpus/images", files=files).status_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--warmup-seconds", type=float, default=30.0)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="evoq-bench-soak-"))
    port = free_port()
    env = base_env(
        EVOQ_DATA_DIR=str(root / "data"),
        EVOQ_PORT=str(port),
        EVOQ_ADMIN_TOKEN=TOKEN,
        EVOQ_EMBEDDED_WORKER="false",
        EVOQ_ACTIVATION_POLL_SECONDS="0.5",
    )
    server = start_process(evoq_argv("serve"), env, root / "server.log")
    url = f"http://127.0.0.1:{port}"
    records: list[Record] = []
    swaps: list[tuple[float, int, int]] = []  # at, version, status
    lock = threading.Lock()
    stop_at = [float("inf")]
    fresh = itertools.count(1_000_000)  # corpus images never sent before
    try:
        wait_http(f"{url}/readyz", timeout=300, proc=server)
        versions = [httpx.get(f"{url}/v1/models").json()["active_version"]]
        versions.append(register_second_version(root / "data"))
        process = psutil.Process(server.pid)

        def client(seed: int) -> None:
            rng = random.Random(seed)
            with httpx.Client(timeout=120) as http:
                while time.monotonic() < stop_at[0]:
                    kind = rng.choice(MIX)
                    start = time.monotonic()
                    try:
                        status = _request(http, url, kind, rng, fresh)
                    except httpx.HTTPError:
                        status = -1
                    with lock:
                        records.append(Record(start, kind, time.monotonic() - start, status))

        began = time.monotonic()
        stop_at[0] = began + args.warmup_seconds + args.minutes * 60
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        time.sleep(args.warmup_seconds)
        measured_from = time.monotonic()
        rss_start = process.memory_info().rss
        for minute in range(int(args.minutes + 0.999)):
            target = versions[(minute + 1) % 2]
            r = httpx.post(
                f"{url}/v1/admin/models/{target}/activate",
                json={"reason": f"soak minute {minute}"},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=60,
            )
            swaps.append((time.monotonic(), target, r.status_code))
            time.sleep(
                max(0.0, min(measured_from + (minute + 1) * 60, stop_at[0]) - time.monotonic())
            )
        for thread in threads:
            thread.join()
        rss_end = process.memory_info().rss
    finally:
        stop(server)

    measured = [r for r in records if r.at >= measured_from]
    print(f"clients: {args.clients}  minutes: {args.minutes:g}  warm-up: {args.warmup_seconds:g} s")
    print("| minute | requests | errors | score p50/p99 | all p50 / p99 | swap to |")
    print("|---|---|---|---|---|---|")
    for minute in range(int(args.minutes + 0.999)):
        lo, hi = measured_from + minute * 60, measured_from + (minute + 1) * 60
        window = [r for r in measured if lo <= r.at < hi]
        errors = sum(r.status != 200 for r in window)
        scores = percentiles([r.latency for r in window if r.kind == "score"]).split("  ", 1)[-1]
        every = percentiles([r.latency for r in window]).split("  ", 1)[-1]
        swap = next((f"v{v} ({s})" for at, v, s in swaps if lo <= at < hi), "-")
        print(f"| {minute + 1} | {len(window)} | {errors} | {scores} | {every} | {swap} |")
    kinds = {k: sum(r.kind == k for r in measured) for k in ("score", "compare", "upload")}
    errors = sum(r.status != 200 for r in measured)
    print(f"total: {len(measured)} requests {kinds}, errors: {errors}")
    print(
        f"API RSS after warm-up: {rss_start / 2**20:.1f} MiB, at the end: {rss_end / 2**20:.1f} MiB "
        f"({(rss_end / rss_start - 1) * 100:+.1f}%)"
    )
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
