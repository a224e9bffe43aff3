#!/usr/bin/env bash
# pg-tls-proxy's own benchmark: the proxy side by side with direct TLS and,
# when installed, PgBouncer without pooling and stunnel, in one run, and
# against the floors of this machine (scripts/bench-floors.sh: a bare relay
# hop, OpenSSL's own cost per session) with the goals of issue 17 as ratios.
#
#   scripts/bench.sh [PATH/TO/pg-tls-proxy]         (make bench does this)
#   QUICK=1 scripts/bench.sh ...                     smoke run, under 2 minutes
#
# Starts a throw-away PostgreSQL 15 (TLS with a private CA, SCRAM, 127.0.0.1
# only, as the postgres user when run as root), loads pgbench -i -s $SCALE,
# then for each repetition and each target, in rotating order:
#   a. select-only         pgbench -S -c $CLIENTS -j $THREADS -T $DURATION
#   b. connect per txn     the same with -C
#   c. bulk                \copy (select repeat('x',1000) from
#                          generate_series(1,$BULK_ROWS)) to '/dev/null'
#   d. serial connect      pgbench -C -c 1 -t $SERIAL_CONNS, script "select 1"
# and samples the proxy's CPU (utime+stime of all its threads, from
# /proc/PID/stat, around each workload) and RSS (/proc/PID/status: VmRSS in
# the middle of (a), VmHWM at the end of the repetition). Then, in the same
# repetition, the login workload against each login target below:
#   e. serial logins       one client, for $LOGIN_DURATION seconds
#   f. concurrent logins   the same with $LOGIN_CLIENTS clients
# each login a connect + SELECT 1 + disconnect (tests/bench/loginloop.c:
# libpq threads; or pgbench -C), giving logins per second and the proxy's
# CPU per login. Then the routes workload (issue 14): (a) and (b) through the
# proxy with each route table of ROUTE_COUNTS (below), giving TPS and the
# proxy's CPU per select and per connection side by side, with the ratio to
# the smallest table. Each proxy is started fresh for every repetition.
# Prints Markdown tables of medians with ratios against direct TLS, and the CPU cost
# of one SCRAM SaltedPassword (PBKDF2-HMAC-SHA256, 4096 iterations:
# tests/bench/pbkdf2_cost.c) and of framing the server's stream
# (tests/bench/framing_cost.c); raw values go to build/bench/<timestamp>/.
#
# Targets
#   direct-tls        libpq -> PostgreSQL, verify-full against the db CA
#   pg-tls-proxy      the binary given, verify-full on both legs;
#                     clients use channel_binding=disable (a TLS-terminating
#                     proxy cannot pass SCRAM channel binding)
#   pgbouncer-nopool  PgBouncer, session mode, server_lifetime=0 (every server
#                     connection used once: 1:1 like pg-tls-proxy), TLS both
#                     sides, verify-full upstream (as the shared harness's
#                     targets/pgbouncer-nopool.sh)
#   stunnel           stunnel4, two chained services (protocol = pgsql server
#                     -> loopback hop -> protocol = pgsql client, checkHost)
#   haproxy-tcp       the relay floor: HAProxy in TCP mode, TLS end to end from
#                     the client to PostgreSQL (scripts/bench-floors.sh)
# PgBouncer, stunnel and HAProxy are optional: skipped (and said so) when
# missing; scripts/install-deps.sh does not install them (CI never benchmarks:
# apt-get install pgbouncer stunnel4 haproxy).
#
# Login targets (clients keep libpq's default channel_binding=prefer unless
# said otherwise; the proxy and PgBouncer run as above)
#   direct-tls        as above: SCRAM-SHA-256-PLUS with PostgreSQL
#   pgtp-passthrough  pg-tls-proxy as today (login relayed untouched), so the
#                     clients need channel_binding=disable
#   pgtp-password     pg-tls-proxy --auth-mode password: it asks the client
#                     for its password and logs in upstream itself (PBKDF2 at
#                     the proxy, SCRAM-SHA-256-PLUS to PostgreSQL)
#   pgtp-password-cold  the same, but every login is a role the proxy has not
#                     seen (one of COLD_ROLES roles sharing the bench role's
#                     verifier), so its cache of derived keys never helps and
#                     each login pays PBKDF2; driven by tests/bench/loginloop.c
#                     (libpq, one role per login)
#   pgtp-scram        pg-tls-proxy --auth-mode scram with an auth file made
#                     from pg_authid's rolpassword: SCRAM-SHA-256-PLUS client
#                     -> proxy (stored verifier) and proxy -> PostgreSQL
#   pgbouncer-nopool  PgBouncer as above (auth_type=scram-sha-256, userlist
#                     with the SCRAM verifier): one upstream login per client
#   pgbouncer-pool    the same with server_lifetime=3600: upstream sessions
#                     are reused, the client's login is all PgBouncer does
# Route tables (the routes workload; all to the one PostgreSQL):
#   routes-default    the flags of pg-tls-proxy above: the default route only
#   routes-N          a --config file with N [route rI] sections and no default
#                     route; each route has its own server name rI.routes.localhost,
#                     its own database list (bench_rI), its own front certificate
#                     (the same file: a wildcard *.routes.localhost from the
#                     public CA, so one SSL_CTX per route and a context switch
#                     in every handshake) and its own upstream contexts. The
#                     client names the LAST route by SNI and its database
#                     ("bench", which only that route lists): every lookup
#                     scans the whole table, the worst case.
# The three --auth-mode rows print "n/a (binary has no --auth-mode)" when the
# binary's --help does not mention --auth-mode, and the server's words when
# their first login fails: the run goes on either way.
#
# Tunables (environment; QUICK=1 changes the defaults in brackets):
#   REPS          repetitions, median reported                  3 [1]
#   DURATION      pgbench -T seconds for (a) and (b)           15 [5]
#   CLIENTS       pgbench -c                                    8
#   THREADS       pgbench -j                                    2
#   SCALE         pgbench -i -s                                10
#   BULK_ROWS     rows of 1001 bytes for (c)              1000000 [200000]
#   SERIAL_CONNS  sequential connections for (d)              200 [50]
#   WARMUP        seconds of unrecorded direct pgbench first   10 [3]
#   TARGETS       subset/order of the targets above        all five
#                 ("none": the login workload only)
#   LOGIN_TARGETS subset/order of the login targets        all seven
#                 ("none": no login workload)
#   LOGIN_DURATION  seconds of (e) and of (f)                  10 [4]
#   LOGIN_CLIENTS   clients of (f)                               4
#   COLD_ROLES    roles for pgtp-password-cold   500 x LOGIN_DURATION
#   ROUTE_COUNTS  route tables of the routes workload, compared with the
#                 first number ("default": routes-default)   "default 1 40"
#                 ("none": no routes workload; needs a binary with --config)
#   LOGIN_DRIVER  loginloop (tests/bench/loginloop.c) or pgbench (-C; no
#                 pgtp-password-cold row)                     loginloop
#   TLSFLOOR_PAIRS  sessions of each tests/bench/tlsfloor.c run  1000
#   IDLE_SESSIONS idle sessions held by scripts/bench-conns.sh
#                 for the memory goal, e.g. "1000 10000"   1000
#                 ("none": skip it)
#   IDLE_HOLD     seconds bench-conns.sh holds them            5
#   PROXY_ARGS    extra pg-tls-proxy flags, e.g. "--workers 1"
#   BENCH_OUT     results directory          build/bench/<timestamp>
# It is a benchmark, not a test: no number makes it fail. It exits non-zero
# only when something cannot start (PostgreSQL, the proxy, the first
# connection through direct TLS or the proxy). Loopback only; every process
# it starts is stopped by PID and the temporary directory removed on exit.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
T_START=$SECONDS

note() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- tools
need_tools() {
    command -v pgbench >/dev/null && command -v psql >/dev/null &&
        compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
if ! need_tools; then
    note "PostgreSQL server or pgbench missing: running scripts/install-deps.sh"
    "$REPO/scripts/install-deps.sh" || { note "install-deps failed"; exit 1; }
    need_tools || { note "PostgreSQL/pgbench still missing"; exit 1; }
fi
for tool in ss openssl timeout awk; do
    command -v "$tool" >/dev/null || { note "$tool not found (scripts/install-deps.sh)"; exit 1; }
done

# shellcheck source=tests/integration/lib.sh
. "$REPO/tests/integration/lib.sh"

BIN=${1:-$REPO/build/pg-tls-proxy}
[ -x "$BIN" ] || it_die "proxy binary '$BIN' not found: run make first"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
PGTP_BIN=$BIN # what it_proxy_start runs

# Nothing from the caller's environment may steer libpq or the proxy.
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGSERVICE PGSERVICEFILE \
    PGOPTIONS PGSSLMODE PGREQUIRESSL PGSSLROOTCERT PGSSLCERT PGSSLKEY PGSSLCRL \
    PGCHANNELBINDING PGGSSENCMODE PGCONNECT_TIMEOUT PGTARGETSESSIONATTRS PGAPPNAME
while read -r var; do unset "$var"; done < <(compgen -e | grep '^PG_TLS_PROXY_' || true)

if [ "${QUICK:-0}" = 1 ]; then
    : "${REPS:=1}" "${DURATION:=5}" "${BULK_ROWS:=200000}" "${SERIAL_CONNS:=50}" "${WARMUP:=3}"
    : "${LOGIN_DURATION:=4}"
fi
: "${REPS:=3}" "${DURATION:=15}" "${CLIENTS:=8}" "${THREADS:=2}" "${SCALE:=10}"
: "${BULK_ROWS:=1000000}" "${SERIAL_CONNS:=200}" "${WARMUP:=10}"
: "${TARGETS:=direct-tls pg-tls-proxy haproxy-tcp pgbouncer-nopool stunnel}"
: "${LOGIN_TARGETS:=direct-tls pgtp-passthrough pgtp-password pgtp-password-cold pgtp-scram pgbouncer-nopool pgbouncer-pool}"
: "${LOGIN_DURATION:=10}" "${LOGIN_CLIENTS:=4}"
: "${COLD_ROLES:=$((500 * LOGIN_DURATION))}" "${LOGIN_DRIVER:=loginloop}"
: "${ROUTE_COUNTS:=default 1 40}"
case $LOGIN_DRIVER in loginloop | pgbench) ;; *) it_die "LOGIN_DRIVER must be loginloop or pgbench (got '$LOGIN_DRIVER')" ;; esac
[ "$TARGETS" = none ] && TARGETS=""
[ "$LOGIN_TARGETS" = none ] && LOGIN_TARGETS=""
[ "$ROUTE_COUNTS" = none ] && ROUTE_COUNTS=""
for v in $ROUTE_COUNTS; do
    [[ $v =~ ^([1-9][0-9]?|default)$ ]] || it_die "ROUTE_COUNTS: each must be default or 1..99 (got '$v')"
done
for v in REPS DURATION CLIENTS THREADS SCALE BULK_ROWS SERIAL_CONNS WARMUP LOGIN_DURATION LOGIN_CLIENTS COLD_ROLES; do
    [[ ${!v} =~ ^[0-9]+$ ]] || it_die "$v must be a whole number (got '${!v}')"
done
if [ "$REPS" -lt 1 ] || [ "$DURATION" -lt 1 ] || [ "$LOGIN_DURATION" -lt 1 ] || [ "$LOGIN_CLIENTS" -lt 1 ] ||
    [ "$COLD_ROLES" -lt 1 ]; then
    it_die "REPS, DURATION, LOGIN_DURATION, LOGIN_CLIENTS and COLD_ROLES must be at least 1"
fi
HZ=$(getconf CLK_TCK)
# shellcheck source=scripts/bench-floors.sh
. "$REPO/scripts/bench-floors.sh"

STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${BENCH_OUT:-$REPO/build/bench/$STAMP}
LOGS=$OUT/logs
mkdir -p "$LOGS" || it_die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd) LOGS=$OUT/logs
RAW=$OUT/raw.tsv
printf 'target\trep\tmetric\tvalue\n' >"$RAW"

TMP=$(mktemp -d /tmp/pgtp-bench.XXXXXX) || it_die "mktemp failed"
chmod 755 "$TMP" # the postgres user must reach its data directory inside
CERTS=$TMP/certs
PGDATA_DIR=$TMP/pgdata
ROLE=bench DB=bench
CUR_NAME="" # the proxy currently running (an IT_PIDS name)
RSS_SAMPLER="" # background VmRSS sampler during (a)

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$RSS_SAMPLER" ]; then # the subshell and its sleep, by PID
        pkill -P "$RSS_SAMPLER" 2>/dev/null
        kill "$RSS_SAMPLER" 2>/dev/null
    fi
    it_stop_all
    it_pg_stop "$PGDATA_DIR"
    cp "$PGDATA_DIR/server.log" "$LOGS/postgresql.log" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'note interrupted; exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAW"; }

# "utime stime" of every thread of PID, in clock ticks (empty if gone).
proc_times() {
    local stat rest
    local -a f
    # No PID (direct-tls): nothing, not /proc//stat, which is /proc/stat.
    [ -n "$1" ] || return 0
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    rest=${stat##*) } # after "pid (comm) "; the command may contain spaces
    read -r -a f <<<"$rest"
    echo "${f[11]} ${f[12]}"
}
# utime+stime, and stime alone (kernel time: system calls, the loopback TCP stack).
cpu_ticks() {
    local u s
    read -r u s < <(proc_times "$1") && echo $((u + s))
}
sys_ticks() {
    local u s
    read -r u s < <(proc_times "$1") && echo "$s"
}
# "busy idle" clock ticks of the whole machine (/proc/stat: every CPU; busy
# is user, nice, system, irq, softirq and steal; idle counts iowait).
machine_ticks() {
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6; exit }' /proc/stat
}
# sys_share METRIC C0 C1 K0 K1: record the kernel's share of the proxy's CPU in %.
sys_share() {
    [ -n "$2" ] && [ -n "$3" ] && [ -n "$4" ] && [ -n "$5" ] && [ "$3" -gt "$2" ] || return 0
    record "$t" "$rep" "$1" "$(calc %.0f "100 * ($5 - $4) / ($3 - $2)")"
}
status_kb() { # PID FIELD (VmRSS, VmHWM)
    awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null
}
# First number on the first pgbench output line starting with $2.
pgb_field() {
    grep -m1 -E "^$2" "$1" 2>/dev/null | grep -oE '[0-9]+(\.[0-9]+)?' | head -n 1
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# kv LINE KEY: the value of KEY=value in a line of key=value pairs.
kv() { grep -oE "(^| )$2=[^ ]*" <<<"$1" | head -n 1 | cut -d= -f2; }

SVC_PREFIX=()
if it_is_root; then
    # PgBouncer refuses to run as root. setpriv execs, so $! is PgBouncer itself.
    SVC_PREFIX=(setpriv "--reuid=$IT_SVC_USER" "--regid=$IT_SVC_USER" --init-groups)
fi

# ---------------------------------------------------------------- targets
declare -A PORT=() CONNINFO=()
have_target() {
    case $1 in
    direct-tls | pg-tls-proxy | pgtp-passthrough) return 0 ;;
    pgtp-password | pgtp-password-cold | pgtp-scram) [ "$HAVE_AUTH_MODE" = 1 ] ;;
    pgbouncer-nopool | pgbouncer-pool) command -v pgbouncer >/dev/null ;;
    stunnel) command -v stunnel >/dev/null ;;
    haproxy-tcp) command -v haproxy >/dev/null ;;
    *) return 1 ;;
    esac
}
describe_target() {
    case $1 in
    direct-tls) echo "libpq -> PostgreSQL, TLS verify-full against the db CA" ;;
    pg-tls-proxy | pgtp-passthrough) echo "$("$BIN" --version 2>&1 | head -n 1) ($BIN) ${PROXY_ARGS:-}" ;;
    pgtp-password) echo "$("$BIN" --version 2>&1 | head -n 1) --auth-mode password ${PROXY_ARGS:-}" ;;
    pgtp-password-cold) echo "$("$BIN" --version 2>&1 | head -n 1) --auth-mode password ${PROXY_ARGS:-}, a new role per login (loginloop)" ;;
    pgtp-scram) echo "$("$BIN" --version 2>&1 | head -n 1) --auth-mode scram --auth-file (pg_authid's verifier) ${PROXY_ARGS:-}" ;;
    pgbouncer-nopool) echo "$(pgbouncer --version 2>/dev/null | head -n 1), session mode, server_lifetime=0" ;;
    pgbouncer-pool) echo "$(pgbouncer --version 2>/dev/null | head -n 1), session mode, server_lifetime=3600 (pooled)" ;;
    stunnel) echo "$(stunnel -version 2>&1 | awk '/^stunnel/ { print $1, $2; exit }'), two chained pgsql services" ;;
    haproxy-tcp) echo "$(haproxy -v 2>&1 | awk 'NR == 1 { print $1, $3 }') mode tcp, TLS end to end (relay floor)" ;;
    esac
}

