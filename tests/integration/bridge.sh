# shellcheck shell=bash
# shellcheck disable=SC2034,SC2016 # CUR_LOG is read by run.sh's fail(); literal $ in regexes
# bridge section of tests/integration/run.sh (sourced; uses its helpers): issue 15.
#
# A PostgreSQL 15 (TLS with the harness's private db CA, SCRAM) in a NEW
# NETWORK NAMESPACE with its own loopback, and the connectors
# (pg-tls-proxy connector) in the same namespace. The proxy runs outside
# and cannot route to the database: the only way in is the tunnel. The
# connectors dial the proxy's bridge listener through a UNIX socket (the
# filesystem is shared): socat in the namespace on its 127.0.0.1 -> UNIX
# socket -> socat outside -> the proxy's --bridge-listen on our 127.0.0.1.
# The proxy's bridge certificate is its front one (localhost, public test
# CA); the connectors verify it with --bridge-ca-path and
# --bridge-tls-validation-host localhost. Without permission for a network
# namespace (not root), the database and connectors run on our loopback and
# a note says so.
#
# One proxy (--config) with a bridge route per case, told apart by port:
#   main     through bridge "lab" to the database, passthrough
#   pw       the same, --auth-mode password
#   na       through "lab" to a target not on the connectors' --allow list
#   dead     through "lab" to an allowed target where nothing listens
#   wname    through "lab", client-tls-validation-host wrong.example
#   wca      through "lab", client-ca-roots-path other-ca (did not sign it)
#   ghost    through bridge "ghost" (in the bridges file; no connector ever)
#   direct   (the default route, server-port) no bridge: the database's
#            address, dialled from outside
# Checks (client, proxy log and connector log, on event= lines):
#   isolation (direct psql and the direct route fail), a connector without
#   --allow refuses to start, bridge-secret's output; psql verify-full on
#   both auth modes with pg_stat_ssl.ssl = t; COPY ~100 MB each way
#   byte-exact; 200 concurrent sessions; PQcancel and psql's Ctrl-C
#   (57014); each failure
#   route's 08001 and its words; a wrong secret (tunnel_rejected /
#   bridge_rejected); a connector SIGKILLed under a session (08006) while a
#   session on the second connector goes on; sessions spread over both;
#   load while one of two
#   connectors is SIGKILLed (sessions started afterwards all work); health
#   200/503; the proxy restarted (connectors come back by themselves);
#   every connector stopped (08001 naming the bridge and "last seen"); the
#   secret rotated by SIGHUP (connectors cut at once, refused until given
#   the new one); no secret in any log.
# Under ASan or valgrind COPY and the concurrent sessions are scaled down.

BR_T0=$SECONDS
BR=$TMP/bridge
mkdir -p "$BR"
chmod 755 "$BR" # the postgres user reads its certificates through here
BR_SCALE=$IT_TIME_SCALE
grep -q __asan_init "$PGTP_BIN" 2>/dev/null && [ "$BR_SCALE" -lt 4 ] && BR_SCALE=4
BR_TS=$IT_TIME_SCALE
declare -A BR_GEN=() BR_HP=() BR_LOG=()

# ======================================================================
# 1. The private network: a namespace, its database, the relay
# ======================================================================
BR_NS=""
BR_PRIVATE=0
# (IT_BRIDGE_NO_NETNS=1 tries the fallback as root.)
if [ -z "${IT_BRIDGE_NO_NETNS:-}" ] && it_netns_start fake-br-netns BR_NS; then
    BR_PRIVATE=1
else
    it_note "bridge: no network namespace on this machine: the database and the connectors" \
        "run on this machine's loopback, so the tunnel is NOT the only way in here"
fi
# br_ns CMD...: CMD inside the private network (here, when there is none).
br_ns() {
    if [ -n "$BR_NS" ]; then it_netns_run "$BR_NS" "$@"; else "$@"; fi
}

it_free_port BR_PG   # the database's port inside the namespace
it_free_port BR_DEAD # allowed on the connectors, nothing listens there
it_free_port BR_NA   # not on the allow list
if [ "$BR_PRIVATE" = 1 ]; then
    BR_PGDATA=$BR/pgdata
    it_netns_pg_start "$BR_PGDATA" "$BR_PG" "$CERTS" app app "$PASSWORD" "$BR_NS"
else
    BR_PGDATA=$PGDATA_DIR BR_PG=$PGPORT
