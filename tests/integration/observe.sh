# shellcheck shell=bash
# shellcheck disable=SC2034 # CUR_LOG is read by run.sh's fail()
# observe.sh - per-route observability (issue 14): two routes to the one
# test PostgreSQL, "good" (validation host localhost, which its certificate
# carries) and "bad" (wrong.example, which it does not): --check exits 1
# and names the bad route; /readyz is 503 naming it, /readyz/good 200,
# /readyz/bad 503 with the verification failure; the metrics carry
# route="good", route="bad" and route="-" (a client no route takes); a
# reload that removes the bad route makes /readyz 200.
#
# Sourced by run.sh, never executed: it uses run.sh's reporting (pass, fail,
# expect), helpers (wait_line, count), clients (ci, pgc) and variables
# (CERTS, LOGS, TMP, PGPORT). Loopback only; about ten seconds.

OB_DIR=$TMP/observe
mkdir -p "$OB_DIR"

# ob_write FILE PORT ADMIN_PORT WITH_BAD: the two routes (the bad one only
# when WITH_BAD is 1), no default route; atomically replaced.
ob_write() {
    {
        printf 'server-certificate-path = %s\n' "$CERTS/proxy.crt"
        printf 'server-private-key-path = %s\n' "$CERTS/proxy.key"
        printf 'server-host = 127.0.0.1\nserver-port = %s\n' "$2"
        printf 'admin-address = 127.0.0.1:%s\n' "$3"
        printf 'admin-ready-window = 30\nworkers = 1\n'
        printf 'client-ca-roots-path = %s\n' "$CERTS/db-ca.crt"
        printf '\n[route good]\ndatabases = app\n'
        printf 'client-connection-host-or-ip = 127.0.0.1\nclient-connection-port = %s\n' "$PGPORT"
        printf 'client-tls-validation-host = localhost\n'
        if [ "$4" = 1 ]; then
            printf '\n[route bad]\ndatabases = app_bad\n'
            printf 'client-connection-host-or-ip = 127.0.0.1\nclient-connection-port = %s\n' "$PGPORT"
            printf 'client-tls-validation-host = wrong.example\n'
        fi
    } >"$1.tmp" && mv -f "$1.tmp" "$1"
}

# ob_metric FILE SERIES: the value of one series exactly as written, or 0.
ob_metric() { awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }' "$1"; }
ob_scrape() { curl -s --max-time 5 -o "$2" "http://127.0.0.1:$1/metrics" 2>/dev/null || : >"$2"; }
# ob_get PATH: "CODE" then the body, from the admin endpoint.
ob_get() {
    local code
    code=$(curl -s --max-time 5 -w '%{http_code}' -o "$OB_DIR/body" "http://127.0.0.1:$OB_ADMIN$1")
    printf '%s\n' "${code:-000}"
    cat "$OB_DIR/body" 2>/dev/null
}

it_free_port OB_PORT
it_free_port OB_ADMIN
OB_FILE=$OB_DIR/routes.conf
ob_write "$OB_FILE" "$OB_PORT" "$OB_ADMIN" 1

# ---- 1. --check: one block per route, the bad one named, exit 1 ----
CUR_LOG=$LOGS/check-observe.log
timeout -k 5 60 "$PGTP_BIN" --check --config "$OB_FILE" >"$CUR_LOG" 2>"$LOGS/check-observe.err"
rc=$?
out=$(cat "$CUR_LOG")
expect "observe: --check with a good and a bad route exits 1" "rc=$rc" '^rc=1$'
expect "observe: --check prints a block per route: good verified and ok" "$out" \
    $'route good: upstream 127.0.0.1:[0-9]+, verify name "localhost"\nupstream 127.0.0.1:[0-9]+ verified as "localhost": TLS.*\nroute good: ok'
expect "observe: --check says route bad FAILED and why (the name does not match)" "$out" \
    'route bad: upstream 127.0.0.1:[0-9]+, verify name "wrong.example"'$'\n''route bad: FAILED: .*wrong\.example'
expect "observe: --check's last line names the failed route" "$(tail -n 1 <<<"$out")" \
    '^check failed: 1 of 2 routes: bad$'
