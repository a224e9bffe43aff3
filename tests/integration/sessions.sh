# shellcheck shell=bash
# shellcheck disable=SC2034 # CUR_LOG is read by run.sh's fail()
# sessions.sh - the admin endpoint's sessions (issue 16, "Sessions now"):
# two sessions with distinct users and application names are listed by
# GET /sessions with the right fields (parsed with python3's json); one
# ended while idle by POST /sessions/ID/terminate sees FATAL 57P01 with the
# proxy's hint while the other goes on; one ended mid-COPY gets a clean
# FATAL 57P01, not a protocol error; unknown ids are 404, wrong methods
# 405; with --admin-token-file, no token or a wrong one is 401, the right
# one 200, /metrics stays open, a SIGHUP reads a new token, a short token
# refuses the start. (Non-loopback peers without a token: 403, unit-tested
# in test_adminsess.c: tests use loopback addresses only.)
#
# Sourced by run.sh, never executed: it uses run.sh's reporting (pass, fail,
# expect), helpers (wait_line, count), clients (ci, pgc) and variables
# (CERTS, LOGS, TMP, PGPORT, PGDATA_DIR, PASSWORD). Loopback only; about
# fifteen seconds.

SS_DIR=$TMP/sessions
SS_TS=${IT_TIME_SCALE:-1} # waits scale under valgrind
mkdir -p "$SS_DIR"
command -v python3 >/dev/null || it_die "sessions: python3 is needed to parse the JSON"

# ss_http METHOD PATH [CURL ARGS...]: "CODE" then the body.
ss_http() {
    local m=$1 p=$2 code
    shift 2
    code=$(curl -s --max-time 10 -X "$m" -w '%{http_code}' -o "$SS_DIR/body" "$@" \
        "http://127.0.0.1:$SS_ADMIN$p")
    printf '%s\n' "${code:-000}"
    cat "$SS_DIR/body" 2>/dev/null
}
# ss_json PYTHON_EXPR: evaluated with j = the last body's JSON; prints the result.
ss_json() {
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$SS_DIR/body" "$1" 2>&1
}

# A second role, so the two sessions differ by user too.
it_as_svc timeout 60 "$IT_PG_BINDIR/psql" -X -q -h "$PGDATA_DIR" -p "$PGPORT" -U postgres \
    -d postgres -v ON_ERROR_STOP=1 >/dev/null <<EOF || it_die "sessions: cannot create role sessuser"
CREATE ROLE sessuser LOGIN PASSWORD '$PASSWORD';
GRANT CONNECT ON DATABASE app TO sessuser;
EOF
printf '*:*:*:sessuser:%s\n' "$PASSWORD" >>"$PGPASSFILE"

it_free_port SS_PORT
it_free_port SS_ADMIN
CUR_LOG=$LOGS/proxy-sessions.log
if it_proxy_start sessions "$CUR_LOG" "$SS_PORT" --server-host 127.0.0.1 --server-port "$SS_PORT" \
    --server-certificate-path "$CERTS/proxy.crt" --server-private-key-path "$CERTS/proxy.key" \
    --client-connection-host-or-ip 127.0.0.1 --client-connection-port "$PGPORT" \
    --client-tls-validation-host localhost --client-ca-roots-path "$CERTS/db-ca.crt" \
    --admin-address "127.0.0.1:$SS_ADMIN" --workers 2; then
    pass "sessions: proxy with --admin-address listens"
else
    fail "sessions: proxy with --admin-address listens" "it did not start"
fi

# ---- 1. two sessions: an idle psql (user app) and a busy one (sessuser) ----
mkfifo "$SS_DIR/idle.in"
timeout -k 5 60 psql -X -v VERBOSITY=verbose "$(ci "$SS_PORT" application_name=sess-idle)" \
    <"$SS_DIR/idle.in" >"$SS_DIR/idle.out" 2>&1 &
SS_IDLE_PID=$!
exec 7>"$SS_DIR/idle.in"
echo "SELECT 'idle-ready';" >&7
timeout -k 5 60 "$PGCLIENT" hold-until "$(ci "$SS_PORT" user=sessuser application_name='sess-busy')" \
    "$SS_DIR/busy.stop" 50 >"$SS_DIR/busy.out" 2>&1 &
