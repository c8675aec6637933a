# Post Service image. Two stages:
#   build   - exports poetry.lock to a hashed requirements file, installs exactly those
#             wheels into /opt/venv, builds and installs the post-service wheel (which carries
#             the migrations), and compiles all bytecode;
#   runtime - the same slim Python base with only /opt/venv copied in: no Poetry, no pip, no
#             compilers. Runs as the fixed non-root UID/GID 10001 and never writes outside
#             /tmp, so it works with readOnlyRootFilesystem (mount an emptyDir on /tmp).
# Works with BuildKit and with the legacy builder (Debian's Docker 20.10 has no buildx).
#
# Build: docker build -t post-service .      (or `make image`, which also works offline)
# Run:   docker run --read-only --tmpfs /tmp -e DB_URL=... post-service        (serve)
#        docker run --read-only --tmpfs /tmp -e DB_URL=... post-service migrate

ARG PYTHON_IMAGE=python:3.12-slim-trixie

FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Poetry (pinned, with the export plugin) lives in its own venv in this stage only.
RUN python -m venv /opt/poetry \
    && /opt/poetry/bin/pip install poetry==2.5.1 poetry-plugin-export==1.10.1

WORKDIR /src

# Dependencies first (their layer is reused until the lock file changes). `poetry export`
# refuses a lock file that no longer matches pyproject.toml; pip then installs exactly the
# locked versions and checks every file against the lock's hashes. Bytecode is compiled here,
# once: the runtime root filesystem is read-only and PYTHONDONTWRITEBYTECODE is set there;
# unchecked-hash .pyc files stay valid whatever mtimes the files get when they are copied.
COPY pyproject.toml poetry.lock ./
RUN /opt/poetry/bin/poetry export --only main --without-urls --format requirements.txt \
        --output /tmp/requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-deps --no-compile --require-hashes --only-binary :all: \
        --requirement /tmp/requirements.txt \
    && python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv

# The service itself, as a wheel built by the pinned Poetry (so `pip install .` semantics,
# without fetching an unpinned build backend). A code change rebuilds from here on: only the
# package is compiled again.
COPY README.md ./
COPY src ./src
RUN /opt/poetry/bin/poetry build --format wheel --output /tmp/dist \
    && /opt/venv/bin/pip install --no-deps --no-compile /tmp/dist/*.whl \
    && /opt/venv/bin/pip uninstall --yes pip \
    && python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        /opt/venv/lib/python3*/site-packages/post_service


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="post-service" \
      org.opencontainers.image.description="Post Service: posts over gRPC on PostgreSQL, with Kafka events"

ENV PATH=/opt/venv/bin:${PATH} \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp

# A fixed numeric user (Kubernetes' runAsNonRoot can only verify a numeric USER). The base
# image's own pip goes too, and the standard library gets compiled bytecode (the official
# image ships it without .pyc files; the running service could not write them).
RUN groupadd --system --gid 10001 postservice \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin postservice \
    && python -m pip uninstall --yes --disable-pip-version-check pip \
    && python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        -x '/(test|tests|idle_test|lib2to3|ensurepip)/' \
        "$(python -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"

COPY --from=build /opt/venv /opt/venv

USER 10001:10001

# gRPC (GRPC_PORT) and Prometheus metrics (METRICS_PORT).
EXPOSE 50054 9464

HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["post-service", "healthcheck", "--service", "liveness"]

ENTRYPOINT ["post-service"]
CMD ["serve"]
