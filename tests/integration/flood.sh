# shellcheck shell=bash
# flood section of tests/integration/run.sh (sourced; uses its helpers).
#
# Floods of connections that never say anything (issue 11):
#   1. descriptor flood: a proxy limited to 64 open files, with 2 workers,
#      under 300 silent connections held open: it does not spin (libuv's
#      EMFILE path did, at 150-195% CPU), its timers still close the silent
#      clients, it serves again within seconds once the flood ends, and a
#      SIGTERM in the middle of a flood stops it.
#   6. silent clients: 400 connections that send nothing are closed at the
#      handshake timeout and their descriptors freed at once (they lingered
#      5 s more).
#  10. admin endpoint: 200 idle connections and a trickle of new ones do not
#      starve /healthz and /readyz; a silent admin client is closed at the
#      2 s head deadline.
# Counts scale down under ASan (FLOOD_SCALE) and waits scale up under
# valgrind (IT_TIME_SCALE).

FLOOD_T0=$SECONDS
FLOOD_ASAN=0
grep -q __asan_init "$PGTP_BIN" 2>/dev/null && FLOOD_ASAN=1
FLOOD_SCALE=1
[ "$FLOOD_ASAN" = 1 ] && FLOOD_SCALE=2
[ ${#IT_WRAP[@]} -gt 0 ] && FLOOD_SCALE=4
TS=$IT_TIME_SCALE

# Hundreds of held connections, both ends of each in this machine's limit.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
    ulimit -Hn 4096 2>/dev/null
    ulimit -n 4096 2>/dev/null
fi

# cpu_ticks PID: user + system CPU time of PID so far, in clock ticks.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
CLK_TCK=$(getconf CLK_TCK)

# hold_start NAME PORT N SECONDS [PER_SECOND]: rawclient hold in the
# background (output in $TMP/NAME.out); returns once the first N are
# connected. Sets HOLD_PID.
hold_start() {
    local name=$1
    shift
    timeout -k 5 $((60 * TS)) "$RAWCLIENT" hold 127.0.0.1 "$@" >"$TMP/$name.out" 2>&1 &
    HOLD_PID=$!
    wait_line "$TMP/$name.out" '^held=' $((15 * TS))
}

# ======================================================================
# 1. Descriptor flood: 300 silent connections, a limit of 64, 2 workers
# ======================================================================
# ulimit -n sets both limits, so the proxy cannot raise it. Under valgrind
# the limit is set before memcheck, which keeps 12 for itself (abuse.sh).
FD_LIMIT=64
[ ${#IT_WRAP[@]} -gt 0 ] && FD_LIMIT=76
cat >"$TMP/flood-proxy" <<EOS
#!/bin/sh
ulimit -n $FD_LIMIT || exit 111
exec ${IT_WRAP[*]} "$PGTP_BIN" "\$@"
EOS
chmod +x "$TMP/flood-proxy"
FLOOD_N=$((300 / FLOOD_SCALE))
it_free_port FLOOD_PORT
IT_NOWRAP=1 PGTP_BIN=$TMP/flood-proxy start_proxy fdflood "$FLOOD_PORT" 127.0.0.1 "$PGPORT" \
    localhost "$CERTS/db-ca.crt" --workers 2 --server-handshake-timeout 2
FLOOD_PID=${IT_PIDS[fdflood]:-0}
FLOOD_LOG=$CUR_LOG
FLOOD_CI=$(ci "$FLOOD_PORT")
out=$(pgc query "$FLOOD_CI" "SELECT 'before'")
expect "descriptor flood: a session works before the flood (limit $FD_LIMIT, 2 workers)" "$out" '^before$'

if hold_start fdflood1 "$FLOOD_PORT" "$FLOOD_N" $((6 * TS)); then
    pass "descriptor flood: $FLOOD_N silent connections held open (a limit of $FD_LIMIT descriptors)"
else
    fail "descriptor flood: $FLOOD_N silent connections held open" "$(oneline "$(cat "$TMP/fdflood1.out")")"
fi
HOLD1=$HOLD_PID
sleep 0.5
c0=$(cpu_ticks "$FLOOD_PID") t0=$(now_ms)
sleep 2
c1=$(cpu_ticks "$FLOOD_PID") t1=$(now_ms)
cpu=$(awk -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v ms="$((t1 - t0))" \
    'BEGIN { printf "%d", c / hz / (ms / 1000) * 100 }')
if [ ${#IT_WRAP[@]} -gt 0 ]; then
    # memcheck's own work is most of the CPU there: the figure says nothing.
    it_note "descriptor flood: CPU ${cpu}% under $(basename "${IT_WRAP[0]}") (not judged)"
    pass "descriptor flood: CPU measured (${cpu}%), not judged under a wrapper"
elif [ -n "$c1" ] && lt "$cpu" 50; then
    pass "descriptor flood: the proxy does not spin (${cpu}% CPU over 2 s, bound 50%)"
else
    fail "descriptor flood: the proxy does not spin (CPU < 50%)" "${cpu:-?}% CPU over 2 s"
fi
# The silent clients it has accepted meet its 2 s handshake timeout: the
# timers of both workers run.
n=$(count "$FLOOD_LOG" 'event=closed .*outcome=timeout reason="no start-up within 2000 ms')
expect "descriptor flood: its timers run: silent clients closed at the 2 s handshake timeout ($n so far)" \
    "n=$n" '^n=([2-9][0-9]|[1-9][0-9][0-9]+)$'
line=$(grep -E 'event=accept_failed ' "$FLOOD_LOG" | head -n 1)
expect "descriptor flood: logged: event=accept_failed 'out of file descriptors: clients wait in the listen queue'" \
    "$line" 'level=warn event=accept_failed worker=[01] reason="too many open files" suppressed=[0-9]+ hint="out of file descriptors: clients wait in the listen queue until some are free; raise the open-files limit'
wait "$HOLD1"
out=$(cat "$TMP/fdflood1.out")
printf '%s\n' "$out" >"$LOGS/flood-fdflood1.out"
t_end=$(now_ms)
closed=$(grep -oE 'closed_by_peer=[0-9]+' <<<"$out" | cut -d= -f2)
expect "descriptor flood: the proxy closed held clients throughout, as descriptors came free ($closed of $FLOOD_N in 6 s)" \
    "closed=${closed:-none}" '^closed=([4-9][0-9]|[1-9][0-9][0-9]+)$'
# The flood is over (its clients gone): how long until a real client is served?
rec=""
for ((i = 0; i < 40 * TS; i++)); do
    out=$(PGC_TIMEOUT=$((5 * TS)) pgc query "$FLOOD_CI" "SELECT 'recovered'")
    if [ "$out" = recovered ]; then
        rec=$(($(now_ms) - t_end))
        break
    fi
    sleep 0.25
done
it_note "descriptor flood: time to recover after the flood: ${rec:-never} ms"
if [ -n "$rec" ] && [ "$rec" -lt $((5000 * TS)) ]; then
    pass "descriptor flood: serving again ${rec} ms after the flood ended (bound 5 s)"
else
    fail "descriptor flood: serving again within 5 s of the flood's end" \
        "after ${rec:-more than 10 s} ms: $(oneline "$out")"
fi
secs=$(((t_end - t0) / 1000 + 4))
n=$(count "$FLOOD_LOG" 'event=accept_failed ')
if [ "$n" -ge 1 ] && [ "$n" -le "$secs" ]; then
    pass "descriptor flood: accept_failed is rate-limited ($n lines in about $secs s)"
else
    fail "descriptor flood: accept_failed is rate-limited (1 to $secs lines)" "$n lines"
fi

# SIGTERM in the middle of a flood: the drain command reaches the workers.
if hold_start fdflood2 "$FLOOD_PORT" "$FLOOD_N" $((10 * TS)); then
    sleep 1
    t=$(now_ms)
    kill -TERM "$FLOOD_PID"
    for ((i = 0; i < 300 * TS; i++)); do
        kill -0 "$FLOOD_PID" 2>/dev/null || break
        sleep 0.05
    done
    ms=$(($(now_ms) - t))
    it_note "descriptor flood: exit after SIGTERM during a flood: $ms ms"
    if ! kill -0 "$FLOOD_PID" 2>/dev/null && [ "$ms" -lt $((6000 * TS)) ]; then
        pass "descriptor flood: SIGTERM during the flood: exited after $ms ms (bound 6 s)"
    else
        fail "descriptor flood: SIGTERM during the flood ends it within 6 s" "still running after $ms ms"
    fi
    stop_proxy fdflood
    kill "$HOLD_PID" 2>/dev/null
    wait "$HOLD_PID" 2>/dev/null
    n=$(count "$FLOOD_LOG" 'event=loop_close_failed')
    expect "descriptor flood: clean exit: status 0, every handle closed (no loop_close_failed)" \
        "status=${IT_EXIT[fdflood]:-?} loop_close_failed=$n" '^status=0 loop_close_failed=0$'
else
    fail "descriptor flood: a second flood held open" "$(oneline "$(cat "$TMP/fdflood2.out")")"
    stop_proxy fdflood
fi
it_note "flood: descriptor flood took $((SECONDS - FLOOD_T0)) s"

# ======================================================================
# 6. Silent clients: closed at the handshake timeout, descriptors freed
# ======================================================================
it_free_port SILENT_PORT
start_proxy silent "$SILENT_PORT" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --server-handshake-timeout 2
SILENT_PID=${IT_PIDS[silent]:-0}
SILENT_LOG=$CUR_LOG
# The baseline: after a few connections on each worker, once steady.
raw hold 127.0.0.1 "$SILENT_PORT" 16 0.1 >/dev/null
prev=-1 base=$(fd_count "$SILENT_PID")
for ((i = 0; i < 40 && base != prev; i++)); do
    sleep 0.25
    prev=$base base=$(fd_count "$SILENT_PID")
done
SILENT_N=$((400 / FLOOD_SCALE))
hold_start silent "$SILENT_PORT" "$SILENT_N" $((6 * TS))
t0=$(now_ms)
peak=0 back=""
for ((i = 0; i < 100 * TS; i++)); do
    fds=$(fd_count "$SILENT_PID")
    [ "$fds" -gt "$peak" ] && peak=$fds
    if [ "$peak" -gt $((base + SILENT_N / 2)) ] && [ "$fds" -le "$base" ]; then
        back=$(($(now_ms) - t0))
        break
    fi
    sleep 0.05
done
it_note "silent clients: $SILENT_N held: descriptors $base -> $peak, back to $base after ${back:-never} ms (timeout 2 s)"
if [ $((peak - base)) -ge $((SILENT_N * 9 / 10)) ]; then
    pass "silent clients: $SILENT_N held open by the proxy until its timeout (fds $base -> $peak)"
else
    fail "silent clients: $SILENT_N held open by the proxy until its timeout" "fds $base -> $peak"
fi
if [ -n "$back" ] && [ "$back" -lt $((3200 * TS)) ]; then
    pass "silent clients: descriptors back to baseline ${back} ms after they connected (timeout 2000 ms; no 5 s linger)"
else
    fail "silent clients: descriptors back to baseline within ~1 s of the 2 s timeout" \
        "after ${back:-more than $((5 * TS)) s} ms ($(fd_count "$SILENT_PID") fds, baseline $base)"
fi
wait "$HOLD_PID"
out=$(cat "$TMP/silent.out")
printf '%s\n' "$out" >"$LOGS/flood-silent.out"
expect "silent clients: every one was closed by the proxy" "$(grep '^hold ' <<<"$out")" \
    "^hold opened=$SILENT_N connected=$SILENT_N closed_by_peer=$SILENT_N still_open=0\$"
n=$(count "$SILENT_LOG" 'event=closed .*outcome=timeout reason="no start-up within 2000 ms')
expect "silent clients: one event=closed outcome=timeout line each" "n=$n" "^n=$SILENT_N\$"
stop_proxy silent

# ======================================================================
# 10. Admin endpoint: idle connections do not starve the probes
# ======================================================================
it_free_port ADM_PORT
it_free_port ADM_HTTP
start_proxy adminflood "$ADM_PORT" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --admin-address "127.0.0.1:$ADM_HTTP"
ADM_LOG=$CUR_LOG
code=""
for ((i = 0; i < 100 * TS; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$ADM_HTTP/readyz")
    [ "$code" = 200 ] && break
    sleep 0.1
done
expect "admin flood: /readyz is 200 before the flood" "$code" '^200$'
out=$(raw idle 127.0.0.1 "$ADM_HTTP" 15)
after=$(sed -n 's/^after=//p' <<<"$out")
if lt 1.8 "${after:-x}" && lt "$after" $((4 * TS)); then
    pass "admin flood: a connection that sends nothing is closed at the 2 s head deadline (after ${after} s)"
else
    fail "admin flood: a silent admin connection is closed at the 2 s head deadline" "$(oneline "$out")"
fi
ADM_N=$((200 / FLOOD_SCALE))
hold_start adminhold "$ADM_HTTP" "$ADM_N" $((7 * TS)) 20
ok=0 total=0 codes=""
for ((i = 0; i < 25; i++)); do
    for path in healthz readyz; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$ADM_HTTP/$path")
        total=$((total + 1))
        if [ "$code" = 200 ]; then ok=$((ok + 1)); else codes+=" $path:$code"; fi
    done
    sleep 0.2
done
it_note "admin flood: $ok/$total probes answered 200 under $ADM_N idle connections and 20 new a second"
expect "admin flood: /healthz and /readyz answer 200 under $ADM_N idle connections + 20/s ($ok/$total)" \
    "$ok/$total${codes}" "^$total/$total\$"
wait "$HOLD_PID"
out=$(cat "$TMP/adminhold.out")
printf '%s\n' "$out" >"$LOGS/flood-adminhold.out"
expect "admin flood: the idle connections were closed by the proxy (evicted or at the deadline)" \
    "$(grep '^hold ' <<<"$out")" '^hold opened=[0-9]+ connected=[0-9]+ closed_by_peer=[1-9][0-9]+ '
line=$(grep -E 'event=admin_busy ' "$ADM_LOG" | head -n 1)
expect "admin flood: logged once: event=admin_busy, the oldest idle connections make room" "$line" \
    'level=warn event=admin_busy max=64 reason="too many admin connections: the oldest that have not sent a request are closed to make room"'
stop_proxy adminflood
it_note "flood: section took $((SECONDS - FLOOD_T0)) s"
