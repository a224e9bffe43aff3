# shellcheck shell=bash
# Load: 10,000 concurrent sessions through one proxy, held for a minute.
# Sourced by run.sh (IT_ONLY=load); uses its helpers and its PostgreSQL.
#
# PostgreSQL here cannot hold 10,000 backends (max_connections is 300), so
# this proxy's upstream is the stub of tests/load/conns.py (TLS with the db
# CA's certificate, verified by the proxy like any upstream): it relays the
# sessions of role app to the real PostgreSQL (SCRAM end to end) and answers
# every other user itself with AuthenticationOk .. ReadyForQuery, costing no
# backend. The sessions (one Python client process, tests/load/conns.py):
#   stub   IT_LOAD_SESSIONS - IT_LOAD_FULL - IT_LOAD_PENDING: SSLRequest,
#          verified TLS, StartupMessage answered by the stub, then idle;
#          both TLS legs up: 2 descriptors in the proxy
#   full   IT_LOAD_FULL (50): the same, SCRAM with PostgreSQL, SELECT 1, idle
#   pre    IT_LOAD_PENDING (1500): held at the start-up stage: TCP up and 4
#          of the 8 bytes of SSLRequest sent; 1 descriptor, no upstream leg
#          (the handshake timeout of this proxy is raised past the hold)
# Why some are held at the start-up stage: with every one of 10,000 sessions
# established the proxy needs 20,000 descriptors plus its own, and the hard
# limit in our containers is 20,000 and cannot be raised (root without
# CAP_SYS_RESOURCE). Besides, the proxy keeps a reserve of descriptors
# (limit/16, at most 1,024) for telling clients it is nearly out of them:
# a session accepted into it is refused with 53300. So the mix must fit in
# limit - 1,024: 2 x 8,500 + 1,500 + its own ~25 = 18,525 of 18,976. The
# hard limit is raised when it is too low for the mix and that is possible;
# otherwise the section fails and says why.
#
# Asserted: every session opens; while all are held (IT_LOAD_HOLD s, samples
# every second in load-samples.tsv) the proxy's descriptors equal its
# baseline + 2 per established session + 1 per pending one, and its RSS
# never rises above the first sample by more than 2 % or 2 MB; RSS growth
# per session stays under IT_LOAD_KB_MAX (64 KB); no session is closed by the proxy; then every
# established session answers a query, is closed and the proxy lets go of
# it; every pending session then finishes its start-up and answers a query;
# once all are closed the proxy is back to its baseline descriptors.
# The Makefile's asan target scales this down (IT_LOAD_* variables): an
# ASan build costs several times the CPU and memory per session. Behind
# PGTP_WRAP (make valgrind) the defaults are smaller still: memcheck runs
# the proxy some 20-50 times slower.

LOAD_T0=$SECONDS
if [ -n "${PGTP_WRAP:-}" ]; then
    : "${IT_LOAD_SESSIONS:=300}" "${IT_LOAD_HOLD:=10}" "${IT_LOAD_FULL:=20}" \
        "${IT_LOAD_PENDING:=50}" "${IT_LOAD_KB_MAX:=1024}"
fi
: "${IT_LOAD_SESSIONS:=10000}" "${IT_LOAD_HOLD:=60}" "${IT_LOAD_FULL:=50}" \
    "${IT_LOAD_PENDING:=1500}" "${IT_LOAD_KB_MAX:=64}"
L_N=$IT_LOAD_SESSIONS L_FULL=$IT_LOAD_FULL L_PRE=$IT_LOAD_PENDING L_HOLD=$IT_LOAD_HOLD
L_STUB=$((L_N - L_FULL - L_PRE))
L_EST=$((L_STUB + L_FULL))
L_CTL=$TMP/load-ctl
L_TSV=$LOGS/load-samples.tsv
L_OK=1

# load_kv FILE KEY: the value of KEY=... in FILE (empty if absent).
load_kv() { awk -v k="$2" 'index($0, k "=") == 1 { print substr($0, length(k) + 2); exit }' "$1" 2>/dev/null; }
# load_wait_file FILE SECONDS: until FILE exists; fails early if the client exits.
load_wait_file() {
    local i pid=${IT_PIDS[load-client]:-}
    for ((i = 0; i < $2 * 10; i++)); do
        [ -f "$1" ] && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            [ -f "$1" ]
            return
        fi
        sleep 0.1
    done
    return 1
}
# load_wait_fds MAX SECONDS: until the load proxy has at most MAX descriptors.
load_wait_fds() {
    local i
    for ((i = 0; i < $2 * 4; i++)); do
        [ "$(fd_count "$L_PID")" -le "$1" ] && return 0
        sleep 0.25
    done
    return 1
}
# load_cpu PID: CPU seconds (user + system, all threads) PID has used so far.
load_cpu() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    st=${st##*) } # after "pid (comm) "
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($12 + $13) / hz }' <<<"$st"
}
load_sample() { # PHASE
    printf '%s\t%s\t%s\t%s\t%s\n' "$((SECONDS - LOAD_T0))" "$1" "$(rss_kb "$L_PID")" \
        "$(fd_count "$L_PID")" "$({ tr '\n' ' ' <"$L_CTL/status"; } 2>/dev/null)" >>"$L_TSV"
}

