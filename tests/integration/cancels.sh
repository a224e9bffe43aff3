# shellcheck shell=bash
# shellcheck disable=SC2034 # CUR_LOG is read by run.sh's fail()
# cancels section of tests/integration/run.sh (sourced; uses its helpers).
#
# Issue 11, items 4 and 5, against dedicated proxies in front of the real
# PostgreSQL:
#   a. amplification: 3,000 plaintext CancelRequests with a live key, fired
#      from four addresses as fast as they go, at a proxy with
#      --max-connections 20: the upstream connections they open stay within
#      the bound (CANCEL_FORWARDS_MAX, 16) and the cancel still works.
#   b. key guessing: random keys for 3 s from one address: a handful of log
#      lines a second, the rest counted as rate_limited / unknown_key.
#   c. meanwhile a cancel with the right key from another address
#      (127.0.0.2) still cancels. (The same from the guesser's address is
#      refused unless it comes just as a token refills: not asserted.)
#   d. TLS probes (openssl s_client -starttls postgres) and cancels inside
#      TLS: PostgreSQL logs no handshake cut off ("could not accept SSL
#      connection", "EOF detected"), a TLS cancel costs one upstream
#      connection (its early leg), and the cancels work.
#   e. proxy-owned cancel keys (issue 14): a client's BackendKeyData pid is
#      the server's (pg_backend_pid()), its key the proxy's: the proxy's key
#      sent straight to PostgreSQL
#      cancels nothing; a server's real pid/key (a direct session's) sent to
#      the proxy cancels nothing; a replayed key of an ended session cancels
#      nothing; the proxy's key sent to the proxy cancels the right query.
# Counts scale down under ASan and valgrind.

