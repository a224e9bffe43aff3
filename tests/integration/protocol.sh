# shellcheck shell=bash
# shellcheck disable=SC2034 # CUR_LOG is read by run.sh's fail()
# protocol.sh - start-up spoken the way PostgreSQL speaks it: cancel
# requests (plaintext, inside TLS, with wrong keys), PG17 direct TLS on both
# legs, channel binding, sidecar mode, --server-allow-from, protocol minor
# versions, GSSENCRequest and replication connections.
#
# Sourced by run.sh while proxy 'main' runs, never executed: it uses run.sh's
# reporting (pass, fail, expect, oneline) and helpers (now_ms, lt,
# wait_line, count), clients (ci, pgc, raw), proxies
# (start_proxy, stop_proxy) and variables (CERTS, LOGS, TMP, PGPORT,
# PGDATA_DIR, MAIN_PORT, CI_MAIN), so that there is one numbering and one
# closing line. Every client is bounded by timeout; loopback only. Proxies
# and fakes started here are stopped here (their exit status is judged by
# run.sh's "every proxy exits 0 on SIGTERM").

# ---- helpers (now_ms, lt, wait_line, count, backend_active and
# start_session are run.sh's) ----

# A key that differs from $1 (hex) in its last digit.
wrong_key() {
    local k=$1
    printf '%s%x' "${k%?}" $(((0x${k: -1} + 1) % 16))
}

# cancel_case NAME [CANCEL-OPTIONS...]: a session runs pg_sleep(30) through
# proxy 'main'; rawclient sends a CancelRequest with its real key; the query
# must end with 57014 within 2 s of the cancel being sent.
cancel_case() {
    local name=$1 t0 ms out
    shift
    if ! start_session "$name" "$MAIN_PORT" "SELECT pg_sleep(30)"; then
        fail "$name" "session did not start: $(oneline "$(cat "$TMP/$name.out")")"
        kill -TERM "$SESS_PID" 2>/dev/null
        wait "$SESS_PID"
        return
    fi
    t0=$(now_ms)
    raw cancel 127.0.0.1 "$MAIN_PORT" "$SESS_BPID" "$SESS_KEY" "$@" >"$TMP/$name.cancel"
    wait "$SESS_PID"
    ms=$(($(now_ms) - t0))
    out=$(cat "$TMP/$name.out")
    if [[ $out =~ query-end\ sqlstate=57014 ]] && [ "$ms" -lt 2000 ]; then
        pass "$name: 57014 ${ms} ms after the cancel"
    else
        fail "$name: 57014 within 2 s" \
            "after ${ms} ms: $(oneline "$out"); cancel: $(oneline "$(cat "$TMP/$name.cancel")")"
    fi
}

PROTOCOL_T0=$SECONDS
CUR_LOG=$LOGS/proxy-main.log

# ======================================================================
# Cancel requests
# ======================================================================

# psql's Ctrl-C: libpq's PQcancel sends a plaintext CancelRequest to the
# address it connected to, i.e. to the proxy, which forwards it over TLS.
out=$(pgc cancel "$CI_MAIN" 1000)
t=$(sed -n 's/.*cancel_to_end=\([0-9.]*\).*/\1/p' <<<"$out")
if [[ $out =~ ^cancel\ sent=1\ sqlstate=57014\  ]] && lt "$t" 2; then
    pass "PQcancel through the proxy: pg_sleep(30) ends with 57014 ${t} s after the cancel"
else
    fail "PQcancel through the proxy: pg_sleep(30) ends with 57014 within 2 s" "$(oneline "$out")"
fi

# psql itself, with SIGINT as from Ctrl-C (to psql, not to timeout).
timeout -k 5 40 psql -X -q "$CI_MAIN" -c "SELECT pg_sleep(30) /* psql-sigint */" \
    >"$TMP/psql-sigint.out" 2>&1 &
TPID=$!
if backend_active "query LIKE '%/* psql-sigint */'" >/dev/null; then
    PSQL_PID=$(pgrep -P "$TPID" -x psql)
    t0=$(now_ms)
    kill -INT "${PSQL_PID:-$TPID}"
    wait "$TPID"
    rc=$? ms=$(($(now_ms) - t0))
    out=$(cat "$TMP/psql-sigint.out")
    if [[ $out =~ canceling\ statement\ due\ to\ user\ request ]] && [ "$ms" -lt 2000 ]; then
        pass "psql + SIGINT: 'canceling statement due to user request' after ${ms} ms (rc=$rc)"
    else
        fail "psql + SIGINT: 'canceling statement due to user request' within 2 s" \
            "after ${ms} ms, rc=$rc: $(oneline "$out")"
    fi