SS_BUSY_PID=$!
wait_line "$SS_DIR/idle.out" 'idle-ready' $((20 * SS_TS))
wait_line "$SS_DIR/busy.out" '^connected$' $((20 * SS_TS))
sleep 0.3

out=$(ss_http GET /sessions)
expect "sessions: GET /sessions answers 200" "$(head -n 1 <<<"$out")" '^200$'
expect "sessions: GET /sessions lists both, count 2" \
    "$(ss_json '(j["count"], len(j["sessions"]), j["truncated"], j["draining"])')" \
    '^\(2, 2, False, False\)$'
expect "sessions: the idle one: user, database, application_name, client, TLS both legs" \
    "$(ss_json '[(s["user"], s["database"], s["client"].startswith("127.0.0.1:"), s["route"], s["front_tls_version"], s["front_tls_cipher"] is not None, s["back_tls_version"], s["load_balancer"], s["bridge_stream"]) for s in j["sessions"] if s["application_name"] == "sess-idle"]')" \
    "^\[\('app', 'app', True, 'default', 'TLSv1\.[23]', True, 'TLSv1\.[23]', None, None\)\]$"
expect "sessions: the busy one: user sessuser, state active or idle, bytes both ways" \
    "$(ss_json '[(s["user"], s["state"] in ("active", "idle"), s["bytes_from_client"] > 0, s["bytes_from_upstream"] > 0, s["age_s"] >= 0, s["idle_s"] >= 0, s["worker"] in (0, 1)) for s in j["sessions"] if s["application_name"] == "sess-busy"]')" \
    "^\[\('sessuser', True, True, True, True, True, True\)\]$"
SS_IDLE_ID=$(ss_json '[s["id"] for s in j["sessions"] if s["application_name"] == "sess-idle"][0]')
expect "sessions: the idle psql is idle" \
    "$(ss_json '[s["state"] for s in j["sessions"] if s["application_name"] == "sess-idle"]')" \
    "^\['idle'\]$"

out=$(ss_http GET "/sessions/$SS_IDLE_ID")
expect "sessions: GET /sessions/ID answers that session" \
    "$(head -n 1 <<<"$out") $(ss_json '(j["id"], j["application_name"])')" \
    "^200 \($SS_IDLE_ID, 'sess-idle'\)$"
out=$(ss_http GET /sessions/999999999)
expect "sessions: GET /sessions/ID of no session: 404" "$out" '^404'$'\n''.*no open session'
out=$(ss_http GET /sessions/01)
expect "sessions: a malformed id: 404" "$(head -n 1 <<<"$out")" '^404$'
out=$(curl -s --max-time 10 -I "http://127.0.0.1:$SS_ADMIN/sessions" | tr -d '\r')
expect "sessions: HEAD /sessions: 200, JSON, no body" "$out" \
    '^HTTP/1.1 200 OK'$'\n''Content-Type: application/json'$'\n''Content-Length: [1-9][0-9]*'
out=$(curl -s --max-time 10 -i -X DELETE "http://127.0.0.1:$SS_ADMIN/sessions/$SS_IDLE_ID" |
    tr -d '\r')
expect "sessions: DELETE /sessions/ID: 405, Allow: GET, HEAD" "$out" \
    '^HTTP/1.1 405 .*Allow: GET, HEAD'
out=$(curl -s --max-time 10 -i "http://127.0.0.1:$SS_ADMIN/sessions/$SS_IDLE_ID/terminate" |
    tr -d '\r')
expect "sessions: GET .../terminate: 405, Allow: POST (GET never ends a session)" "$out" \
    '^HTTP/1.1 405 .*Allow: POST'

# ---- 2. terminate the idle one: 57P01 and the hint; the busy one goes on ----
out=$(ss_http POST "/sessions/$SS_IDLE_ID/terminate")
expect "sessions: POST /sessions/ID/terminate: 200 {\"terminated\":ID}" "$out" \
    "^200"$'\n'"\{\"terminated\":$SS_IDLE_ID\}$"