for v in IT_LOAD_SESSIONS IT_LOAD_HOLD IT_LOAD_FULL IT_LOAD_PENDING IT_LOAD_KB_MAX; do
    [[ ${!v} =~ ^[0-9]+$ ]] || {
        fail "load: settings" "$v must be a whole number (got '${!v}')"
        L_OK=0
    }
done
if [ "$L_OK" = 1 ] && { [ "$L_STUB" -lt 1 ] || [ "$L_FULL" -gt 200 ]; }; then
    fail "load: settings" "IT_LOAD_SESSIONS ($L_N) must exceed IT_LOAD_FULL + IT_LOAD_PENDING, IT_LOAD_FULL at most 200"
    L_OK=0
fi

# Descriptors: the proxy needs 2 per established session, 1 per pending one,
# plus its own and its reserve (FD_RESERVE_MAX in src/conn.c); the client
# one per session. The proxy raises its soft limit to the hard one itself.
if [ "$L_OK" = 1 ]; then
    L_NEED=$((2 * L_EST + L_PRE + 256 + 1024))
    L_HARD=$(ulimit -Hn)
    if [ "$L_HARD" != unlimited ] && [ "$L_HARD" -lt "$L_NEED" ]; then
        if it_is_root && ulimit -Hn "$L_NEED" 2>/dev/null; then
            it_note "load: raised the fd hard limit from $L_HARD to $L_NEED"
        else
            fail "load: file descriptors" "$L_N sessions ($L_EST established, $L_PRE pending) need $L_NEED descriptors in the proxy; the hard limit is $L_HARD and cannot be raised ($(it_is_root && echo "root without CAP_SYS_RESOURCE" || echo "not root")); lower IT_LOAD_SESSIONS or raise ulimit -Hn"
            L_OK=0
        fi
    fi
fi

if [ "$L_OK" = 1 ]; then
    it_free_port LOAD_STUB_PORT
    it_free_port LOAD_PORT
    (umask 077 && printf '%s\n' "$PASSWORD" >"$TMP/load-password")
    mkdir -p "$L_CTL"
    printf 'seconds\tphase\tproxy_rss_kb\tproxy_fds\tclient_status\n' >"$L_TSV"
    it_spawn load-stub "$LOGS/load-stub.log" python3 "$IT_REPO/tests/load/conns.py" stub \
        --port "$LOAD_STUB_PORT" --cert "$CERTS/db-server.crt" --key "$CERTS/db-server.key" \
        --pg-port "$PGPORT" --relay-user app
    if ! it_wait_port "$LOAD_STUB_PORT" 15 "${IT_PIDS[load-stub]}"; then
        fail "load: stub upstream listens" "$(oneline "$(tail -n 5 "$LOGS/load-stub.log")")"
        L_OK=0
    fi
fi
if [ "$L_OK" = 1 ]; then
    # Warnings only: at info, 10,000 sessions write 30,000 lines.
    start_proxy load "$LOAD_PORT" 127.0.0.1 "$LOAD_STUB_PORT" localhost "$CERTS/db-ca.crt" \
        --max-connections $((L_N + 100)) --server-handshake-timeout $((L_HOLD + 600)) --log warn
    L_PID=${IT_PIDS[load]:-0}
    kill -0 "$L_PID" 2>/dev/null || L_OK=0
fi