else
    kill -TERM "$TPID" 2>/dev/null
    wait "$TPID"
    fail "psql + SIGINT: 'canceling statement due to user request' within 2 s" \
        "the query never showed up in pg_stat_activity: $(oneline "$(cat "$TMP/psql-sigint.out")")"
fi

# Wrong keys cancel nothing: the real pid with a wrong key (plaintext and
# inside TLS), a random pid, and the real pid with the real key followed by
# 28 more bytes (a protocol 3.2 length: PostgreSQL 15 only issues 4-byte
# keys, the unit tests cover parsing longer ones). Each is dropped; they
# are counted, not logged one by one: event=cancel_summary, at most one
# line per 10 s, says unknown_key= (checked at the end of this section).
unknown_keys() {
    tail -n +"$1" "$LOGS/proxy-main.log" | grep 'event=cancel_summary' |
        sed -n 's/.* unknown_key=\([0-9]*\) .*/\1/p' | awk '{ s += $1 } END { print s + 0 }'
}
SUMMARY_FROM=$(($(wc -l <"$LOGS/proxy-main.log") + 1))
if start_session cancel-wrong "$MAIN_PORT" "SELECT 'survived' FROM pg_sleep(3)"; then
    WRONG_PID=$SESS_PID
    bad=
    raw cancel 127.0.0.1 "$MAIN_PORT" "$SESS_BPID" "$(wrong_key "$SESS_KEY")" >/dev/null ||
        bad+=" plaintext-wrong-key"
    raw cancel localhost "$MAIN_PORT" "$SESS_BPID" "$(wrong_key "$SESS_KEY")" --tls >/dev/null ||
        bad+=" tls-wrong-key"
    raw cancel 127.0.0.1 "$MAIN_PORT" $((1000000 + RANDOM * 32768 + RANDOM)) \
        "$(openssl rand -hex 4)" >/dev/null || bad+=" random-pid"
    raw cancel 127.0.0.1 "$MAIN_PORT" "$SESS_BPID" "$SESS_KEY$(openssl rand -hex 28)" \
        >/dev/null || bad+=" long-key"
    # Meanwhile, the right key inside TLS (libpq 17's PQcancelCreate), after
    # an SSLRequest and with direct TLS.
    cancel_case "CancelRequest inside TLS (SSLRequest, then TLS) with the real key" --tls
    cancel_case "CancelRequest inside direct TLS (ALPN postgresql) with the real key" --direct
    wait "$WRONG_PID"
    out=$(cat "$TMP/cancel-wrong.out")
    expect "CancelRequests with wrong keys cancel nothing: pg_sleep(3) completes" \
        "$out${bad:+ failed:$bad}" $'row=survived\nquery-end sqlstate=none [^\n]*$'
    leaked=$(grep -c -i -F -- "$SESS_KEY" "$LOGS/proxy-main.log")
    expect "no cancel key appears in the proxy log" "key-lines=$leaked" '^key-lines=0$'
else
    fail "CancelRequests with wrong keys cancel nothing" \
        "session did not start: $(oneline "$(cat "$TMP/cancel-wrong.out")")"
    kill -TERM "$SESS_PID" 2>/dev/null
    wait "$SESS_PID"
fi

# ======================================================================
# Direct TLS (PostgreSQL 17 sslnegotiation=direct) on the front leg
# ======================================================================
out=$(raw error localhost "$MAIN_PORT" --direct)
expect "direct TLS with ALPN postgresql: handshake, ALPN selected, server's AuthenticationSASL" \
    "$out" $'^tls=TLSv1\\.[23] alpn=postgresql\nauth=10$'
out=$(raw session localhost "$MAIN_PORT" --direct --query "SELECT 'direct tls ok'")
expect "direct TLS: a whole session (SCRAM login, query)" "$out" \
    $'\nlogin=ok pid=[0-9]+ key=[0-9a-f]+\nquery-sent\nrow=direct tls ok\n'
out=$(raw error localhost "$MAIN_PORT" --direct --no-alpn)
expect "direct TLS without ALPN: FATAL 08P01 inside TLS, message mentions ALPN" "$out" \
    $'^tls=TLSv1\\.[23] alpn=none\nsqlstate=08P01 severity=FATAL message=.*ALPN'
