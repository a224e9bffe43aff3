# shellcheck shell=bash
# shellcheck disable=SC2034,SC2016 # CUR_LOG is read by run.sh's fail(); literal $ in regexes
# bridgecases.sh - the cases of the bridge section (issue 15), as functions
# that bridge.sh calls once its proxy and first connector are up. Sourced by
# bridge.sh; uses its set-up (BR_*, br_conn_start, br_carrier...) and
# run.sh's helpers (expect, pass, fail, pgc, raw, wait_line, count).

# ======================================================================
# 4. Sessions through the bridge
# ======================================================================
br_sessions() {
    if [ "$BR_PRIVATE" = 1 ]; then
        out=$(raw error localhost "${BR_RP[direct]}")
        expect "proxy route without the bridge: the database's address is unreachable (08001)" \
            "$out" '^sqlstate=08001 severity=FATAL message=.*(unreachable|refused)'
    fi
    out=$(timeout -k 5 30 psql -X -A -t -q "$CI_BR" -c "SELECT 'psql ok', ssl, inet_server_port()
        FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)
    expect "psql verify-full through the bridge (passthrough): query works, back leg TLS" \
        "$out" "^psql ok\\|t\\|$BR_PG\$"
    expect "proxy: event=established names the bridge as the upstream" \
        "$(grep 'event=established' "$BR_PLOG" | tail -n 1)" 'upstream="?bridge'
    CUR_LOG=${BR_LOG[a]}
    wait_line "${BR_LOG[a]}" 'event=stream_closed' $((5 * BR_TS))
    expect "connector a: event=stream_open target=127.0.0.1:$BR_PG" \
        "$(grep -m1 'event=stream_open' "${BR_LOG[a]}")" "target=\"?127\\.0\\.0\\.1:$BR_PG"
    expect "connector a: event=stream_closed with the bytes carried" \
        "$(grep -m1 'event=stream_closed' "${BR_LOG[a]}")" 'bytes_to_target=[1-9].*bytes_from_target=[1-9]'
    CUR_LOG=$BR_PLOG
    BR_CI_PW="host=localhost hostaddr=127.0.0.1 port=${BR_RP[pw]} user=app dbname=app"
    BR_CI_PW+=" sslmode=verify-full sslrootcert=$CERTS/public-ca.crt connect_timeout=20"
    out=$(timeout -k 5 30 psql -X -A -t -q "$BR_CI_PW" \
        -c "SELECT 'pw ok', ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)
    expect "psql verify-full, default channel binding, through the bridge (--auth-mode password)" \
        "$out" '^pw ok\|t$'

    # COPY ~100 MB each way (75 MB of random bytes as base64), sha256 both ways.
    head -c $((75 * 1024 * 1024 / BR_SCALE)) /dev/urandom | base64 -w 100 >"$BR/bulk-in.txt"
    IN_SUM=$(sha256sum <"$BR/bulk-in.txt" | cut -d' ' -f1)
    IN_MB=$(($(stat -c %s "$BR/bulk-in.txt") / 1024 / 1024))
    CI_BULK=$(ci "$BR_P" "options='-c synchronize_seqscans=off'")
    out=$(pgc query "$CI_BULK" "CREATE TABLE bridge_bulk (id bigint GENERATED ALWAYS AS IDENTITY
        PRIMARY KEY, line text NOT NULL)")
    t=$SECONDS
    out+=$(PGC_TIMEOUT=300 pgc copy-in "$CI_BULK" "COPY bridge_bulk (line) FROM STDIN" "$BR/bulk-in.txt")
    SERVER_SUM=$(PGC_TIMEOUT=300 pgc query "$CI_BULK" "SELECT encode(sha256(string_agg(
        convert_to(line, 'UTF8') || '\\x0a'::bytea, ''::bytea ORDER BY id)), 'hex') FROM bridge_bulk")
    if [ "$SERVER_SUM" = "$IN_SUM" ]; then
        pass "bridge: COPY FROM STDIN ${IN_MB} MB: server's sha256 equals the client's ($((SECONDS - t)) s)"
    else
        fail "bridge: COPY FROM STDIN ${IN_MB} MB: server's sha256 equals the client's" \
            "client $IN_SUM, server $(oneline "$SERVER_SUM"); copy: $(oneline "$out")"
    fi
    t=$SECONDS
    out=$(PGC_TIMEOUT=300 pgc copy-out "$CI_BULK" "COPY bridge_bulk (line) TO STDOUT" "$BR/bulk-out.txt")
    OUT_SUM=$(sha256sum <"$BR/bulk-out.txt" 2>/dev/null | cut -d' ' -f1)
    if [ "$OUT_SUM" = "$IN_SUM" ]; then
        pass "bridge: COPY TO STDOUT ${IN_MB} MB: sha256 equals what was sent ($((SECONDS - t)) s)"
    else
        fail "bridge: COPY TO STDOUT ${IN_MB} MB: sha256 equals what was sent" \
            "sent $IN_SUM, got ${OUT_SUM:-nothing}; copy: $(oneline "$out")"
    fi
    rm -f "$BR/bulk-in.txt" "$BR/bulk-out.txt"
    pgc query "$CI_BR" "DROP TABLE bridge_bulk" >/dev/null

    t=$SECONDS BR_CONC=$((200 / BR_SCALE))
    out=$(PGC_TIMEOUT=240 pgc concurrent "$(ci "$BR_P" connect_timeout=120)" "$BR_CONC" 5)
    expect "bridge: $BR_CONC sessions open at once, 5 queries each ($((SECONDS - t)) s)" "$out" \
        "sessions=$BR_CONC ok=$BR_CONC failed=0"

    out=$(pgc cancel "$CI_BR" 1000)
    expect "bridge: PQcancel (what psql's Ctrl-C sends) ends pg_sleep with 57014" "$out" \
        '^cancel sent=1 sqlstate=57014'
    # psql itself, Ctrl-C (SIGINT) once its query runs on the server.
    timeout -k 5 60 "$IT_PG_BINDIR/psql" -X -q -v VERBOSITY=verbose "$CI_BR" \
        -c "SELECT pg_sleep(30) /* br-psql */" >"$BR/psql-int.out" 2>&1 &
    local tpid=$! i state="" t0
    for ((i = 0; i < 100 * BR_TS; i++)); do
        state=$(br_su "SELECT state FROM pg_stat_activity WHERE query LIKE '%/* br-psql */%'
            AND pid <> pg_backend_pid()")
        [ "$state" = active ] && break
        sleep 0.1
    done
    local ppid
    ppid=$(pgrep -P "$tpid" -x psql)
    t0=$(now_ms)
    kill -INT "${ppid:-$tpid}" 2>/dev/null
    wait "$tpid"
    expect "bridge: psql Ctrl-C (SIGINT) cancels its query through the bridge: 57014 \
in $(($(now_ms) - t0)) ms" "$(cat "$BR/psql-int.out")" '57014: canceling statement due to user request'
}