read -r -a EXTRA_ARGS <<<"${PROXY_ARGS:-}"
# Does the binary have issue 13's authentication modes? (Older ones refuse
# the option, so the rows that need it say n/a rather than fail.)
# (Read the whole help first: "grep -q" would stop reading at the first match,
# and under pipefail the proxy's SIGPIPE would count as "no".)
HAVE_AUTH_MODE=0 HAVE_CONFIG=0
[[ $("$BIN" --help 2>&1) == *--auth-mode* ]] && HAVE_AUTH_MODE=1
[[ $("$BIN" --help 2>&1) == *--config* ]] && HAVE_CONFIG=1
start_pgtp() { # LOG [MORE FLAGS...]
    local log=$1
    shift
    it_proxy_start pgtp "$log" "${PORT[pg-tls-proxy]}" \
        --server-host 127.0.0.1 --server-port "${PORT[pg-tls-proxy]}" \
        --server-certificate-path "$CERTS/proxy.crt" --server-private-key-path "$CERTS/proxy.key" \
        --client-connection-host-or-ip 127.0.0.1 --client-connection-port "$PG_PORT" \
        --client-tls-validation-host localhost --client-ca-roots-path "$CERTS/db-ca.crt" \
        "$@" "${EXTRA_ARGS[@]}"
}

# start_pgbouncer LOG SERVER_LIFETIME: 0 = every server connection used once
# (no pooling, 1:1 like pg-tls-proxy); 3600 = pooled (session mode).
start_pgbouncer() {
    local d=$TMP/pgbouncer pool=$((CLIENTS + 20))
    mkdir -p "$d"
    (umask 077 && printf '"%s" "%s"\n' "$ROLE" "$SCRAM_SECRET" >"$d/userlist.txt")
    cat >"$d/pgbouncer.ini" <<EOF
[databases]
$DB = host=localhost port=$PG_PORT dbname=$DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${PORT[pgbouncer-nopool]}
unix_socket_dir =
pidfile =
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
stats_period = 3600
auth_type = scram-sha-256
auth_file = $d/userlist.txt
pool_mode = session
max_client_conn = $((pool + 100))
default_pool_size = $pool
max_db_connections = 0
server_lifetime = $2
server_reset_query = DISCARD ALL
client_tls_sslmode = require
client_tls_cert_file = $CERTS/proxy.crt
client_tls_key_file = $CERTS/proxy.key
server_tls_sslmode = verify-full
server_tls_ca_file = $CERTS/db-ca.crt
EOF
    it_is_root && chown -R "$IT_SVC_USER": "$d"
    it_spawn pgbouncer "$1" "${SVC_PREFIX[@]}" pgbouncer "$d/pgbouncer.ini"
    it_wait_port "${PORT[pgbouncer-nopool]}" 15 "${IT_PIDS[pgbouncer]}"
}

start_stunnel() { # LOG
    local d=$TMP/stunnel
    mkdir -p "$d"
    cat >"$d/stunnel.conf" <<EOF
foreground = yes
pid =
syslog = no
debug = 4

[pg-in]
accept = 127.0.0.1:${PORT[stunnel]}
connect = 127.0.0.1:$STUNNEL_HOP
protocol = pgsql
cert = $CERTS/proxy.crt
key = $CERTS/proxy.key

[pg-out]
client = yes
accept = 127.0.0.1:$STUNNEL_HOP
connect = 127.0.0.1:$PG_PORT
protocol = pgsql
sni = localhost
CAfile = $CERTS/db-ca.crt
verifyChain = yes
checkHost = localhost
EOF
    it_spawn stunnel "$1" stunnel "$d/stunnel.conf"
    it_wait_port "${PORT[stunnel]}" 15 "${IT_PIDS[stunnel]}" &&
        it_wait_port "$STUNNEL_HOP" 15 "${IT_PIDS[stunnel]}"
}

# start_target NAME LOG: sets CUR_NAME and CUR_PID (empty for direct-tls).
start_target() {
    CUR_NAME="" CUR_PID=""
    case $1 in
    direct-tls) return 0 ;;
    pg-tls-proxy | pgtp-passthrough) CUR_NAME=pgtp && start_pgtp "$2" ;;
    pgtp-password | pgtp-password-cold) CUR_NAME=pgtp && start_pgtp "$2" --auth-mode password ;;
    routes-default) CUR_NAME=pgtp && start_pgtp "$2" ;;
    routes-*) CUR_NAME=pgtp && it_proxy_start pgtp "$2" "${PORT[pg-tls-proxy]}" \
        --config "$TMP/routes-${1#routes-}.conf" "${EXTRA_ARGS[@]}" ;;
    pgtp-scram) CUR_NAME=pgtp && start_pgtp "$2" --auth-mode scram --auth-file "$AUTH_FILE" ;;
    pgbouncer-nopool) CUR_NAME=pgbouncer && start_pgbouncer "$2" 0 ;;
    pgbouncer-pool) CUR_NAME=pgbouncer && start_pgbouncer "$2" 3600 ;;
    stunnel) CUR_NAME=stunnel && start_stunnel "$2" ;;
    haproxy-tcp) CUR_NAME=haproxy && start_haproxy "$2" ;;
    esac || {
        note "$1 did not start; last lines of $2:"
        tail -n 5 "$2" >&2
        stop_target
        return 1
    }
    CUR_PID=${IT_PIDS[$CUR_NAME]}
}
stop_target() {
    [ -n "$CUR_NAME" ] && it_stop "$CUR_NAME"
    CUR_NAME="" CUR_PID=""
}

# ---------------------------------------------------------------- set-up
note "results -> $OUT"
it_gen_certs "$CERTS"
# PgBouncer, running as the service user, reads the front key.
it_is_root && chown -R "$IT_SVC_USER": "$CERTS"
it_free_port PG_PORT
for t in pg-tls-proxy pgbouncer-nopool stunnel haproxy-tcp; do it_free_port "PORT[$t]"; done
it_free_port STUNNEL_HOP
PASSWORD=$(it_random_password)
it_write_passfile "$TMP/pgpass" "$ROLE" "$PASSWORD"
export PGPASSFILE=$TMP/pgpass
note "PostgreSQL on 127.0.0.1:$PG_PORT"
it_pg_start "$PGDATA_DIR" "$PG_PORT" "$CERTS" "$ROLE" "$DB" "$PASSWORD"
SCRAM_SECRET=$(it_as_svc timeout 30 "$IT_PG_BINDIR/psql" -X -At -h "$PGDATA_DIR" -p "$PG_PORT" \
    -U postgres -d postgres -c "select rolpassword from pg_authid where rolname = '$ROLE'")
[ -n "$SCRAM_SECRET" ] || it_die "cannot read the SCRAM secret of $ROLE"

COMMON="user=$ROLE dbname=$DB connect_timeout=10 gssencmode=disable"
CONNINFO[direct-tls]="host=localhost hostaddr=127.0.0.1 port=$PG_PORT sslmode=verify-full sslrootcert=$CERTS/db-ca.crt $COMMON"
for t in pg-tls-proxy pgbouncer-nopool stunnel; do
    CONNINFO[$t]="host=localhost hostaddr=127.0.0.1 port=${PORT[$t]} sslmode=verify-full sslrootcert=$CERTS/public-ca.crt channel_binding=disable $COMMON"
done
# The relay passes TLS through: the client verifies PostgreSQL itself.
CONNINFO[haproxy-tcp]="host=localhost hostaddr=127.0.0.1 port=${PORT[haproxy-tcp]} sslmode=verify-full sslrootcert=$CERTS/db-ca.crt $COMMON"
# The login workload's clients keep libpq's defaults (channel_binding=prefer:
# SCRAM-SHA-256-PLUS whenever the server side offers it), as issue 13's
# "change nothing else" user would; only passthrough needs the opt-out.
PORT[pgtp-passthrough]=${PORT[pg-tls-proxy]} PORT[pgtp-password]=${PORT[pg-tls-proxy]}
PORT[pgtp-scram]=${PORT[pg-tls-proxy]} PORT[pgbouncer-pool]=${PORT[pgbouncer-nopool]}
PORT[pgtp-password-cold]=${PORT[pg-tls-proxy]}
# LBASE has no user (loginloop adds one per login); LCONNINFO is for libpq
# tools that log in as the bench role.
declare -A LBASE=() LCONNINFO=()
LBASE[direct-tls]="host=localhost hostaddr=127.0.0.1 port=$PG_PORT sslmode=verify-full sslrootcert=$CERTS/db-ca.crt"
for t in pgtp-passthrough pgtp-password pgtp-password-cold pgtp-scram pgbouncer-nopool pgbouncer-pool; do
    LBASE[$t]="host=localhost hostaddr=127.0.0.1 port=${PORT[$t]} sslmode=verify-full sslrootcert=$CERTS/public-ca.crt"
