# shellcheck shell=bash
# shellcheck disable=SC2034 # CUR_LOG is read by run.sh's fail()
# reloadroutes.sh - issue 14's "reload under load": one proxy configured by
# a --config file with two routes and no default (a: SNI a.localhost to the
# harness's PostgreSQL, b: database app_b to the same), 200 sessions (20
# under ASan or valgrind) querying through both routes every 100 ms while
# SIGHUP reloads the file three times: a third route c (SNI c.localhost, to
# a second cluster) is added, route b's upstream moves to the second
# cluster, route a is removed. Then a file with a typo is loaded, which
# must change nothing. Asserted:
#   - every session opened, kept its server (each query returns its number
#     and the server's port, which never changes) and ended only when told:
#     none lost, none moved to a reloaded route's new upstream;
#   - new sessions take the new routes (c and b reach the second cluster);
#     route a's server name, once removed, is refused with 08004 naming it;
#   - the broken file: event=reload_failed naming file:line, counted in
#     pg_tls_proxy_reloads_total{result="failure"}, and the routes unchanged;
#   - the sessions of the removed route end as route="a" in the audit log.
#
# Sourced by run.sh, never executed: it uses run.sh's reporting (pass, fail,
# expect), helpers (wait_line, count), clients (ci, pgc, raw) and variables
# (CERTS, LOGS, TMP, PGPORT, PASSWORD). Loopback only; about 20 s.

RR_DIR=$TMP/reloadroutes
mkdir -p "$RR_DIR"
RR_N=200
if grep -q __asan_init "$PGTP_BIN" 2>/dev/null || [ "$IT_TIME_SCALE" -gt 1 ]; then
    RR_N=20 # sanitizers and valgrind: the same steps, a tenth of the load
fi
RR_HALF=$((RR_N / 2))

# A second cluster (same CA and name, so only the port tells them apart),
# and database app_b on both, since a StartupMessage goes upstream as sent.
it_free_port RR_PG2
it_pg_start "$RR_DIR/pg2" "$RR_PG2" "$CERTS" app app "$PASSWORD"
for _rr in "$PGDATA_DIR:$PGPORT" "$RR_DIR/pg2:$RR_PG2"; do
    it_as_svc timeout 60 "$IT_PG_BINDIR/psql" -X -q -h "${_rr%:*}" -p "${_rr##*:}" -U postgres \
        -d postgres -c 'CREATE DATABASE app_b OWNER app' >/dev/null 2>&1 ||
        it_die "reloadroutes: could not create database app_b on port ${_rr##*:}"
done

# rr_write FILE ROUTE...: globals without an upstream (so no default route)
# and the named routes: a, b1 (b to the first cluster), b2 (b to the
# second), c, typo (c with a misspelt key). Replaced atomically.
rr_write() {
    local file=$1 r
    shift
    {
        printf 'server-certificate-path = %s\n' "$CERTS/proxy.crt"
        printf 'server-private-key-path = %s\n' "$CERTS/proxy.key"
        printf 'server-host = 127.0.0.1\nserver-port = %s\n' "$RR_PORT"
        printf 'client-ca-roots-path = %s\n' "$CERTS/db-ca.crt"
        printf 'admin-address = 127.0.0.1:%s\n' "$RR_ADMIN"
        for r in "$@"; do
            case $r in
            a) printf '\n[route a]\nsni = a.localhost\nclient-connection-port = %s\n' "$PGPORT" ;;
            b1) printf '\n[route b]\ndatabases = app_b\nclient-connection-port = %s\n' "$PGPORT" ;;
            b2) printf '\n[route b]\ndatabases = app_b\nclient-connection-port = %s\n' "$RR_PG2" ;;
            c | typo)
                printf '\n[route c]\nsni = c.localhost\nclient-connection-port = %s\n' "$RR_PG2"
                [ "$r" = c ] || printf 'client-tls-validaton-host = localhost\n'
                ;;
            esac
            printf 'client-connection-host-or-ip = 127.0.0.1\nclient-tls-validation-host = localhost\n'
        done
    } >"$file.tmp" && mv -f "$file.tmp" "$file"
}