wait_line "$CUR_LOG" "event=session_terminated conn=$SS_IDLE_ID .*by=admin peer=127\.0\.0\.1:" $((5 * SS_TS))
expect "sessions: event=session_terminated names the session, by=admin and the peer" \
    "$(count "$CUR_LOG" "event=session_terminated conn=$SS_IDLE_ID .*by=admin peer=127\.0\.0\.1:")" \
    '^1$'
echo "SELECT 'after-terminate';" >&7
exec 7>&-
wait "$SS_IDLE_PID"
out=$(cat "$SS_DIR/idle.out")
expect "sessions: the idle client reads FATAL 57P01 terminating connection due to administrator command" \
    "$out" 'FATAL: +57P01: terminating connection due to administrator command'
expect "sessions: ... with a hint naming the proxy's admin endpoint" "$out" \
    "HINT: +pg-tls-proxy's admin endpoint ended this session"
expect "sessions: ... and its next query never ran" "$(grep -c 'after-terminate$' <<<"$out")" '^0$'
wait_line "$CUR_LOG" "event=closed conn=$SS_IDLE_ID .*outcome=terminated" $((5 * SS_TS))
expect "sessions: the closed line says outcome=terminated" \
    "$(count "$CUR_LOG" "event=closed conn=$SS_IDLE_ID .*outcome=terminated")" '^1$'
out=$(curl -s --max-time 5 "http://127.0.0.1:$SS_ADMIN/metrics" |
    grep -E '^pg_tls_proxy_sessions_total\{.*outcome="terminated"' | awk '{ s += $2 } END { print s + 0 }')
expect "sessions: pg_tls_proxy_sessions_total{outcome=\"terminated\"} counts it" "$out" '^1$'
out=$(ss_http POST "/sessions/$SS_IDLE_ID/terminate")
expect "sessions: terminating it again: 404" "$(head -n 1 <<<"$out")" '^404$'
out=$(ss_http GET /sessions)
expect "sessions: GET /sessions now lists the busy one only" \
    "$(ss_json '[s["application_name"] for s in j["sessions"]]')" "^\['sess-busy'\]$"
touch "$SS_DIR/busy.stop"
wait "$SS_BUSY_PID"
expect "sessions: the other session kept working to the end" "$(cat "$SS_DIR/busy.out")" \
    'hold queries=[1-9][0-9]* ok$'

# ---- 3. terminate before the login: the FATAL at once, inside TLS ----
timeout -k 5 40 "$RAWCLIENT" error localhost "$SS_PORT" --no-startup >"$SS_DIR/nostartup.out" 2>&1 &
SS_NS_PID=$!
wait_line "$SS_DIR/nostartup.out" '^tls-up$' $((10 * SS_TS))
ss_http GET /sessions >/dev/null
expect "sessions: a client that has sent no StartupMessage is listed in state startup, no user yet" \
    "$(ss_json '[(s["state"], s["user"], s["front_tls_version"] is not None) for s in j["sessions"]]')" \
    "^\[\('startup', '', True\)\]$"
SS_NS_ID=$(ss_json 'j["sessions"][0]["id"]')
out=$(ss_http POST "/sessions/$SS_NS_ID/terminate")
expect "sessions: terminating it: 200" "$(head -n 1 <<<"$out")" '^200$'
wait "$SS_NS_PID"
expect "sessions: it reads FATAL 57P01 at once, inside TLS" "$(cat "$SS_DIR/nostartup.out")" \
    $'tls-up\nsqlstate=57P01 severity=FATAL message=terminating connection due to administrator command'
expect "sessions: logged with fatal=now_login" \
    "$(count "$CUR_LOG" "event=session_terminated conn=$SS_NS_ID .*state=startup fatal=now_login")" '^1$'

# ---- 4. terminate mid-COPY: a clean FATAL, not a protocol error ----
timeout -k 5 60 "$PGCLIENT" copy-out "$(ci "$SS_PORT" application_name=sess-copy)" \
    "COPY (SELECT g, repeat('x', 200) FROM generate_series(1, 3000000) g) TO STDOUT" \
    "$SS_DIR/copy.data" >"$SS_DIR/copy.out" 2>&1 &