done
LBASE[pgtp-passthrough]+=" channel_binding=disable"
for t in "${!LBASE[@]}"; do
    LBASE[$t]+=" dbname=$DB connect_timeout=10 gssencmode=disable"
    LCONNINFO[$t]="${LBASE[$t]} user=$ROLE"
done
COLD_PREFIX=bench_cold_
# --auth-mode scram's auth file: PgBouncer's userlist format with the
# verifier PostgreSQL itself holds, so the recovered ClientKey logs in upstream.
AUTH_FILE=$TMP/pgtp-auth.txt
(umask 077 && printf '"%s" "%s"\n' "$ROLE" "$SCRAM_SECRET" >"$AUTH_FILE")
# The login driver (tests/bench/loginloop.c: libpq threads, one login after
# another) unless LOGIN_DRIVER=pgbench or it does not build.
LOGINLOOP=""
if [ -n "$LOGIN_TARGETS" ] && [ "$LOGIN_DRIVER" = loginloop ]; then
    read -r -a PQ_FLAGS <<<"$(pkg-config --cflags --libs libpq 2>/dev/null || echo -I/usr/include/postgresql -lpq)"
    if "${CC:-cc}" -std=c17 -O2 -o "$TMP/loginloop" "$REPO/tests/bench/loginloop.c" "${PQ_FLAGS[@]}" -pthread \
        >"$LOGS/loginloop-build.log" 2>&1; then
        LOGINLOOP=$TMP/loginloop
    else
        note "tests/bench/loginloop.c did not build (see $LOGS/loginloop-build.log): logins driven by pgbench -C"
        LOGIN_DRIVER=pgbench
    fi
fi
# pgtp-password-cold: COLD_ROLES roles holding the bench role's verifier (so
# its password, which the passfile's wildcard line gives libpq).
if [ "$HAVE_AUTH_MODE" = 1 ] && [ -n "$LOGINLOOP" ] && [[ " $LOGIN_TARGETS " == *" pgtp-password-cold "* ]]; then
    note "creating $COLD_ROLES roles for pgtp-password-cold"
    # The verifier goes through stdin, never argv; it holds no quote.
    it_as_svc timeout 300 "$IT_PG_BINDIR/psql" -X -q -h "$PGDATA_DIR" -p "$PG_PORT" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 >"$LOGS/cold-roles.log" 2>&1 <<EOF || it_die "could not create the cold roles (see $LOGS/cold-roles.log)"
\\set secret '$SCRAM_SECRET'
SELECT set_config('bench.secret', :'secret', false) \\g /dev/null
DO \$\$
BEGIN
    FOR i IN 0 .. $COLD_ROLES - 1 LOOP
        EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', '$COLD_PREFIX' || i, current_setting('bench.secret'));
    END LOOP;
END
\$\$;
EOF
    printf '*:*:*:*:%s\n' "$PASSWORD" >>"$TMP/pgpass"
fi

note "pgbench -i -s $SCALE"
timeout 900 pgbench -i -q -s "$SCALE" "${CONNINFO[direct-tls]}" >"$LOGS/pgbench-init.log" 2>&1 ||
    it_die "pgbench -i failed (see $LOGS/pgbench-init.log)"
printf 'select 1;\n' >"$TMP/select1.sql"

# Which targets can run: each must answer one query (the TLS details of the
# client-facing hop are kept in env.txt).
AVAIL=()
for t in $TARGETS; do
    if ! have_target "$t"; then
        case $t in
        pgbouncer-nopool | stunnel | haproxy-tcp)
            pkg=pgbouncer
            [ "$t" = stunnel ] && pkg=stunnel4
            [ "$t" = haproxy-tcp ] && pkg=haproxy
            note "skip $t: not installed (apt-get install $pkg)"
            record "$t" 0 skipped not-installed
            continue
            ;;
        *) it_die "unknown target '$t' (known: direct-tls pg-tls-proxy haproxy-tcp pgbouncer-nopool stunnel)" ;;
        esac
    fi
    if ! start_target "$t" "$LOGS/$t-probe.log"; then
        [ "$t" = pg-tls-proxy ] && it_die "pg-tls-proxy did not start"
        record "$t" 0 skipped start-failed
        continue
    fi
    out=$(timeout 30 psql -X -At "${CONNINFO[$t]}" \
        -c "select 'ok ' || coalesce((select version || ' ' || cipher from pg_stat_ssl where pid = pg_backend_pid()), '')" 2>&1)
    stop_target
    if [[ $out != ok* ]]; then
        note "$t: first connection failed: $out"
        case $t in direct-tls | pg-tls-proxy) it_die "cannot benchmark without $t" ;; esac
        record "$t" 0 skipped connect-failed
        continue
    fi
    AVAIL+=("$t")
done

