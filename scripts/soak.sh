#!/usr/bin/env bash
# Soak test: pgbench through pg-tls-proxy for a long time, looking for errors
# and for memory or descriptor drift.
#
#   scripts/soak.sh [PATH/TO/pg-tls-proxy]        (make soak [SOAK_SECONDS=600])
#
# Starts a throw-away PostgreSQL 15 (TLS with a private CA, SCRAM, 127.0.0.1
# only; tests/integration/lib.sh), loads pgbench -i -s $SCALE over direct TLS,
# starts one proxy (verify-full towards PostgreSQL) and then, until
# SOAK_SECONDS have passed, alternates two phases of PHASE seconds each
# (a cycle is one of each):
#   select   pgbench -n -S -c $CLIENTS -j $THREADS -T $PHASE        (long sessions)
#   connect  the same with -C -c $CONN_CLIENTS: a new session per transaction
# Clients verify the proxy (sslmode=verify-full, channel_binding=disable: a
# TLS-terminating proxy cannot pass SCRAM channel binding).
#
# The proxy's VmRSS and open descriptors are sampled every second
# (/proc/PID/status, /proc/PID/fd) into samples.tsv; RSS and fds are also
# taken at the start and end of every phase (phases.tsv). At the end:
#   errors     pgbench runs that exited non-zero, aborted clients, failed
#              transactions, "pgbench: error" lines  -> expected 0
#   RSS drift  RSS at the end of the last cycle minus RSS at the end of
#              cycle 2 (the first cycles warm up allocator pools and OpenSSL)
#   fd drift   descriptors once every session is closed minus descriptors
#              right after start-up -> expected 0
# Writes summary.md (and the raw files, logs) to build/soak/<timestamp>/ or
# $SOAK_OUT. Exits 1 on any pgbench error, a descriptor leak, a proxy that
# died, or RSS drift above SOAK_MAX_DRIFT_KB (default 8192: generous, since
# glibc keeps freed memory; 0 disables); 2 if something cannot start.
# Loopback only; every process started here is stopped by PID and the
# temporary directory removed on exit.
#
# Environment: SOAK_SECONDS (600), PHASE (30), CLIENTS (8), CONN_CLIENTS (4),
# THREADS (2), SCALE (5), SOAK_MAX_DRIFT_KB (8192), PROXY_ARGS (extra proxy
# flags), SOAK_OUT (results directory).
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
T_START=$SECONDS
note() { printf '[soak %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die2() {
    note "$*"
    exit 2
}