CANCELS_T0=$SECONDS
CAN_SCALE=1
grep -q __asan_init "$PGTP_BIN" 2>/dev/null && CAN_SCALE=3
[ ${#IT_WRAP[@]} -gt 0 ] && CAN_SCALE=$((10 * IT_TIME_SCALE))
CAN_N=$((3000 / CAN_SCALE))

# metric FILE SERIES: a value from a /metrics scrape (0 if absent).
metric() { awk -v s="$2" '$1 == s { print $2; f = 1 } END { if (!f) print 0 }' "$1"; }
scrape() { curl -s --max-time 3 -o "$1" "http://127.0.0.1:$2/metrics" 2>/dev/null || : >"$1"; }
# upstream_conns: TCP connections established to PostgreSQL now (all clients).
upstream_conns() { ss -Htn state established "dport = :$PGPORT" 2>/dev/null | wc -l; }
# session_wait NAME PID SECONDS: until the session's client exits; its output.
session_wait() {
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        kill -0 "$2" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$2" 2>/dev/null && kill -TERM "$2" 2>/dev/null
    wait "$2" 2>/dev/null
    cat "$TMP/$1.out"
}

# ======================================================================
# a. 3,000 cancels with a live key: bounded upstream connections
# ======================================================================
it_free_port CAN_PORT
it_free_port CAN_ADMIN
start_proxy cancels "$CAN_PORT" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --max-connections 20 --admin-address "127.0.0.1:$CAN_ADMIN"
CAN_LOG=$CUR_LOG
if start_session storm "$CAN_PORT" "SELECT pg_sleep(30)"; then
    STORM_PID=$SESS_PID
    base=$(upstream_conns)
    (
        for ((i = 0; i < 150; i++)); do
            upstream_conns
            sleep 0.01
        done
    ) >"$TMP/storm-ss.txt" &
    SS_PID=$!
    t0=$(now_ms) storm_pids=()
    for src in 127.0.0.11 127.0.0.12 127.0.0.13 127.0.0.14; do
        raw cancel-storm 127.0.0.1 "$CAN_PORT" "$SESS_BPID" "$SESS_KEY" $((CAN_N / 4)) 20 \
            --from "$src" >"$TMP/storm-$src.txt" &
        storm_pids+=($!)
    done
    wait "${storm_pids[@]}" 2>/dev/null
    storm_ms=$(($(now_ms) - t0))
    out=$(session_wait storm "$STORM_PID" 10)
    sleep 0.5 # the last forwards' lines
    kill "$SS_PID" 2>/dev/null
    wait "$SS_PID" 2>/dev/null
    peak=$(sort -n "$TMP/storm-ss.txt" | tail -n 1)
    [ "${peak:-0}" -ge "$base" ] || peak=$base # the session's own connection ended meanwhile
    sent=$(cat "$TMP"/storm-127.0.0.1?.txt | sed -n 's/^sent=\([0-9]*\) .*/\1/p' |
        awk '{ s += $1 } END { print s + 0 }')
    fwd=$(count "$CAN_LOG" 'event=cancel_forward ')
    expect "cancel storm: the session's query ends with 57014" "$out" 'query-end sqlstate=57014'
    expect "cancel storm: $sent of $CAN_N cancels sent in ${storm_ms} ms from 4 addresses" \
        "sent=$sent" "^sent=$CAN_N\$"
    if [ "$fwd" -ge 1 ] && [ "$fwd" -le 16 ] && [ $((peak - base)) -le 16 ]; then
        pass "cancel storm: $fwd upstream connection(s) for $sent cancels ($(awk -v f="$fwd" \
            -v s="$sent" 'BEGIN { printf "%.4f", f / s }') per cancel), at most $((peak - base)) \
extra at once (ss), bound 16"
    else
        fail "cancel storm: upstream connections within the bound of 16" \
            "$fwd forwarded (event=cancel_forward), ss peak $peak over a baseline of $base"
    fi
    scrape "$TMP/storm.metrics" "$CAN_ADMIN"
    co=$(metric "$TMP/storm.metrics" 'pg_tls_proxy_cancel_requests_total{result="coalesced"}')
    rl=$(metric "$TMP/storm.metrics" 'pg_tls_proxy_cancel_requests_total{result="rate_limited"}')
    fw=$(metric "$TMP/storm.metrics" 'pg_tls_proxy_cancel_requests_total{result="forwarded"}')
    uk=$(metric "$TMP/storm.metrics" 'pg_tls_proxy_cancel_requests_total{result="unknown_key"}')
    expect "cancel storm: /metrics counts the cancels by outcome (forwarded=$fw coalesced=$co \
rate_limited=$rl unknown_key=$uk, once the session had ended)" "$((fw + co + rl + uk))" "^$sent\$"
    leaked=$(grep -c -i -F -- "$SESS_KEY" "$CAN_LOG")
    expect "cancel storm: the key appears in no log line" "key-lines=$leaked" '^key-lines=0$'
else
    fail "cancel storm" "session did not start: $(oneline "$(cat "$TMP/storm.out")")"
    kill -TERM "$SESS_PID" 2>/dev/null
    wait "$SESS_PID"
fi
stop_proxy cancels

# ======================================================================
# b, c. key guessing from one address; another address still cancels
# ======================================================================
it_free_port GUESS_PORT
it_free_port GUESS_ADMIN
start_proxy guess "$GUESS_PORT" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --admin-address "127.0.0.1:$GUESS_ADMIN"
GUESS_LOG=$CUR_LOG
if start_session guessed "$GUESS_PORT" "SELECT pg_sleep(30)"; then
    GUESSED_PID=$SESS_PID
    lines0=$(wc -l <"$GUESS_LOG")
    t0=$(now_ms)
    raw cancel-storm 127.0.0.1 "$GUESS_PORT" "$SESS_BPID" "$SESS_KEY" 1000000 3 --random >"$TMP/guess.txt" &
    GUESSER=$!
    sleep 1
    # The right key from another address goes through at once.
    t1=$(now_ms)
    raw cancel 127.0.0.1 "$GUESS_PORT" "$SESS_BPID" "$SESS_KEY" --from 127.0.0.2 >/dev/null
    out=$(session_wait guessed "$GUESSED_PID" 5)
    ms=$(($(now_ms) - t1))
    if [[ $out =~ query-end\ sqlstate=57014 ]] && [ "$ms" -lt 2000 ]; then
        pass "guessing from 127.0.0.1 does not block 127.0.0.2's cancel: 57014 after ${ms} ms"
    else
        fail "guessing from 127.0.0.1 does not block 127.0.0.2's cancel" \
            "after ${ms} ms: $(oneline "$out")"
    fi
    wait "$GUESSER"
    el_ms=$(($(now_ms) - t0))
    lines=$(($(wc -l <"$GUESS_LOG") - lines0))
    g=$(cat "$TMP/guess.txt")
    gsent=$(sed -n 's/^sent=\([0-9]*\) .*/\1/p' <<<"$g")
    lps=$(awk -v l="$lines" -v ms="$el_ms" 'BEGIN { printf "%.1f", l * 1000 / ms }')
    if [ "${gsent:-0}" -gt 100 ] && lt "$lps" 2.5; then
        pass "guessing: $gsent random keys ($(oneline "$g")): $lines log lines in \
$((el_ms / 1000)) s ($lps a second)"
    else
        fail "guessing: at most ~2 log lines a second" \
            "$lines lines in $el_ms ms for $(oneline "$g"); $(tail -n 3 "$GUESS_LOG" | oneline "$(cat)")"
    fi
    wait_line "$GUESS_LOG" 'event=cancel_summary .*rate_limited=[1-9]' 3
    sum=$(grep 'event=cancel_summary' "$GUESS_LOG" | head -n 1)
    expect "guessing: event=cancel_summary counts them and names the source" "$sum" \
        'rate_limited=[1-9][0-9]* unknown_key=[1-9][0-9]* .*top_source=127\.0\.0\.1 '
    scrape "$TMP/guess.metrics" "$GUESS_ADMIN"
    rl=$(metric "$TMP/guess.metrics" 'pg_tls_proxy_cancel_requests_total{result="rate_limited"}')
    uk=$(metric "$TMP/guess.metrics" 'pg_tls_proxy_cancel_requests_total{result="unknown_key"}')
    if [ $((rl + uk)) -ge "${gsent:-1}" ] && [ "$uk" -le 40 ]; then
        pass "guessing: $uk keys looked up, $rl rate-limited unlooked (/metrics)"
    else
        fail "guessing: all but a few dozen rate-limited" "rate_limited=$rl unknown_key=$uk sent=$gsent"
    fi
else
    fail "guessing" "session did not start: $(oneline "$(cat "$TMP/guessed.out")")"
    kill -TERM "$SESS_PID" 2>/dev/null
    wait "$SESS_PID"
fi
stop_proxy guess

# ======================================================================
# d. TLS probes and cancels inside TLS: no handshake cut off upstream
# ======================================================================
pg_sql() {
    it_as_svc timeout 30 "$IT_PG_BINDIR/psql" -X -q -A -t -h "$PGDATA_DIR" -p "$PGPORT" \
        -U postgres -d postgres -c "$1" 2>&1
}
PG_LOG=$PGDATA_DIR/server.log
pg_sql "ALTER SYSTEM SET log_connections = on" >/dev/null
pg_sql "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
it_free_port TLS_PORT
start_proxy tlsfinish "$TLS_PORT" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt"
TLS_LOG=$CUR_LOG
NS=$((10 / (CAN_SCALE > 3 ? 2 : 1)))
declare -a TS_PID TS_BPID TS_KEY
for ((i = 0; i < NS; i++)); do
    start_session "tlss$i" "$TLS_PORT" "SELECT pg_sleep(30)" || break
    TS_PID[i]=$SESS_PID TS_BPID[i]=$SESS_BPID TS_KEY[i]=$SESS_KEY
done
if [ ${#TS_PID[@]} = "$NS" ]; then
    pgl0=$(wc -l <"$PG_LOG")
    # Five rounds of a TLS cancel per session (the first round forwarded, the
    # rest coalesced or too late), each session's from its own address.
    for ((k = 0; k < 5; k++)); do
        for ((i = 0; i < NS; i++)); do
            raw cancel localhost "$TLS_PORT" "${TS_BPID[i]}" "${TS_KEY[i]}" --tls \
                --from "127.0.0.$((20 + i))" >/dev/null
        done
    done
    bad=
    for ((i = 0; i < NS; i++)); do
        out=$(session_wait "tlss$i" "${TS_PID[i]}" 5)
        [[ $out =~ query-end\ sqlstate=57014 ]] || bad+=" session $i: $(oneline "$out")"
    done
    sleep 0.5
    recv=$(tail -n +"$((pgl0 + 1))" "$PG_LOG" | grep -c 'connection received')
    cutoff=$(tail -n +"$((pgl0 + 1))" "$PG_LOG" | grep -c -E 'could not accept SSL|EOF detected')
    early=$(count "$TLS_LOG" 'event=cancel_forward .* leg=early')
    expect "TLS cancels: all $NS sessions end with 57014 ($((NS * 5)) cancels inside TLS)" \
        "${bad:-ok}" '^ok$'
    expect "TLS cancels: carried on their early upstream leg ($early of $NS forwarded)" \
        "early=$early" "^early=$NS\$"
    if [ "$cutoff" = 0 ] && [ "$recv" -le $((NS * 5)) ]; then
        pass "TLS cancels: $recv upstream connections for $((NS * 5)) TLS cancels \
($(awk -v r="$recv" -v n="$((NS * 5))" 'BEGIN { printf "%.2f", r / n }') each), no handshake \
cut off in PostgreSQL's log"
    else
        fail "TLS cancels: at most one upstream connection each, no handshake cut off" \
            "$recv connections received, $cutoff cut-off lines: $(tail -n +"$((pgl0 + 1))" \
                "$PG_LOG" | grep -E 'could not accept SSL|EOF detected' | head -n 2 | oneline "$(cat)")"
    fi
else
    fail "TLS cancels" "session ${#TS_PID[@]} did not start"
    for p in "${TS_PID[@]}"; do kill -TERM "$p" 2>/dev/null; done
fi

# TLS probes, as monitors and openssl s_client -starttls postgres make them.
sleep 2.5 # the early-leg waste window (conn.c) forgets the cancels' early legs
pgl0=$(wc -l <"$PG_LOG")
acc0=$(count "$TLS_LOG" 'event=accepted ') clo0=$(count "$TLS_LOG" 'event=closed ')
NP=$((50 / (CAN_SCALE > 3 ? 5 : 1)))
ok=0
for ((i = 0; i < NP; i++)); do
    timeout -k 2 10 openssl s_client -starttls postgres -connect "127.0.0.1:$TLS_PORT" \
        -servername localhost </dev/null >"$TMP/probe.out" 2>&1 &&
        grep -q 'BEGIN CERTIFICATE\|Server certificate' "$TMP/probe.out" && ok=$((ok + 1))
done
sleep 1
recv=$(tail -n +"$((pgl0 + 1))" "$PG_LOG" | grep -c 'connection received')
cutoff=$(tail -n +"$((pgl0 + 1))" "$PG_LOG" | grep -c -E 'could not accept SSL|EOF detected')
other=$(tail -n +"$((pgl0 + 1))" "$PG_LOG" | grep -v -c 'connection received')
acc=$(($(count "$TLS_LOG" 'event=accepted ') - acc0))
clo=$(($(count "$TLS_LOG" 'event=closed ') - clo0))
expect "TLS probes: $ok of $NP openssl s_client -starttls postgres handshakes completed" \
    "ok=$ok" "^ok=$NP\$"
if [ "$cutoff" = 0 ] && [ "$other" = 0 ]; then
    pass "TLS probes: $recv upstream connections for $NP probes, PostgreSQL logged nothing else \
(no handshake cut off)"
else
    fail "TLS probes: no handshake cut off in PostgreSQL's log" \
        "$recv connections received, $cutoff cut-off lines, $other other lines: \
$(tail -n +"$((pgl0 + 1))" "$PG_LOG" | grep -v 'connection received' | head -n 2 | oneline "$(cat)")"
fi
expect "TLS probes: one event=accepted and one event=closed each" "accepted=$acc closed=$clo" \
    "^accepted=$NP closed=$NP\$"
stop_proxy tlsfinish
pg_sql "ALTER SYSTEM RESET log_connections" >/dev/null
pg_sql "SELECT pg_reload_conf()" >/dev/null

# ======================================================================
# e. the proxy's own cancel keys
# ======================================================================
it_free_port KEYS_PORT
start_proxy keys "$KEYS_PORT" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" --log debug
KEYS_LOG=$CUR_LOG
out=$(pgc pids "$(ci "$KEYS_PORT")")
cpid=$(sed -n 's/^client_pid=\([0-9-]*\) .*/\1/p' <<<"$out")
spid=$(sed -n 's/.* server_pid=\([0-9]*\)$/\1/p' <<<"$out")
if [[ $cpid =~ ^[0-9]+$ && $spid =~ ^[0-9]+$ ]] && [ "$cpid" = "$spid" ]; then
    pass "proxy keys: libpq's BackendKeyData pid ($cpid) is the server's pg_backend_pid() (only \
the key is the proxy's)"
else
    fail "proxy keys: libpq's BackendKeyData pid is the server's pg_backend_pid()" \
        "$(oneline "$out")"
fi
# A session through the proxy (S), one straight to PostgreSQL (D: its key is
# a real server key) and another through the proxy (T).
if start_session keys-s "$KEYS_PORT" "SELECT pg_sleep(30)"; then
    S_PID=$SESS_PID S_BPID=$SESS_BPID S_KEY=$SESS_KEY S_SPID=$SESS_SPID
    start_session keys-d "$PGPORT" "SELECT 'survived' FROM pg_sleep(4)"
    D_PID=$SESS_PID D_BPID=$SESS_BPID D_KEY=$SESS_KEY D_SPID=$SESS_SPID
    start_session keys-t "$KEYS_PORT" "SELECT 'survived' FROM pg_sleep(4)"
    T_PID=$SESS_PID
    expect "proxy keys: the session's key pid is its server pid ($S_SPID), as a direct \
session's is" "proxy=$([ -n "$S_BPID" ] && [ "$S_BPID" = "$S_SPID" ] && echo \
same) direct=$([ -n "$D_BPID" ] && [ "$D_BPID" = "$D_SPID" ] && echo same)" \
        '^proxy=same direct=same$'
    # The proxy's key straight to PostgreSQL: not a key PostgreSQL knows.
    raw cancel 127.0.0.1 "$PGPORT" "$S_BPID" "$S_KEY" >/dev/null
    # A server's real pid/key to the proxy, plaintext and inside TLS.
    raw cancel 127.0.0.1 "$KEYS_PORT" "$D_BPID" "$D_KEY" --from 127.0.0.31 >/dev/null
    raw cancel localhost "$KEYS_PORT" "$D_BPID" "$D_KEY" --tls --from 127.0.0.32 >/dev/null
    sleep 0.5
    s_alive=$(kill -0 "$S_PID" 2>/dev/null && ! grep -q '^query-end' "$TMP/keys-s.out" &&
        echo running)
    expect "proxy keys: the proxy's key sent straight to PostgreSQL cancels nothing" \
        "session=${s_alive:-ended: $(oneline "$(cat "$TMP/keys-s.out")")}" '^session=running$'
    t0=$(now_ms)
    raw cancel 127.0.0.1 "$KEYS_PORT" "$S_BPID" "$S_KEY" --from 127.0.0.33 >/dev/null
    out=$(session_wait keys-s "$S_PID" 5)
    ms=$(($(now_ms) - t0))
    if [[ $out =~ query-end\ sqlstate=57014 ]] && [ "$ms" -lt 2000 ]; then
        pass "proxy keys: the proxy's key sent to the proxy cancels the session's query \
(57014 after ${ms} ms)"
    else
        fail "proxy keys: the proxy's key cancels the query within 2 s" \
            "after ${ms} ms: $(oneline "$out")"
    fi
    # The session has ended: its key is gone. Replayed, it cancels nothing.
    raw cancel 127.0.0.1 "$KEYS_PORT" "$S_BPID" "$S_KEY" --from 127.0.0.34 >/dev/null
    raw cancel localhost "$KEYS_PORT" "$S_BPID" "$S_KEY" --tls --from 127.0.0.35 >/dev/null
    out=$(session_wait keys-d "$D_PID" 8)
    expect "proxy keys: a server's real pid/key sent to the proxy cancels nothing" "$out" \
        $'row=survived\nquery-end sqlstate=none'
    out=$(session_wait keys-t "$T_PID" 8)
    expect "proxy keys: a replayed key of an ended session cancels nothing" "$out" \
        $'row=survived\nquery-end sqlstate=none'
    fwd=$(count "$KEYS_LOG" 'event=cancel_forward ')
    expect "proxy keys: one cancel forwarded, to the session's server pid" \
        "$fwd $(grep 'event=cancel_forward ' "$KEYS_LOG" | sed -n 's/.* upstream_pid=\([0-9]*\) .*/\1/p')" \
        "^1 $S_SPID\$"
    leaked=$(grep -c -i -F -e "$S_KEY" -e "$D_KEY" "$KEYS_LOG")
    expect "proxy keys: no key appears in the proxy's debug log" "key-lines=$leaked" \
        '^key-lines=0$'
else
    fail "proxy keys" "session did not start: $(oneline "$(cat "$TMP/keys-s.out")")"
    kill -TERM "$SESS_PID" 2>/dev/null
    wait "$SESS_PID"
fi
stop_proxy keys

it_note "cancels section took $((SECONDS - CANCELS_T0)) s"
