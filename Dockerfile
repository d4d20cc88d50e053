# syntax=docker/dockerfile:1
#
# zarr-stac: the `zarr-stac` command line (crawl, inspect, build, load, serve,
# validate, db migrate). The default command serves the STAC API on port 8080
# behind a reverse proxy (proxy headers honoured).
#
#   docker build -t zarr-stac:0.1.0 .
#   docker run --rm -e DATABASE_URL=postgresql://... -p 8080:8080 zarr-stac:0.1.0
#   docker run --rm zarr-stac:0.1.0 load --config /etc/zarr-stac/mapping.yaml --sync
#
# The tag of the base image is pinned; re-check it (and the tags in
# docker-compose.yml) when upgrading: see docs/deploy.md.

# -- build: a virtual environment with exactly the pinned versions ------------------
FROM python:3.11.13-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY loaders/ loaders/
COPY static_catalog/ static_catalog/
COPY stac_api/ stac_api/
COPY zarr_stac/ zarr_stac/

# The same pins as the test environment (the Makefile runs
# `pip install -c constraints.txt -e '.[test]'`), without the test extras and not
# editable. Every dependency has a manylinux wheel: no compiler is needed.
RUN python -m venv /opt/zarr-stac \
 && /opt/zarr-stac/bin/pip install --no-cache-dir -c constraints.txt . \
 && /opt/zarr-stac/bin/pip check

# -- runtime: the environment only, run by an unprivileged user ---------------------
FROM python:3.11.13-slim-bookworm

# FORWARDED_ALLOW_IPS: uvicorn trusts X-Forwarded-* from these addresses (the reverse
# proxy in front of the API); narrow it to the proxy's address in production.
ENV PATH=/opt/zarr-stac/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FORWARDED_ALLOW_IPS="*"

# /srv/catalog belongs to the user, so that a named volume mounted there (the static
# catalogue that `zarr-stac build -o /srv/catalog` writes) is writable.
RUN groupadd --system --gid 10001 zarr-stac \
 && useradd --system --uid 10001 --gid zarr-stac --create-home --home-dir /home/zarr-stac \
        --shell /usr/sbin/nologin zarr-stac \
 && install -d -o zarr-stac -g zarr-stac /srv/catalog

COPY --from=build /opt/zarr-stac /opt/zarr-stac

USER 10001:10001
WORKDIR /home/zarr-stac
EXPOSE 8080

# 200 once the database answers (503 otherwise); one-shot jobs disable it in compose.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=4 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/_mgmt/health', timeout=4)"]

ENTRYPOINT ["zarr-stac"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