# The same for the login targets, whose first login also tells whether the
# client -> proxy hop takes channel_binding=require (SCRAM-SHA-256-PLUS).
# The --auth-mode rows are new: a binary without them, or one whose mode
# fails, gives a row that says so rather than stopping the run.
LAVAIL=()
for t in $LOGIN_TARGETS; do
    case $t in
    direct-tls | pgtp-passthrough | pgtp-password | pgtp-password-cold | pgtp-scram | pgbouncer-nopool | pgbouncer-pool) ;;
    *) it_die "unknown login target '$t' (known: direct-tls pgtp-passthrough pgtp-password pgtp-password-cold pgtp-scram pgbouncer-nopool pgbouncer-pool)" ;;
    esac
    if [ "$t" = pgtp-password-cold ] && [ "$HAVE_AUTH_MODE" = 1 ] && [ -z "$LOGINLOOP" ]; then
        why="needs LOGIN_DRIVER=loginloop (pgbench has one user per run)"
        note "skip login $t: $why"
        record "$t" 0 login_skipped "$why"
        continue
    fi
    if ! have_target "$t"; then
        case $t in
        pgtp-*) why="n/a (binary has no --auth-mode)" ;;
        *) why="not installed (apt-get install pgbouncer)" ;;
        esac
        note "skip login $t: $why"
        record "$t" 0 login_skipped "$why"
        continue
    fi
    if ! start_target "$t" "$LOGS/login-$t-probe.log"; then
        case $t in direct-tls | pgtp-passthrough) it_die "cannot benchmark logins without $t" ;; esac
        record "$t" 0 login_skipped "did not start (logs/login-$t-probe.log)"
        continue
    fi
    out=$(timeout 30 psql -X -At "${LCONNINFO[$t]}" -c "select 'ok'" 2>&1)
    plus=no
    if [ "$t" != pgtp-passthrough ] &&
        [ "$(timeout 30 psql -X -At "${LCONNINFO[$t]} channel_binding=require" -c "select 'ok'" 2>/dev/null)" = ok ]; then
        plus=yes
    fi
    stop_target
    if [ "$out" != ok ]; then
        # The server's words, without psql's "connection to server at ... failed:".
        out=$(printf '%s' "$out" | head -n 1 | sed -E 's/^psql: error: connection to server at [^,]*, port [0-9]+ failed: //')
        note "login $t: first login failed: $out"
        [ ${#out} -le 160 ] || out="${out:0:157}..."
        case $t in direct-tls | pgtp-passthrough) it_die "cannot benchmark logins without $t" ;; esac
        record "$t" 0 login_skipped "first login failed: ${out//|/\\|}"
        continue
    fi
    record "$t" 0 login_plus "$plus"
    LAVAIL+=("$t")
done
# The routes workload: one config file per route count (write_routes_conf),
# the wildcard front certificate they share, and a first connection through
# each that must land on the last route (its event=established line).
write_routes_conf() { # N FILE
    local i db
    {
        printf '; %s routes to one PostgreSQL, no default route (scripts/bench.sh)\n' "$1"
        printf 'server-certificate-path = %s\nserver-private-key-path = %s\n' "$CERTS/proxy.crt" "$CERTS/proxy.key"
        printf 'server-host = 127.0.0.1\nserver-port = %s\n' "${PORT[pg-tls-proxy]}"
        printf 'client-ca-roots-path = %s\nclient-tls-validation-host = localhost\n' "$CERTS/db-ca.crt"
        for ((i = 1; i <= $1; i++)); do
            db=bench_r$i
            [ "$i" = "$1" ] && db=$DB # only the last route lists the bench database
            printf '\n[route r%s]\nsni = r%s.routes.localhost\ndatabases = %s\n' "$i" "$i" "$db"
            printf 'server-certificate-path = %s\nserver-private-key-path = %s\n' "$CERTS/routes.crt" "$CERTS/routes.key"
            printf 'client-connection-host-or-ip = 127.0.0.1\nclient-connection-port = %s\n' "$PG_PORT"
            printf 'client-tls-validation-host = localhost\n'
        done
    } >"$2"
}
make_routes_cert() { # CERTS/routes.{crt,key}: *.routes.localhost from the public CA
    local ext=$TMP/routes.ext
    printf 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = DNS:*.routes.localhost\n' >"$ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CERTS/routes.key" \
        -subj "/O=pg-tls-proxy bench/CN=routes.localhost" -out "$TMP/routes.csr" 2>/dev/null &&
        openssl x509 -req -in "$TMP/routes.csr" -CA "$CERTS/public-ca.crt" -CAkey "$CERTS/public-ca.key" \
            -set_serial "0x$(openssl rand -hex 16)" -days 2 -sha256 -extfile "$ext" \
            -out "$CERTS/routes.crt" 2>/dev/null
}
RAVAIL=()
if [ -n "$ROUTE_COUNTS" ] && [ "$HAVE_CONFIG" = 0 ]; then
    note "skip the routes workload: the binary has no --config"
    record routes 0 skipped "no --config in the binary"
    ROUTE_COUNTS=""
fi
[ -z "$ROUTE_COUNTS" ] || make_routes_cert || it_die "could not make the *.routes.localhost certificate"
for n in $ROUTE_COUNTS; do
    t=routes-$n
    if [ "$n" = default ]; then
        CONNINFO[$t]=${CONNINFO[pg-tls-proxy]}
    else
        write_routes_conf "$n" "$TMP/routes-$n.conf"
        CONNINFO[$t]="host=r$n.routes.localhost hostaddr=127.0.0.1 port=${PORT[pg-tls-proxy]} sslmode=verify-full sslrootcert=$CERTS/public-ca.crt channel_binding=disable $COMMON"
    fi
    start_target "$t" "$LOGS/$t-probe.log" || it_die "$t did not start (see $LOGS/$t-probe.log)"
    out=$(timeout 30 psql -X -At "${CONNINFO[$t]}" -c "select 'ok'" 2>&1)
    stop_target
    [ "$out" = ok ] || it_die "$t: first connection failed: $out"
    if [ "$n" != default ] && ! grep -q "event=established .*route=\"r$n\"" "$LOGS/$t-probe.log"; then
        it_die "$t: the first connection did not take route r$n (see $LOGS/$t-probe.log)"
    fi
    RAVAIL+=("$t")
done
[ $((${#AVAIL[@]} + ${#LAVAIL[@]} + ${#RAVAIL[@]})) -ge 1 ] || it_die "no target can run"

# The cost of one SCRAM SaltedPassword here, measured before any load.
PBKDF2_LINE=""
read -r -a CRYPTO_FLAGS <<<"$(pkg-config --cflags --libs libcrypto 2>/dev/null || echo -lcrypto)"
if "${CC:-cc}" -std=c17 -O2 -o "$TMP/pbkdf2_cost" "$REPO/tests/bench/pbkdf2_cost.c" "${CRYPTO_FLAGS[@]}" \
    >"$LOGS/pbkdf2_cost-build.log" 2>&1; then
    PBKDF2_LINE=$("$TMP/pbkdf2_cost" 4096 200 2>&1) || PBKDF2_LINE=""
fi
if [ -n "$PBKDF2_LINE" ]; then
    for k in cpu_us_median cpu_us_min wall_us_median; do
        record pbkdf2 0 "$k" "$(printf '%s\n' "$PBKDF2_LINE" | grep -oE "$k=[0-9.]+" | cut -d= -f2)"
    done
else
    note "PBKDF2 cost not measured (see $LOGS/pbkdf2_cost-build.log)"
fi
# The cost of framing the server's stream (with --admin-address or a bridge).
FRAMING_LINE=""
if "${CC:-cc}" -std=c17 -O2 -I"$REPO/include" -o "$TMP/framing_cost" \
    "$REPO/tests/bench/framing_cost.c" "$REPO/src/pgtrack.c" >"$LOGS/framing_cost-build.log" 2>&1; then
    FRAMING_LINE=$("$TMP/framing_cost" 2>&1) || FRAMING_LINE=""
fi

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpus: $(nproc); memory: $(free -m | awk '/^Mem:/ { print $2 }') MiB; kernel: $(uname -r)"
    echo "openssl: $(openssl version)"
    echo "source: $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "postgres: $("$IT_PG_BINDIR/postgres" --version); pgbench: $(pgbench --version)"
    echo "reps=$REPS duration=$DURATION clients=$CLIENTS threads=$THREADS scale=$SCALE bulk_rows=$BULK_ROWS serial_conns=$SERIAL_CONNS warmup=$WARMUP"
    echo "certificates: ECDSA P-256 (certs/gen-test-certs.sh); auth: scram-sha-256"
    for t in "${AVAIL[@]}"; do echo "$t: $(describe_target "$t")"; done
    for t in "${AVAIL[@]}"; do echo "conninfo $t: ${CONNINFO[$t]}"; done
    echo "login_duration=$LOGIN_DURATION login_clients=$LOGIN_CLIENTS login_driver=$LOGIN_DRIVER cold_roles=$COLD_ROLES --auth-mode in binary: $HAVE_AUTH_MODE"
    for t in "${LAVAIL[@]}"; do echo "login $t: $(describe_target "$t")"; done
    for t in "${LAVAIL[@]}"; do echo "login conninfo $t: ${LCONNINFO[$t]}"; done
    for t in "${RAVAIL[@]}"; do echo "routes conninfo $t: ${CONNINFO[$t]}"; done
    echo "pbkdf2: ${PBKDF2_LINE:-not measured}"
} >"$OUT/env.txt"

# ---------------------------------------------------------------- workloads
# run_rep TARGET REP: the four workloads against a freshly started target.
run_rep() {
    local t=$1 rep=$2 conn=${CONNINFO[$1]} f c0 c1 n s0 s1 mb0 mi0 mb1 mi1
    local tag=$t-r$rep
    # Other work on the machine skews everything: keep the load average.
    record "$t" "$rep" load1 "$(cut -d' ' -f1 /proc/loadavg)"
    start_target "$t" "$LOGS/$tag-proxy.log" || {
        record "$t" "$rep" error start
        return
    }

    # a. select-only; VmRSS sampled half-way, with the sessions open.
    f=$LOGS/$tag-select.log
    RSS_SAMPLER=""
    if [ -n "$CUR_PID" ]; then
        (sleep "$(calc %.1f "$DURATION / 2")" && status_kb "$CUR_PID" VmRSS >"$TMP/rss-mid") &
        RSS_SAMPLER=$!
    fi
    c0=$(cpu_ticks "$CUR_PID") k0=$(sys_ticks "$CUR_PID")
    read -r mb0 mi0 < <(machine_ticks)
    timeout $((DURATION * 3 + 60)) pgbench -n -S -c "$CLIENTS" -j "$THREADS" -T "$DURATION" "$conn" >"$f" 2>&1 ||
        note "$tag: select-only pgbench failed (see $f)"
    c1=$(cpu_ticks "$CUR_PID") k1=$(sys_ticks "$CUR_PID")
    read -r mb1 mi1 < <(machine_ticks)
    sys_share sel_sys_pct "$c0" "$c1" "$k0" "$k1"
    [ -n "$RSS_SAMPLER" ] && wait "$RSS_SAMPLER"
    RSS_SAMPLER=""
    n=$(pgb_field "$f" 'number of transactions actually processed:')
    record "$t" "$rep" sel_tps "$(pgb_field "$f" 'tps =')"
    record "$t" "$rep" sel_lat_ms "$(pgb_field "$f" 'latency average =')"
    if [ -n "$CUR_PID" ] && [ -n "$n" ] && [ "$n" -gt 0 ]; then
        record "$t" "$rep" sel_cpu_us "$(calc %.1f "($c1 - $c0) * 1e6 / $HZ / $n")"
        record "$t" "$rep" rss_select_kb "$(cat "$TMP/rss-mid" 2>/dev/null)"
    fi
    # The whole machine's CPU per select (client, PostgreSQL, the hop): on a
    # saturated machine TPS is its inverse (the goals' TPS ceiling).
    if [ -n "$n" ] && [ "$n" -gt 0 ] && [ $((mb1 - mb0 + mi1 - mi0)) -gt 0 ]; then
        record "$t" "$rep" sel_machine_us "$(calc %.1f "($mb1 - $mb0) * 1e6 / $HZ / $n")"
        record "$t" "$rep" sel_idle_pct "$(calc %.1f "100 * ($mi1 - $mi0) / ($mb1 - $mb0 + $mi1 - $mi0)")"
    fi

    # b. a new connection per transaction.
    f=$LOGS/$tag-connect.log
    c0=$(cpu_ticks "$CUR_PID") k0=$(sys_ticks "$CUR_PID")
    timeout $((DURATION * 3 + 60)) pgbench -n -S -C -c "$CLIENTS" -j "$THREADS" -T "$DURATION" "$conn" >"$f" 2>&1 ||
        note "$tag: connect pgbench failed (see $f)"
    c1=$(cpu_ticks "$CUR_PID") k1=$(sys_ticks "$CUR_PID")
    sys_share con_sys_pct "$c0" "$c1" "$k0" "$k1"
    n=$(pgb_field "$f" 'number of transactions actually processed:')
    record "$t" "$rep" con_tps "$(pgb_field "$f" 'tps =')"
    if [ -n "$CUR_PID" ] && [ -n "$n" ] && [ "$n" -gt 0 ]; then
        record "$t" "$rep" con_cpu_us "$(calc %.0f "($c1 - $c0) * 1e6 / $HZ / $n")"
    fi

    # c. bulk COPY out: 1001 bytes of payload per row (1000 x + newline).
    f=$LOGS/$tag-bulk.log
    c0=$(cpu_ticks "$CUR_PID") k0=$(sys_ticks "$CUR_PID")
    s0=$(date +%s%N)
    if timeout 900 psql -X -q "$conn" \
        -c "\\copy (select repeat('x',1000) from generate_series(1,$BULK_ROWS)) to '/dev/null'" >"$f" 2>&1; then
        s1=$(date +%s%N)
        c1=$(cpu_ticks "$CUR_PID") k1=$(sys_ticks "$CUR_PID")
        sys_share bulk_sys_pct "$c0" "$c1" "$k0" "$k1"
        record "$t" "$rep" bulk_mbs "$(calc %.1f "$BULK_ROWS * 1001 / 1e6 / (($s1 - $s0) / 1e9)")"
        [ -n "$CUR_PID" ] &&
            record "$t" "$rep" bulk_cpu_s_gb "$(calc %.2f "($c1 - $c0) / $HZ / ($BULK_ROWS * 1001 / 1e9)")"
    else
        note "$tag: bulk copy failed (see $f)"
    fi

    # d. serial connect latency: one client, a new connection per "select 1".
    f=$LOGS/$tag-serial.log
    timeout $((SERIAL_CONNS + 120)) pgbench -n -C -c 1 -j 1 -t "$SERIAL_CONNS" -f "$TMP/select1.sql" "$conn" >"$f" 2>&1 ||
        note "$tag: serial connect pgbench failed (see $f)"
    # "latency average" with -C is connect + select 1 + disconnect: the honest
    # figure for PgBouncer, which answers the client's login before it even
    # connects upstream (its "connection time" alone looks far too good).
    record "$t" "$rep" serial_ms "$(pgb_field "$f" 'latency average =')"
    record "$t" "$rep" serial_conn_ms "$(pgb_field "$f" 'average connection time =')"

    if [ -n "$CUR_PID" ]; then
        record "$t" "$rep" rss_peak_kb "$(status_kb "$CUR_PID" VmHWM)"
    fi
    stop_target
}

# run_login TARGET REP: serial then concurrent logins (connect, SELECT 1,
# disconnect) for LOGIN_DURATION seconds each, against a freshly started
# target, by loginloop (as the bench role, or for pgtp-password-cold a new
# role each time) or pgbench -C. The proxy's CPU covers all its threads (a
# thread pool that runs PBKDF2 off the event loop included).
run_login() {
    local t=$1 rep=$2 conn=${LCONNINFO[$1]} f c0 c1 n w m j out prefix=$ROLE count=0
    local tag=login-$t-r$rep cold_next=0
    [ "$t" = pgtp-password-cold ] && prefix=$COLD_PREFIX count=$COLD_ROLES
    record "$t" "$rep" login_load1 "$(cut -d' ' -f1 /proc/loadavg)"
    start_target "$t" "$LOGS/$tag-proxy.log" || {
        record "$t" "$rep" login_error start
        return
    }
    for w in ser con; do
        j=1 m=1
        if [ "$w" = con ]; then
            m=$LOGIN_CLIENTS j=$((LOGIN_CLIENTS < THREADS ? LOGIN_CLIENTS : THREADS))
        fi
        f=$LOGS/$tag-$w.log
        c0=$(cpu_ticks "$CUR_PID")
        if [ -n "$LOGINLOOP" ]; then
            # pgtp-password-cold: a role the proxy has not seen for every
            # login; the concurrent run starts after the serial run's last.
            timeout $((LOGIN_DURATION * 3 + 60)) "$LOGINLOOP" "$LOGIN_DURATION" "$m" "${LBASE[$t]}" \
                "$prefix" "$cold_next" "$count" >"$f" 2>&1 || {
                note "$tag: $w logins: loginloop failed (see $f)"
                record "$t" "$rep" login_error "$w"
            }
            out=$(grep -m1 '^logins=' "$f")
            n=$(kv "$out" logins)
            cold_next=$(kv "$out" next)
            [ "$(kv "$out" failed)" = 0 ] || record "$t" "$rep" login_error "$w"
            [ "$(kv "$out" wrapped)" = 0 ] || record "$t" "$rep" login_wrapped "$w"
            [ -n "$cold_next" ] || cold_next=0
            record "$t" "$rep" "login_${w}_lps" "$(kv "$out" lps)"
            record "$t" "$rep" "login_${w}_ms" "$(kv "$out" latency_ms)"
        else
            # pgbench's exit status: 0 ok, 2 when a client aborted (a login failed).
            timeout $((LOGIN_DURATION * 3 + 60)) pgbench -n -C -c "$m" -j "$j" -T "$LOGIN_DURATION" \
                -f "$TMP/select1.sql" "$conn" >"$f" 2>&1 || {
                note "$tag: $w logins: pgbench failed (see $f)"
                record "$t" "$rep" login_error "$w"
            }
            n=$(pgb_field "$f" 'number of transactions actually processed:')
            record "$t" "$rep" "login_${w}_lps" "$(pgb_field "$f" 'tps =')"
            record "$t" "$rep" "login_${w}_ms" "$(pgb_field "$f" 'latency average =')"
        fi
        c1=$(cpu_ticks "$CUR_PID")
        if [ -n "$CUR_PID" ] && [ -n "$n" ] && [ "$n" -gt 0 ] && [ -n "$c0" ] && [ -n "$c1" ]; then
            record "$t" "$rep" "login_${w}_cpu_ms" "$(calc %.3f "($c1 - $c0) * 1e3 / $HZ / $n")"
        fi
    done
    stop_target
}

# run_routes TARGET REP: workloads (a) and (b) against a freshly started
# proxy with the route table TARGET names; the proxy's CPU per select and
# per connection.
run_routes() {
    local t=$1 rep=$2 conn=${CONNINFO[$1]} f c0 c1 n w flag
    local tag=$t-r$rep
    record "$t" "$rep" routes_load1 "$(cut -d' ' -f1 /proc/loadavg)"
    start_target "$t" "$LOGS/$tag-proxy.log" || {
        record "$t" "$rep" error start
        return
    }
    for w in sel con; do
        flag=""
        [ "$w" = con ] && flag=-C
        f=$LOGS/$tag-$w.log
        c0=$(cpu_ticks "$CUR_PID")
        # shellcheck disable=SC2086 # $flag: nothing or -C
        timeout $((DURATION * 3 + 60)) pgbench -n -S $flag -c "$CLIENTS" -j "$THREADS" -T "$DURATION" "$conn" >"$f" 2>&1 ||
            note "$tag: $w pgbench failed (see $f)"
        c1=$(cpu_ticks "$CUR_PID")
        n=$(pgb_field "$f" 'number of transactions actually processed:')
        record "$t" "$rep" "${w}_tps" "$(pgb_field "$f" 'tps =')"
        if [ -n "$n" ] && [ "$n" -gt 0 ] && [ -n "$c0" ] && [ -n "$c1" ]; then
            record "$t" "$rep" "${w}_cpu_us" "$(calc %.1f "($c1 - $c0) * 1e6 / $HZ / $n")"
        fi
    done
    stop_target
}

find_tlsfloor
find_hscpu
note "warm-up ${WARMUP}s (direct TLS, not recorded)"
timeout $((WARMUP + 60)) pgbench -n -S -c "$CLIENTS" -j "$THREADS" -T "$WARMUP" "${CONNINFO[direct-tls]}" \
    >"$LOGS/warmup.log" 2>&1 || note "warm-up pgbench failed (see $LOGS/warmup.log)"

for ((rep = 1; rep <= REPS; rep++)); do
    run_tlsfloor "$rep"
    run_hscpu "$rep"
    # Rotate the order each repetition so no target always runs first.
    k=$(((rep - 1) % (${#AVAIL[@]} > 0 ? ${#AVAIL[@]} : 1)))
    for t in "${AVAIL[@]:k}" "${AVAIL[@]:0:k}"; do
        note "rep $rep/$REPS: $t"
        run_rep "$t" "$rep"
    done
    if [ ${#LAVAIL[@]} -gt 0 ]; then
        k=$(((rep - 1) % ${#LAVAIL[@]}))
        for t in "${LAVAIL[@]:k}" "${LAVAIL[@]:0:k}"; do
            note "rep $rep/$REPS: logins $t"
            run_login "$t" "$rep"
        done
    fi
    [ ${#RAVAIL[@]} -gt 0 ] || continue
    k=$(((rep - 1) % ${#RAVAIL[@]}))
    for t in "${RAVAIL[@]:k}" "${RAVAIL[@]:0:k}"; do
        note "rep $rep/$REPS: routes $t"
        run_routes "$t" "$rep"
    done
done

# After the repetitions, so its PostgreSQL and stub never compete with them.
run_idle_sessions

# ---------------------------------------------------------------- summary
# med TARGET METRIC: median over the repetitions ("" if none).
med() {
    awk -F'\t' -v t="$1" -v m="$2" '$1 == t && $3 == m && $4 != "" { print $4 }' "$RAW" | sort -g |
        awk '{ a[NR] = $1 } END { if (NR) print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# spread TARGET METRIC: (max - min) / median in %, when there are 2+ values.
spread() {
    awk -F'\t' -v t="$1" -v m="$2" '$1 == t && $3 == m && $4 != "" { print $4 }' "$RAW" | sort -g |
        awk '{ a[NR] = $1 } END { if (NR < 2) exit; m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
              if (m > 0) printf " ±%.0f%%", 100 * (a[NR] - a[1]) / m }'
}
fmt() { # FORMAT VALUE: "-" when empty
    if [ -n "$2" ]; then calc "$1" "$2"; else printf -- '-'; fi
}
ratio() { # VALUE BASE
    if [ -n "$1" ] && [ -n "$2" ] && awk "BEGIN { exit !($2 > 0) }"; then calc '%.2f×' "$1 / $2"; else printf -- '-'; fi
}
delta() { # VALUE BASE (ms)
    if [ -n "$1" ] && [ -n "$2" ]; then calc '%+.1f ms' "$1 - $2"; else printf -- '-'; fi
}

summary() {
    local t b_sel b_con b_bulk b_ser sel con bulk ser
    b_sel=$(med direct-tls sel_tps) b_con=$(med direct-tls con_tps)
    b_bulk=$(med direct-tls bulk_mbs) b_ser=$(med direct-tls serial_ms)
    echo "## pg-tls-proxy benchmark ($STAMP)"
    echo
    echo "$(nproc) CPUs, $(openssl version | awk '{ print $1, $2 }'), $("$IT_PG_BINDIR/postgres" --version | awk '{ print $1, $3 }'), ECDSA P-256, SCRAM."
    [ ${#AVAIL[@]} -gt 0 ] && throughput_table "$b_sel" "$b_con" "$b_bulk" "$b_ser"
    [ -n "$LOGIN_TARGETS" ] && login_table
    [ ${#RAVAIL[@]} -gt 0 ] && routes_table
    goals_table
    local s
    s=$(awk -F'\t' '$3 == "load1" || $3 == "login_load1" || $3 == "routes_load1" { if (n++ == 0 || $4 < lo) lo = $4; if ($4 > hi) hi = $4 }
                    END { if (n) printf "%s-%s", lo, hi }' "$RAW")
    [ -z "$s" ] || echo "1-minute load average when each target started: $s on $(nproc) CPUs$(
        awk -v h="${s#*-}" -v c="$(nproc)" 'BEGIN { if (h + 0 > c + 0) printf " (other processes competed for the CPU: expect noise)" }')."
    s=$(awk -F'\t' '$3 == "skipped" { printf "%s%s (%s)", sep, $1, $4; sep = ", " }' "$RAW")
    [ -z "$s" ] || echo "Skipped: $s."
    echo "Raw values: $RAW; logs: $LOGS; took $((SECONDS - T_START)) s."
}

# The select / connect / bulk / serial table (workloads a-d).
throughput_table() {
    local t b_sel=$1 b_con=$2 b_bulk=$3 b_ser=$4 sel con bulk ser
    echo
    echo "Median of $REPS run(s); pgbench -c $CLIENTS -j $THREADS -T $DURATION, bulk $BULK_ROWS rows ($(calc %.2f "$BULK_ROWS * 1001 / 1e9") GB), serial = $SERIAL_CONNS connections one after another."
    echo
    echo "| target | select TPS | vs direct | connect TPS (-C) | vs direct | bulk MB/s | vs direct | serial connect+select ms | vs direct | proxy CPU µs/select | proxy CPU µs/connection | proxy CPU s/GB | kernel % of proxy CPU (select / connect / bulk) | proxy RSS MB (select / peak) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for t in "${AVAIL[@]}"; do
        sel=$(med "$t" sel_tps) con=$(med "$t" con_tps) bulk=$(med "$t" bulk_mbs) ser=$(med "$t" serial_ms)
        local rss_s rss_p mem="n/a"
        rss_s=$(med "$t" rss_select_kb) rss_p=$(med "$t" rss_peak_kb)
        [ "$t" != direct-tls ] && mem="$(fmt %.1f "${rss_s:+$rss_s / 1024}") / $(fmt %.1f "${rss_p:+$rss_p / 1024}")"
        local kern="n/a"
        [ "$t" != direct-tls ] && kern="$(fmt %.0f "$(med "$t" sel_sys_pct)") / $(fmt %.0f "$(med "$t" con_sys_pct)") / $(fmt %.0f "$(med "$t" bulk_sys_pct)")"
        printf '| %s | %s%s | %s | %s%s | %s | %s%s | %s | %s%s | %s | %s | %s | %s | %s | %s |\n' "$t" \
            "$(fmt %.0f "$sel")" "$(spread "$t" sel_tps)" "$(ratio "$sel" "$b_sel")" \
            "$(fmt %.1f "$con")" "$(spread "$t" con_tps)" "$(ratio "$con" "$b_con")" \
            "$(fmt %.0f "$bulk")" "$(spread "$t" bulk_mbs)" "$(ratio "$bulk" "$b_bulk")" \
            "$(fmt %.1f "$ser")" "$(spread "$t" serial_ms)" "$(delta "$ser" "$b_ser")" \
            "$(fmt %.1f "$(med "$t" sel_cpu_us)")" "$(fmt %.0f "$(med "$t" con_cpu_us)")" \
            "$(fmt %.2f "$(med "$t" bulk_cpu_s_gb)")" "$kern" "$mem"
    done
    echo
    echo "\"vs direct\": ratio of medians to direct TLS (latency: difference). ±x% = (max-min)/median."
    echo "Proxy CPU = utime+stime of the proxy process (all threads) during the workload, per transaction,"
    echo "per new connection (-C) or per GB copied; clock ticks of $((1000 / HZ)) ms. On a small machine client,"
    echo "PostgreSQL and proxy share the CPUs, so the proxy's own CPU is the fairer comparison. Kernel % ="
    echo "stime / (utime + stime): the part spent in system calls and the loopback TCP stack."
}

# first TARGET METRIC: the first value recorded (for words, not numbers).
first() {
    awk -F'\t' -v t="$1" -v m="$2" '$1 == t && $3 == m { print $4; exit }' "$RAW"
}
# How each login row authenticates: client side (given whether
# channel_binding=require got in), then upstream.
login_client_auth() { # TARGET PLUS(yes/no/"")
    case $1 in
    direct-tls) [ "$2" = yes ] && echo "SCRAM-SHA-256-PLUS (PostgreSQL itself)" || echo "SCRAM-SHA-256 (PostgreSQL itself)" ;;
    pgtp-passthrough) echo "SCRAM-SHA-256 relayed to PostgreSQL (channel_binding=disable)" ;;
    pgtp-password) echo "cleartext password inside the verified TLS (same role every login)" ;;
    pgtp-password-cold) echo "cleartext password inside the verified TLS (a new role every login)" ;;
    pgtp-scram) [ "$2" = no ] && echo "SCRAM-SHA-256, stored verifier (-PLUS refused!)" || echo "SCRAM-SHA-256-PLUS, stored verifier" ;;
    pgbouncer-*) [ "$2" = yes ] && echo "SCRAM-SHA-256-PLUS, stored verifier" || echo "SCRAM-SHA-256, stored verifier (no -PLUS offered)" ;;
    esac
}
login_upstream_auth() { # TARGET
    case $1 in
    direct-tls) echo "-" ;;
    pgtp-passthrough) echo "the client's own, relayed" ;;
    pgtp-password) echo "SCRAM-SHA-256-PLUS from the password (PBKDF2 once, then its cache)" ;;
    pgtp-password-cold) echo "SCRAM-SHA-256-PLUS from the password (PBKDF2 every login)" ;;
    pgtp-scram) echo "SCRAM-SHA-256-PLUS with the recovered ClientKey" ;;
    pgbouncer-nopool) echo "SCRAM with the recovered ClientKey, one login per client" ;;
    pgbouncer-pool) echo "none per client: pooled server connection reused" ;;
    esac
}

# The login table (workloads e and f), every requested row, n/a ones included.
login_table() {
    local t b_ser b_con b_cpu ser con why mark plus any_err="" any_wrap=""
    b_ser=$(med direct-tls login_ser_lps) b_con=$(med direct-tls login_con_lps)
    b_cpu=$(med pgtp-passthrough login_con_cpu_ms)
    echo
    local driver="pgbench -C"
    [ -n "$LOGINLOOP" ] && driver="tests/bench/loginloop.c"
    echo "### Logins: connect + SELECT 1 + disconnect ($driver), serial (1 client) and concurrent ($LOGIN_CLIENTS clients), ${LOGIN_DURATION} s each, median of $REPS run(s)"
    echo
    echo "| target | client → proxy | proxy → PostgreSQL | serial logins/s | vs direct | serial ms/login | concurrent logins/s | vs direct | proxy CPU ms/login (serial / concurrent) | CPU vs passthrough |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for t in $LOGIN_TARGETS; do
        plus=$(first "$t" login_plus) why=$(first "$t" login_skipped) mark=""
        if [ -n "$why" ]; then
            printf '| %s | %s | %s | %s | - | - | - | - | - | - |\n' "$t" \
                "$(login_client_auth "$t" "")" "$(login_upstream_auth "$t")" "$why"
            continue
        fi
        [ -n "$(first "$t" login_error)" ] && mark=" †" any_err=1
        [ -n "$(first "$t" login_wrapped)" ] && mark+=" ‡" any_wrap=1
        ser=$(med "$t" login_ser_lps) con=$(med "$t" login_con_lps)
        local cpu_s cpu_c cpu="n/a" vs="n/a"
        cpu_s=$(med "$t" login_ser_cpu_ms) cpu_c=$(med "$t" login_con_cpu_ms)
        if [ "$t" != direct-tls ]; then
            cpu="$(fmt %.2f "$cpu_s") / $(fmt %.2f "$cpu_c")"
            vs=$(if [ -n "$cpu_c" ] && [ -n "$b_cpu" ]; then calc '%+.2f ms' "$cpu_c - $b_cpu"; else printf -- '-'; fi)
        fi
        printf '| %s%s | %s | %s | %s%s | %s | %s | %s%s | %s | %s | %s |\n' "$t" "$mark" \
            "$(login_client_auth "$t" "$plus")" "$(login_upstream_auth "$t")" \
            "$(fmt %.1f "$ser")" "$(spread "$t" login_ser_lps)" "$(ratio "$ser" "$b_ser")" \
            "$(fmt %.1f "$(med "$t" login_ser_ms)")" \
            "$(fmt %.1f "$con")" "$(spread "$t" login_con_lps)" "$(ratio "$con" "$b_con")" "$cpu" "$vs"
    done
    echo
    echo "Every login is a new TLS session and a full authentication; clients keep libpq's default"
    echo "channel_binding (prefer) except passthrough's. \"vs direct\": ratio of medians to direct TLS. Proxy CPU"
    echo "per login = utime+stime of the proxy or PgBouncer process (all threads) / logins, in clock ticks of"
    echo "$((1000 / HZ)) ms; \"CPU vs passthrough\": the difference per concurrent login. PostgreSQL's own backend"
    echo "start caps the unpooled rows (the pooled PgBouncer row starts no backend per login)."
    [ -z "$any_err" ] || echo "† pgbench reported a failed login or an aborted client in at least one run: see $LOGS/login-<target>-r*-*.log."
    [ -z "$any_wrap" ] || echo "‡ more logins than COLD_ROLES ($COLD_ROLES): some roles logged in twice and could hit the cache; raise COLD_ROLES."
    if [[ " ${LAVAIL[*]} " == *" pgtp-password-cold "* ]]; then
        echo "pgtp-password-cold logs in as a different role every time (one of $COLD_ROLES), so no login finds"
        echo "its derived key in the proxy's cache; pgtp-password logs in as one role, so all but the first do."
    fi
    local p m
    p=$(med pbkdf2 cpu_us_median) m=$(med pbkdf2 cpu_us_min)
    if [ -n "$p" ]; then
        echo "One SCRAM SaltedPassword (PBKDF2-HMAC-SHA256, 4096 iterations; tests/bench/pbkdf2_cost.c) costs"
        echo "$(calc %.2f "$p / 1000") ms of CPU on this machine (median of 200 calls, fastest $(calc %.2f "$m / 1000") ms): the work"
        echo "--auth-mode password adds to a login that misses any cache of derived keys, against issue 13's ~1 ms"
        echo "limit for work on the event loop."
    else
        echo "PBKDF2 cost: not measured (see $LOGS/pbkdf2_cost-build.log)."
    fi
    if [ -n "$FRAMING_LINE" ]; then
        echo "Framing the server's stream (with --admin-address or a bridge; tests/bench/framing_cost.c):"
        echo "$FRAMING_LINE"
    fi
}
# The routes table: the same pgbench runs through each route table, with
# ratios to the one-route table (or the first one run when there is none).
routes_table() {
    local t base=${RAVAIL[0]} sel con scpu ccpu
    [[ " ${RAVAIL[*]} " == *" routes-1 "* ]] && base=routes-1
    local b_sel b_con b_scpu b_ccpu
    b_sel=$(med "$base" sel_tps) b_con=$(med "$base" con_tps)
    b_scpu=$(med "$base" sel_cpu_us) b_ccpu=$(med "$base" con_cpu_us)
    echo
    echo "### Routes: one PostgreSQL behind route tables of different sizes, median of $REPS run(s)"
    echo
    echo "pgbench -S -c $CLIENTS -j $THREADS -T $DURATION, and the same with -C (a new TLS connection and login per"
    echo "select). The client names the last route by SNI and database, so every lookup scans the whole table."
    echo
    echo "| proxy configuration | select TPS | vs $base | proxy CPU µs/select | vs $base | connect TPS (-C) | vs $base | proxy CPU µs/connection | vs $base |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for t in "${RAVAIL[@]}"; do
        sel=$(med "$t" sel_tps) con=$(med "$t" con_tps) scpu=$(med "$t" sel_cpu_us) ccpu=$(med "$t" con_cpu_us)
        printf '| %s | %s%s | %s | %s%s | %s | %s%s | %s | %s%s | %s |\n' "$(route_label "$t")" \
            "$(fmt %.0f "$sel")" "$(spread "$t" sel_tps)" "$(ratio "$sel" "$b_sel")" \
            "$(fmt %.1f "$scpu")" "$(spread "$t" sel_cpu_us)" "$(ratio "$scpu" "$b_scpu")" \
            "$(fmt %.1f "$con")" "$(spread "$t" con_tps)" "$(ratio "$con" "$b_con")" \
            "$(fmt %.0f "$ccpu")" "$(spread "$t" con_cpu_us)" "$(ratio "$ccpu" "$b_ccpu")"
    done
    echo
    echo "\"vs $base\": ratio of medians (1.00× = no difference; CPU above 1 costs more). Proxy CPU = utime+stime"
    echo "of the proxy (all threads) / transactions. ±x% = (max-min)/median over the runs: a difference smaller"
    echo "than the spread is noise (client, PostgreSQL and proxy share the CPUs). Routing happens once per"
    echo "connection, so per select any difference is noise; per connection it includes the route lookups."
}
route_label() { # TARGET
    case $1 in
    routes-default) echo "default route only (flags, no --config)" ;;
    routes-1) echo "1 route (--config, [route r1], SNI)" ;;
    *) echo "${1#routes-} routes (--config, SNI of the last)" ;;
    esac
}
summary | tee "$OUT/summary.md"
