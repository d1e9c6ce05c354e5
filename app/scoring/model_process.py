"""The serving model in a child process (EVOQ_SCORING_PROCESS): the API's batch thread then
waits on a pipe while the model runs on its own interpreter, instead of competing for the GIL
with request handling (measured: a model call took 1.8x as long inside the API process as
alone, see benchmarks/bench_score_throughput.py).

The parent keeps the processor, so per-request preparation (QualityModel.preprocess) stays in
the request's thread; only prepared inputs and results cross the pipe, as length-prefixed
pickles between this process and its own child.

    python -m app.scoring.model_process     (started by ProcessQualityModel; not by hand)
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO

import torch

from app.quality.loading import load_bounded_processor
from app.quality.model import ModelClosed, QualityModel

log = logging.getLogger("evoq.serving")

_HEADER = struct.Struct("<Q")


def _send(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: BinaryIO) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the other end closed the pipe")
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the other end closed the pipe mid-message")
    return pickle.loads(data)  # noqa: S301 - our own child's pipe, never a client's bytes


class ProcessQualityModel(QualityModel):
    """A QualityModel whose score() and compare() run in a child process holding the weights.

    Thread-safe: one call at a time crosses the pipe. A child that dies is started again once
    per call; close() waits for the call in flight, then stops the child.
    """

    def __init__(self, checkpoint_path: str, load_options: dict[str, Any]) -> None:
        self.checkpoint_path = checkpoint_path
        self.load_options = load_options
        self._lock = threading.Lock()
        self._closed = False
        self._log = tempfile.NamedTemporaryFile(prefix="evoq-model-", suffix=".log", delete=False)  # noqa: SIM115
        self._proc: subprocess.Popen | None = None
        ready = self._start()
        processor, max_pixels = load_bounded_processor(ready["source"], ready["max_pixels"])
        super().__init__(
            None,
            processor,
            source=ready["source"],
            device=torch.device("cpu"),  # of the inputs prepared here; the child has its own
            max_pixels=max_pixels,
            reasoning_default=ready["reasoning_default"],
            batch_size=ready["batch_size"],
        )

    def _start(self) -> dict[str, Any]:
        root = str(Path(__file__).resolve().parents[2])  # this checkout, installed or not
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "app.scoring.model_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, "PYTHONPATH": path},
        )
        _send(self._proc.stdin, (self.checkpoint_path, self.load_options))
        try:
            ready = _receive(self._proc.stdout)
        except EOFError:
            self._stop()
            raise RuntimeError(f"the model process did not start:\n{self._log_tail()}") from None
        if "error" in ready:
            self._stop()
            raise RuntimeError(f"the model process could not load the model: {ready['error']}")
        return ready

    def _log_tail(self) -> str:
        return Path(self._log.name).read_text(errors="replace")[-3000:]

    def _call(self, method: str, args: tuple, kwargs: dict) -> Any:
        with self._lock:
            if self._closed:
                raise ModelClosed(f"{self.checkpoint_path} is no longer served here")
            for attempt in (1, 2):
                try:
                    _send(self._proc.stdin, (method, args, kwargs))
                    status, value = _receive(self._proc.stdout)
                    break
                except (EOFError, BrokenPipeError):
                    if attempt == 2:
                        raise RuntimeError(
                            f"the model process died twice:\n{self._log_tail()}"
                        ) from None
                    log.error(
                        "model process died; starting it again", extra={"tail": self._log_tail()}
                    )
                    self._stop()
                    self._start()
        if status == "error":
            raise RuntimeError(f"model process: {value}")
        return value

    def score(self, images, **options):  # noqa: ANN001, ANN201 - QualityModel.score's signature
        """QualityModel.score, run by the child process."""
        return self._call("score", (list(images),), options)

    def compare(self, pairs, **options):  # noqa: ANN001, ANN201 - QualityModel.compare's signature
        """QualityModel.compare, run by the child process."""
        return self._call("compare", (list(pairs),), options)

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.stdin.close()  # the child exits at end of input
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()

    def close(self) -> None:
        """Stop the child once the call in flight (if any) returns; later calls raise ModelClosed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


def _serve(requests: BinaryIO, answers: BinaryIO) -> None:
    from app.model_sources import load_model  # builtin: names resolve as in the API

    checkpoint_path, options = _receive(requests)
    try:
        model = load_model(checkpoint_path, **options)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        _send(answers, {"error": f"{type(exc).__name__}: {exc}"[:500]})
        return
    _send(
        answers,
        {
            "source": model.source,
            "max_pixels": model.max_pixels,
            "reasoning_default": model.reasoning_default,
            "batch_size": model.batch_size,
        },
    )
    while True:
        try:
            method, args, kwargs = _receive(requests)
        except EOFError:
            return  # the parent closed the pipe or died
        try:
            if method not in ("score", "compare"):
                raise ValueError(f"unknown method {method!r}")
            value = getattr(model, method)(*args, **kwargs)
            _send(answers, ("ok", value))
        except Exception as exc:  # noqa: BLE001 - one bad call must not end the process
            _send(answers, ("error", f"{type(exc).__name__}: {exc}"[:1000]))


if __name__ == "__main__":
    # Answers travel on the real stdout; anything a library prints goes to stderr (the log).
    answer_stream = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _serve(sys.stdin.buffer, answer_stream)