out=$(raw error localhost "$MAIN_PORT" --direct --alpn http/1.1)
expect "direct TLS offering only ALPN http/1.1: handshake refused (no_application_protocol)" \
    "$out" '^tls-handshake-failed=.*no application protocol'
out=$(raw error localhost "$MAIN_PORT" --alpn postgresql)
expect "SSLRequest, then TLS offering ALPN postgresql (libpq 17): selected" "$out" \
    $'^sslresponse=S\ntls=TLSv1\\.[23] alpn=postgresql\nauth=10$'
out=$(raw error localhost "$MAIN_PORT" --pipeline-hello)
expect "SSLRequest and ClientHello in one write: 'S', then a working handshake" "$out" \
    $'^sslresponse=S\ntls=TLSv1\\.[23] alpn=none\nauth=10$'

# ======================================================================
# --client-direct-tls: a PostgreSQL 17 stand-in, and the real PostgreSQL 15
# (the real PostgreSQL 17 and 18: pgversions.sh)
# ======================================================================
it_free_port DFAKE_PORT
it_spawn fake-direct-tls "$LOGS/fake-upstream-direct-tls.log" "$RAWCLIENT" fake-upstream \
    "$DFAKE_PORT" direct-tls "$CERTS/db-server.crt" "$CERTS/db-server.key"
if it_wait_port "$DFAKE_PORT" 10 "${IT_PIDS[fake-direct-tls]}"; then
    pass "fake upstream (direct-tls) listens"
else
    fail "fake upstream (direct-tls) listens" \
        "$(oneline "$(cat "$LOGS/fake-upstream-direct-tls.log")")"
fi
it_free_port P
start_proxy client-direct-tls "$P" 127.0.0.1 "$DFAKE_PORT" localhost "$CERTS/db-ca.crt" \
    --client-direct-tls
out=$(raw error localhost "$P")
expect "--client-direct-tls against a direct-TLS upstream: the client gets AuthenticationOk" \
    "$out" '^auth=0$'
wait_line "$LOGS/fake-upstream-direct-tls.log" 'bytes-after-answer=' 5
FAKE_LOG=$(cat "$LOGS/fake-upstream-direct-tls.log")
expect "--client-direct-tls: upstream saw a ClientHello first, no SSLRequest" "$FAKE_LOG" \
    $'\nconn=[0-9]+ first-byte=0x16 no-sslrequest\n'
expect "--client-direct-tls: upstream saw ALPN postgresql and SNI localhost" "$FAKE_LOG" \
    $'\nconn=[0-9]+ tls=TLSv1\\.[23] alpn=postgresql sni=localhost\n'
expect "--client-direct-tls: upstream got the client's StartupMessage" "$FAKE_LOG" \
    $'\nconn=[0-9]+ startup protocol=3\\.0 user=app\n'
if [[ $FAKE_LOG =~ got\ SSLRequest ]]; then
    fail "--client-direct-tls: never an SSLRequest upstream" "$(oneline "$FAKE_LOG")"
fi
stop_proxy client-direct-tls
it_stop fake-direct-tls

it_free_port P
start_proxy client-direct-tls-pg15 "$P" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --client-direct-tls
out=$(raw error localhost "$P")
expect "--client-direct-tls against PostgreSQL 15: FATAL 08001 naming --client-direct-tls" \
    "$out" '^sqlstate=08001 severity=FATAL message=.*--client-direct-tls'
stop_proxy client-direct-tls-pg15
CUR_LOG=$LOGS/proxy-main.log

# ======================================================================
# Channel binding
# ======================================================================
CB_MARK=$(count "$PGDATA_DIR/server.log" 'channel binding')
out=$(timeout -k 5 30 psql -X -A -t -q "${CI_MAIN/ channel_binding=disable/}" -c "SELECT 1" 2>&1)
rc=$?
expect "psql, default channel_binding: FATAL says SCRAM-SHA-256-PLUS cannot pass a TLS-terminating proxy" \
    "rc=$rc $out" \
    '^rc=2 .*FATAL:  pg-tls-proxy: channel binding \(SCRAM-SHA-256-PLUS\) cannot pass through a TLS-terminating proxy'
expect "psql, default channel_binding: HINT says channel_binding=disable" "$out" \
    $'\nHINT:  Connect with channel_binding=disable'