need_tools() {
    command -v pgbench >/dev/null && command -v psql >/dev/null &&
        compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
if ! need_tools; then
    note "PostgreSQL server or pgbench missing: running scripts/install-deps.sh"
    "$REPO/scripts/install-deps.sh" || die2 "install-deps failed"
    need_tools || die2 "PostgreSQL/pgbench still missing"
fi

# shellcheck source=tests/integration/lib.sh
. "$REPO/tests/integration/lib.sh"

BIN=${1:-$REPO/build/pg-tls-proxy}
[ -x "$BIN" ] || die2 "proxy binary '$BIN' not found: run make first"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
# shellcheck disable=SC2034 # read by it_proxy_start (lib.sh)
PGTP_BIN=$BIN

unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGSERVICE PGSERVICEFILE \
    PGOPTIONS PGSSLMODE PGREQUIRESSL PGSSLROOTCERT PGSSLCERT PGSSLKEY PGSSLCRL \
    PGCHANNELBINDING PGGSSENCMODE PGCONNECT_TIMEOUT PGTARGETSESSIONATTRS PGAPPNAME
while read -r var; do unset "$var"; done < <(compgen -e | grep '^PG_TLS_PROXY_' || true)

: "${SOAK_SECONDS:=600}" "${PHASE:=30}" "${CLIENTS:=8}" "${CONN_CLIENTS:=4}" "${THREADS:=2}"
: "${SCALE:=5}" "${SOAK_MAX_DRIFT_KB:=8192}"
for v in SOAK_SECONDS PHASE CLIENTS CONN_CLIENTS THREADS SCALE SOAK_MAX_DRIFT_KB; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die2 "$v must be a whole number (got '${!v}')"
done
[ "$PHASE" -ge 2 ] || die2 "PHASE must be at least 2 seconds"
[ "$SOAK_SECONDS" -ge "$PHASE" ] || die2 "SOAK_SECONDS must be at least PHASE ($PHASE)"

STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${SOAK_OUT:-$REPO/build/soak/$STAMP}
mkdir -p "$OUT/logs" || die2 "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
LOGS=$OUT/logs
SAMPLES=$OUT/samples.tsv PHASES=$OUT/phases.tsv
printf 'seconds\tphase\tproxy_rss_kb\tproxy_fds\n' >"$SAMPLES"
printf 'n\tcycle\tkind\tstart_s\tend_s\trc\ttransactions\tfailed\taborted\terror_lines\trss_start_kb\trss_end_kb\tfds_start\tfds_end\ttps\n' >"$PHASES"

TMP=$(mktemp -d /tmp/pgtp-soak.XXXXXX) || die2 "mktemp failed"
chmod 755 "$TMP" # the postgres user must reach its data directory inside
CERTS=$TMP/certs
PGDATA_DIR=$TMP/pgdata
ROLE=soak DB=soak
PGB_PID="" # the pgbench running now

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    trap - EXIT INT TERM
    [ -n "$PGB_PID" ] && kill -TERM "$PGB_PID" 2>/dev/null && wait "$PGB_PID" 2>/dev/null
    it_stop_all
    it_pg_stop "$PGDATA_DIR"
    cp "$PGDATA_DIR/server.log" "$LOGS/postgresql.log" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'note interrupted; exit 130' INT
trap 'exit 143' TERM

PID="" # the proxy
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$PID/status" 2>/dev/null; }
fd_count() { find "/proc/$PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
sample() { # PHASE-LABEL
    printf '%s\t%s\t%s\t%s\n' "$((SECONDS - T_START))" "$1" "$(rss_kb)" "$(fd_count)" >>"$SAMPLES"
}
# First number on the first line of FILE that starts with PREFIX.
pgb_field() {
    grep -m1 -E "^$2" "$1" 2>/dev/null | grep -oE '[0-9]+(\.[0-9]+)?' | head -n 1
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
mb() { calc %.1f "${1:-0} / 1024"; }
# wait_fds N SECONDS: until the proxy has at most N descriptors open.
wait_fds() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [ "$(fd_count)" -le "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- set-up
note "results -> $OUT"
it_gen_certs "$CERTS"
it_free_port PG_PORT
it_free_port PROXY_PORT
PASSWORD=$(it_random_password)
it_write_passfile "$TMP/pgpass" "$ROLE" "$PASSWORD"
export PGPASSFILE=$TMP/pgpass
note "PostgreSQL on 127.0.0.1:$PG_PORT"
it_pg_start "$PGDATA_DIR" "$PG_PORT" "$CERTS" "$ROLE" "$DB" "$PASSWORD"

COMMON="user=$ROLE dbname=$DB connect_timeout=20 gssencmode=disable"
DIRECT="host=localhost hostaddr=127.0.0.1 port=$PG_PORT sslmode=verify-full sslrootcert=$CERTS/db-ca.crt $COMMON"
VIA="host=localhost hostaddr=127.0.0.1 port=$PROXY_PORT sslmode=verify-full sslrootcert=$CERTS/public-ca.crt channel_binding=disable $COMMON"

note "pgbench -i -s $SCALE"
timeout 600 pgbench -i -q -s "$SCALE" "$DIRECT" >"$LOGS/pgbench-init.log" 2>&1 ||
    die2 "pgbench -i failed (see $LOGS/pgbench-init.log)"

read -r -a EXTRA_ARGS <<<"${PROXY_ARGS:-}"
# Warnings and errors only: at info a connect phase writes two lines per
# session, and what a soak wants from the log is what went wrong.
it_proxy_start proxy "$LOGS/proxy.log" "$PROXY_PORT" \
    --server-host 127.0.0.1 --server-port "$PROXY_PORT" \
    --server-certificate-path "$CERTS/proxy.crt" --server-private-key-path "$CERTS/proxy.key" \
    --client-connection-host-or-ip 127.0.0.1 --client-connection-port "$PG_PORT" \
    --client-tls-validation-host localhost --client-ca-roots-path "$CERTS/db-ca.crt" \
    --log warn "${EXTRA_ARGS[@]}" || {
    tail -n 5 "$LOGS/proxy.log" >&2
    die2 "pg-tls-proxy did not start"
}
PID=${IT_PIDS[proxy]}
out=$(timeout 30 psql -X -At "$VIA" -c "select 'ok'" 2>&1)
[ "$out" = ok ] || die2 "first query through the proxy failed: $out"
sleep 1
FDS0=$(fd_count) RSS0=$(rss_kb)
sample start
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpus: $(nproc); memory: $(free -m | awk '/^Mem:/ { print $2 }') MiB; kernel: $(uname -r); load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "openssl: $(openssl version); postgres: $("$IT_PG_BINDIR/postgres" --version); pgbench: $(pgbench --version)"
    echo "proxy: $("$BIN" --version 2>&1 | head -n 1) ($BIN) ${PROXY_ARGS:-}"
    echo "source: $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "soak_seconds=$SOAK_SECONDS phase=$PHASE clients=$CLIENTS conn_clients=$CONN_CLIENTS threads=$THREADS scale=$SCALE"
} >"$OUT/env.txt"
note "proxy pid $PID: RSS $(mb "$RSS0") MB, $FDS0 fds; soaking for $SOAK_SECONDS s in $PHASE s phases"

# ---------------------------------------------------------------- phases
NPH=0 TOTAL_TX=0 ERRORS=0 DIED=""
declare -a END_RSS_SELECT=() END_RSS_CONNECT=() CYCLE_END_RSS=()
SOAK_T0=$SECONDS
while [ $((SECONDS - SOAK_T0)) -lt "$SOAK_SECONDS" ]; do
    NPH=$((NPH + 1))
    cycle=$(((NPH + 1) / 2))
    if [ $((NPH % 2)) = 1 ]; then kind=select; else kind=connect; fi
    left=$((SOAK_SECONDS - (SECONDS - SOAK_T0)))
    dur=$PHASE
    [ "$left" -lt "$dur" ] && dur=$left
    [ "$dur" -ge 1 ] || dur=1
    f=$LOGS/phase-$NPH-$kind.log
    args=(-n -S -c "$CLIENTS" -j "$THREADS" -T "$dur")
    [ "$kind" = connect ] && args=(-n -S -C -c "$CONN_CLIENTS" -j "$THREADS" -T "$dur")
    t0=$((SECONDS - T_START)) r0=$(rss_kb) d0=$(fd_count)
    timeout -k 10 $((dur * 3 + 120)) pgbench "${args[@]}" "$VIA" >"$f" 2>&1 &
    PGB_PID=$!
    while kill -0 "$PGB_PID" 2>/dev/null; do
        sample "$kind-$cycle"
        sleep 1
    done
    rc=0
    wait "$PGB_PID" || rc=$?
    PGB_PID=""
    # The sessions pgbench ended are closed by the proxy a moment later.
    wait_fds "$FDS0" 10 || true
    r1=$(rss_kb) d1=$(fd_count)
    sample "$kind-$cycle-end"
    tx=$(pgb_field "$f" 'number of transactions actually processed:')
    failed=$(pgb_field "$f" 'number of failed transactions:')
    aborted=$(grep -cE 'aborted' "$f" || true)
    elines=$(grep -cE 'pgbench: error|FATAL|could not' "$f" || true)
    tps=$(pgb_field "$f" 'tps =')
    : "${tx:=0}" "${failed:=0}"
    TOTAL_TX=$((TOTAL_TX + tx))
    perr=0
    if [ "$rc" != 0 ] || [ "$failed" != 0 ] || [ "$aborted" != 0 ] || [ "$elines" != 0 ] || [ "$tx" = 0 ]; then
        perr=1
        ERRORS=$((ERRORS + 1))
        note "phase $NPH ($kind): pgbench exit $rc, $failed failed, $aborted aborted, $elines error lines, $tx transactions (see $f):"
        grep -m3 -E 'error|FATAL|abort' "$f" | sed 's/^/    /' >&2
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$NPH" "$cycle" "$kind" \
        "$t0" "$((SECONDS - T_START))" "$rc" "$tx" "$failed" "$aborted" "$elines" "$r0" "$r1" "$d0" "$d1" \
        "${tps:-}" >>"$PHASES"
    note "phase $NPH ($kind, cycle $cycle): $tx transactions, ${tps:-?} tps$([ "$perr" = 1 ] && echo ", ERRORS"); RSS $(mb "$r0") -> $(mb "$r1") MB, fds $d0 -> $d1"
    if [ "$kind" = select ]; then END_RSS_SELECT+=("$r1"); else END_RSS_CONNECT+=("$r1"); fi
    [ "$kind" = connect ] && CYCLE_END_RSS+=("$r1")
    if ! kill -0 "$PID" 2>/dev/null; then
        DIED="the proxy exited during phase $NPH"
        note "$DIED"
        break
    fi
done

# ---------------------------------------------------------------- verdict
FDS_END="" RSS_END=""
if [ -z "$DIED" ]; then
    wait_fds "$FDS0" 30 || true
    FDS_END=$(fd_count) RSS_END=$(rss_kb)
    sample end
fi
WARN_LINES=$(grep -c 'level=warn' "$LOGS/proxy.log" 2>/dev/null || true)
ERR_LINES=$(grep -c 'level=error' "$LOGS/proxy.log" 2>/dev/null || true)
NCYC=${#CYCLE_END_RSS[@]}
DRIFT="" DRIFT_FROM="needs 2 cycles"
if [ "$NCYC" -ge 3 ]; then
    DRIFT=$((CYCLE_END_RSS[NCYC - 1] - CYCLE_END_RSS[1])) DRIFT_FROM="end of cycle 2 -> end of cycle $NCYC"
elif [ "$NCYC" -ge 2 ]; then
    DRIFT=$((CYCLE_END_RSS[NCYC - 1] - CYCLE_END_RSS[0])) DRIFT_FROM="end of cycle 1 -> end of cycle $NCYC"
fi
RSS_MIN=$(awk -F'\t' 'NR > 1 && $3 != "" { if (m == "" || $3 < m) m = $3 } END { print m }' "$SAMPLES")
RSS_MAX=$(awk -F'\t' 'NR > 1 && $3 != "" { if ($3 > m) m = $3 } END { print m + 0 }' "$SAMPLES")
FD_MAX=$(awk -F'\t' 'NR > 1 && $4 != "" { if ($4 > m) m = $4 } END { print m + 0 }' "$SAMPLES")

VERDICT=ok REASONS=()
[ "$ERRORS" = 0 ] || REASONS+=("$ERRORS phase(s) with pgbench errors")
[ -z "$DIED" ] || REASONS+=("$DIED")
if [ -n "$FDS_END" ] && [ "$FDS_END" -gt "$FDS0" ]; then
    REASONS+=("descriptor leak: $FDS0 fds after start-up, $FDS_END after all sessions closed")
fi
if [ -n "$DRIFT" ] && [ "$SOAK_MAX_DRIFT_KB" -gt 0 ] && [ "$DRIFT" -gt "$SOAK_MAX_DRIFT_KB" ]; then
    REASONS+=("RSS drift $DRIFT KB ($DRIFT_FROM) above SOAK_MAX_DRIFT_KB=$SOAK_MAX_DRIFT_KB")
fi
[ ${#REASONS[@]} = 0 ] || VERDICT=FAILED

{
    echo "## pg-tls-proxy soak ($STAMP): $VERDICT"
    echo
    echo "$((SECONDS - SOAK_T0)) s of pgbench through the proxy, $NPH phases of up to $PHASE s alternating select-only (-S -c $CLIENTS -j $THREADS) and connect-per-transaction (-S -C -c $CONN_CLIENTS -j $THREADS); scale $SCALE; $(nproc) CPUs."
    echo
    echo "- transactions: $TOTAL_TX; phases with errors: $ERRORS (pgbench exit status, failed transactions, aborted clients, error lines)"
    echo "- proxy RSS: $(mb "$RSS0") MB after start-up, $(mb "$RSS_MIN")-$(mb "$RSS_MAX") MB over the run, $(mb "$RSS_END") MB at the end"
    echo "- RSS drift ($DRIFT_FROM, both measured after a connect phase): ${DRIFT:-n/a} KB"
    echo "- fds: $FDS0 after start-up, at most $FD_MAX during the run, ${FDS_END:-n/a} after all sessions closed (drift $((${FDS_END:-$FDS0} - FDS0)))"
    echo "- proxy log: $WARN_LINES warn, $ERR_LINES error lines"
    [ ${#REASONS[@]} = 0 ] || printf -- '- **failed**: %s\n' "${REASONS[@]}"
    echo
    echo "| # | cycle | kind | transactions | tps | pgbench exit | failed | RSS start MB | RSS end MB | fds start | fds end |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s | %.1f | %s | %s | %.1f | %.1f | %s | %s |\n", $1, $2, $3, $7, $15, $6, $8, $11 / 1024, $12 / 1024, $13, $14 }' "$PHASES"
    echo
    echo "Samples every second: $SAMPLES; phases: $PHASES; logs: $LOGS. Took $((SECONDS - T_START)) s."
} | tee "$OUT/summary.md"
[ "$VERDICT" = ok ] || exit 1
exit 0
