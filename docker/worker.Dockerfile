# GPU worker image: one Python environment holding vLLM (votes, scores, GRPO rollouts through
# TRL colocate or from a vLLM server started from this image), TRL and DeepSpeed (ZeRO-3 training) with versions that resolve together; one
# Celery worker process per GPU (solo pool: CUDA does not survive fork). The pins (README,
# "GPU worker image"): vLLM 0.32.0 pins torch 2.13.0 / torchvision 0.28.0 (CUDA 13 wheels) and
# transformers >=5.16.1,<5.20; TRL 1.16.0; DeepSpeed 0.19.8 (an sdist: built against that
# torch, its CUDA ops compile on first use, hence the devel image with nvcc).
FROM nvidia/cuda:13.0.1-cudnn-devel-ubuntu24.04
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 EVOQ_DATA_DIR=/data VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
        python3-dev build-essential git && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
WORKDIR /srv/evoq
# The engine stack first, pinned; DeepSpeed's setup.py imports the torch vLLM brought.
RUN pip install "vllm==0.32.0" "torch==2.13.0" "torchvision==0.28.0" \
        "transformers==5.19.0" "trl==1.16.0" "accelerate==1.16.0"
RUN pip install --no-build-isolation "deepspeed==0.19.8"
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY workers ./workers
COPY migrations ./migrations
# The project against the pinned stack (its own ranges accept these); pip check fails the
# build on any unmet requirement.
RUN pip install ".[vllm]" "vllm==0.32.0" "torch==2.13.0" "transformers==5.19.0" \
        "trl==1.16.0" "deepspeed==0.19.8" && pip check
VOLUME /data
CMD ["evoq", "worker", "--queues", "default,gpu", "--pool", "solo", "--beat"]
