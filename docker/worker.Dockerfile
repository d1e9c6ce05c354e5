# GPU worker image: CUDA torch, one Celery worker process per GPU (solo pool: CUDA does not
# survive fork). Voting, training and evaluation tasks run here.
FROM pytorch/pytorch:2.7.1-cuda12.6-cudnn9-runtime
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 EVOQ_DATA_DIR=/data
WORKDIR /srv/evoq
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY workers ./workers
COPY migrations ./migrations
# torch and torchvision are in the base image; the torch range in pyproject.toml accepts it.
RUN pip install .
VOLUME /data
CMD ["evoq", "worker", "--queues", "default,gpu", "--pool", "solo", "--beat"]