rr_metric() { # RESULT: pg_tls_proxy_reloads_total{result=RESULT}
    curl -s --max-time 5 "http://127.0.0.1:$RR_ADMIN/metrics" |
        sed -n "s/^pg_tls_proxy_reloads_total{result=\"$1\"} \\([0-9]*\\)$/\\1/p"
}

# rr_reload: SIGHUP, then wait for one more event=reloaded (or failure).
rr_reload() {
    local n0 f0 i
    n0=$(count "$CUR_LOG" 'event=reloaded ') f0=$(count "$CUR_LOG" 'event=reload_failed')
    kill -HUP "$RR_PID"
    for ((i = 0; i < 100 * IT_TIME_SCALE; i++)); do
        [ "$(count "$CUR_LOG" 'event=reloaded ')" -gt "$n0" ] && return 0
        [ "$(count "$CUR_LOG" 'event=reload_failed')" -gt "$f0" ] && return 1
        sleep 0.1
    done
    return 1
}

rr_step() { # NAME: a reload that must succeed
    if rr_reload; then pass "reloadroutes: $1 under load"; else
        fail "reloadroutes: $1 under load" "no event=reloaded in $((10 * IT_TIME_SCALE)) s"
    fi
}

# The server behind a route: the port it runs on, or the client's error.
rr_port_via() { pgc query "$(ci "$RR_PORT" "$@")" "SELECT current_setting('port')"; }
CI_A=(host=a.localhost sslmode=verify-ca) # the front certificate names localhost only
CI_B=(dbname=app_b sslsni=0)              # no SNI: routed by its database
CI_C=(host=c.localhost sslmode=verify-ca)

it_free_port RR_PORT
it_free_port RR_ADMIN
RR_FILE=$RR_DIR/rr.conf
rr_write "$RR_FILE" a b1
CUR_LOG=$LOGS/proxy-reloadroutes.log
if it_proxy_start reloadroutes "$CUR_LOG" "$RR_PORT" --config "$RR_FILE"; then
    pass "reloadroutes: proxy from a config file with routes a (sni) and b (database), no default"
else
    fail "reloadroutes: proxy from a config file with routes a and b" "not listening after 10 s"
fi
RR_PID=${IT_PIDS[reloadroutes]:-0}
expect "reloadroutes: route a (SNI a.localhost) reaches the first cluster" \
    "$(rr_port_via "${CI_A[@]}")" "^$PGPORT\$"
expect "reloadroutes: route b (database app_b, no SNI) reaches the first cluster" \
    "$(rr_port_via "${CI_B[@]}")" "^$PGPORT\$"

# ---- the sessions: half through each route, until the stop file ----
RR_STOP=$RR_DIR/stop
PGC_TIMEOUT=$((180 * IT_TIME_SCALE)) pgc pinned "$(ci "$RR_PORT" "${CI_A[@]}" connect_timeout=120)" \
    "$RR_HALF" "$RR_STOP" $((150 * IT_TIME_SCALE)) >"$RR_DIR/sessions-a.out" &
RR_SA=$!
PGC_TIMEOUT=$((180 * IT_TIME_SCALE)) pgc pinned "$(ci "$RR_PORT" "${CI_B[@]}" connect_timeout=120)" \
    "$RR_HALF" "$RR_STOP" $((150 * IT_TIME_SCALE)) >"$RR_DIR/sessions-b.out" &
RR_SB=$!
t=$SECONDS
wait_line "$RR_DIR/sessions-a.out" '^open=' $((90 * IT_TIME_SCALE))
wait_line "$RR_DIR/sessions-b.out" '^open=' $((90 * IT_TIME_SCALE))
expect "reloadroutes: $RR_N sessions open, $RR_HALF per route ($((SECONDS - t)) s)" \
    "$(grep -h '^open=' "$RR_DIR/sessions-a.out" "$RR_DIR/sessions-b.out" | tr '\n' ' ')" \
    "^open=$RR_HALF open=$RR_HALF \$"
ok0=$(rr_metric success)

# ---- 1. add route c (SNI c.localhost -> the second cluster) ----
rr_write "$RR_FILE" a b1 c
rr_step "reload 1 (route c added)"
expect "reloadroutes: a new session on the added route c reaches the second cluster" \
    "$(rr_port_via "${CI_C[@]}")" "^$RR_PG2\$"