out=$(raw session localhost "$PGPORT" --plus --query "SELECT 'plus ok'")
expect "control: rawclient's SCRAM-SHA-256-PLUS logs in directly to PostgreSQL" "$out" \
    $'\nlogin=ok pid=[0-9]+ key=[0-9a-f]+\nquery-sent\nrow=plus ok\n'
out=$(raw session localhost "$MAIN_PORT" --plus)
expect "SCRAM-SHA-256-PLUS through the proxy: FATAL 28000, the hint names libpq's and pgJDBC's settings" \
    "$out" $'^mechanisms=SCRAM-SHA-256-PLUS,SCRAM-SHA-256\nsqlstate=28000 severity=FATAL message=pg-tls-proxy: channel binding \\(SCRAM-SHA-256-PLUS\\) cannot pass through a TLS-terminating proxy.* hint=Connect with channel_binding=disable \(libpq[^)]*\), channelBinding=disable \(pgJDBC\)'
out=$(timeout -k 5 30 psql -X -A -t -q "$CI_MAIN" -c "SELECT 'cb disable ok'" 2>&1)
expect "psql, channel_binding=disable: works" "$out" '^cb disable ok$'
out=$(pgc query "$(ci "$MAIN_PORT" channel_binding=require)" "SELECT 1")
expect "libpq, channel_binding=require: the connection fails" "$out" '^error: '
cb=$(($(count "$PGDATA_DIR/server.log" 'channel binding') - CB_MARK))
expect "PostgreSQL's log has no 'channel binding check failed' (nothing -PLUS went upstream)" \
    "new-channel-binding-lines=$cb" '^new-channel-binding-lines=0$'

# ======================================================================
# Sidecar mode: plaintext from listed addresses only
# ======================================================================
sidecar_ci() {
    printf 'host=localhost hostaddr=127.0.0.1 port=%s user=app dbname=app connect_timeout=20 %s' \
        "$1" "${2:-}"
}
SSL_SQL="SELECT 'sidecar', ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
it_free_port P
start_proxy sidecar "$P" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --server-allow-plaintext-from 127.0.0.1/32
out=$(timeout -k 5 30 psql -X -A -t -q "$(sidecar_ci "$P" sslmode=disable)" -c "$SSL_SQL" 2>&1)
expect "sidecar: psql sslmode=disable, default channel_binding, logs in; upstream leg TLS" \
    "$out" '^sidecar\|t$'
out=$(raw session 127.0.0.1 "$P" --plaintext)
expect "sidecar: a plaintext client is offered SCRAM-SHA-256 without -PLUS" "$out" \
    $'^mechanisms=SCRAM-SHA-256\nlogin=ok '
out=$(timeout -k 5 30 psql -X -A -t -q "$(sidecar_ci "$P")" -c "$SSL_SQL" 2>&1)
expect "sidecar: psql with libpq's defaults (sslmode=prefer) logs in" "$out" '^sidecar\|t$'
out=$(raw error 127.0.0.1 "$P" --plaintext --from 127.0.0.2)
expect "sidecar 127.0.0.1/32: a plaintext client from 127.0.0.2 gets FATAL 28000" "$out" \
    '^sqlstate=28000 severity=FATAL message=.*TLS is required'
stop_proxy sidecar

it_free_port P
start_proxy sidecar-other "$P" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --server-allow-plaintext-from 127.0.0.2/32
out=$(timeout -k 5 30 psql -X -A -t -q "$(sidecar_ci "$P" sslmode=disable)" -c "$SSL_SQL" 2>&1)
expect "sidecar 127.0.0.2/32: psql sslmode=disable from 127.0.0.1 is told 'TLS is required'" \
    "$out" 'FATAL:  pg-tls-proxy: TLS is required'
out=$(raw error 127.0.0.1 "$P" --plaintext)
expect "sidecar 127.0.0.2/32: plaintext from 127.0.0.1 gets SQLSTATE 28000" "$out" \
    '^sqlstate=28000 severity=FATAL message=.*TLS is required'
stop_proxy sidecar-other
CUR_LOG=

# A bad CIDR is a configuration error: exit 2, naming the option.
for opt in --server-allow-plaintext-from --server-allow-from; do
    for bad in 10.0.0.0/33 not-an-address; do
        out=$(timeout -k 5 10 "$PGTP_BIN" --server-certificate-path "$CERTS/proxy.crt" \
            --server-private-key-path "$CERTS/proxy.key" --server-host 127.0.0.1 \
            --server-port "$MAIN_PORT" --client-connection-host-or-ip 127.0.0.1 \
            --client-connection-port "$PGPORT" --client-ca-roots-path "$CERTS/db-ca.crt" \
            "$opt" "127.0.0.1/32,$bad" 2>&1)
        rc=$?
        expect "$opt 127.0.0.1/32,$bad: exit 2, the message names the option" \
            "rc=$rc $out" "^rc=2 .*$opt"
    done
