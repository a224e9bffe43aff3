#!/usr/bin/env bash
# Bridge mode (issue 15) against a direct route, in one run, side by side.
#
#   scripts/bench-bridge.sh [PATH/TO/pg-tls-proxy]     (make bench-bridge; make bench runs it too)
#
# Starts a throw-away PostgreSQL 15 (TLS with a private CA, SCRAM, 127.0.0.1
# only) and two proxies in front of it with the same flags: "direct" dials
# the database itself; "bridge" reaches it through bridge "lab", whose one
# connector (pg-tls-proxy connector, same binary) runs on the same machine
# and dials the bridge proxy's --bridge-listen on loopback. Both legs are
# verify-full in both cases; through the bridge the proxy's TLS with the
# database travels inside the connector's TLS with the proxy. Then, per
# target:
#   latency   $SESSIONS sessions one after another, each connect + select 1
#             + disconnect (tests/bench/sessionbench.c, libpq): median and p95
#   copy out  COPY (select repeat('x', 1000) from generate_series(..)) TO
#             STDOUT, $COPY_MB MB, psql \copy to /dev/null: MB/s
#   copy in   the same bytes from a file into an unlogged table: MB/s
#             (each COPY_REPS times, the targets alternating: the median)
#   idle      $IDLE sessions opened and left idle: (RSS of the proxy with
#             them - RSS before) / $IDLE, and the same for the connector
# Prints a Markdown table with the ratio bridge/direct; raw values and logs
# go to build/bench/bridge-<timestamp>/. A benchmark, not a test: no number
# makes it fail. Exits non-zero only when something cannot start; exits 0
# with a note when the binary has no bridge mode. Loopback only; every
# process it starts is stopped by PID and the temporary directory removed.
# About a minute on two cores.
#
# Environment: SESSIONS (300), IDLE (300), COPY_MB (200), COPY_REPS (3), PROXY_ARGS (extra
# flags for both proxies, e.g. "--workers 1"), BENCH_OUT (results directory).
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
T_START=$SECONDS
note() { printf '[bench-bridge %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

BIN=${1:-$REPO/build/pg-tls-proxy}
: "${SESSIONS:=300}" "${IDLE:=300}" "${COPY_MB:=200}" "${COPY_REPS:=3}"
for v in SESSIONS IDLE COPY_MB COPY_REPS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { note "$v must be a positive number"; exit 2; }
done
if ! command -v psql >/dev/null || ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    note "PostgreSQL missing: running scripts/install-deps.sh"
    "$REPO/scripts/install-deps.sh" || { note "install-deps failed"; exit 1; }
fi

# shellcheck source=tests/integration/lib.sh
. "$REPO/tests/integration/lib.sh"
[ -x "$BIN" ] || it_die "proxy binary '$BIN' not found: run make first"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
PGTP_BIN=$BIN # what it_proxy_start runs
if ! "$BIN" --help 2>&1 | grep -q -- '--bridge-listen'; then
    note "$BIN has no bridge mode (--bridge-listen): nothing to compare"
    exit 0
fi
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGSERVICE PGSERVICEFILE \
    PGOPTIONS PGSSLMODE PGREQUIRESSL PGSSLROOTCERT PGSSLCERT PGSSLKEY PGSSLCRL \
    PGCHANNELBINDING PGGSSENCMODE PGCONNECT_TIMEOUT PGTARGETSESSIONATTRS PGAPPNAME
while read -r var; do unset "$var"; done < <(compgen -e | grep '^PG_TLS_PROXY_' || true)

OUT=${BENCH_OUT:-$REPO/build/bench/bridge-$(date +%Y%m%d-%H%M%S)}
LOGS=$OUT/logs
mkdir -p "$LOGS"
TMP=$(mktemp -d /tmp/pgtp-bench-bridge.XXXXXX)
chmod 755 "$TMP" # the postgres user reaches its data directory inside
cleanup() {
    it_stop_all
    it_pg_stop_all
    cp "$TMP/pgdata/server.log" "$LOGS/postgresql.log" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- set-up
CERTS=$TMP/certs
it_gen_certs "$CERTS"
PASSWORD=$(it_random_password)
export PGPASSFILE=$TMP/passfile
it_write_passfile "$PGPASSFILE" app "$PASSWORD"
it_free_port PGPORT
IT_PG_EXTRA_CONF="max_connections = $((IDLE + 50))" \
    it_pg_start "$TMP/pgdata" "$PGPORT" "$CERTS" app app "$PASSWORD"

read -r -a PQ_FLAGS <<<"$(pkg-config --cflags --libs libpq 2>/dev/null || echo -I/usr/include/postgresql -lpq)"
"${CC:-cc}" -std=c17 -O2 -o "$TMP/sessionbench" "$REPO/tests/bench/sessionbench.c" "${PQ_FLAGS[@]}" \
    >"$LOGS/sessionbench-build.log" 2>&1 || it_die "tests/bench/sessionbench.c did not build"

secret_out=$("$BIN" bridge-secret lab 2>&1)
(umask 077 && sed -n 's/^secret=//p' <<<"$secret_out" >"$TMP/lab.secret" &&
    grep '^"' <<<"$secret_out" >"$TMP/bridges")
[ -s "$TMP/lab.secret" ] && [ -s "$TMP/bridges" ] || it_die "pg-tls-proxy bridge-secret printed no secret"
unset secret_out

it_free_port P_DIRECT
it_free_port P_BRIDGE
it_free_port P_BLISTEN
read -r -a EXTRA <<<"${PROXY_ARGS:-}"
common=(--server-certificate-path "$CERTS/proxy.crt" --server-private-key-path "$CERTS/proxy.key"
    --server-host 127.0.0.1 --client-connection-host-or-ip 127.0.0.1
    --client-connection-port "$PGPORT" --client-tls-validation-host localhost
    --client-ca-roots-path "$CERTS/db-ca.crt" "${EXTRA[@]}")
it_proxy_start direct "$LOGS/proxy-direct.log" "$P_DIRECT" "${common[@]}" \
    --server-port "$P_DIRECT" || it_die "the direct proxy did not start (see $LOGS/proxy-direct.log)"
it_proxy_start bridge "$LOGS/proxy-bridge.log" "$P_BRIDGE" "${common[@]}" \
    --server-port "$P_BRIDGE" --bridge-listen "127.0.0.1:$P_BLISTEN" \
    --bridges-file "$TMP/bridges" --client-bridge lab ||
    it_die "the bridge proxy did not start (see $LOGS/proxy-bridge.log)"
it_spawn connector "$LOGS/connector.log" "$BIN" connector --bridge-address "127.0.0.1:$P_BLISTEN" \
    --bridge-id lab --bridge-secret-file "$TMP/lab.secret" --bridge-ca-path "$CERTS/public-ca.crt" \
    --bridge-tls-validation-host localhost --allow "127.0.0.1:$PGPORT" --connector-name bench
for ((i = 0; i < 200; i++)); do
    grep -q 'event=tunnel_up' "$LOGS/connector.log" && break
    kill -0 "${IT_PIDS[connector]}" 2>/dev/null || break
    sleep 0.05
done
grep -q 'event=tunnel_up' "$LOGS/connector.log" ||
    it_die "the connector did not come up in 10 s (see $LOGS/connector.log)"

ci() {
    printf 'host=localhost hostaddr=127.0.0.1 port=%s user=app dbname=app sslmode=verify-full ' "$1"
    printf 'sslrootcert=%s channel_binding=disable connect_timeout=30' "$CERTS/public-ca.crt"
}
declare -A PORT=([direct]=$P_DIRECT [bridge]=$P_BRIDGE)
for t in direct bridge; do
    "$TMP/sessionbench" latency "$(ci "${PORT[$t]}")" 20 >/dev/null 2>"$LOGS/warmup-$t.err" ||
        it_die "warm-up sessions through $t failed: $(head -c 300 "$LOGS/warmup-$t.err")"
done
note "set-up done in $((SECONDS - T_START)) s; PostgreSQL on $PGPORT, direct $P_DIRECT, bridge $P_BRIDGE"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
ms() { date +%s%3N; }
declare -A R=()

# ---------------------------------------------------------------- latency
for t in direct bridge; do
    line=$("$TMP/sessionbench" latency "$(ci "${PORT[$t]}")" "$SESSIONS" 2>>"$LOGS/latency-$t.err")
    printf '%s\n' "$line" >"$OUT/latency-$t.txt"
    R[$t.median]=$(sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p' <<<"$line")
    R[$t.p95]=$(sed -n 's/.*p95_ms=\([0-9.]*\).*/\1/p' <<<"$line")
    R[$t.lfail]=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$line")
    note "latency $t: $line"
done

# ---------------------------------------------------------------- COPY
ROWS=$((COPY_MB * 1048576 / 1001)) # rows of 1000 bytes + newline: COPY_MB MiB
yes "$(printf '%01000d' 0 | tr 0 x)" | head -n "$ROWS" >"$TMP/copy-in.txt"
BYTES=$(stat -c %s "$TMP/copy-in.txt")
psql -X -q "$(ci "$P_DIRECT")" -c "CREATE UNLOGGED TABLE bench_in (line text)" >/dev/null 2>&1
# copy_rate TARGET SQL: MB/s of one psql \copy through TARGET (empty if it failed).
copy_rate() {
    local t0
    t0=$(ms)
    timeout 300 psql -X -q "$(ci "${PORT[$1]}")" -c "$2" >>"$LOGS/copy-$1.log" 2>&1 &&
        awk -v b="$BYTES" -v ms="$(($(ms) - t0))" 'BEGIN { printf "%.1f\n", b / 1048576 / (ms / 1000) }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# COPY_REPS rounds, the targets alternating; the median of each.
for ((rep = 0; rep < COPY_REPS; rep++)); do
    for t in direct bridge; do
        copy_rate "$t" "\\copy (select repeat('x', 1000) from generate_series(1, $ROWS)) to '/dev/null'" \
            >>"$OUT/copy-out-$t.txt"
        psql -X -q "$(ci "${PORT[$t]}")" -c "TRUNCATE bench_in" >/dev/null 2>&1
        copy_rate "$t" "\\copy bench_in from '$TMP/copy-in.txt'" >>"$OUT/copy-in-$t.txt"
    done
done
for t in direct bridge; do
    R[$t.out]=$(median <"$OUT/copy-out-$t.txt")
    R[$t.in]=$(median <"$OUT/copy-in-$t.txt")
    note "copy $t: out ${R[$t.out]:-failed} MB/s, in ${R[$t.in]:-failed} MB/s (median of $COPY_REPS)"
done
rm -f "$TMP/copy-in.txt"

# ---------------------------------------------------------------- idle sessions
# settle PID: RSS once two samples 0.5 s apart agree within 64 KB (at most 5 s).
settle() {
    local a b i
    a=$(rss_kb "$1")
    for ((i = 0; i < 10; i++)); do
        sleep 0.5
        b=$(rss_kb "$1")
        [ $((a > b ? a - b : b - a)) -le 64 ] && break
        a=$b
    done
    echo "$b"
}
CPID=${IT_PIDS[connector]}
for t in direct bridge; do
    ppid=${IT_PIDS[$t]}
    base=$(settle "$ppid") cbase=$(settle "$CPID")
    rm -f "$TMP/stop"
    "$TMP/sessionbench" idle "$(ci "${PORT[$t]}")" "$IDLE" "$TMP/stop" 120 \
        >"$TMP/idle-$t.out" 2>"$LOGS/idle-$t.err" &
    bpid=$!
    for ((i = 0; i < 1200; i++)); do
        grep -q '^open=' "$TMP/idle-$t.out" 2>/dev/null && break
        kill -0 "$bpid" 2>/dev/null || break
        sleep 0.1
    done
    open=$(sed -n 's/^open=//p' "$TMP/idle-$t.out")
    held=$(settle "$ppid") cheld=$(settle "$CPID")
    touch "$TMP/stop"
    wait "$bpid"
    printf 'open=%s proxy_base=%s proxy_held=%s connector_base=%s connector_held=%s\n' \
        "${open:-0}" "$base" "$held" "$cbase" "$cheld" >"$OUT/idle-$t.txt"
    if [ "${open:-0}" -gt 0 ]; then
        R[$t.kb]=$(awk -v a="$held" -v b="$base" -v n="$open" 'BEGIN { printf "%.1f", (a - b) / n }')
        [ "$t" = bridge ] &&
            R[$t.ckb]=$(awk -v a="$cheld" -v b="$cbase" -v n="$open" 'BEGIN { printf "%.1f", (a - b) / n }')
    fi
    note "idle $t: $(cat "$OUT/idle-$t.txt")"
    sleep 1 # let the proxy close them before the next target's baseline
done

# ---------------------------------------------------------------- table
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
row() { # LABEL KEY
    printf '| %s | %s | %s | %s |\n' "$1" "${R[direct.$2]:-n/a}" "${R[bridge.$2]:-n/a}" \
        "$(ratio "${R[bridge.$2]:-}" "${R[direct.$2]:-}")"
}
both=""
if [ -n "${R[bridge.kb]:-}" ] && [ -n "${R[bridge.ckb]:-}" ]; then
    both=$(awk -v a="${R[bridge.kb]}" -v b="${R[bridge.ckb]}" 'BEGIN { printf "%.1f", a + b }')
fi
{
    printf '## Bridge mode against a direct route (%s)\n\n' "$("$BIN" --version 2>&1 | head -n 1)"
    printf 'PostgreSQL 15 on loopback; both proxies verify-full on both legs; the connector on '
    printf 'the same machine. %s sessions for latency (failed: direct %s, bridge %s), %s MiB of '\
'COPY each way, %s idle sessions.\n\n' "$SESSIONS" "${R[direct.lfail]:-?}" "${R[bridge.lfail]:-?}" \
        "$((BYTES / 1048576))" "$IDLE"
    printf '| metric | direct route | bridge route | bridge/direct |\n|---|---|---|---|\n'
    row 'session set-up, median (ms): connect + select 1 + disconnect' median
    row 'session set-up, p95 (ms)' p95
    row 'COPY TO STDOUT (MB/s)' out
    row 'COPY FROM STDIN (MB/s)' in
    row 'proxy RSS per idle session (KB)' kb
    printf '| connector RSS per idle session (KB) | - | %s | - |\n' "${R[bridge.ckb]:-n/a}"
    printf '| proxy + connector per idle session (KB) | %s | %s | %s |\n' "${R[direct.kb]:-n/a}" \
        "${both:-n/a}" "$(ratio "$both" "${R[direct.kb]:-}")"
} | tee "$OUT/summary.md"
note "done in $((SECONDS - T_START)) s; raw values and logs in $OUT"