expect "observe: --check reports route bad's failure on stderr too" \
    "$(count "$LOGS/check-observe.err" '^check failed: route bad: .*wrong\.example')" '^1$'
expect "observe: --check with a failed route never says 'check ok'" "$(count "$CUR_LOG" 'check ok')" \
    '^0$'
ob_write "$OB_DIR/good-only.conf" "$OB_PORT" "$OB_ADMIN" 0
out=$(timeout -k 5 60 "$PGTP_BIN" --check --config "$OB_DIR/good-only.conf" 2>&1)
expect "observe: --check with only the good route exits 0, 'check ok'" "$out"$'\n'"rc=$?" \
    $'route good: ok\ncheck ok\nrc=0$'

# ---- 2. a running proxy: sessions, failures and probes per route ----
CUR_LOG=$LOGS/proxy-observe.log
if it_proxy_start observe "$CUR_LOG" "$OB_PORT" --config "$OB_FILE"; then
    pass "observe: proxy with routes good and bad listens"
else
    fail "observe: proxy with routes good and bad listens" "not listening after 10 s"
fi
out=$(pgc query "$(ci "$OB_PORT")" "SELECT 'via good'")
expect "observe: a client of database app reaches PostgreSQL through route good" "$out" '^via good$'
out=$(pgc query "$(ci "$OB_PORT" dbname=app_bad)" "SELECT 1")
expect "observe: a client of database app_bad reads route bad's verification failure" \
    "$out" 'FATAL: +pg-tls-proxy: upstream certificate does not match the name "wrong\.example"'
out=$(pgc query "$(ci "$OB_PORT" dbname=nowhere)" "SELECT 1")
expect "observe: a client no route takes is refused, naming what it asked for" "$out" \
    'FATAL: +pg-tls-proxy: no route for server name "localhost", database "nowhere"'
expect "observe: the audit line names route good" \
    "$(count "$CUR_LOG" 'event=established .*route="good"')" '^[1-9]'

# The probe of route bad fails every interval; give it (and the closes) a moment.
for ((i = 0; i < 40; i++)); do
    ob_scrape "$OB_ADMIN" "$OB_DIR/m1.txt"
    [ "$(ob_metric "$OB_DIR/m1.txt" 'pg_tls_proxy_sessions_total{outcome="refused",route="-"}')" -ge 1 ] &&
        [ "$(ob_metric "$OB_DIR/m1.txt" 'pg_tls_proxy_readiness_probe_failures_total{route="bad"}')" -ge 1 ] &&
        break
    sleep 0.1
done
M=$OB_DIR/m1.txt
expect "observe: /metrics: sessions_total by route (good closed, bad upstream_error, '-' refused)" \
    "good=$(ob_metric "$M" 'pg_tls_proxy_sessions_total{outcome="closed",route="good"}') bad=$(ob_metric "$M" 'pg_tls_proxy_sessions_total{outcome="upstream_error",route="bad"}') none=$(ob_metric "$M" 'pg_tls_proxy_sessions_total{outcome="refused",route="-"}') bad_closed=$(ob_metric "$M" 'pg_tls_proxy_sessions_total{outcome="closed",route="bad"}')" \
    '^good=[1-9][0-9]* bad=1 none=1 bad_closed=0$'
