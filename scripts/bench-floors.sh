# shellcheck shell=bash
# The floors of scripts/bench.sh (issue 17), sourced by it: what this machine
# allows any proxy, measured in the same run as the proxy, and the goals
# table that reads the proxy's figures as ratios to them.
#
#   haproxy-tcp   the relay floor: HAProxy in TCP mode passing the client's
#                 bytes through untouched (SSLRequest and TLS go end to end
#                 to PostgreSQL; clients verify PostgreSQL itself). One relay
#                 hop with no TLS and no protocol work: its CPU per select and
#                 per connection are the least any proxy hop costs here. A
#                 target of the throughput workloads like the others; optional
#                 (apt-get install haproxy), skipped and said so when missing.
#   tlsfloor      the TLS floor: OpenSSL alone, per proxied session, one
#                 server-side and one verified client-side full handshake,
#                 the memory of the idle established pair, and the records of
#                 one select (tests/bench/tlsfloor.c, build/tlsfloor from
#                 make; built here when missing). Run at the start of every
#                 repetition ($TLSFLOOR_PAIRS pairs, about a second), so it
#                 sees the same machine as the targets that follow; median.
#   idle sessions the proxy's KB per idle session with N sessions open, for
#                 each N of $IDLE_SESSIONS, by scripts/bench-conns.sh (a stub
#                 upstream, since PostgreSQL cannot hold 1,000 backends here),
#                 once, after the repetitions: RSS growth per session once all
#                 have been idle for IDLE_HOLD seconds.
# Uses bench.sh's record, med, calc, fmt, ratio, note, CERTS, TMP, OUT, LOGS,
# REPS, BIN, PORT, PG_PORT and HAVE_* variables.

: "${TLSFLOOR_PAIRS:=1000}" "${IDLE_SESSIONS:=1000}" "${IDLE_HOLD:=5}"
[ "$IDLE_SESSIONS" = none ] && IDLE_SESSIONS=""
for v in $TLSFLOOR_PAIRS $IDLE_SESSIONS $IDLE_HOLD; do
    [[ $v =~ ^[1-9][0-9]*$ ]] ||
        it_die "TLSFLOOR_PAIRS, IDLE_SESSIONS and IDLE_HOLD must be positive whole numbers (got '$v')"
done

start_haproxy() { # LOG
    local d=$TMP/haproxy
    mkdir -p "$d"
    cat >"$d/haproxy.cfg" <<EOF
global
    maxconn $((CLIENTS * 4 + 100))
    nbthread 2
defaults
    mode tcp
    timeout connect 10s
    timeout client 1h
    timeout server 1h
listen pg
    bind 127.0.0.1:${PORT[haproxy-tcp]}
    server db 127.0.0.1:$PG_PORT
EOF
    it_spawn haproxy "$1" haproxy -db -f "$d/haproxy.cfg"
    it_wait_port "${PORT[haproxy-tcp]}" 15 "${IT_PIDS[haproxy]}"
}

# TLSFLOOR_EXE: build/tlsfloor, or built here (empty: no TLS floor).
TLSFLOOR_EXE=$REPO/build/tlsfloor
find_tlsfloor() {
    local exe=$TLSFLOOR_EXE
    if [ ! -x "$exe" ] || [ "$exe" -ot "$REPO/tests/bench/tlsfloor.c" ]; then
        exe=$TMP/tlsfloor
        read -r -a SSL_FLAGS <<<"$(pkg-config --cflags --libs openssl 2>/dev/null || echo -lssl -lcrypto)"
        "${CC:-cc}" -std=c17 -O2 -o "$exe" "$REPO/tests/bench/tlsfloor.c" "${SSL_FLAGS[@]}" \
            >"$LOGS/tlsfloor-build.log" 2>&1 || {
            note "tests/bench/tlsfloor.c did not build (see $LOGS/tlsfloor-build.log): no TLS floor"
            exe=""
        }
    fi
    TLSFLOOR_EXE=$exe
}
# run_tlsfloor REP: one run, a line of key=value in $LOGS/tlsfloor.log.
run_tlsfloor() {
    local line k
    [ -n "$TLSFLOOR_EXE" ] || return 0
    line=$("$TLSFLOOR_EXE" "$TLSFLOOR_PAIRS" "$CERTS/proxy.crt" "$CERTS/proxy.key" "$CERTS/public-ca.crt" localhost 2>&1) || {
        note "tlsfloor failed: $line"
        return 0
    }
    printf '%s\n' "$line" >>"$LOGS/tlsfloor.log"
    for k in server_us client_us pair_us idle_pair_kb select_us; do
        record tlsfloor "$1" "$k" "$(kv "$line" "$k")"
    done
}

