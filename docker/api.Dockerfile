# API image: CPU torch (scoring on CPU, or mount a GPU and use the worker image's base instead).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 OMP_NUM_THREADS=1 EVOQ_DATA_DIR=/data EVOQ_HOST=0.0.0.0
WORKDIR /srv/evoq
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY workers ./workers
COPY migrations ./migrations
RUN pip install .
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz').status == 200 else 1)"
# `evoq serve` migrates the database when needed, then serves.
CMD ["evoq", "serve"]