# ---- 2. route b's upstream moves to the second cluster ----
rr_write "$RR_FILE" a b2 c
rr_step "reload 2 (route b's upstream changed)"
expect "reloadroutes: a new session on route b reaches its new upstream (second cluster)" \
    "$(rr_port_via "${CI_B[@]}")" "^$RR_PG2\$"

# ---- 3. route a removed: its server name is refused (no default route) ----
rr_write "$RR_FILE" b2 c
rr_step "reload 3 (route a removed)"
RR_SNI_A=$(printf a.localhost | od -An -tx1 | tr -d ' \n')
out=$(raw error 127.0.0.1 "$RR_PORT" --sni "$RR_SNI_A")
expect "reloadroutes: after removal, SNI a.localhost gets FATAL 08004 naming it" "$out" \
    '^sqlstate=08004 severity=FATAL message=.*no route for server name "a\.localhost"'
expect "reloadroutes: libpq sees the refusal of the removed route" \
    "$(rr_port_via "${CI_A[@]}")" 'no route for server name "a\.localhost"'
expect "reloadroutes: the refusal is logged (event=no_route sni=\"a.localhost\")" \
    "$(grep 'event=no_route' "$CUR_LOG" | tail -n 1)" 'sni="a\.localhost"'
ok1=$(rr_metric success)
expect "reloadroutes: three reloads counted (reloads_total{result=\"success\"} $ok0 -> $ok1)" \
    "$ok0:$ok1" "^$ok0:$((ok0 + 3))\$"

# ---- 4. a typo in the file: nothing changes, the log says why ----
f0=$(rr_metric failure)
rr_write "$RR_FILE" b1 typo
RR_TYPO_LINE=$(grep -n '^client-tls-validaton-host' "$RR_FILE" | cut -d: -f1)
rr_reload && fail "reloadroutes: the file with a typo is refused" "it was loaded"
expect "reloadroutes: the broken file logs reload_failed with file:line and the key meant" \
    "$(grep 'event=reload_failed' "$CUR_LOG" | tail -n 1)" \
    "reason=\"[^\"]*rr\\.conf:$RR_TYPO_LINE: unknown key \\\\\"client-tls-validaton-host\\\\\" \\(did you mean client-tls-validation-host\\?\\)\""
f1=$(rr_metric failure)
expect "reloadroutes: the failed reload is counted (reloads_total{result=\"failure\"} $f0 -> $f1)" \
    "$f0:$f1" "^$f0:$((f0 + 1))\$"
expect "reloadroutes: after the broken file route b still goes to the second cluster" \
    "$(rr_port_via "${CI_B[@]}")" "^$RR_PG2\$"
expect "reloadroutes: after the broken file route c still works" \
    "$(rr_port_via "${CI_C[@]}")" "^$RR_PG2\$"

# ---- the sessions: a few more queries, then all stop together ----
sleep 1
touch "$RR_STOP"
wait "$RR_SA"
wait "$RR_SB"
for r in a b; do
    out=$(cat "$RR_DIR/sessions-$r.out")
    expect "reloadroutes: route $r's $RR_HALF sessions all lived through the reloads, every result right" \
        "$(tr '\n' ' ' <<<"$out")" "(^| )sessions=$RR_HALF opened=$RR_HALF ok=$RR_HALF errors=0 queries=[0-9]+ min_queries=[1-9]"
    expect "reloadroutes: route $r's sessions stayed on the server they started on" \
        "$(grep '^port=' <<<"$out" | tr '\n' ' ')" "^port=$PGPORT sessions=$RR_HALF \$"
done
# The audit line of each session of the removed route still names it.
for ((_i = 0; _i < 50 * IT_TIME_SCALE; _i++)); do
    [ "$(count "$CUR_LOG" 'event=closed .*route="a"')" -ge "$RR_HALF" ] && break
    sleep 0.1
done
expect "reloadroutes: the removed route's sessions drained and closed as route=\"a\"" \
    "$(count "$CUR_LOG" 'event=closed .*route="a"')" "^$((RR_HALF + 1))\$"
stop_proxy reloadroutes
expect "reloadroutes: the proxy exits 0 on SIGTERM" "${IT_EXIT[reloadroutes]:-unset}" '^0$'
it_pg_stop "$RR_DIR/pg2"
