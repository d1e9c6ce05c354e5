"""`evoq --help`, argument errors and an unreachable server answer without importing torch
(the import alone takes seconds): each command runs in a fresh interpreter that then reports
whether torch was imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.badinputs import image_bytes

# Runs the CLI like the console script does, then prints the heavy modules it imported.
PROBE = """
import json, sys
sys.argv = ["evoq", *json.loads(sys.argv[1])]
from app.cli import main
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
heavy = sorted(m for m in ("torch", "transformers", "trl") if m in sys.modules)
print("PROBE", json.dumps({"code": code, "heavy": heavy}))
"""
ROOT = Path(__file__).resolve().parents[1]
DOWN = "http://127.0.0.1:9"  # the discard port: nothing listens there


def _run(args: list[str]) -> tuple[dict, str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "COLUMNS": "120"},
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("PROBE "))
    return json.loads(line.removeprefix("PROBE ")), done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--help"], 0, "EvoQuality"),
        (["score", "--help"], 0, "--server"),
        (["plan", "--help"], 0, "--pairs"),
        (["score"], 2, "Missing argument"),
        (["upload", "--no-such-option", "x"], 2, "No such option"),
        (["score", "--mode", "slow", "--server", DOWN, "{image}"], 2, "--mode must be"),
        (["score", "--server", DOWN, "{image}"], 1, "unreachable"),
        (["upload", "--server", DOWN, "{image}"], 1, "unreachable"),
    ],
)
def test_the_cli_answers_without_importing_torch(tmp_path, args, code, says) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(image_bytes("PNG", (16, 16)))
    result, output = _run([a.replace("{image}", str(image)) for a in args])
    assert result["code"] == code, output
    assert says in output
    assert result["heavy"] == [], output