# br_fail_case NAME ROUTE LIBPQ_REGEX RAW_REGEX: what libpq and rawclient see.
br_fail_case() {
    local out
    out=$(pgc query "$(ci "${BR_RP[$2]}")" "SELECT 1")
    expect "bridge: $1: libpq sees /$3/" "$out" "$3"
    out=$(raw error localhost "${BR_RP[$2]}")
    expect "bridge: $1: FATAL 08001 /$4/" "$out" "^sqlstate=08001 severity=FATAL message=.*$4"
}

# ======================================================================
# 5. Failures while a connector is up
# ======================================================================
br_failures() {
    CUR_LOG=$BR_PLOG
    br_fail_case "target not on the allow list" na 'allow' "127\\.0\\.0\\.1:$BR_NA.*--allow"
    expect "bridge: not allowed: proxy logs event=upstream_failed naming the allow list" \
        "$(grep 'event=upstream_failed' "$BR_PLOG" | grep "$BR_NA" | tail -n 1)" 'sqlstate=08001 .*allow'
    CUR_LOG=${BR_LOG[a]}
    expect "bridge: not allowed: connector a logs the refused target" \
        "$(grep "127.0.0.1:$BR_NA" "${BR_LOG[a]}" | tail -n 1)" 'event=[a-z_]+ .*(not_allowed|allow)'
    CUR_LOG=$BR_PLOG
    br_fail_case "target unreachable from the connector" dead 'could not reach' \
        "could not reach 127\\.0\\.0\\.1:$BR_DEAD"
    CUR_LOG=${BR_LOG[a]}
    expect "bridge: unreachable: connector a logs why (refused)" \
        "$(grep "127.0.0.1:$BR_DEAD" "${BR_LOG[a]}" | tail -n 1)" 'event=[a-z_]+ .*(refused|unreachable)'
    CUR_LOG=$BR_PLOG
    br_fail_case "upstream name wrong (client-tls-validation-host wrong.example)" wname \
        'does not match' 'wrong\.example'
    br_fail_case "upstream CA wrong (other-ca did not sign it)" wca \
        'certificate verification failed' 'verification failed'
    br_fail_case "bridge with no connector ever" ghost 'no connector online' \
        'bridge "ghost" has no connector online \(.*never'
    expect "bridge: no connector: proxy logs event=upstream_failed naming the bridge" \
        "$(grep 'event=upstream_failed' "$BR_PLOG" | tail -n 1)" 'sqlstate=08001 .*ghost'

    # A wrong secret: refused, logged on both sides without the secret.
    br_conn_start bad "$BR/wrong.secret"
    CUR_LOG=${BR_LOG[bad]}
    if wait_line "${BR_LOG[bad]}" 'event=tunnel_rejected' $((15 * BR_TS)); then
        pass "wrong secret: connector logs event=tunnel_rejected ($(oneline \
            "$(grep -m1 'event=tunnel_rejected' "${BR_LOG[bad]}")"))"
    else
        fail "wrong secret: connector logs event=tunnel_rejected" "not within 15 s"
    fi
    CUR_LOG=$BR_PLOG
    expect "wrong secret: proxy logs event=bridge_rejected bridge=lab connector=bad" \
        "$(grep -m1 'event=bridge_rejected' "$BR_PLOG")" 'bridge="?lab"?.*connector="?bad.*reason='
    expect "wrong secret: the connector's /healthz answers 503" "$(br_health bad)" '^503$'
    it_stop conn-bad
}

