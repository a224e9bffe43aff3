#!/usr/bin/env bash
# A throw-away PostgreSQL behind pg-tls-proxy, to try it by hand.
#
#   scripts/demo.sh [PATH/TO/pg-tls-proxy]          (make demo does this)
#
# Makes a private PKI in a temporary directory, starts PostgreSQL (TLS +
# SCRAM, 127.0.0.1 only, as the postgres user when run as root) on a free
# port, creates role and database "demo" with a random password, starts the
# proxy in front on another free port and prints a psql command line to
# paste. Then waits until Ctrl-C and removes everything it made.
#
# When standard input is not a terminal, or DEMO_SMOKE=1, it runs that psql
# line once instead (SELECT 'demo ok'), prints the result and exits with
# psql's status: that is how CI exercises the demo.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/integration/lib.sh
. "$REPO/tests/integration/lib.sh"

BIN=${1:-$REPO/build/pg-tls-proxy}
[ -x "$BIN" ] || it_die "proxy binary '$BIN' not found: run make first"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
PGTP_BIN=$BIN # what it_proxy_start runs
command -v psql >/dev/null || it_die "psql not found (scripts/install-deps.sh installs it)"

SMOKE=${DEMO_SMOKE:-0}
[ -t 0 ] || SMOKE=1

DEMO_TMP=$(mktemp -d /tmp/pgtp-demo.XXXXXX)
chmod 755 "$DEMO_TMP" # the postgres user must reach its data directory
DEMO_DATA=$DEMO_TMP/pgdata

# shellcheck disable=SC2317 # only called by the EXIT trap
cleanup() {
    trap - EXIT INT TERM
    it_stop_all
    it_pg_stop "$DEMO_DATA"
    rm -rf "$DEMO_TMP"
    [ "$SMOKE" = 1 ] || echo "demo: stopped; removed $DEMO_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

it_gen_certs "$DEMO_TMP/certs"
PASSWORD=$(it_random_password)
it_free_port PG_PORT
it_free_port PROXY_PORT
it_pg_start "$DEMO_DATA" "$PG_PORT" "$DEMO_TMP/certs" demo demo "$PASSWORD"

PROXY_LOG=$DEMO_TMP/proxy.log
if ! it_proxy_start proxy "$PROXY_LOG" "$PROXY_PORT" \
    --server-certificate-path "$DEMO_TMP/certs/proxy.crt" \
    --server-private-key-path "$DEMO_TMP/certs/proxy.key" \
    --server-host 127.0.0.1 --server-port "$PROXY_PORT" \
    --client-connection-host-or-ip 127.0.0.1 --client-connection-port "$PG_PORT" \
    --client-tls-validation-host localhost --client-ca-roots-path "$DEMO_TMP/certs/db-ca.crt" \
    --auth-mode password; then
    tail -n 20 "$PROXY_LOG" >&2
    it_die "the proxy did not start listening on 127.0.0.1:$PROXY_PORT"
fi

CONNINFO="host=localhost hostaddr=127.0.0.1 port=$PROXY_PORT user=demo dbname=demo"
CONNINFO+=" sslmode=verify-full sslrootcert=$DEMO_TMP/certs/public-ca.crt"

cat <<EOF

pg-tls-proxy demo
  PostgreSQL     127.0.0.1:$PG_PORT  (TLS with a private CA, SCRAM; data in $DEMO_DATA)
  pg-tls-proxy   127.0.0.1:$PROXY_PORT -> 127.0.0.1:$PG_PORT  (log: $PROXY_LOG)

Connect through the proxy with psql's default settings (--auth-mode password: the
proxy asks for the password inside TLS and logs in upstream itself, channel-bound):

PGPASSWORD=$PASSWORD psql "$CONNINFO"

EOF

if [ "$SMOKE" = 1 ]; then
    rc=0
    PGPASSWORD=$PASSWORD timeout -k 5 60 psql -X -A -t -c "select 'demo ok'" "$CONNINFO" || rc=$?
    [ "$rc" = 0 ] || tail -n 20 "$PROXY_LOG" >&2
    exit "$rc"
fi

echo "Press Ctrl-C to stop the proxy and PostgreSQL and delete $DEMO_TMP."
rc=0
wait "${IT_PIDS[proxy]}" || rc=$?
unset "IT_PIDS[proxy]"
echo "demo: the proxy exited (status $rc); last lines of its log:" >&2
tail -n 20 "$PROXY_LOG" >&2
exit 1
