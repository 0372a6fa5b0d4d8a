# Build: install the package into a virtual environment.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir .

# Run: the venv (the Lua scripts are package data inside it), as a non-root user.
FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home claudebench && mkdir /data && chown claudebench /data
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH \
    CLAUDEBENCH_LISTEN=0.0.0.0:50051 \
    CLAUDEBENCH_HTTP_LISTEN=0.0.0.0:8080 \
    CLAUDEBENCH_DATA_DIR=/data
USER 10001
VOLUME /data
EXPOSE 50051 8080
# Speaks grpc.health.v1: healthy once the scripts are loaded and while Redis answers.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["claudebench", "health", "--server", "127.0.0.1:50051"]
ENTRYPOINT ["claudebench", "serve"]
