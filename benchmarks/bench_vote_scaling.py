"""Voting throughput with 1 and 2 worker processes on the same round (production mode).

Starts Postgres/Redis-backed `evoq serve` and N `evoq worker` processes (tiny model, each
OMP_NUM_THREADS=1), warms every worker's model up with a throwaway round, then times the voting
stage of one round (status voting → training) and prints pairs/s per N and the ratio to N=1.
Needs Postgres and Redis as for the integration tests; uses Redis DB 6.

    OMP_NUM_THREADS=1 python benchmarks/bench_vote_scaling.py [--pairs 496] [--votes 32] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.round_stack import RoundStack, round_stack  # noqa: E402


def round_config(args: argparse.Namespace, pairs: int, seed: int) -> dict:
    return {
        "pairs": pairs,
        "votes": args.votes,
        "vote_mode": args.mode,
        "chunk_size": args.chunk_size,
        "samples": 2,
        "max_steps": 1,
        "pairs_per_step": 1,
        "seed": seed,
    }


def time_voting(stack: RoundStack, config: dict) -> tuple[float, int]:
    """The voting stage's wall time as the round records it (prepare to the last chunk), and
    the pairs voted: polling from here would miss a stage shorter than the poll interval."""
    round_id = stack.start_round(config)
    body = stack.wait_round(
        round_id, lambda b: b["status"] not in ("pending", "voting"), timeout=3600
    )
    stack.cancel(round_id)
    return body["progress"]["voting_seconds"], body["progress"]["pairs_voted"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=496)
    parser.add_argument("--votes", type=int, default=32)
    parser.add_argument("--mode", choices=["sampled", "logits"], default="sampled")
    parser.add_argument("--chunk-size", type=int, default=4)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--workers", default="1,2", help="Worker process counts to compare.")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, round_stack(Path(tmp), redis_db=6) as stack:
        stack.upload(args.images)
        for n in counts:
            for i in range(n):
                stack.start_worker(f"bench{i}")
            for i in range(n):
                stack.wait_ready(f"bench{i}")
            # Every worker loads the parent model on its first chunk: keep that out of the timing.
            time_voting(stack, {**round_config(args, 2 * n, seed=99), "chunk_size": 1})
            seconds, voted = time_voting(stack, round_config(args, args.pairs, seed=1))
            rows.append((n, voted, seconds, voted / seconds))
            for i in range(n):
                stack.stop_worker(f"bench{i}")
    base = rows[0][3]
    print(f"\nvoting: {args.pairs} pairs, K={args.votes} {args.mode}, chunk {args.chunk_size}")
    print("| workers | pairs | seconds | pairs/s | vs 1 worker |")
    print("|---|---|---|---|---|")
    for n, voted, seconds, rate in rows:
        print(f"| {n} | {voted} | {seconds:.1f} | {rate:.2f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
