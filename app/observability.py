"""Prometheus metrics of the API process, labelled by model version where it matters."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "evoq_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram("evoq_http_request_seconds", "HTTP request latency.", ["method", "route"])
IMAGES_SCORED = Counter(
    "evoq_images_scored_total", "Images scored, by model version and mode.", ["version", "mode"]
)
BATCH_SIZE = Histogram(
    "evoq_batch_size",
    "Images per model call of the micro-batcher.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
QUEUE_FULL = Counter("evoq_queue_full_total", "Score requests refused with 503 (queue full).")
ACTIVE_VERSION = Gauge(
    "evoq_active_model_version", "Model version serving in this process.", ["version"]
)
MODEL_SWAPS = Counter("evoq_model_swaps_total", "Hot swaps, by outcome.", ["outcome"])