fi
# br_su SQL: superuser on the bridged cluster, over its Unix socket.
br_su() {
    it_as_svc timeout 30 "$IT_PG_BINDIR/psql" -X -A -t -q -h "$BR_PGDATA" -p "$BR_PG" \
        -U postgres -d postgres -c "$1" 2>&1
}
BR_DIRECT="host=localhost hostaddr=127.0.0.1 port=$BR_PG user=app dbname=app \
sslmode=verify-full sslrootcert=$CERTS/db-ca.crt connect_timeout=5"
out=$(br_ns "$PGCLIENT" query "$BR_DIRECT" "SELECT 'inside ok'" 2>&1)
expect "bridge: control: the database answers verify-full from inside its network" \
    "$out" '^inside ok$'
if [ "$BR_PRIVATE" = 1 ]; then
    out=$(pgc query "$BR_DIRECT" "SELECT 'reached'")
    expect "bridge: from outside the namespace the database's 127.0.0.1:$BR_PG is unreachable" \
        "$out" '^error: .*(refused|could not connect)'
fi

it_free_port BR_BPORT # the proxy's --bridge-listen (outside)
BR_ADDR=127.0.0.1:$BR_BPORT
if [ "$BR_PRIVATE" = 1 ]; then
    it_free_port BR_NS_BPORT # where the connectors dial, inside the namespace
    BR_SOCK=$BR/bridge.sock
    # (socat listens with a backlog of 5 by default: 200 sessions opening
    # at once would wait for SYN retransmits, seconds, and time out.)
    it_spawn fake-br-relay-out "$LOGS/bridge-relay-out.log" socat \
        "UNIX-LISTEN:$BR_SOCK,fork,unlink-early,mode=600,backlog=1024" "TCP:127.0.0.1:$BR_BPORT"
    it_netns_spawn "$BR_NS" fake-br-relay-in "$LOGS/bridge-relay-in.log" socat \
        "TCP-LISTEN:$BR_NS_BPORT,bind=127.0.0.1,fork,reuseaddr,backlog=1024" "UNIX-CONNECT:$BR_SOCK"
    BR_ADDR=127.0.0.1:$BR_NS_BPORT
    if it_netns_wait_port "$BR_NS" "$BR_NS_BPORT" 10 "${IT_PIDS[fake-br-relay-in]}"; then
        pass "bridge: relay 127.0.0.1:$BR_NS_BPORT (namespace) -> UNIX socket -> 127.0.0.1:$BR_BPORT"
    else
        fail "bridge: relay inside the namespace listens" "$(oneline "$(cat "$LOGS/bridge-relay-in.log")")"
    fi
fi

