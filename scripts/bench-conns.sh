#!/usr/bin/env bash
# How much memory pg-tls-proxy needs per session, with N sessions open at once.
#
#   scripts/bench-conns.sh [PATH/TO/pg-tls-proxy] [N]    (make bench-conns N=10000)
#
# PostgreSQL here cannot hold 10,000 backends, and the proxy opens its
# upstream leg (TCP + verified TLS) as soon as a client sends SSLRequest,
# so even a client that never sends its StartupMessage costs a backend
# process. The proxy is therefore put in front of a stub upstream (a small
# Python process, TLS with a certificate from the private db CA): it relays
# sessions of the benchmark role to a real PostgreSQL 15 (TLS + SCRAM
# between client and PostgreSQL end to end; loopback plaintext from the
# stub to PostgreSQL) and answers every other user itself with
# AuthenticationOk ... ReadyForQuery, costing no backend. The proxy cannot
# tell the two apart: both are verified TLS upstream sessions.
#
# Sessions (one Python client process, non-blocking sockets, a generator per
# session; at most $CONC handshakes in flight):
#   stub   SSLRequest, verified TLS, StartupMessage, authenticated by the stub,
#          then idle: both TLS legs relaying            N - FULL of them
#   full   the same, authenticated with SCRAM by PostgreSQL, SELECT 1,
#          then idle                                    FULL (default min(N,100), at most 200)
#   front  SSLRequest + verified TLS, no StartupMessage: the proxy's start-up
#          stage (its back leg is up too); the proxy ends these after its
#          15 s start-up timeout, so they are measured on their own, on a
#          second, fresh proxy                          FRONT (default min(N,1000))
# Run 1 (proxy #1): open the stub sessions, then the full ones, sampling
# RSS (VmRSS of /proc/PID/status) after each stage; hold all N for HOLD
# seconds (default 20) sampling RSS, fds and the client's count every
# second; then every session sends a query and must get ReadyForQuery back;
# close all, RSS once the proxy has let go; reopen N stub sessions, RSS,
# close them, RSS. Run 2 (proxy #2): open the
# front-only sessions, RSS, then every second until the proxy has closed
# them, RSS after. KB per session = RSS growth / sessions opened; the proxy's
# CPU per session set-up comes from /proc/PID/stat.
#
# Needs about 2 file descriptors per session in the proxy and one in each
# Python process: the hard limit is raised with ulimit -Hn when root (the
# proxy raises its own soft limit to the hard one). Writes rss.tsv,
# result.txt (one line: sessions=N kb_per_session=K at once,
# kb_per_idle_session=K at the end of the hold), summary.md and logs
# to build/bench/conns-<timestamp>/. Exits non-zero only when something
# cannot start. Loopback only; every process it starts is
# stopped by PID and its temporary directory removed on exit.
#
# Environment: N (if not given as argument; default 1000), HOLD (20), FULL,
# FRONT, CONC (64), CYCLE (1: after closing everything, reopen N sessions on
# proxy #1 to see whether freed memory is reused; 0: skip), PROXY_ARGS (extra
# proxy flags, e.g. "--workers 1"), BENCH_OUT (results directory), PYTHON
# (/usr/bin/python3).
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
T_START=$SECONDS
note() { printf '[bench-conns %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

BIN=${1:-$REPO/build/pg-tls-proxy}
N=${2:-${N:-1000}}
: "${HOLD:=20}" "${CONC:=64}" "${CYCLE:=1}"
if ! [[ $N =~ ^[0-9]+$ ]] || [ "$N" -lt 1 ]; then
    note "N must be a positive number (got '$N')"
    exit 2
fi

if ! command -v psql >/dev/null || ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    note "PostgreSQL missing: running scripts/install-deps.sh"
    "$REPO/scripts/install-deps.sh" || { note "install-deps failed"; exit 1; }
fi
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=$(command -v python3) || { note "python3 not found"; exit 1; }

# shellcheck source=tests/integration/lib.sh
. "$REPO/tests/integration/lib.sh"
[ -x "$BIN" ] || it_die "proxy binary '$BIN' not found: run make first"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
PGTP_BIN=$BIN # what it_proxy_start runs
while read -r var; do unset "$var"; done < <(compgen -e | grep '^PG_TLS_PROXY_' || true)

# File descriptors: the proxy holds two per session (plus ~30 of its own),
# each Python process one per session. Raising the hard limit needs root
# with CAP_SYS_RESOURCE; without it N is lowered to what fits, and said so.
N_ASKED=$N CAPPED=""
NEED_FDS=$((2 * N + 1024))
HARD=$(ulimit -Hn)
if [ "$HARD" != unlimited ] && [ "$HARD" -lt "$NEED_FDS" ]; then
    if ! { it_is_root && ulimit -Hn "$NEED_FDS" 2>/dev/null; }; then
        fit=$(((HARD - 128) / 2))
        [ "$fit" -ge 1 ] || it_die "the hard fd limit ($HARD) is too low"
        if [ "$N" -gt "$fit" ]; then
            CAPPED="N lowered from $N to $fit: the fd hard limit is $HARD and cannot be raised here ($(it_is_root && echo "root without CAP_SYS_RESOURCE" || echo "not root")); $N sessions need about $((2 * N + 128))"
            note "$CAPPED"
            N=$fit
        fi
    fi
fi
ulimit -Sn "$(ulimit -Hn)" || it_die "cannot raise the soft fd limit"

: "${FULL:=$((N < 100 ? N : 100))}" "${FRONT:=$((N < 1000 ? N : 1000))}"
for v in HOLD CONC FULL FRONT CYCLE; do
    [[ ${!v} =~ ^[0-9]+$ ]] || it_die "$v must be a whole number (got '${!v}')"
done
[ "$FULL" -le 200 ] || it_die "FULL is at most 200 (PostgreSQL's max_connections here is 300)"
[ "$FULL" -le "$N" ] || FULL=$N
[ "$FRONT" -le "$N" ] || FRONT=$N
[ "$CONC" -ge 1 ] || CONC=1
STUB_N=$((N - FULL))

STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${BENCH_OUT:-$REPO/build/bench/conns-$STAMP}
mkdir -p "$OUT/logs" || it_die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
LOGS=$OUT/logs
TSV=$OUT/rss.tsv
printf 'seconds\tphase\tproxy_rss_kb\tproxy_fds\tclient_sessions\n' >"$TSV"

TMP=$(mktemp -d /tmp/pgtp-conns.XXXXXX) || it_die "mktemp failed"
chmod 755 "$TMP" # the postgres user must reach its data directory inside
CERTS=$TMP/certs
PGDATA_DIR=$TMP/pgdata
TOOL=$REPO/tests/load/conns.py # the stub upstream and the many-session client
ROLE=bench DB=bench

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    trap - EXIT INT TERM
    it_stop_all
    it_pg_stop "$PGDATA_DIR"
    cp "$PGDATA_DIR/server.log" "$LOGS/postgresql.log" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'note interrupted; exit 130' INT
trap 'exit 143' TERM


# ---------------------------------------------------------------- helpers
PID="" # the proxy being measured
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$PID/status" 2>/dev/null; }
fd_count() { find "/proc/$PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
cpu_ticks() {
    local stat rest
    local -a f
    stat=$(cat "/proc/$PID/stat" 2>/dev/null) || return 0
    rest=${stat##*) }
    read -r -a f <<<"$rest"
    echo $((f[11] + f[12]))
}
HZ=$(getconf CLK_TCK)
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
kv() { # FILE KEY [DEFAULT]: value of KEY=... in FILE
    local v
    v=$(awk -v k="$2" 'index($0, k "=") == 1 { print substr($0, length(k) + 2); exit }' "$1" 2>/dev/null)
    printf '%s' "${v:-${3:-}}"
}
# The client's status file as "kind_state=n ..." on one line.
client_summary() { # CTL
    [ -f "$1/status" ] && tr '\n' ' ' <"$1/status" | sed 's/ $//'
}
# wait_file FILE SECONDS NAME: until FILE exists; fails if IT_PIDS[NAME] dies first.
wait_file() {
    local file=$1 secs=$2 pid=${IT_PIDS[$3]:-} i
    for ((i = 0; i < secs * 10; i++)); do
        [ -f "$file" ] && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            [ -f "$file" ] && return 0
            return 1
        fi
        sleep 0.1
    done
    return 1
}
# wait_exit NAME SECONDS: let a client finish on its own, then make sure.
wait_exit() {
    local pid=${IT_PIDS[$1]:-} i
    [ -n "$pid" ] || return 0
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    it_stop "$1"
}
# wait_drained FDS SECONDS: until the proxy is back to FDS descriptors.
wait_drained() {
    local i
    for ((i = 0; i < $2 * 2; i++)); do
        [ "$(fd_count)" -le $(($1 + 8)) ] && return 0
        sleep 0.5
    done
    note "the proxy still has $(fd_count) descriptors (expected $1)"
}
T0=$SECONDS
sample() { # PHASE CTL
    local r
    r=$(rss_kb)
    printf '%s\t%s\t%s\t%s\t%s\n' "$((SECONDS - T0))" "$1" "$r" "$(fd_count)" "$(client_summary "$2")" >>"$TSV"
    echo "$r"
}
read -r -a EXTRA_ARGS <<<"${PROXY_ARGS:-}"
start_proxy() { # NAME
    it_free_port PROXY_PORT
    if ! it_proxy_start "$1" "$LOGS/$1.log" "$PROXY_PORT" \
        --server-host 127.0.0.1 --server-port "$PROXY_PORT" \
        --server-certificate-path "$CERTS/proxy.crt" --server-private-key-path "$CERTS/proxy.key" \
        --client-connection-host-or-ip 127.0.0.1 --client-connection-port "$STUB_PORT" \
        --client-tls-validation-host localhost --client-ca-roots-path "$CERTS/db-ca.crt" \
        "${EXTRA_ARGS[@]}"; then
        tail -n 5 "$LOGS/$1.log" >&2
        it_die "pg-tls-proxy did not start"
    fi
    PID=${IT_PIDS[$1]}
    sleep 1
}
client() { # NAME CTL STAGES [ARGS...]
    local name=$1 ctl=$2 stages=$3
    shift 3
    mkdir -p "$ctl"
    it_spawn "$name" "$LOGS/$name.log" "$PY" "$TOOL" client --port "$PROXY_PORT" \
        --ca "$CERTS/public-ca.crt" --ctl "$ctl" --stages "$stages" --conc "$CONC" "$@"
}
stage_timeout() { echo $((120 + $1 / 20)); } # matches the client's own bound

# ---------------------------------------------------------------- set-up
note "results -> $OUT"
it_gen_certs "$CERTS"
it_free_port PG_PORT
it_free_port STUB_PORT
PASSWORD=$(it_random_password)
(umask 077 && printf '%s\n' "$PASSWORD" >"$TMP/password")
note "PostgreSQL on 127.0.0.1:$PG_PORT"
it_pg_start "$PGDATA_DIR" "$PG_PORT" "$CERTS" "$ROLE" "$DB" "$PASSWORD"

it_spawn stub "$LOGS/stub.log" "$PY" "$TOOL" stub --port "$STUB_PORT" --cert "$CERTS/db-server.crt" \
    --key "$CERTS/db-server.key" --pg-port "$PG_PORT" --relay-user "$ROLE"
it_wait_port "$STUB_PORT" 15 "${IT_PIDS[stub]}" || {
    tail -n 5 "$LOGS/stub.log" >&2
    it_die "the stub upstream did not start"
}
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpus: $(nproc); memory: $(free -m | awk '/^Mem:/ { print $2 }') MiB; kernel: $(uname -r); load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "openssl: $(openssl version); python: $("$PY" --version 2>&1); postgres: $("$IT_PG_BINDIR/postgres" --version)"
    echo "proxy: $("$BIN" --version 2>&1 | head -n 1) ($BIN) ${PROXY_ARGS:-}"
    echo "source: $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "N=$N (asked $N_ASKED) full=$FULL stub=$STUB_N front=$FRONT hold=$HOLD conc=$CONC fd hard limit=$(ulimit -Hn)"
} >"$OUT/env.txt"

# ---------------------------------------------------------------- run 1: established sessions
start_proxy proxy1
FDS0=$(fd_count)
RSS_START=$(sample start "")
C_EST=$TMP/ctl-est
STAGES=""
[ "$STUB_N" -gt 0 ] && STAGES=stub:$STUB_N
[ "$FULL" -gt 0 ] && STAGES=${STAGES:+$STAGES,}full:$FULL
note "run 1: $STUB_N stub-authenticated + $FULL SCRAM sessions through proxy #1 (pid $PID)"
client est "$C_EST" "$STAGES" --user "$ROLE" --db "$DB" --password-file "$TMP/password" \
    --ping --max-wait $((HOLD + 300))
CPU0=$(cpu_ticks)
declare -A RSS_AT=() OPENED=() CPU_US=() SECS=() SETUP=() FAILED=() FIRST_ERR=()
prev_rss=$RSS_START prev_cpu=$CPU0
for kind in stub full; do
    n=$STUB_N
    [ "$kind" = full ] && n=$FULL
    [ "$n" -gt 0 ] || continue
    wait_file "$C_EST/$kind.done" "$(stage_timeout "$n")" est ||
        it_die "the client did not open its $kind sessions (see $LOGS/est.log)"
    sleep 1 # let the proxy finish what the last sessions started
    RSS_AT[$kind]=$(sample "after-$kind" "$C_EST")
    c=$(cpu_ticks)
    OPENED[$kind]=$(kv "$C_EST/$kind.done" opened) FAILED[$kind]=$(kv "$C_EST/$kind.done" failed)
    SECS[$kind]=$(kv "$C_EST/$kind.done" seconds) SETUP[$kind]=$(kv "$C_EST/$kind.done" setup_ms_median)
    FIRST_ERR[$kind]=$(kv "$C_EST/$kind.done" first_error)
    if [ "${OPENED[$kind]:-0}" -gt 0 ]; then
        CPU_US[$kind]=$(calc %.0f "($c - $prev_cpu) * 1e6 / $HZ / ${OPENED[$kind]}")
    fi
    note "  $kind: ${OPENED[$kind]}/$n open in ${SECS[$kind]} s, proxy RSS $(calc %.1f "${RSS_AT[$kind]} / 1024") MB${FIRST_ERR[$kind]:+; first error: ${FIRST_ERR[$kind]}}"
    touch "$C_EST/$kind.go"
    prev_rss=${RSS_AT[$kind]} prev_cpu=$c
done
RSS_ALL=$prev_rss
# What the sessions cost on the client side (one Python process) and the stub.
CLIENT_RSS=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/${IT_PIDS[est]:-0}/status" 2>/dev/null)
STUB_RSS=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/${IT_PIDS[stub]:-0}/status" 2>/dev/null)
note "  holding $N sessions for $HOLD s"
HOLD_RSS=()
for ((i = 1; i <= HOLD; i++)); do
    sleep 1
    HOLD_RSS+=("$(sample hold "$C_EST")")
done
HOLD_FDS=$(fd_count)
touch "$C_EST/release"
wait_file "$C_EST/final" 60 est || note "the client wrote no final report (see $LOGS/est.log)"
cp "$C_EST/final" "$OUT/client-established.final" 2>/dev/null
wait_exit est 60
wait_drained "$FDS0" 60
sleep 1
RSS_CLOSED=$(sample closed "")
# A second round on the same proxy: is the memory of closed sessions reused?
RSS_AGAIN="" RSS_AGAIN_CLOSED="" AGAIN_OPEN=0
if [ "$CYCLE" = 1 ]; then
    note "  reopening $N stub-authenticated sessions on proxy #1 (is freed memory reused?)"
    C_AG=$TMP/ctl-again
    client again "$C_AG" "stub:$N" --max-wait 120
    if wait_file "$C_AG/stub.done" "$(stage_timeout "$N")" again; then
        sleep 1
        RSS_AGAIN=$(sample again "$C_AG")
        AGAIN_OPEN=$(kv "$C_AG/stub.done" opened 0)
    else
        note "the client did not reopen its sessions (see $LOGS/again.log)"
    fi
    touch "$C_AG/stub.go" "$C_AG/release"
    wait_exit again 60
    wait_drained "$FDS0" 60
    sleep 1
    RSS_AGAIN_CLOSED=$(sample again-closed "")
fi
it_stop proxy1

# ---------------------------------------------------------------- run 2: front-only sessions
RSS_F0="" RSS_F1="" RSS_F2="" F_OPEN=0 F_EARLY=""
if [ "$FRONT" -gt 0 ]; then
    start_proxy proxy2
    FDS0=$(fd_count)
    RSS_F0=$(sample front-start "")
    C_FR=$TMP/ctl-front
    note "run 2: $FRONT front-only sessions (TLS up, no StartupMessage) through proxy #2 (pid $PID)"
    client front "$C_FR" "front:$FRONT" --max-wait 120
    c0=$(cpu_ticks)
    if wait_file "$C_FR/front.done" "$(stage_timeout "$FRONT")" front; then
        # Sampled at once: the proxy ends each of these 15 s after its accept.
        RSS_F1=$(sample after-front "$C_FR")
        c1=$(cpu_ticks)
        F_OPEN=$(kv "$C_FR/front.done" opened)
        F_SECS=$(kv "$C_FR/front.done" seconds)
        F_EARLY=$(kv "$C_FR/status" front_closed)
        [ "${F_OPEN:-0}" -gt 0 ] && CPU_US[front]=$(calc %.0f "($c1 - $c0) * 1e6 / $HZ / $F_OPEN")
        FIRST_ERR[front]=$(kv "$C_FR/front.done" first_error)
        note "  front: $F_OPEN/$FRONT open in $F_SECS s, proxy RSS $(calc %.1f "$RSS_F1 / 1024") MB; waiting for the proxy's start-up timeout"
        touch "$C_FR/front.go"
        for ((i = 0; i < 30; i++)); do
            sleep 1
            sample front-wait "$C_FR" >/dev/null
            [ "$(kv "$C_FR/status" front_open)" = "" ] && break
        done
    else
        note "the client did not open its front-only sessions (see $LOGS/front.log)"
    fi
    touch "$C_FR/release"
    wait_file "$C_FR/final" 30 front || true
    cp "$C_FR/final" "$OUT/client-front.final" 2>/dev/null
    wait_exit front 30
    wait_drained "$FDS0" 30
    sleep 1
    RSS_F2=$(sample front-closed "")
    it_stop proxy2
fi

# ---------------------------------------------------------------- report
mb() { if [ -n "$1" ]; then calc %.1f "$1 / 1024"; else printf -- '-'; fi; }
per() { # RSS_AFTER RSS_BEFORE COUNT -> KB per session
    if [ -n "$1" ] && [ -n "$2" ] && [ "${3:-0}" -gt 0 ]; then calc %.1f "($1 - $2) / $3"; else printf -- '-'; fi
}
report() {
    local hmin hmax fin="$OUT/client-established.final" ffin="$OUT/client-front.final"
    hmin=$(printf '%s\n' "${HOLD_RSS[@]}" | sort -n | head -n 1)
    hmax=$(printf '%s\n' "${HOLD_RSS[@]}" | sort -n | tail -n 1)
    local all_open=$((${OPENED[stub]:-0} + ${OPENED[full]:-0}))
    echo "## pg-tls-proxy: memory per session ($STAMP)"
    echo
    [ -z "$CAPPED" ] || { echo "**$CAPPED.**"; echo; }
    echo "$N concurrent sessions (${OPENED[stub]:-0} stub-authenticated + ${OPENED[full]:-0} SCRAM with a PostgreSQL backend), held $HOLD s; $FRONT front-only sessions on a second, fresh proxy. $(nproc) CPUs, $(openssl version | awk '{ print $1, $2 }'), ECDSA P-256."
    echo
    echo "| step | sessions open | proxy RSS MB | KB per session | proxy CPU µs per session set-up | client median set-up ms ($CONC in flight) |"
    echo "|---|---|---|---|---|---|"
    echo "| proxy #1 started | 0 | $(mb "$RSS_START") | | | |"
    local base=$RSS_START
    if [ -n "${RSS_AT[stub]:-}" ]; then
        echo "| + stub-authenticated sessions (both TLS legs, idle) | ${OPENED[stub]} | $(mb "${RSS_AT[stub]}") | $(per "${RSS_AT[stub]}" "$base" "${OPENED[stub]}") | ${CPU_US[stub]:--} | ${SETUP[stub]:--} |"
        base=${RSS_AT[stub]}
    fi
    if [ -n "${RSS_AT[full]:-}" ]; then
        echo "| + SCRAM sessions with a PostgreSQL backend (both TLS legs, idle) | ${OPENED[full]} | $(mb "${RSS_AT[full]}") | $(per "${RSS_AT[full]}" "$base" "${OPENED[full]}") | ${CPU_US[full]:--} | ${SETUP[full]:--} |"
    fi
    echo "| all established sessions | $all_open | $(mb "$RSS_ALL") | $(per "$RSS_ALL" "$RSS_START" "$all_open") | | |"
    echo "| holding them $HOLD s (min - max) | $(kv "$fin" stub_open 0)+$(kv "$fin" full_open 0) still open | $(mb "$hmin") - $(mb "$hmax") | drift $(per "$hmax" "$hmin" "$all_open") | | |"
    echo "| all closed | 0 | $(mb "$RSS_CLOSED") | | | |"
    if [ -n "$RSS_AGAIN" ]; then
        echo "| reopened: stub-authenticated sessions on the same proxy | $AGAIN_OPEN | $(mb "$RSS_AGAIN") | $(per "$RSS_AGAIN" "$RSS_CLOSED" "$AGAIN_OPEN") more than when closed | | |"
        echo "| closed again | 0 | $(mb "$RSS_AGAIN_CLOSED") | | | |"
    fi
    if [ -n "$RSS_F0" ]; then
        echo "| proxy #2 started | 0 | $(mb "$RSS_F0") | | | |"
        echo "| + front-only sessions (TLS up, no StartupMessage; back leg up too) | ${F_OPEN:-0} | $(mb "$RSS_F1") | $(per "$RSS_F1" "$RSS_F0" "${F_OPEN:-0}") | ${CPU_US[front]:--} | |"
        echo "| after the proxy's start-up timeout closed them | $(kv "$ffin" front_open 0) | $(mb "$RSS_F2") | | | |"
    fi
    echo
    echo "- After holding: $(kv "$fin" stub_answered_ping 0)/${OPENED[stub]:-0} stub and $(kv "$fin" full_answered_ping 0)/${OPENED[full]:-0} PostgreSQL sessions answered a query (ReadyForQuery); proxy fds while holding: $HOLD_FDS."
    [ -z "$(kv "$fin" stub_closed_by_peer)$(kv "$fin" full_closed_by_peer)" ] ||
        echo "- Closed by the proxy while held: stub $(kv "$fin" stub_closed_by_peer), full $(kv "$fin" full_closed_by_peer) ($(kv "$fin" stub_close_message)$(kv "$fin" full_close_message))."
    local k
    for k in stub full front; do
        [ "${FAILED[$k]:-0}" -gt 0 ] 2>/dev/null && echo "- $k: ${FAILED[$k]} sessions failed to open; first error: ${FIRST_ERR[$k]}"
    done
    if [ -n "$RSS_F0" ]; then
        echo "- Front-only sessions: opened in ${F_SECS:-?} s; closed by the proxy after $(kv "$ffin" front_closed_after_s) s (min/median/max from TLS up) with \"$(kv "$ffin" front_close_message)\"${F_EARLY:+; $F_EARLY already closed when RSS was sampled}."
    fi
    echo "- Load generators while holding: client (one Python process) $(mb "$CLIENT_RSS") MB RSS, $(per "$CLIENT_RSS" 0 "$all_open") KB per session; stub upstream $(mb "$STUB_RSS") MB."
    echo "- RSS every second while holding (MB): $(for r in "${HOLD_RSS[@]}"; do printf '%s ' "$(mb "$r")"; done)"
    echo "- KB per session = RSS growth / sessions opened (VmRSS, includes allocator slack). Raw samples: $TSV; took $((SECONDS - T_START)) s."
}
report | tee "$OUT/summary.md"
# One line for scripts/bench.sh's goals table: KB per session once all are
# open, and at the end of the hold (idle for HOLD seconds).
ALL_OPEN=$((${OPENED[stub]:-0} + ${OPENED[full]:-0}))
printf 'sessions=%s kb_per_session=%s kb_per_idle_session=%s\n' "$ALL_OPEN" \
    "$(per "$RSS_ALL" "$RSS_START" "$ALL_OPEN")" \
    "$(per "${HOLD_RSS[-1]:-}" "$RSS_START" "$ALL_OPEN")" >"$OUT/result.txt"