# HSCPU_EXE: build/pg-tls-proxy-hscpu (make bench builds it), the proxy with
# tlsio.c built with PGTP_HANDSHAKE_CPU: at exit it prints the thread CPU
# its TLS handshakes took, server side (front) and client side (back). Used
# only when the binary under test is this tree's and it was linked from the
# same library (not older than build/libpgtp.a).
find_hscpu() {
    HSCPU_EXE=$REPO/build/pg-tls-proxy-hscpu
    if [ ! -x "$HSCPU_EXE" ] || [ "$BIN" != "$REPO/build/pg-tls-proxy" ] ||
        [ "$HSCPU_EXE" -ot "$REPO/build/libpgtp.a" ]; then
        note "no in-proxy handshake figures: build/pg-tls-proxy-hscpu is missing or older than build/libpgtp.a (make bench builds it)"
        HSCPU_EXE=""
    fi
}

# run_hscpu REP: the connect-per-transaction workload (b), shorter, through
# the instrumented proxy; the CPU of OpenSSL's handshakes inside the proxy,
# next to tlsfloor's figures for the same handshakes run alone (run_tlsfloor
# just before). The gap is the machine (caches and CPUs shared with the
# client and PostgreSQL), not code of ours: issue 17's per-session profile.
run_hscpu() {
    local log=$LOGS/hscpu-r$1-proxy.log line k saved=$PGTP_BIN
    [ -n "$HSCPU_EXE" ] || return 0
    PGTP_BIN=$HSCPU_EXE
    start_pgtp "$log" || {
        PGTP_BIN=$saved
        note "the instrumented proxy did not start (see $log)"
        return 0
    }
    PGTP_BIN=$saved
    timeout $((DURATION * 3 + 60)) pgbench -n -S -C -c "$CLIENTS" -j "$THREADS" -T "$(((DURATION + 2) / 3))" \
        "${CONNINFO[pg-tls-proxy]}" >"$LOGS/hscpu-r$1-connect.log" 2>&1 ||
        note "hscpu: connect pgbench failed (see $LOGS/hscpu-r$1-connect.log)"
    it_stop pgtp
    line=$(grep -h '^handshake_cpu ' "$log" | tail -n 1)
    [ -n "$line" ] || {
        note "hscpu: no handshake_cpu line in $log"
        return 0
    }
    for k in server_us client_us; do
        record hscpu "$1" "$k" "$(kv "$line" "$k")"
    done
}

# The proxy's KB per idle session with N open, for each N of IDLE_SESSIONS.
run_idle_sessions() {
    local n d line
    for n in $IDLE_SESSIONS; do
        d=$OUT/conns-$n
        note "idle sessions: $n through the proxy (scripts/bench-conns.sh, logs in $d)"
        HOLD=$IDLE_HOLD CYCLE=0 FRONT=0 BENCH_OUT=$d PROXY_ARGS=${PROXY_ARGS:-} \
            "$REPO/scripts/bench-conns.sh" "$BIN" "$n" >"$LOGS/idle-$n.log" 2>&1 ||
            note "bench-conns.sh $n failed (see $LOGS/idle-$n.log)"
        line=$(cat "$d/result.txt" 2>/dev/null)
        record "idle-$n" 1 sessions "$(kv "$line" sessions)"
        record "idle-$n" 1 kb_per_session "$(kv "$line" kb_per_idle_session)"
    done
}

# goal_row GOAL VALUE FLOOR FLOOR_LABEL OP LIMIT UNIT_FORMAT: one line of the
# goals table; OP is ge or le, LIMIT the ratio the issue asks for (FLOOR "1"
# and FLOOR_LABEL "-": an absolute goal).
goal_row() {
    local r="-" met="-"
    if [ -n "$2" ] && [ -n "$3" ] && awk "BEGIN { exit !($3 > 0) }"; then
        r=$(calc %.2f "$2 / $3")
        if awk -v r="$r" -v l="$6" -v op="$5" 'BEGIN { exit !(op == "ge" ? r >= l : r <= l) }'; then
            met=yes
        else
            met=no
        fi
    fi
    local want="≤ $6"
    [ "$5" = ge ] && want="≥ $6"
    if [ "$4" = - ]; then
        want+=" (absolute)" r="-"
    elif [ "$r" != - ]; then
        r+="×" want+="×"
    fi
    printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$(fmt "$7" "$2")" "$4" "$r" "$want" "$met"
}