expect "observe: /metrics: route bad's back handshake failure is counted under route=\"bad\" only" \
    "$(awk '/^pg_tls_proxy_handshake_failures_total\{leg="back",/ { split($1, a, "route=\""); r = a[2]; sub(/".*/, "", r); s[r] += $2 } END { printf "bad=%d good=%d", s["bad"], s["good"] }' "$M")" \
    '^bad=1 good=0$'
expect "observe: /metrics: probes of route bad failed (readiness_probe_failures_total{route=\"bad\"})" \
    "$(ob_metric "$M" 'pg_tls_proxy_readiness_probe_failures_total{route="bad"}') good=$(ob_metric "$M" 'pg_tls_proxy_readiness_probe_failures_total{route="good"}')" \
    '^[1-9][0-9]* good=0$'
expect "observe: /metrics: route good has a recent upstream success, route bad none" \
    "$(awk -v now="$(date +%s)" '/^pg_tls_proxy_upstream_last_success_timestamp_seconds\{route="good"\}/ { g = (now - $2 < 60) } /^pg_tls_proxy_upstream_last_success_timestamp_seconds\{route="bad"\}/ { b = $2 } END { print "good_recent=" g + 0, "bad=" b + 0 }' "$M")" \
    '^good_recent=1 bad=0$'
expect "observe: /metrics: active_sessions has a series per route" \
    "$(grep -c '^pg_tls_proxy_active_sessions{route="\(good\|bad\|-\)"} 0$' "$M")" '^3$'
# The timing histograms (issue 16): the three clients' TLS handshakes, the
# upstream handshakes of the good sessions and probes, the good sessions'
# durations (the bad and refused ones never reached the upstream), the cap.
OB_GOOD=$(ob_metric "$M" 'pg_tls_proxy_sessions_total{outcome="closed",route="good"}')
expect "observe: /metrics: front_handshake_seconds counts every client's TLS handshake (3)" \
    "$(ob_metric "$M" pg_tls_proxy_front_handshake_seconds_count)" '^3$'
expect "observe: /metrics: back_handshake_seconds counts the verified upstream handshakes (>= good sessions)" \
    "$(awk -v g="$OB_GOOD" '$1 == "pg_tls_proxy_back_handshake_seconds_count" { print ($2 >= g && g >= 1) ? "ok" : "count " $2 " good " g }' "$M")" '^ok$'
expect "observe: /metrics: session_duration_seconds counts only the sessions that reached the upstream" \
    "$(ob_metric "$M" pg_tls_proxy_session_duration_seconds_count) good=$OB_GOOD" "^$OB_GOOD good=$OB_GOOD\$"
expect "observe: /metrics: sessions of a SELECT last under 5 s (le=\"5\" bucket holds them all)" \
    "$(ob_metric "$M" 'pg_tls_proxy_session_duration_seconds_bucket{le="5"}')" "^$OB_GOOD\$"
expect "observe: /metrics: pg_tls_proxy_max_connections is the default cap" \
    "$(ob_metric "$M" pg_tls_proxy_max_connections)" '^10000$'

# ---- 3. /readyz: all routes, one route, an unknown route ----
out=$(ob_get /readyz)
expect "observe: /readyz is 503 while route bad has no verified handshake" "$(head -n 1 <<<"$out")" \
    '^503$'
expect "observe: /readyz says which route is not ready and why, and that good is ok" "$out" \
    $'not ready: 1 of 2 route\\(s\\).*\nroute good: ok, .*\nroute bad: not ready: .*last failure [0-9]+ s ago: .*wrong\\.example'
out=$(ob_get /readyz/good)
expect "observe: /readyz/good is 200" "$out" $'^200\nready\nroute good: ok'
out=$(ob_get /readyz/bad)
expect "observe: /readyz/bad is 503 with the failure" "$out" $'^503\nnot ready\nroute bad: not ready'
out=$(ob_get /readyz/nowhere)
expect "observe: /readyz/nowhere is 404 listing the routes" "$out" \
    $'^404\nno route "nowhere" in the running configuration; the routes are: good, bad'

# ---- 4. reload without the bad route: ready ----
cp "$OB_DIR/good-only.conf" "$OB_FILE"
kill -HUP "${IT_PIDS[observe]:-0}"
if wait_line "$CUR_LOG" 'event=reloaded' 10; then
    out=$(ob_get /readyz)
    expect "observe: after a reload without route bad, /readyz is 200 (good is ok)" "$out" \
        $'^200\nready\nroute good: ok'
    expect "observe: after the reload, /readyz/bad is 404" "$(ob_get /readyz/bad | head -n 1)" '^404$'
    ob_scrape "$OB_ADMIN" "$OB_DIR/m2.txt"
    expect "observe: a removed route's counters stay (sessions_total{route=\"bad\"} still 1)" \
        "$(ob_metric "$OB_DIR/m2.txt" 'pg_tls_proxy_sessions_total{outcome="upstream_error",route="bad"}')" \
        '^1$'
else
    fail "observe: SIGHUP without route bad reloads" "no event=reloaded in 10 s"
fi
stop_proxy observe