SS_COPY_PID=$!
for _ in $(seq 1 $((200 * SS_TS))); do
    [ "$(stat -c %s "$SS_DIR/copy.data" 2>/dev/null || echo 0)" -gt 1000000 ] && break
    sleep 0.05
done
ss_http GET /sessions >/dev/null
SS_COPY_ID=$(ss_json '[s["id"] for s in j["sessions"] if s["application_name"] == "sess-copy"][0]')
out=$(ss_http POST "/sessions/$SS_COPY_ID/terminate")
expect "sessions: terminate during COPY TO STDOUT: 200" "$(head -n 1 <<<"$out")" '^200$'
wait "$SS_COPY_PID"
out=$(cat "$SS_DIR/copy.out")
expect "sessions: the COPY client reads FATAL 57P01 (a whole message, between two rows)" "$out" \
    'sqlstate=57P01 .*terminating connection due to administrator command'
expect "sessions: ... and no protocol error" \
    "$(grep -ciE 'lost synchronization|invalid message|unexpected message|message type' <<<"$out")" \
    '^0$'
expect "sessions: the proxy found a boundary (no unclean terminate)" \
    "$(count "$CUR_LOG" 'event=session_terminate_unclean')" '^0$'
it_note "sessions: mid-COPY terminate placed the FATAL: $(sed -n "s/.*event=session_terminated conn=$SS_COPY_ID .*fatal=\([a-z_]*\).*/\1/p" "$CUR_LOG")"

# ---- 5. no boundary in time: a client that stopped reading inside one
# 30 MB message; the terminate waits 2 s for its end, then closes without
# the FATAL (which could only land inside the message) ----
timeout -k 5 60 "$PGCLIENT" pause-copy-out "$(ci "$SS_PORT" application_name=sess-stalled)" \
    "COPY (SELECT repeat('x', 30000000)) TO STDOUT" $((5 * SS_TS)) >"$SS_DIR/stalled.out" 2>&1 &
SS_STALL_PID=$!
SS_STALL_ID=""
for _ in $(seq 1 $((100 * SS_TS))); do # until it is listed, its 30 MB message under way
    ss_http GET /sessions >/dev/null
    SS_STALL_ID=$(ss_json '[s["id"] for s in j["sessions"] if s["application_name"] == "sess-stalled" and s["bytes_from_upstream"] > 1000000][0]' 2>/dev/null)
    [[ $SS_STALL_ID =~ ^[0-9]+$ ]] && break
    sleep 0.1
done
SS_T0=$(now_ms)
out=$(ss_http POST "/sessions/$SS_STALL_ID/terminate")
expect "sessions: terminate inside a message the client does not read: 200" \
    "$(head -n 1 <<<"$out")" '^200$'
wait_line "$CUR_LOG" "event=session_terminate_unclean conn=$SS_STALL_ID " $((6 * SS_TS))
SS_MS=$(($(now_ms) - SS_T0))
expect "sessions: ... it waited for a boundary (fatal=at_next_boundary), then gave up after 2 s" \
    "$(count "$CUR_LOG" "event=session_terminated conn=$SS_STALL_ID .*fatal=at_next_boundary") $(count "$CUR_LOG" "event=session_terminate_unclean conn=$SS_STALL_ID .*waited_ms=2000") $((SS_MS >= 1900 && SS_MS < 4500 * SS_TS))" \
    '^1 1 1$'
wait "$SS_STALL_PID"
out=$(cat "$SS_DIR/stalled.out")
expect "sessions: ... and that client sees the connection end, not a FATAL inside its data" "$out" \
    'query-error'
expect "sessions: ... with no 57P01" "$(grep -c 57P01 <<<"$out")" '^0$'

# ---- 6. while the proxy drains, the endpoint still answers, and says so ----
timeout -k 5 60 "$PGCLIENT" hold-until "$(ci "$SS_PORT" application_name=sess-drain)" \
    "$SS_DIR/drain.stop" 50 >"$SS_DIR/drain.out" 2>&1 &
