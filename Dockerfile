# relay: one image for the API, the worker and beat (`relay serve | worker | beat`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY relay ./relay
COPY policies ./policies
COPY workers ./workers
RUN pip install . && rm -rf /src

# never root: the worker runs code paths that talk to arbitrary webhook receivers
RUN useradd --create-home --uid 10001 relay
USER relay
WORKDIR /home/relay

EXPOSE 8080
ENTRYPOINT ["relay"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
