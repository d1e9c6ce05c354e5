"""Hot swap under load: score requests keep flowing while the API swaps to another version.

Starts a real `evoq serve` (tiny model, embedded SQLite), registers a second tiny checkpoint,
drives concurrent /v1/score clients, activates the second version mid-run through the admin
API, and prints failures, the swap time and latency percentiles before, during and after.

    OMP_NUM_THREADS=1 python benchmarks/bench_hot_swap.py [--requests 1000] [--clients 8]
"""

from __future__ import annotations

import argparse
import os
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
from tests.support.services import (  # noqa: E402
    base_env,
    evoq_argv,
    free_port,
    start_process,
    stop,
    wait_http,
)

TOKEN = "bench-token"


def register_second_version(data_dir: Path) -> int:
    """Build another tiny checkpoint and register it (as a round's candidate would be)."""
    os.environ["EVOQ_DATA_DIR"] = str(data_dir)
    from app.db import session_scope
    from app.demo.tiny import build_tiny_model
    from app.quality.checkpoint import weights_digest
    from app.registry import service

    folder = build_tiny_model(data_dir / "models" / "bench-second", seed=7)
    with session_scope() as db:
        active = service.get_active(db=db)
        version = service.create(
            db=db,
            base_model=active.base_model,
            checkpoint_path=str(folder),
            digest=weights_digest(folder),
            parent_id=active.id,
            note="benchmark swap target",
        )
        return version.id


def percentiles(values: list[float]) -> str:
    if not values:
        return "n=0"
    ms = np.array(values) * 1000
    return (
        f"n={len(ms):4d}  p50={np.percentile(ms, 50):7.1f} ms  p99={np.percentile(ms, 99):7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="evoq-bench-swap-"))
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
    try:
        wait_http(f"{url}/readyz", timeout=300, proc=server)
        old = httpx.get(f"{url}/v1/models").json()["active_version"]
        new = register_second_version(root / "data")
        files = [("files", ("b.png", image_bytes("PNG", (64, 64), seed=3), "image/png"))]
        records: list[tuple[float, float, int, int | None]] = []  # start, latency, status, version
        lock = threading.Lock()
        budget = iter(range(args.requests))
        swap_at: list[float] = []

        def client() -> None:
            with httpx.Client(timeout=120) as http:
                for _ in budget:
                    start = time.perf_counter()
                    try:
                        r = http.post(f"{url}/v1/score", files=files)
                        status = r.status_code
                        version = r.json()["results"][0]["model_version"] if status == 200 else None
                    except httpx.HTTPError:
                        status, version = -1, None
                    with lock:
                        records.append((start, time.perf_counter() - start, status, version))

        def swapper() -> None:
            while len(records) < args.requests // 3:
                time.sleep(0.01)
            swap_at.append(time.perf_counter())
            r = httpx.post(
                f"{url}/v1/admin/models/{new}/activate",
                json={"reason": "benchmark"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            r.raise_for_status()

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        threads.append(threading.Thread(target=swapper))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ready = httpx.get(f"{url}/readyz").json()
    finally:
        stop(server)

    t_swap = swap_at[0]
    first_new = min((s for s, _, _, v in records if v == new), default=None)
    before = [lat for s, lat, _, _ in records if s < t_swap]
    during = [lat for s, lat, _, _ in records if t_swap <= s < (first_new or float("inf"))]
    after = [lat for s, lat, _, _ in records if first_new is not None and s >= first_new]
    failed = sum(status != 200 for _, _, status, _ in records)
    print(f"requests: {len(records)}  failed: {failed}  clients: {args.clients}")
    print(
        f"versions seen: {sorted({v for *_, v in records if v is not None})} (old {old}, new {new})"
    )
    if first_new is not None:
        print(f"swap: activation -> first answer from the new version {first_new - t_swap:.2f} s")
    print(f"server load+warm-up of the new model: {ready['model']['last_swap_seconds']:.2f} s")
    print(f"before swap  {percentiles(before)}")
    print(f"during swap  {percentiles(during)}")
    print(f"after swap   {percentiles(after)}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