SS_DRAIN_PID=$!
wait_line "$SS_DIR/drain.out" '^connected$' $((20 * SS_TS))
kill -TERM "${IT_PIDS[sessions]}"
for _ in $(seq 1 $((100 * SS_TS))); do # both workers (--workers 2) have begun draining
    [ "$(count "$CUR_LOG" 'event=worker_draining')" -ge 2 ] && break
    sleep 0.05
done
out=$(ss_http GET /sessions)
expect "sessions: during a drain GET /sessions answers, draining: true, the session in state draining" \
    "$(head -n 1 <<<"$out") $(ss_json '(j["draining"], [s["state"] for s in j["sessions"]])')" \
    "^200 \(True, \['draining'\]\)$"
touch "$SS_DIR/drain.stop"
wait "$SS_DRAIN_PID"
# It exits by itself once that session has ended; a second SIGTERM while it
# is exiting (its signal handlers gone) would kill it instead.
for _ in $(seq 1 $((200 * SS_TS))); do
    kill -0 "${IT_PIDS[sessions]}" 2>/dev/null || break
    sleep 0.05
done
it_stop sessions

# ---- 7. --admin-token-file: bearer token from every peer ----
SS_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && printf '%s\n' "$SS_TOKEN" >"$SS_DIR/token")
(umask 077 && printf 'short\n' >"$SS_DIR/short-token")
out=$(timeout -k 5 20 "$PGTP_BIN" --server-certificate-path "$CERTS/proxy.crt" \
    --server-private-key-path "$CERTS/proxy.key" --client-connection-host-or-ip 127.0.0.1 \
    --client-connection-port "$PGPORT" --client-ca-roots-path "$CERTS/db-ca.crt" \
    --server-host 127.0.0.1 --server-port "$SS_PORT" --admin-address "127.0.0.1:$SS_ADMIN" \
    --admin-token-file "$SS_DIR/short-token" 2>&1)
expect "sessions: a token shorter than 16 bytes refuses the start, saying so" "$out"$'\n'"rc=$?" \
    'admin-token-file .*shorter than 16.*rc=2$'
CUR_LOG=$LOGS/proxy-sessions-token.log
if it_proxy_start sessions-token "$CUR_LOG" "$SS_PORT" --server-host 127.0.0.1 \
    --server-port "$SS_PORT" --server-certificate-path "$CERTS/proxy.crt" \
    --server-private-key-path "$CERTS/proxy.key" --client-connection-host-or-ip 127.0.0.1 \
    --client-connection-port "$PGPORT" --client-tls-validation-host localhost \
    --client-ca-roots-path "$CERTS/db-ca.crt" --admin-address "127.0.0.1:$SS_ADMIN" \
    --admin-token-file "$SS_DIR/token" --server-proxy-protocol; then
    pass "sessions: proxy with --admin-token-file listens"
else
    fail "sessions: proxy with --admin-token-file listens" "it did not start"
fi
out=$(curl -s --max-time 10 -i "http://127.0.0.1:$SS_ADMIN/sessions" | tr -d '\r')
expect "sessions: with a token file, no token: 401 with WWW-Authenticate: Bearer" "$out" \
    '^HTTP/1.1 401 Unauthorized'$'\n''.*WWW-Authenticate: Bearer'
out=$(ss_http GET /sessions -H "Authorization: Bearer ${SS_TOKEN}x")
expect "sessions: a wrong token: 401" "$(head -n 1 <<<"$out")" '^401$'
# Refusals are logged once a second at most, each line counting those that
# were not since the last: 20 wrong tokens in a burst, then one more a
# second later. Every refusal is in a line or in a count (the two before
# the burst may be carried into its first line's count).
ss_denied0=$(count "$CUR_LOG" 'event=admin_denied ')
ss_codes=""
for _ in $(seq 20); do
    ss_codes+=$(head -n 1 < <(ss_http GET /sessions -H "Authorization: Bearer ${SS_TOKEN}y"))
