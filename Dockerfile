# One image for every drlab service (compose.yaml runs it with `network_mode: host`; each service
# binds its own loopback address). The command is the service's, from compose.yaml.
#
#   docker build -t drlab:latest .                      # anywhere: pip installs from PyPI
#   pip wheel -w .drlab/wheelhouse . && \
#   docker build --network host --build-arg BASE_IMAGE=drlab-base:bookworm -t drlab:latest .
#                                                       # offline: only the host-built wheels
#
# BASE_IMAGE needs python3 (3.11+) with the venv module. When the build context has a
# `.drlab/wheelhouse/` with wheels, pip installs from it alone (--no-index): no package index is reached.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/drlab/bin:$PATH

COPY . /src
RUN python3 -m venv /opt/drlab \
 && if ls /src/.drlab/wheelhouse/drlab-*.whl >/dev/null 2>&1; then \
        pip install --no-index --find-links /src/.drlab/wheelhouse drlab; \
    else \
        pip install /src; \
    fi \
 && mkdir -p /app \
 && cp /src/compose.yaml /app/compose.yaml \
 && install -m 0755 /src/scripts/container-entry.sh /usr/local/bin/drlab-entry \
 && rm -rf /src

# compose.yaml is here so the relay (python -m emulator.lab.linkrelay) finds its link table.
WORKDIR /app
# Appends `--time-scale $DRLAB_TIME_SCALE` to a service's command unless it has one.
ENTRYPOINT ["/usr/local/bin/drlab-entry"]
CMD ["python", "-m", "emulator.lab", "--help"]
