# syntax=docker/dockerfile:1
# The sync daemon's image: `msctl run` (deploy/ runs it); the same image renders too.
# Build: docker build -t msctl:0.1.0 .

FROM python:3.11-slim AS build
WORKDIR /src
# Only what the wheel is built from, so a change to the tests does not rebuild the wheel.
COPY pyproject.toml README.md ./
COPY generator/ generator/
COPY sync/ sync/
COPY templates/ templates/
# msctl and every dependency as wheels, so the final stage installs without a compiler
# and without reaching an index.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# pip compiles the .pyc files here, at build time: the root filesystem is read-only at run time.
# A bind mount (BuildKit) keeps the wheels out of the final image's layers.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels msctl
# 65532 is the conventional "nonroot" uid (distroless); deploy/deployment.yaml runs as it too.
USER 65532:65532
ENTRYPOINT ["msctl"]
CMD ["run", "--leader-elect"]