done
sleep 1.2
ss_http GET /sessions -H "Authorization: Bearer ${SS_TOKEN}y" >/dev/null
sleep 0.5
ss_lines=$(grep 'event=admin_denied ' "$CUR_LOG" | tail -n +$((ss_denied0 + 1)))
ss_n=$(grep -c . <<<"$ss_lines")
ss_sum=$(grep -oE 'suppressed=[0-9]+' <<<"$ss_lines" | cut -d= -f2 | awk '{ s += $1 } END { print s + 0 }')
expect "sessions: 21 refusals, 20 in a burst: all 401, at most 4 admin_denied lines, and lines + counts cover them all" \
    "${ss_codes//401/.} lines_ok=$([ "$ss_n" -le 4 ] && echo yes || echo "no($ss_n)") covered=$([ $((ss_n + ss_sum)) -ge 21 ] && [ $((ss_n + ss_sum)) -le 23 ] && echo yes || echo "no($ss_n+$ss_sum)")" \
    '^\.{20} lines_ok=yes covered=yes$'
out=$(ss_http GET /sessions -H "Authorization: Bearer $SS_TOKEN")
expect "sessions: the right token: 200 and the list" "$out" '^200'$'\n''\{"sessions":\[\],"count":0'
out=$(ss_http POST /sessions/1/terminate)
expect "sessions: terminate without the token: 401 (whatever the id)" "$(head -n 1 <<<"$out")" \
    '^401$'
out=$(ss_http GET /metrics)
expect "sessions: /metrics needs no token" "$(head -n 1 <<<"$out")" '^200$'
expect "sessions: the token never reaches the log" "$(count "$CUR_LOG" "$SS_TOKEN")" '^0$'
SS_TOKEN2=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$SS_TOKEN2" >"$SS_DIR/token"
kill -HUP "${IT_PIDS[sessions-token]}"
wait_line "$CUR_LOG" 'event=admin_token_reloaded' $((5 * SS_TS))
out=$(ss_http GET /sessions -H "Authorization: Bearer $SS_TOKEN2")
expect "sessions: after SIGHUP the new token is the one: 200" "$(head -n 1 <<<"$out")" '^200$'
out=$(ss_http GET /sessions -H "Authorization: Bearer $SS_TOKEN")
expect "sessions: ... and the old one 401" "$(head -n 1 <<<"$out")" '^401$'
printf 'tiny\n' >"$SS_DIR/token"
kill -HUP "${IT_PIDS[sessions-token]}"
wait_line "$CUR_LOG" 'event=reload_failed what=admin_token_file' $((5 * SS_TS))
out=$(ss_http GET /sessions -H "Authorization: Bearer $SS_TOKEN2")
expect "sessions: a bad token file on SIGHUP is logged and the token in use stays" \
    "$(head -n 1 <<<"$out") $(count "$CUR_LOG" 'event=reload_failed what=admin_token_file')" \
    '^200 1$'

# ---- 8. PROXY protocol: the client's address, and the load balancer's ----
timeout -k 5 40 "$RAWCLIENT" error localhost "$SS_PORT" --proxy-v2 203.0.113.7 --no-startup \
    >"$SS_DIR/pp.out" 2>&1 &
SS_PP_PID=$!
wait_line "$SS_DIR/pp.out" '^tls-up$' $((10 * SS_TS))
ss_http GET /sessions -H "Authorization: Bearer $SS_TOKEN2" >/dev/null
expect "sessions: through PROXY protocol, client is the header's source, load_balancer the peer" \
    "$(ss_json '[(s["client"], s["load_balancer"].split(":")[0]) for s in j["sessions"]]')" \
    "^\[\('203\.0\.113\.7:40001', '127\.0\.0\.1'\)\]$"
SS_PP_ID=$(ss_json 'j["sessions"][0]["id"]')
out=$(ss_http POST "/sessions/$SS_PP_ID/terminate" -H "Authorization: Bearer $SS_TOKEN2")
expect "sessions: terminate with the token: 200" "$(head -n 1 <<<"$out")" '^200$'
wait "$SS_PP_PID"
expect "sessions: ... and that client reads FATAL 57P01" "$(cat "$SS_DIR/pp.out")" \
    'sqlstate=57P01 severity=FATAL message=terminating connection due to administrator command'
it_stop sessions-token
