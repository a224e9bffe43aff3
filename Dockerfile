# pg-tls-proxy container image.
#
#   docker build -t pg-tls-proxy .
#   scripts/build-image.sh        (make image: buildah, no Docker engine needed)
#
# BASE_IMAGE is the Debian bookworm image both stages start from: Docker
# Hub's debian:bookworm-slim by default; scripts/build-image.sh passes a
# bookworm made with debootstrap (no registry needed), so the same file
# builds the image with docker, podman or buildah.
#
# Configure it with PG_TLS_PROXY_* environment variables alone (README.md
# "Docker"), or add flags after the image name; a flag wins over its
# variable. Every option and its variable: pg-tls-proxy --help, or README.md
# "Options". There is no CMD: the image serves from its variables, and tells
# what is missing when a required one is not set.
#
#   docker run --rm -p 5432:5432 -v /path/to/tls:/tls:ro \
#       -e PG_TLS_PROXY_SERVER_CERTIFICATE_PATH=/tls/proxy.crt \
#       -e PG_TLS_PROXY_SERVER_PRIVATE_KEY_PATH=/tls/proxy.key \
#       -e PG_TLS_PROXY_CLIENT_CONNECTION_HOST_OR_IP=mydb.abcdefghijkl.eu-west-1.rds.amazonaws.com \
#       -e PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH=/etc/pg-tls-proxy/ca-bundles/aws-rds \
#       pg-tls-proxy
#
# CA bundles for the upstream leg (--client-ca-roots-path), none of them a default:
#   /etc/pg-tls-proxy/ca-bundles/aws-rds/   AWS RDS and Aurora
#   /etc/pg-tls-proxy/ca-bundles/mozilla/   Debian's Mozilla roots (Azure and other public CAs)
#   /etc/pg-tls-proxy/ca-bundles/custom/    empty: mount your own CA here (Cloud SQL server-ca.pem)
# The CA stays a required setting on purpose: trusting a bundle nobody chose
# would quietly widen who may impersonate the database.
#
# The image holds no key material: mount certificates and keys at run time.

ARG BASE_IMAGE=debian:bookworm-slim

# ---- build: the same Makefile as everywhere else ----
FROM ${BASE_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
# libinih-dev: the INI parser of --config (Debian-packaged, the format
# PgBouncer users know). libsystemd-dev: sd_notify for the systemd unit (a
# no-op in a container; libsystemd0 is in every Debian image already, apt
# depends on it). ca-certificates: make install copies
# /etc/ssl/certs/ca-certificates.crt into the mozilla bundle.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential pkg-config libuv1-dev libssl-dev libidn-dev libinih-dev libsystemd-dev \
        ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make clean \
    && make -j"$(nproc)" WERROR=1 \
    && make install DESTDIR=/staging PREFIX=/usr/local \
    && strip /staging/usr/local/bin/pg-tls-proxy

# ---- runtime: shared libraries and CA certificates only ----
# Debian's shell and apt stay (images built FROM this one, docker exec), but
# nothing at run time needs them: entrypoint and health check are exec form,
# and tests/check-image.sh deletes every shell before it runs the image.
FROM ${BASE_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends libuv1 libssl3 libidn12 libinih1 libsystemd0 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 pgtp \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin pgtp \
    && install -d -o root -g root -m 755 /etc/pg-tls-proxy/ca-bundles/custom
COPY --from=build /staging/usr/local/bin/pg-tls-proxy /usr/local/bin/pg-tls-proxy
COPY --from=build /staging/usr/local/share/man/man1/pg-tls-proxy.1 /usr/local/share/man/man1/pg-tls-proxy.1
# COPY makes these root-owned; the modes (0644 files, 0755 directories) are
# make install's, so the non-root user can read but not change them.
COPY --from=build /staging/usr/local/share/pg-tls-proxy/ca-bundles/README.md /etc/pg-tls-proxy/ca-bundles/README.md
COPY --from=build /staging/usr/local/share/pg-tls-proxy/ca-bundles/aws-rds/ /etc/pg-tls-proxy/ca-bundles/aws-rds/
COPY --from=build /staging/usr/local/share/pg-tls-proxy/ca-bundles/mozilla/ /etc/pg-tls-proxy/ca-bundles/mozilla/
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading
# the image's /etc/passwd. Mounted keys must be readable by uid 10001.
USER 10001:10001
EXPOSE 5432
# "docker stop" sends SIGTERM: the proxy stops accepting, lets sessions finish
# for --shutdown-timeout (default 30 s; give docker stop -t that long), exits 0.
STOPSIGNAL SIGTERM
# Health check: "pg-tls-proxy healthcheck" does GET /healthz on the admin
# endpoint (200 while the proxy is listening) in exec form, so the image needs
# no shell at run time. It reads PG_TLS_PROXY_ADMIN_ADDRESS (0.0.0.0 and :: are
# probed on loopback), so set the admin address through that variable, not the
# --admin-address flag. The bridge connector (pg-tls-proxy connector) is probed
# the same way through PG_TLS_PROXY_HEALTH_ADDRESS: 200 while its tunnel to the
# proxy is up. Without either variable there is nothing to probe and the check
# reports healthy. It gives up after 3 s, below --timeout, and prints why.
# Not chosen: "pg-tls-proxy --check" (a full verified upstream handshake every
# interval, and "unhealthy" whenever the database is down, which is readiness,
# not liveness: orchestrators would restart a healthy proxy); /readyz for the
# same reason; a connection to port 5432 (a log line per probe).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["pg-tls-proxy", "healthcheck"]
ENTRYPOINT ["pg-tls-proxy"]
