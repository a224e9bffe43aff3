#!/usr/bin/env bash
# docker-smoke.sh - build the image and run one verify-full session through it.
#
#   scripts/docker-smoke.sh [IMAGE_TAG]        (default pg-tls-proxy:smoke)
#
# Needs a running Docker engine. Builds the image from this repository, makes a
# throw-away PKI (certs/gen-test-certs.sh) in a temporary directory, and on a
# new user-defined network starts:
#   - postgres:15 with TLS on (db-server certificate from the private db CA);
#   - the proxy image, checking the database with verify-full against that CA
#     mounted into /etc/pg-tls-proxy/ca-bundles/custom/ ("pg-tls-proxy --check"
#     first, then serving);
#   - psql (from the postgres:15 image) in the proxy container's network
#     namespace, with sslmode=verify-full against the proxy's public CA.
# Prints "docker-smoke: ok" on success. Removes its containers, network and
# temporary directory on exit, however it ends. Every wait is bounded.
#
# Exit status: 0 ok, 1 failure, 2 no Docker engine reachable (or misuse).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
TAG=${1:-pg-tls-proxy:smoke}
PG_IMAGE=${PG_IMAGE:-postgres:15}
WAIT_S=${WAIT_S:-60}

say() { echo "docker-smoke: $*"; }
die() {
    echo "docker-smoke: $*" >&2
    exit 1
}

if ! command -v docker >/dev/null; then
    echo "docker-smoke: docker not found; this script needs Docker (tests/check-dockerfile.sh checks the Dockerfile without it)" >&2
    exit 2
fi
if ! timeout 20 docker info >/dev/null 2>&1; then
    echo "docker-smoke: no Docker engine reachable ('docker info' failed): start Docker or set DOCKER_HOST;" \
        "tests/check-dockerfile.sh checks the Dockerfile without an engine" >&2
    exit 2
fi

RUN_ID=pgtp-smoke-$$-$RANDOM
NET=$RUN_ID-net
DB=$RUN_ID-db
PROXY=$RUN_ID-proxy
TMP=$(mktemp -d /tmp/pgtp-docker-smoke.XXXXXX)

# shellcheck disable=SC2317 # only called by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$rc" != 0 ]; then
        for c in "$PROXY" "$DB"; do
            if docker container inspect "$c" >/dev/null 2>&1; then
                echo "---- last log lines of $c:" >&2
                docker logs --tail 20 "$c" >&2 2>&1 || true
            fi
        done
    fi
    docker rm -f "$PROXY" "$DB" >/dev/null 2>&1 || true
    docker network rm "$NET" >/dev/null 2>&1 || true
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "building $TAG"
docker build -q -t "$TAG" "$REPO" >/dev/null || die "docker build failed"

say "making a throw-away PKI in $TMP/certs"
"$REPO/certs/gen-test-certs.sh" "$TMP/certs" >/dev/null
# The containers run as other users (postgres, pgtp) than the files' owner:
# these keys are throw-away, so let them read everything.
chmod -R a+rX "$TMP"

PASSWORD=$(openssl rand -hex 16)
docker network create "$NET" >/dev/null

timeout 300 docker pull -q "$PG_IMAGE" >/dev/null || die "could not pull $PG_IMAGE"
say "starting $PG_IMAGE with TLS"
# PostgreSQL insists that its key belongs to it and is 0600: copy it in as root.
docker run -d --name "$DB" --network "$NET" \
    -e POSTGRES_PASSWORD="$PASSWORD" \
    -v "$TMP/certs:/certs-in:ro" \
    --entrypoint bash "$PG_IMAGE" -c '
        install -o postgres -g postgres -m 600 /certs-in/db-server.key /tmp/server.key &&
        install -o postgres -g postgres -m 644 /certs-in/db-server.crt /tmp/server.crt &&
        exec docker-entrypoint.sh postgres -c ssl=on \
            -c ssl_cert_file=/tmp/server.crt -c ssl_key_file=/tmp/server.key' >/dev/null

deadline=$((SECONDS + WAIT_S))
until docker exec "$DB" pg_isready -q -h 127.0.0.1 -U postgres 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || die "PostgreSQL not ready after ${WAIT_S}s"
    sleep 1
done

# The test certificates name localhost: verify the database under that name
# while connecting to its container name.
PROXY_ARGS=(
    --server-certificate-path /tls/proxy.crt
    --server-private-key-path /tls/proxy.key
    --client-connection-host-or-ip "$DB"
    --client-tls-validation-host localhost
    --client-ca-roots-path /etc/pg-tls-proxy/ca-bundles/custom
)
PROXY_MOUNTS=(
    -v "$TMP/certs/proxy.crt:/tls/proxy.crt:ro"
    -v "$TMP/certs/proxy.key:/tls/proxy.key:ro"
    -v "$TMP/certs/db-ca.crt:/etc/pg-tls-proxy/ca-bundles/custom/db-ca.pem:ro"
)

say "pg-tls-proxy --check in the image"
timeout "$WAIT_S" docker run --rm --network "$NET" "${PROXY_MOUNTS[@]}" "$TAG" \
    "${PROXY_ARGS[@]}" --check >/dev/null || die "pg-tls-proxy --check failed"

say "starting the proxy"
docker run -d --name "$PROXY" --network "$NET" "${PROXY_MOUNTS[@]}" \
    -e PG_TLS_PROXY_ADMIN_ADDRESS=127.0.0.1:9187 \
    "$TAG" "${PROXY_ARGS[@]}" >/dev/null

# psql shares the proxy's network namespace, so "localhost" (the name on the
# proxy's test certificate) is the proxy.
CONNINFO="host=localhost port=5432 user=postgres dbname=postgres"
CONNINFO+=" sslmode=verify-full sslrootcert=/certs/public-ca.crt channel_binding=disable"
psql_proxy() {
    timeout 30 docker run --rm --network "container:$PROXY" -v "$TMP/certs:/certs:ro" \
        -e PGPASSWORD="$PASSWORD" -e PGCONNECT_TIMEOUT=10 "$PG_IMAGE" \
        psql -X -A -t -c "$1" "$CONNINFO"
}
deadline=$((SECONDS + WAIT_S))
# pg_stat_ssl shows the proxy's own upstream session, which must be TLS.
query="select case when ssl then 'upstream ssl=on' else 'upstream ssl=off' end from pg_stat_ssl where pid = pg_backend_pid()"
until out=$(psql_proxy "$query" 2>&1); do
    [ "$SECONDS" -lt "$deadline" ] || die "psql through the proxy failed after ${WAIT_S}s: $out"
    sleep 2
done
say "$out"
[ "$out" = "upstream ssl=on" ] || die "unexpected answer: $out"

# The image's own HEALTHCHECK command (["CMD", "pg-tls-proxy", "healthcheck"],
# exec form: the image needs no shell), run by hand: Docker's first run waits
# for the interval.
mapfile -t hc < <(docker inspect -f '{{range slice .Config.Healthcheck.Test 1}}{{println .}}{{end}}' "$PROXY" | sed '/^$/d')
docker exec "$PROXY" "${hc[@]}" || die "the image's HEALTHCHECK command failed"
say "HEALTHCHECK command passes (GET /healthz on 127.0.0.1:9187)"

say ok
