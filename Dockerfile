# One image for the API, the Ray head and Ray workers. GPU workers run it on a CUDA host with
# the NVIDIA container runtime; torch's default wheel includes CUDA.
FROM python:3.11-slim-bookworm

RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY ingest ingest
COPY encoder encoder
COPY compressor compressor
COPY memory memory
COPY llm llm
COPY api api
COPY vidsight vidsight
COPY benchmarks benchmarks
RUN pip install --no-cache-dir torch && pip install --no-cache-dir -e ".[text]"

ENV VIDSIGHT_DATA_DIR=/data PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 8000
CMD ["vidsight", "serve", "--host", "0.0.0.0", "--port", "8000"]