# ======================================================================
# 6. Two connectors for "lab": one SIGKILLed under a session, then under load
# ======================================================================
# br_loop OUT SECONDS: short sessions (connect, SELECT 1, disconnect) one
# after another; a line per session: start_ms end_ms output.
br_loop() {
    local end=$(($(now_ms) + $2 * 1000)) t0 r
    while [ "$(now_ms)" -lt "$end" ]; do
        t0=$(now_ms)
        r=$(PGC_TIMEOUT=30 pgc query "$CI_BR" "SELECT 1")
        printf '%s %s %s\n' "$t0" "$(now_ms)" "$(oneline "$r")" >>"$1"
    done
}
# br_held TAG SECONDS: a session through the main route running pg_sleep,
# output in $BR/TAG.out; BR_HPID is the client's pid.
br_held() {
    PGC_TIMEOUT=$(($2 + 60)) pgc query "$CI_BR" "SELECT '$1 done' FROM pg_sleep($2) /* $1 */" \
        >"$BR/$1.out" &
    BR_HPID=$!
}
# br_busiest: the connector (a or b) named by most of the last 20 sessions
# the proxy established on the main route.
br_busiest() {
    grep 'event=established' "$BR_PLOG" | grep 'route="main"' | tail -n 20 |
        sed -n 's/.*upstream=bridge:lab\/\([a-z]*\)#.*/\1/p' | sort | uniq -c | sort -rn |
        awk 'NR == 1 { print $2 }'
}
br_two_connectors() {
    # The survivor starts while a is the only connector; b joins; the victim
    # then goes to b, the one without an open stream (whatever else the
    # choice weighs), and b is SIGKILLed.
    br_held br-surv $((8 * BR_TS))
    local spid=$BR_HPID vpid surv_on victim_on i c
    surv_on=$(br_carrier br-surv)
    br_conn_start b "$BR/lab.secret"
    CUR_LOG=${BR_LOG[b]}
    br_conn_up b || fail "connector b: event=tunnel_up within 15 s" "$(oneline "$(tail -n 3 "${BR_LOG[b]}")")"
    CUR_LOG=$BR_PLOG
    wait_line "$BR_PLOG" 'event=bridge_up .*connector="?b' $((5 * BR_TS))
    br_held br-victim 30
    vpid=$BR_HPID
    victim_on=$(br_carrier br-victim)
    if [ "$surv_on" = a ] && [ "$victim_on" = b ]; then
        pass "two connectors: a session on each (survivor on a, victim on b, the connector without streams)"
        br_kill b
        wait "$vpid"
        out=$(cat "$BR/br-victim.out")
        expect "connector b SIGKILLed: its session ends at once with an error" "$out" '^query-error: '
        expect "connector b SIGKILLed: the client is told 08006 naming the bridge" "$out" \
            'sqlstate=08006 .*bridge "lab"'
        wait "$spid"
        expect "connector b SIGKILLed: the session on a goes on to its end" \
            "$(cat "$BR/br-surv.out")" '^br-surv done$'
        expect "proxy: event=bridge_down for the killed connector b" \
            "$(grep 'event=bridge_down' "$BR_PLOG" | tail -n 1)" 'connector="?b'
        expect "proxy: event=bridge_stream_lost for the victim's session" \
            "$(grep 'event=bridge_stream_lost' "$BR_PLOG" | tail -n 1)" 'bridge=lab connector="?b'
        br_conn_start b "$BR/lab.secret"
        br_conn_up b || fail "connector b restarted: tunnel_up" "$(oneline "$(tail -n 3 "${BR_LOG[b]}")")"
        wait_line "$BR_PLOG" 'event=bridge_up .*connector="?b' $((5 * BR_TS))
    else
        fail "two connectors: a session on each" \
            "survivor on '${surv_on:-none}' (want a), victim on '${victim_on:-none}' (want b)"
        kill "$vpid" "$spid" 2>/dev/null
    fi
    wait "$vpid" "$spid" 2>/dev/null

    # Load spreading: 4 sessions at once on the two connectors (b just
    # restarted, a has carried hundreds before) land on both.
    local on="" spread=()
    for i in 1 2 3 4; do
        br_held "br-spread$i" $((4 * BR_TS))
        spread+=("$BR_HPID")
        sleep 0.2
    done
    for i in 1 2 3 4; do
        c=$(br_carrier "br-spread$i")
        on+=" ${c:-none}"
    done
    wait "${spread[@]}"
    expect "two connectors: 4 sessions at once are spread over both (carriers:$on)" "$on" \
        '(a.*b|b.*a)'

    # Load: 4 loops of short sessions; after 3 s the connector carrying most
    # of them is SIGKILLed. Every session started 0.5 s or more after the
    # kill must work; those in flight (or started within 0.5 s, before the
    # proxy has read the EOF) may fail.
    rm -f "$BR"/loop-*.out
    local loops=() victim before after after_bad inflight_bad name
    for i in 1 2 3 4; do
        br_loop "$BR/loop-$i.out" $((9 * BR_TS)) &
        loops+=($!)
    done
    sleep $((3 * BR_TS))
    victim=$(br_busiest)
    victim=${victim:-a}
    local mix
    mix=$(grep 'event=established' "$BR_PLOG" | grep 'route="main"' | tail -n 20 |
        sed -n 's/.*upstream=bridge:lab\/\([a-z]*\)#.*/\1/p' | sort | uniq -c | tr -s ' \n' ' ')
    br_kill "$victim"
    BR_TKILL=$(now_ms)
    wait "${loops[@]}"
    read -r before after after_bad inflight_bad < <(cat "$BR"/loop-*.out | awk -v k="$BR_TKILL" '
        { ok = ($3 == "1") }
        $1 < k && $2 <= k { before++ }
        $1 >= k + 500 { after++; if (!ok) bad++ }
        $1 < k + 500 && $2 > k && !ok { inflight++ }
        END { printf "%d %d %d %d\n", before, after, bad, inflight }')
    name="two connectors under load (last 20 before:$mix), $victim SIGKILLed: $after sessions"
    name+=" started after the kill, $after_bad failed ($before before; $inflight_bad in flight failed)"
    expect "$name" "after=$after bad=$after_bad" '^after=[1-9][0-9]* bad=0$'
    [ "$after_bad" = 0 ] || grep -v ' 1$' "$BR"/loop-*.out | head -n 3 | sed 's/^/#   /'
    br_conn_start "$victim" "$BR/lab.secret"
    br_conn_up "$victim" ||
        fail "connector $victim restarted: tunnel_up" "$(oneline "$(tail -n 3 "${BR_LOG[$victim]}")")"
}

# ======================================================================
# 7. Health, and the proxy restarted: the connectors come back by themselves
# ======================================================================
br_restart() {
    expect "connector a: /healthz 200 while up" "$(br_health a)" '^200$'
    it_stop bridge
    code=""
    for ((i = 0; i < 100 * BR_TS; i++)); do
        code=$(br_health a)
        [ "$code" = 503 ] && break
        sleep 0.1
    done
    expect "proxy stopped: connector a's /healthz answers 503 within 10 s" "$code" '^503$'
    BR_UPS_A=$(count "${BR_LOG[a]}" 'event=tunnel_up')
    BR_UPS_B=$(count "${BR_LOG[b]}" 'event=tunnel_up')
    if br_proxy_start; then
        t=$(now_ms)
        out=""
        for ((i = 0; i < 60 * BR_TS; i++)); do
            out=$(pgc query "$CI_BR" "SELECT 'back'")
            [ "$out" = back ] && break
            sleep 0.5
        done
        name="proxy restarted: a session through the bridge works again within 30 s"
        expect "$name ($(($(now_ms) - t)) ms)" "$out" '^back$'
        br_conn_up a $((BR_UPS_A + 1)) && br_conn_up b $((BR_UPS_B + 1))
        expect "proxy restarted: both connectors log a new event=tunnel_up" \
            "a=$(count "${BR_LOG[a]}" 'event=tunnel_up') b=$(count "${BR_LOG[b]}" 'event=tunnel_up')" \
            "^a=$((BR_UPS_A + 1)) b=$((BR_UPS_B + 1))$"
        expect "proxy restarted: connector a's /healthz is 200 again" "$(br_health a)" '^200$'
    else
        fail "proxy restarted" "not listening after 10 s (or exited)"
    fi
}

# ======================================================================
# 8. Every connector stopped: 08001 naming the bridge and when it was last seen
# ======================================================================
br_stopped() {
    it_stop conn-a
    it_stop conn-b
    CUR_LOG=$BR_PLOG
    out=$(raw error localhost "$BR_P")
    expect "connectors stopped: FATAL 08001 naming bridge \"lab\" and when it was last seen" "$out" \
        '^sqlstate=08001 severity=FATAL message=.*bridge "lab" has no connector online \(last seen'
    expect "connectors stopped: proxy logs event=bridge_down for each" \
        "$(count "$BR_PLOG" 'event=bridge_down')" '^[2-9]'
}

# ======================================================================
# 9. The secret rotated (new bridges file + SIGHUP)
# ======================================================================
br_rotation() {
    br_conn_start a "$BR/lab.secret"
    CUR_LOG=${BR_LOG[a]}
    br_conn_up a || fail "connector a (old secret): tunnel_up" "$(oneline "$(tail -n 3 "${BR_LOG[a]}")")"
    br_secret lab .new
    cat "$BR/lab.line.new" "$BR/ghost.line" >"$BR/bridges.new"
    mv "$BR/bridges.new" "$BR/bridges"
    BR_DOWNS=$(count "$BR_PLOG" 'event=bridge_down')
    kill -HUP "${IT_PIDS[bridge]:-0}" 2>/dev/null
    t=$(now_ms)
    CUR_LOG=$BR_PLOG
    for ((i = 0; i < 100 * BR_TS; i++)); do
        [ "$(count "$BR_PLOG" 'event=bridge_down')" -gt "$BR_DOWNS" ] && break
        sleep 0.05
    done
    name="secret rotated: proxy logs event=bridge_down (secret) for connector a at once"
    expect "$name ($(($(now_ms) - t)) ms)" "$(grep 'event=bridge_down' "$BR_PLOG" | tail -n 1)" \
        'connector="?a.*reason=.*secret'
    CUR_LOG=${BR_LOG[a]}
    wait_line "${BR_LOG[a]}" 'event=tunnel_down' $((5 * BR_TS))
    expect "secret rotated: connector a logs event=tunnel_down with the proxy's reason" \
        "$(grep -m1 'event=tunnel_down' "${BR_LOG[a]}")" 'reason=.*secret'
    if wait_line "${BR_LOG[a]}" 'event=tunnel_rejected' $((10 * BR_TS)); then
        pass "secret rotated: connector a's reconnect is refused (event=tunnel_rejected)"
    else
        fail "secret rotated: connector a's reconnect is refused (event=tunnel_rejected)" "not in 10 s"
    fi
    out=$(raw error localhost "$BR_P")
    expect "secret rotated: clients get 08001 (no connector online)" "$out" \
        '^sqlstate=08001 severity=FATAL message=.*no connector online'
    it_stop conn-a
    br_conn_start a "$BR/lab.secret.new"
    CUR_LOG=${BR_LOG[a]}
    if br_conn_up a; then
        out=$(pgc query "$CI_BR" "SELECT 'rotated'")
        expect "secret rotated: connector a with the new secret is up and carries sessions" \
            "$out" '^rotated$'
    else
        fail "secret rotated: connector a with the new secret is up" \
            "$(oneline "$(tail -n 3 "${BR_LOG[a]}")")"
    fi
}