# The goals of issue 17, each a ratio of this run's medians.
goals_table() {
    local pt=pg-tls-proxy hp=haproxy-tcp pair relay_con floor_con sel_floor n t b
    pair=$(med tlsfloor pair_us) relay_con=$(med $hp con_cpu_us)
    floor_con=""
    [ -n "$pair" ] && [ -n "$relay_con" ] && floor_con=$(calc %.1f "$pair + $relay_con")
    echo
    echo "### Goals (issue 17): pg-tls-proxy against the floors of this machine, median of $REPS run(s)"
    echo
    echo "| goal | pg-tls-proxy | floor (same run) | ratio | goal | met |"
    echo "|---|---|---|---|---|---|"
    goal_row "select TPS" "$(med $pt sel_tps)" "$(med $hp sel_tps)" \
        "$(fmt %.0f "$(med $hp sel_tps)") (relay hop)" ge 0.98 %.0f
    # A hop that terminates TLS does at least the records of each select on
    # top of what the relay does; on a saturated machine TPS goes as the
    # inverse of the machine's CPU per select, so this is its best ratio.
    local m_relay rec ceil=""
    m_relay=$(med $hp sel_machine_us) rec=$(med tlsfloor select_us)
    if [ -n "$m_relay" ] && [ -n "$rec" ] && [ -n "$(med $hp sel_tps)" ]; then
        ceil=$(calc %.0f "$(med $hp sel_tps) * $m_relay / ($m_relay + $rec)")
        goal_row "(the ceiling of any TLS-terminating hop: relay + records alone)" "$ceil" "$(med $hp sel_tps)" \
            "machine CPU per select $(fmt %.1f "$m_relay") µs + $(fmt %.1f "$rec") of records; idle $(fmt %.0f "$(med $hp sel_idle_pct)") %" ge 0.98 %.0f
    fi
    goal_row "proxy CPU µs per select" "$(med $pt sel_cpu_us)" "$(med $hp sel_cpu_us)" \
        "$(fmt %.1f "$(med $hp sel_cpu_us)") (relay hop)" le 1.10 %.1f
    sel_floor=""
    [ -n "$(med $hp sel_cpu_us)" ] && [ -n "$(med tlsfloor select_us)" ] &&
        sel_floor=$(calc %.1f "$(med $hp sel_cpu_us) + $(med tlsfloor select_us)")
    goal_row "(the same against relay + TLS records)" "$(med $pt sel_cpu_us)" "$sel_floor" \
        "$(fmt %.1f "$sel_floor") (relay + $(fmt %.1f "$(med tlsfloor select_us)") of records)" le 1.10 %.1f
    goal_row "proxy CPU µs per new session (-C)" "$(med $pt con_cpu_us)" "$floor_con" \
        "$(fmt %.0f "$floor_con") (TLS pair $(fmt %.0f "$pair") + relay $(fmt %.0f "$relay_con"))" le 1.25 %.0f
    local hs_s hs_c adj=""
    hs_s=$(med hscpu server_us) hs_c=$(med hscpu client_us)
    if [ -n "$hs_s" ] && [ -n "$hs_c" ] && [ -n "$pair" ] && [ -n "$(med $pt con_cpu_us)" ]; then
        adj=$(calc %.0f "$(med $pt con_cpu_us) - ($hs_s + $hs_c - $pair)")
        goal_row "(the same, were its handshakes as cheap as OpenSSL's alone)" "$adj" "$floor_con" \
            "$(fmt %.0f "$floor_con") (in the proxy: $(fmt %.0f "$hs_s") + $(fmt %.0f "$hs_c") µs, $(ratio "$(calc %.1f "$hs_s + $hs_c")" "$pair") the pair's)" le 1.25 %.0f
    fi
    goal_row "proxy CPU s per GB relayed" "$(med $pt bulk_cpu_s_gb)" 1 - le 1.0 %.2f
    for n in $IDLE_SESSIONS; do
        goal_row "KB per idle session, $(med "idle-$n" sessions) open" "$(med "idle-$n" kb_per_session)" \
            "$(med tlsfloor idle_pair_kb)" "$(fmt %.1f "$(med tlsfloor idle_pair_kb)") (TLS idle pair)" le 1.15 %.1f
    done
    b=$(med pgbouncer-nopool login_con_cpu_ms)
    for t in pgtp-password pgtp-password-cold pgtp-scram; do
        [[ " ${LAVAIL[*]} " == *" $t "* ]] || continue
        goal_row "proxy CPU ms per login, $t ($LOGIN_CLIENTS clients)" "$(med "$t" login_con_cpu_ms)" "$b" \
            "$(fmt %.2f "$b") (PgBouncer, SCRAM terminated, unpooled)" le 1.00 %.2f
    done
    echo
    echo "Relay hop: HAProxy $(haproxy -v 2>/dev/null | awk 'NR == 1 { print $3 }') in TCP mode, TLS end to end to PostgreSQL (no TLS in the"
    echo "relay). TLS pair: tests/bench/tlsfloor.c, one server-side + one verified client-side full handshake of"
    echo "OpenSSL alone over memory BIOs ($TLSFLOOR_PAIRS pairs; $(fmt %.0f "$(med tlsfloor server_us)") + $(fmt %.0f "$(med tlsfloor client_us)") µs), RSS per idle established pair, and"
    echo "the records of one select (a 62-byte query and a 70-byte result, each decrypted and encrypted once)."
    echo "Run at the start of each repetition. Idle sessions: RSS growth per session after $IDLE_HOLD s idle"
    echo "(scripts/bench-conns.sh, $OUT/conns-N/)."
    echo "A goal the floors show out of reach says \"no\" here as well: see the profile in README \"Performance\"."
}