# ======================================================================
# 2. Secrets (pg-tls-proxy bridge-secret), the bridges file, the proxy
# ======================================================================
# br_secret ID: $BR/ID.secret (the secret alone, 0600) and $BR/ID.line (the
# bridges-file line). Falls back to scram-secret if bridge-secret fails (and
# the check below says so), so that the other cases still run.
br_secret() {
    local out sec line
    out=$("$PGTP_BIN" bridge-secret "$1" --iterations 4096 2>&1)
    sec=$(sed -n 's/^secret=//p' <<<"$out")
    line=$(grep '^"' <<<"$out")
    if [ -z "$sec" ] || [ -z "$line" ]; then
        sec=$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')
        line=$(printf '%s\n' "$sec" | "$PGTP_BIN" scram-secret "$1" 2>/dev/null | sed -n 1p)
        BR_SECRET_CMD="failed: $(oneline "${out//$sec/<secret>}")"
    fi
    (umask 077 && printf '%s\n' "$sec" >"$BR/$1.secret${2:-}" &&
        printf '%s\n' "$line" >"$BR/$1.line${2:-}")
}
BR_SECRET_CMD=ok
br_secret lab
br_secret ghost
expect "bridge-secret: prints secret=<43 base64url chars> and a bridges-file line" \
    "$BR_SECRET_CMD $(wc -c <"$BR/lab.secret") $(cat "$BR/lab.line")" \
    '^ok 44 "lab" "SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+"$'
cat "$BR/lab.line" "$BR/ghost.line" >"$BR/bridges"
if grep -q -F -f "$BR/lab.secret" "$BR/bridges"; then
    fail "the bridges file holds the secret's verifier, not the secret" "the secret is in it"
else
    pass "the bridges file holds the secret's verifier, not the secret"
fi
(umask 077 && openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n' >"$BR/wrong.secret")

it_free_port BR_P
declare -A BR_RP=()
for r in pw na dead wname wca ghost direct; do it_free_port "BR_RP[$r]"; done
# br_route NAME PORT UPSTREAM_PORT VALIDATION_HOST CA [KEY = VALUE lines...]
br_route() {
    printf '\n[route %s]\nlisten-port = %s\n' "$1" "$2"
    printf 'server-certificate-path = %s\nserver-private-key-path = %s\n' \
        "$CERTS/proxy.crt" "$CERTS/proxy.key"
    printf 'client-connection-host-or-ip = 127.0.0.1\nclient-connection-port = %s\n' "$3"
    printf 'client-tls-validation-host = %s\nclient-ca-roots-path = %s\n' "$4" "$5"
    shift 5
    [ $# -eq 0 ] || printf '%s\n' "$@"
}
DB_CA=$CERTS/db-ca.crt
{
    # The globals (the default route, on server-port) dial the database
    # directly: unreachable from here. (A route inherits the globals'
    # client-bridge, so the bridge is set per route.)
    printf '; pg-tls-proxy bridge test (issue 15): one route per case, told apart by port\n'
    printf 'server-certificate-path = %s\nserver-private-key-path = %s\n' \
        "$CERTS/proxy.crt" "$CERTS/proxy.key"
    printf 'server-host = 127.0.0.1\nserver-port = %s\n' "${BR_RP[direct]}"
    printf 'bridge-listen = 127.0.0.1:%s\nbridges-file = %s\n' "$BR_BPORT" "$BR/bridges"
    printf 'client-connection-host-or-ip = 127.0.0.1\nclient-connection-port = %s\n' "$BR_PG"
    printf 'client-tls-validation-host = localhost\nclient-ca-roots-path = %s\n' "$DB_CA"
    br_route main "$BR_P" "$BR_PG" localhost "$DB_CA" "client-bridge = lab"
    br_route pw "${BR_RP[pw]}" "$BR_PG" localhost "$DB_CA" "client-bridge = lab" \
        "auth-mode = password"
    br_route na "${BR_RP[na]}" "$BR_NA" localhost "$DB_CA" "client-bridge = lab"
    br_route dead "${BR_RP[dead]}" "$BR_DEAD" localhost "$DB_CA" "client-bridge = lab"
    br_route wname "${BR_RP[wname]}" "$BR_PG" wrong.example "$DB_CA" "client-bridge = lab"
    br_route wca "${BR_RP[wca]}" "$BR_PG" localhost "$CERTS/other-ca.crt" "client-bridge = lab"
    br_route ghost "${BR_RP[ghost]}" "$BR_PG" localhost "$DB_CA" "client-bridge = ghost"
} >"$BR/bridge.ini"

BR_PLOG_N=0
# br_proxy_start: the proxy from bridge.ini; its log is $BR_PLOG (a new
# file each start).
br_proxy_start() {
    BR_PLOG_N=$((BR_PLOG_N + 1))
    BR_PLOG=$LOGS/proxy-bridge-$BR_PLOG_N.log
    CUR_LOG=$BR_PLOG
    it_proxy_start bridge "$BR_PLOG" "$BR_P" --config "$BR/bridge.ini" &&
        it_wait_port "$BR_BPORT" 5 "${IT_PIDS[bridge]}" &&
        it_wait_port "${BR_RP[direct]}" 5 "${IT_PIDS[bridge]}"
}
if br_proxy_start; then
    pass "bridge: proxy listens on 127.0.0.1:$BR_P (clients) and 127.0.0.1:$BR_BPORT (connectors)"
else
    fail "bridge: proxy listens on 127.0.0.1:$BR_P and its bridge listener on $BR_BPORT" \
        "not listening after 10 s (or exited)"
fi

# ======================================================================
# 3. Connectors
# ======================================================================
BR_ALLOW=127.0.0.1:$BR_PG,127.0.0.1:$BR_DEAD
# br_conn_start NAME SECRETFILE [ARGS...]: connector NAME in the private
# network, health on its own port there; log $BR_LOG[NAME] (a new file each
# start). IT_PIDS[conn-NAME] is its pid.
br_conn_start() {
    local name=$1 secret=$2 hp log
    shift 2
    BR_GEN[$name]=$((${BR_GEN[$name]:-0} + 1))
    log=$LOGS/connector-$name-${BR_GEN[$name]}.log
    BR_LOG[$name]=$log
    it_free_port hp
    BR_HP[$name]=$hp
    local args=(connector --bridge-address "$BR_ADDR" --bridge-id lab
        --bridge-secret-file "$secret" --bridge-ca-path "$CERTS/public-ca.crt"
        --bridge-tls-validation-host localhost --allow "$BR_ALLOW" --connector-name "$name"
        --health-address "127.0.0.1:$hp" --reconnect-max 2 "$@")
    if [ ${#IT_WRAP[@]} -gt 0 ]; then
        PGTP_WRAP_LOG=${log%.log}.wrap br_spawn "conn-$name" "$log" "${IT_WRAP[@]}" "$PGTP_BIN" \
            "${args[@]}"
    else
        br_spawn "conn-$name" "$log" "$PGTP_BIN" "${args[@]}"
    fi
}
br_spawn() {
    if [ -n "$BR_NS" ]; then it_netns_spawn "$BR_NS" "$@"; else it_spawn "$@"; fi
}
# br_conn_up NAME [NTH]: until the connector's log has its NTH (default 1)
# event=tunnel_up, within 15 s.
br_conn_up() {
    local i need=${2:-1}
    for ((i = 0; i < 300 * BR_TS; i++)); do
        [ "$(count "${BR_LOG[$1]}" 'event=tunnel_up')" -ge "$need" ] && return 0
        kill -0 "${IT_PIDS[conn-$1]:-0}" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
# br_kill NAME: SIGKILL the connector (not counted as a SIGTERM exit).
br_kill() {
    local pid=${IT_PIDS[conn-$1]:-}
    [ -n "$pid" ] || return 0
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "IT_PIDS[conn-$1]"
}
# br_health NAME: the HTTP status of the connector's /healthz.
br_health() {
    br_ns curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:${BR_HP[$1]}/healthz"
}
# br_carrier TAG: the name of the connector carrying the session whose query
# holds /* TAG */ (the owner of its TCP connection to the database), or
# nothing after 10 s.
br_carrier() {
    local i port pid n
    for ((i = 0; i < 100 * BR_TS; i++)); do
        port=$(br_su "SELECT client_port FROM pg_stat_activity
            WHERE query LIKE '%/* $1 */%' AND pid <> pg_backend_pid()")
        if [[ $port =~ ^[0-9]+$ ]]; then
            pid=$(br_ns ss -Htnp state established "sport = :$port" |
                grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)
            for n in a b; do
                [ -n "$pid" ] && [ "${IT_PIDS[conn-$n]:-}" = "$pid" ] && {
                    echo "$n"
                    return 0
                }
            done
        fi
        sleep 0.1
    done
}

# A connector without --allow refuses to start, saying why.
out=$(timeout -k 5 $((20 * BR_TS)) "$PGTP_BIN" connector --bridge-address "$BR_ADDR" \
    --bridge-id lab --bridge-secret-file "$BR/lab.secret" \
    --bridge-ca-path "$CERTS/public-ca.crt" 2>&1)
rc=$?
expect "connector without --allow: exits 2 naming --allow and why" "rc=$rc $(oneline "$out")" \
    '^rc=2 .*--allow.*(any|every) host'

br_conn_start a "$BR/lab.secret"
CUR_LOG=${BR_LOG[a]}
BR_UP=0
if br_conn_up a; then
    BR_UP=1
    pass "connector a: event=tunnel_up ($(oneline "$(grep -m1 'event=tunnel_up' "${BR_LOG[a]}")"))"
else
    fail "connector a: event=tunnel_up within 15 s" "$(oneline "$(tail -n 3 "${BR_LOG[a]}")")"
fi
CUR_LOG=$BR_PLOG
wait_line "$BR_PLOG" 'event=bridge_up' $((5 * BR_TS))
expect "proxy: event=bridge_up bridge=lab for connector a" \
    "$(grep -m1 'event=bridge_up' "$BR_PLOG")" 'bridge="?lab"?.*connector="?a'
expect "connector a: /healthz answers 200 while the tunnel is up" "$(br_health a)" '^200$'

# shellcheck source=tests/integration/bridgecases.sh
. "$HERE/bridgecases.sh"

# ======================================================================
# 10. Run them (the first connector up: else each would only time out),
#     then hygiene: no secret in any log; everything stopped
# ======================================================================
if [ "$BR_UP" = 1 ] && kill -0 "${IT_PIDS[bridge]:-0}" 2>/dev/null; then
    CI_BR=$(ci "$BR_P")
    br_sessions
    br_failures
    br_two_connectors
    br_restart
    br_stopped
    br_rotation
else
    fail "bridge: sessions, failures, two connectors, restart, rotation" \
        "not run: the proxy or connector a did not come up (see above)"
fi
it_stop conn-a
it_stop bridge
leaked=""
for f in lab.secret lab.secret.new ghost.secret wrong.secret; do
    s=$(cat "$BR/$f" 2>/dev/null)
    [ -n "$s" ] && grep -l -F -- "$s" "$LOGS"/*.log >/dev/null 2>&1 && leaked+=" $f"
done
expect "no bridge secret (right, rotated, wrong) appears in any log" "${leaked:-none}" '^none$'
it_stop fake-br-relay-in
it_stop fake-br-relay-out
[ "$BR_PRIVATE" = 1 ] && it_pg_stop "$BR_PGDATA"
[ "$BR_PRIVATE" = 1 ] && cp "$BR_PGDATA/server.log" "$LOGS/postgresql-bridge.log" 2>/dev/null
it_stop fake-br-netns
CUR_LOG=
it_note "bridge section took $((SECONDS - BR_T0)) s"
