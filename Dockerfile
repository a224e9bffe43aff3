# pg-tls-proxy container image.
#
#   docker build -t pg-tls-proxy .
#   docker run --rm -p 5432:5432 -v /path/to/tls:/tls:ro pg-tls-proxy \
#       --server-certificate-path /tls/proxy.crt --server-private-key-path /tls/proxy.key \
#       --client-connection-host-or-ip db.example.internal --client-ca-roots-path /tls/db-ca.pem
#
# The image holds no key material: mount certificates and keys at run time.

# ---- build: the same Makefile as everywhere else ----
FROM debian:bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config libuv1-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make clean \
    && make WERROR=1 \
    && make install DESTDIR=/staging PREFIX=/usr/local \
    && strip /staging/usr/local/bin/pg-tls-proxy

# ---- runtime: shared libraries and CA certificates only ----
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends libuv1 libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin pgtp
COPY --from=build /staging/usr/local/bin/pg-tls-proxy /usr/local/bin/pg-tls-proxy
COPY --from=build /staging/usr/local/share/man/man1/pg-tls-proxy.1 /usr/local/share/man/man1/pg-tls-proxy.1
USER pgtp
EXPOSE 5432
# "docker stop" sends SIGTERM: the proxy stops accepting, lets sessions finish
# for --shutdown-timeout (default 30 s; give docker stop -t that long), exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["pg-tls-proxy"]
CMD ["--help"]