if [ "$L_OK" = 1 ]; then
    sleep 1
    L_FDS0=$(fd_count "$L_PID") L_RSS0=$(rss_kb "$L_PID")
    load_sample start
    it_note "load: proxy pid $L_PID: $L_FDS0 fds, RSS $L_RSS0 KB; opening $L_STUB stub + $L_FULL PostgreSQL + $L_PRE pending sessions"
    it_spawn load-client "$LOGS/load-client.log" python3 "$IT_REPO/tests/load/conns.py" client \
        --port "$LOAD_PORT" --ca "$CERTS/public-ca.crt" --ctl "$L_CTL" \
        --stages "stub:$L_STUB,full:$L_FULL,pre:$L_PRE" --user app --db app \
        --password-file "$TMP/load-password" --conc 64 --ping --max-wait $((L_HOLD + 300))
    L_OPENED=0 L_DETAIL=""
    for kind in stub full pre; do
        case $kind in stub) n=$L_STUB ;; full) n=$L_FULL ;; pre) n=$L_PRE ;; esac
        if ! load_wait_file "$L_CTL/$kind.done" $((130 + n / 20)); then
            L_DETAIL+=" $kind: no report (client log: $(oneline "$(tail -n 3 "$LOGS/load-client.log")"));"
            break
        fi
        o=$(load_kv "$L_CTL/$kind.done" opened)
        L_OPENED=$((L_OPENED + ${o:-0}))
        L_DETAIL+=" $kind ${o:-0}/$n in $(load_kv "$L_CTL/$kind.done" seconds) s$([ "${o:-0}" = "$n" ] || echo ", first error: $(load_kv "$L_CTL/$kind.done" first_error)");"
        load_sample "after-$kind"
        touch "$L_CTL/$kind.go"
    done
    L_OPEN_S=$((SECONDS - LOAD_T0))
    L_CPU="proxy $(load_cpu "$L_PID") s, client $(load_cpu "${IT_PIDS[load-client]:-0}") s, stub $(load_cpu "${IT_PIDS[load-stub]:-0}") s"
    if [ "$L_OPENED" = "$L_N" ]; then
        pass "load: $L_N concurrent sessions open ($L_DETAIL )"
    else
        fail "load: $L_N concurrent sessions open" "$L_OPENED opened:$L_DETAIL"
    fi

    # The last sessions' upstream legs may still be settling: a few seconds.
    L_FDS_WANT=$((L_FDS0 + 2 * L_EST + L_PRE))
    for ((i = 0; i < 40; i++)); do
        [ "$(fd_count "$L_PID")" = "$L_FDS_WANT" ] && break
        sleep 0.25
    done
    load_sample all-open
    L_RSS=() L_FDS=()
    L_TICK=$(now_ms)
    for ((i = 1; i <= L_HOLD; i++)); do
        # Every second on the clock, however long a sample takes.
        L_TICK=$((L_TICK + 1000))
        d=$((L_TICK - $(now_ms)))
        [ "$d" -le 0 ] || sleep "$(awk -v d="$d" 'BEGIN { printf "%.3f", d / 1000 }')"
        L_RSS+=("$(rss_kb "$L_PID")") L_FDS+=("$(fd_count "$L_PID")")
        load_sample hold
    done
    L_RMIN=$(printf '%s\n' "${L_RSS[@]}" | sort -n | head -n 1)
    L_RMAX=$(printf '%s\n' "${L_RSS[@]}" | sort -n | tail -n 1)
    L_FMIN=$(printf '%s\n' "${L_FDS[@]}" | sort -n | head -n 1)
    L_FMAX=$(printf '%s\n' "${L_FDS[@]}" | sort -n | tail -n 1)
    L_FLAT=$((L_RMAX / 50 > 2048 ? L_RMAX / 50 : 2048))
    if [ "$L_FMIN" = "$L_FDS_WANT" ] && [ "$L_FMAX" = "$L_FDS_WANT" ]; then
        pass "load: held $L_HOLD s: proxy fds = $L_FDS0 + 2 x $L_EST established + $L_PRE pending = $L_FDS_WANT every second"
    else
        fail "load: held $L_HOLD s: proxy fds = $L_FDS0 + 2 x $L_EST + $L_PRE = $L_FDS_WANT every second" \
            "min $L_FMIN, max $L_FMAX (samples: $L_TSV)"
    fi
    # Never above the first sample: the last wave of sessions going quiet
    # may still be handed back to the system (worker.c's malloc_trim) in
    # the first seconds of the hold, so RSS may fall but must not grow.
    if [ $((L_RMAX - L_RSS[0])) -le "$L_FLAT" ]; then
        pass "load: held $L_HOLD s: proxy RSS not growing ($L_RMIN..$L_RMAX KB, first ${L_RSS[0]}, at most $L_FLAT KB above it)"
    else
        fail "load: held $L_HOLD s: proxy RSS not growing (at most $L_FLAT KB above the first sample, ${L_RSS[0]} KB)" \
            "$L_RMIN..$L_RMAX KB (samples: $L_TSV)"
    fi
    L_KB=$(awk -v a="$L_RMAX" -v b="$L_RSS0" -v n="$L_N" 'BEGIN { printf "%.1f", (a - b) / n }')
    if lt "$L_KB" "$IT_LOAD_KB_MAX"; then
        pass "load: proxy RSS per session $L_KB KB < $IT_LOAD_KB_MAX KB ($L_RSS0 -> $L_RMAX KB for $L_N sessions)"
    else
        fail "load: proxy RSS per session < $IT_LOAD_KB_MAX KB" "$L_KB KB ($L_RSS0 -> $L_RMAX KB for $L_N sessions)"
    fi

    # Every established session answers a query, then is closed.
    touch "$L_CTL/release"
    if load_wait_file "$L_CTL/final" 90; then
        f=$L_CTL/final
        got="stub $(load_kv "$f" stub_open)/$L_STUB and full $(load_kv "$f" full_open)/$L_FULL still open, pre $(load_kv "$f" pre_open)/$L_PRE still pending; answered: stub $(load_kv "$f" stub_answered_ping), full $(load_kv "$f" full_answered_ping)"
        if [ "$(load_kv "$f" stub_open)" = "$L_STUB" ] && [ "$(load_kv "$f" full_open)" = "$L_FULL" ] &&
            [ "$(load_kv "$f" pre_open)" = "$L_PRE" ] && [ "$(load_kv "$f" stub_answered_ping)" = "$L_STUB" ] &&
            [ "$(load_kv "$f" full_answered_ping)" = "$L_FULL" ]; then
            pass "load: after the hold no session was closed and every established one answers a query ($got)"
        else
            fail "load: after the hold every session is open and answers a query" \
                "$got; closed by the proxy: $(grep '_closed' "$f" | tr '\n' ' ')"
        fi
    else
        fail "load: after the hold every established session answers a query" \
            "no report from the client: $(oneline "$(tail -n 3 "$LOGS/load-client.log")")"
    fi
    load_sample released
    if load_wait_file "$L_CTL/others.closed" 30 && load_wait_fds $((L_FDS0 + L_PRE)) 60; then
        pass "load: established sessions closed: proxy back to $L_FDS0 + $L_PRE pending fds"
    else
        fail "load: established sessions closed: proxy back to $L_FDS0 + $L_PRE pending fds" \
            "$(fd_count "$L_PID") fds after 60 s"
    fi
    load_sample est-closed
    # The pending sessions finish their start-up now, each with a query.
    touch "$L_CTL/pre.resume"
    if load_wait_file "$L_CTL/final-pre" 120; then
        a=$(load_kv "$L_CTL/final-pre" pre_answered)
        expect "load: every pending session finishes its start-up after $L_HOLD+ s and answers a query" \
            "$a/$L_PRE $(load_kv "$L_CTL/final-pre" pre_first_error)" "^$L_PRE/$L_PRE $"
    else
        fail "load: every pending session finishes its start-up and answers a query" \
            "no report from the client: $(oneline "$(tail -n 3 "$LOGS/load-client.log")")"
    fi
    # The client closes everything and exits by itself; SIGTERM only if it hangs.
    for ((i = 0; i < 300; i++)); do
        kill -0 "${IT_PIDS[load-client]:-0}" 2>/dev/null || break
        sleep 0.1
    done
    it_stop load-client
    expect "load: the client exits 0" "exit=${IT_EXIT[load-client]:-?}" '^exit=0$'
    if load_wait_fds "$L_FDS0" 60; then
        pass "load: all sessions closed: proxy back to its $L_FDS0 baseline fds"
    else
        fail "load: all sessions closed: proxy back to its $L_FDS0 baseline fds" \
            "$(fd_count "$L_PID") fds after 60 s"
    fi
    load_sample closed
    # Each worker hands freed memory back 2 s after its sessions fall to
    # half their peak (worker.c, malloc_trim): RSS is read after that.
    sleep 3
    L_RSS_END=$(rss_kb "$L_PID")
    load_sample trimmed
    if kill -0 "$L_PID" 2>/dev/null; then
        pass "load: the proxy is still running"
    else
        fail "load: the proxy is still running" "it exited"
    fi
    it_note "load: $L_N sessions ($L_STUB stub, $L_FULL PostgreSQL, $L_PRE pending) opened in $L_OPEN_S s (CPU used: $L_CPU); held $L_HOLD s: RSS $L_RSS0 -> $L_RMIN..$L_RMAX KB ($L_KB KB/session), fds $L_FMIN..$L_FMAX; 3 s after closing: RSS $L_RSS_END KB (peak $(awk '/^VmHWM:/ { print $2 }' "/proc/$L_PID/status" 2>/dev/null) KB), $(fd_count "$L_PID") fds; warn/error log lines: $(count "$LOGS/proxy-load.log" 'level=(warn|error)'); stub upstream RSS $(rss_kb "${IT_PIDS[load-stub]:-0}") KB; section took $((SECONDS - LOAD_T0)) s"
fi
it_stop load-client
stop_proxy load
it_stop load-stub
rm -f "$TMP/load-password"