done

# ======================================================================
# --server-allow-from: others never reach the upstream
# ======================================================================
it_free_port P
start_proxy allow-127-0-0-2 "$P" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --server-allow-from 127.0.0.2/32 --log debug
out=$(pgc query "$(ci "$P")" "SELECT 1")
expect "--server-allow-from 127.0.0.2/32: libpq verify-full from 127.0.0.1 reads 'not allowed'" \
    "$out" '^error: .*FATAL:  pg-tls-proxy: connections from 127\.0\.0\.1 are not allowed \(--server-allow-from\)'
out=$(raw error localhost "$P")
expect "--server-allow-from 127.0.0.2/32: FATAL 28000 inside TLS" "$out" \
    '^sqlstate=28000 severity=FATAL message=.*not allowed'
PLOG=$LOGS/proxy-allow-127-0-0-2.log
expect "--server-allow-from: denied clients never reach the upstream (no back leg, no session)" \
    "denied=$(count "$PLOG" 'denied=not_in_server_allow_from') back=$(count "$PLOG" \
        'event=(back_tls_up|established|upstream_failed)')" '^denied=[2-9] back=0$'
out=$(raw error localhost "$P" --from 127.0.0.2)
expect "--server-allow-from 127.0.0.2/32: a client from 127.0.0.2 reaches PostgreSQL" "$out" \
    '^auth=10$'
stop_proxy allow-127-0-0-2

it_free_port P
start_proxy allow-127-8 "$P" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --server-allow-from 127.0.0.0/8
out=$(pgc query "$(ci "$P")" "SELECT 'allowed'")
expect "--server-allow-from 127.0.0.0/8: verify-full from 127.0.0.1 works" "$out" '^allowed$'
stop_proxy allow-127-8
CUR_LOG=$LOGS/proxy-main.log

# ======================================================================
# Protocol versions, GSSENCRequest, replication
# ======================================================================
for minor in 2 0x270F; do
    out=$(raw error localhost "$MAIN_PORT" --minor "$minor")
    direct=$(raw error localhost "$PGPORT" --minor "$minor")
    expect "protocol 3.$((minor)): the server's NegotiateProtocolVersion, then AuthenticationSASL, as direct" \
        "$out" $'^negotiate-protocol=3\\.0 unrecognized-options=0\nauth=10$'
    if [ "$out" != "$direct" ]; then
        fail "protocol 3.$((minor)): same as PostgreSQL directly" \
            "proxy: $(oneline "$out"); direct: $(oneline "$direct")"
    fi
done
out=$(raw session localhost "$MAIN_PORT" --gssenc --query "SELECT 'gss then ssl'")
expect "GSSENCRequest, then SSLRequest on the same connection: 'N', 'S', a working session" \
    "$out" $'^gssresponse=N\nsslresponse=S\ntls=TLSv1\\.[23] alpn=none\nmechanisms=[^\n]*\nlogin=ok [^\n]*\nquery-sent\nrow=gss then ssl\n'
out=$(timeout -k 5 30 psql -X -A -t -q "$(ci "$MAIN_PORT" replication=database)" \
    -c "IDENTIFY_SYSTEM" 2>&1)
expect "replication=database through the proxy: IDENTIFY_SYSTEM answers" "$out" \
    '^[0-9]+\|1\|[0-9A-F]+/[0-9A-F]+\|app$'
# The 4 wrong cancels above, in the summary lines (within 10 s of the first).
for ((i = 0; i < 240 && $(unknown_keys "$SUMMARY_FROM") < 4; i++)); do sleep 0.05; done
expect "the proxy counts the 4 wrong cancels in event=cancel_summary (unknown_key=), no line each" \
    "unknown_key=$(unknown_keys "$SUMMARY_FROM") per_attempt_lines=$(tail -n +"$SUMMARY_FROM" \
        "$LOGS/proxy-main.log" | grep -c 'event=cancel_dropped')" '^unknown_key=4 per_attempt_lines=0$'
echo "# protocol.sh cases took $((SECONDS - PROTOCOL_T0)) s"
