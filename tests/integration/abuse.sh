# shellcheck shell=bash
# abuse section of tests/integration/run.sh (sourced; uses its helpers).
#
# Hostile and broken clients against dedicated proxies in front of the real
# PostgreSQL, while 20 well-behaved clients (rawclient good: TLS + SCRAM,
# "SELECT k" every 100 ms, a new session every 20 queries) keep working:
#   7. slowloris: 1,000 connections that stop part way through the start-up
#      are all closed at --server-handshake-timeout (3 s), not before, not
#      long after, and those that finished TLS are told why (08P01).
#   8. garbage: 10,000 connections sending random bytes, oversized start-up
#      lengths, truncated TLS records, TLS alerts, ClientHello then RST...
#   9. descriptor exhaustion: a proxy limited to 64 open files refuses what
#      it cannot serve, says so in its log, and recovers.
# Each ends with the proxy running, its descriptors back to the baseline and
# its RSS back near it. Counts scale down (ABUSE_SCALE, default 1; 4 for an
# ASan build) so that make asan stays within its time budget.

# Under ASan freed memory sits in its quarantine (256 MB by default), so RSS
# says little there: the RSS slack is widened, and LeakSanitizer judges
# leaks when each proxy exits (the sanitizer check at the end).
ABUSE_ASAN=0
grep -q __asan_init "$PGTP_BIN" 2>/dev/null && ABUSE_ASAN=1
# Under valgrind (PGTP_WRAP) freed memory waits in memcheck's own queue: the same.
[ ${#IT_WRAP[@]} -gt 0 ] && ABUSE_ASAN=1
if [ -z "${ABUSE_SCALE:-}" ]; then
    ABUSE_SCALE=1
    # An ASan build is 2-4x slower: a quarter of the connections.
    [ "$ABUSE_ASAN" = 1 ] && ABUSE_SCALE=4
fi
ABUSE_T0=$SECONDS

# 1,000 slow clients and the proxy's two legs each need descriptors in this
# shell's limit (the proxy raises its soft limit to the hard one itself).
ABUSE_FDS=8192
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$ABUSE_FDS" ]; then
    ulimit -Hn "$ABUSE_FDS" 2>/dev/null
    ulimit -n "$ABUSE_FDS" 2>/dev/null
fi
if [ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$ABUSE_FDS" ]; then
    pass "abuse: open-files limit is $(ulimit -n) (>= $ABUSE_FDS)"
else
    fail "abuse: open-files limit raised to $ABUSE_FDS" \
        "ulimit -n is $(ulimit -n) and cannot be raised (run as root, or raise the hard limit)"
fi

# abuse_baseline PID: warm the proxy with one session, then wait until its
# descriptor count is steady; sets AB_FDS and AB_RSS.
abuse_baseline() {
    local prev=-1 i port=$2
    pgc query "$(ci "$port")" "SELECT 1" >/dev/null
    AB_FDS=$(fd_count "$1")
    for ((i = 0; i < 40 && AB_FDS != prev; i++)); do
        sleep 0.25
        prev=$AB_FDS AB_FDS=$(fd_count "$1")
    done
    AB_RSS=$(rss_kb "$1")
}

# abuse_after NAME PID RSS_SLACK_KB: the proxy still runs, its descriptors
# come back to the baseline within 10 s and its RSS to within the slack.
abuse_after() {
    local name=$1 pid=$2 slack=$3 fds rss i
    if kill -0 "$pid" 2>/dev/null; then
        pass "$name: proxy still running"
    else
        fail "$name: proxy still running" "process $pid is gone"
        return
    fi
    fds=$(fd_count "$pid")
    for ((i = 0; i < 100 && fds > AB_FDS; i++)); do
        sleep 0.1
        fds=$(fd_count "$pid")
    done
    if [ "$fds" -le "$AB_FDS" ] && [ "$AB_FDS" -gt 0 ]; then
        pass "$name: open fds back to baseline ($fds <= $AB_FDS)"
    else
        fail "$name: open fds back to baseline" "baseline $AB_FDS, now $fds"
    fi
    rss=$(rss_kb "$pid")
    [ "$ABUSE_ASAN" = 1 ] && slack=$((512 * 1024)) # the quarantine, see above
    if [ $((rss - AB_RSS)) -lt "$slack" ]; then
        pass "$name: RSS back near baseline (${AB_RSS} -> ${rss} kB, slack $((slack / 1024)) MB)"
    else
        fail "$name: RSS back near baseline" "${AB_RSS} -> ${rss} kB (slack ${slack} kB)"
    fi
}

# abuse_kind OUT KIND FIELD: the value of FIELD on OUT's "kind=KIND n=..." line.
abuse_kind() {
    grep -E "^kind=$2 n=" <<<"$1" | grep -oE "(^| )$3=[^ ]*" | cut -d= -f2
}

# ======================================================================
# 7. Slowloris: 1,000 connections that stall part way through the start-up
# ======================================================================
it_free_port SLOW_PORT
start_proxy slowloris "$SLOW_PORT" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --server-handshake-timeout 3
SLOW_PID=${IT_PIDS[slowloris]:-0}
SLOW_LOG=$CUR_LOG
abuse_baseline "$SLOW_PID" "$SLOW_PORT"
SLOW_N=$((1000 / ABUSE_SCALE))
GOOD_SECS=8
timeout -k 5 60 "$RAWCLIENT" good 127.0.0.1 "$SLOW_PORT" 20 "$GOOD_SECS" >"$TMP/slow-good.out" 2>&1 &
GOOD_PID=$!
sleep 1 # the well-behaved clients are in before the flood
t=$(now_ms)
out=$(timeout -k 5 60 "$RAWCLIENT" flood 127.0.0.1 "$SLOW_PORT" "$SLOW_N" "$SLOW_N" \
    none,half-sslrequest,half-startup,half-hello,tls-idle,tls-half 10 2>&1)
rc=$?
slow_ms=$(($(now_ms) - t))
printf '%s\n' "$out" >"$LOGS/abuse-slowloris-flood.out"
expect "slowloris: all $SLOW_N stalled connections closed by the proxy (flood in $slow_ms ms)" \
    "rc=$rc $(grep '^flood ' <<<"$out")" "^rc=0 flood total=$SLOW_N closed=$SLOW_N timeout=0 failed=0 "
bad=""
for kind in none half-sslrequest half-startup half-hello tls-idle tls-half; do
    lo=$(abuse_kind "$out" "$kind" min_s) hi=$(abuse_kind "$out" "$kind" max_s)
    # Not before the timeout (the client's clock starts before connect, the
    # proxy's at accept), and not long after it on a busy 2-core machine.
    if ! lt 2.8 "$lo" || ! lt "$hi" 7; then
        bad+=" $kind closed after ${lo:-?}..${hi:-?} s;"
    fi
done
expect "slowloris: every kind closed at the 3 s handshake timeout (2.8 s .. 7 s after connect)" \
    "${bad:-ok}" '^ok$'
bad=""
for kind in tls-idle tls-half; do
    n=$(abuse_kind "$out" "$kind" n) e=$(abuse_kind "$out" "$kind" errors)
    [ "$n" = "$e" ] || bad+=" $kind: $e errors of $n;"
    msg=$(grep -E "^kind=$kind error=" <<<"$out")
    [[ $msg == *"sqlstate=08P01 severity=FATAL message=pg-tls-proxy: timed out after 3 s waiting for the start-up packet"* ]] ||
        bad+=" $kind: $(oneline "$msg");"
done
expect "slowloris: clients past TLS are told FATAL 08P01 'timed out after 3 s waiting for the start-up packet'" \
    "${bad:-ok}" '^ok$'
bad=""
for kind in none half-sslrequest half-startup half-hello; do
    e=$(abuse_kind "$out" "$kind" errors)
    [ "$e" = 0 ] || bad+=" $kind: $e ErrorResponses in plaintext;"
done
expect "slowloris: no plaintext ErrorResponse before TLS (CVE-2024-10977)" "${bad:-ok}" '^ok$'
timeouts=$(count "$SLOW_LOG" 'event=closed .*outcome=timeout')
expect "slowloris: the log has one 'event=closed ... outcome=timeout' line per stalled client" \
    "timeouts=$timeouts" "^timeouts=$SLOW_N$"
line=$(grep -E 'event=closed .*outcome=timeout reason="no start-up within' "$SLOW_LOG" | head -n 1)
expect "slowloris: a stalled plaintext client's log line says 'no start-up within 3000 ms'" \
    "$line" 'reason="no start-up within 3000 ms'
line=$(grep -E 'event=closed .*outcome=timeout reason="08P01' "$SLOW_LOG" | head -n 1)
expect "slowloris: a stalled TLS client's log line says 'timed out after 3 s'" \
    "$line" 'reason="08P01: pg-tls-proxy: timed out after 3 s waiting for the start-up packet"'
wait "$GOOD_PID"
rc=$?
out=$(cat "$TMP/slow-good.out")
printf '%s\n' "$out" >"$LOGS/abuse-slowloris-good.out"
ms=$(grep -oE 'max_query_ms=[0-9]+' <<<"$out" | cut -d= -f2)
lms=$(grep -oE 'max_login_ms=[0-9]+' <<<"$out" | cut -d= -f2)
if [ "$rc" = 0 ] && [[ $out =~ good\ clients=20\ ok=20 ]] && lt "${ms:-x}" $((2000 * IT_TIME_SCALE)) &&
    lt "${lms:-x}" $((5000 * IT_TIME_SCALE)); then
    pass "slowloris: 20 well-behaved clients all succeeded, query latency <= ${ms} ms, login <= ${lms} ms ($(grep -oE 'sessions=[0-9]+ queries=[0-9]+' <<<"$out"))"
else
    fail "slowloris: 20 well-behaved clients succeed with queries < 2 s and logins < 5 s" \
        "rc=$rc $(oneline "$out")"
fi
abuse_after slowloris "$SLOW_PID" 32768
stop_proxy slowloris
it_note "abuse: slowloris took $((SECONDS - ABUSE_T0)) s"

# ======================================================================
# 8. Garbage: 10,000 connections sending what no client sends
# ======================================================================
it_free_port GARB_PORT
start_proxy garbage "$GARB_PORT" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt"
GARB_PID=${IT_PIDS[garbage]:-0}
GARB_LOG=$CUR_LOG
abuse_baseline "$GARB_PID" "$GARB_PORT"
GARB_N=$((10000 / ABUSE_SCALE))
timeout -k 5 120 "$RAWCLIENT" good 127.0.0.1 "$GARB_PORT" 20 10 >"$TMP/garb-good.out" 2>&1 &
GOOD_PID=$!
sleep 1
# Each kind must be closed by the proxy on its own (well before its 15 s
# handshake timeout): the flood waits 10 s per connection at most.
out=$(timeout -k 5 100 "$RAWCLIENT" flood 127.0.0.1 "$GARB_PORT" "$GARB_N" 200 \
    random,oversized,truncated-record,alert,hello-rst,direct-junk,tls-junk 10 2>&1)
rc=$?
printf '%s\n' "$out" >"$LOGS/abuse-garbage-flood.out"
rate=$(grep -oE 'per_s=[0-9]+' <<<"$out" | cut -d= -f2)
expect "garbage: $GARB_N connections (200 at a time), every one closed promptly, ${rate:-?} connections/s" \
    "rc=$rc $(grep '^flood ' <<<"$out")" "^rc=0 flood total=$GARB_N closed=$GARB_N timeout=0 failed=0 "
bad=""
for kind in random oversized; do
    n=$(abuse_kind "$out" "$kind" n) e=$(abuse_kind "$out" "$kind" errors)
    [ "$n" = "$e" ] || bad+=" $kind: $e errors of $n;"
    msg=$(grep -E "^kind=$kind error=" <<<"$out")
    [[ $msg == *"sqlstate=08P01 severity=FATAL message=pg-tls-proxy: invalid start-up packet"* ]] ||
        bad+=" $kind: $(oneline "$msg");"
done
expect "garbage: random bytes and oversized start-up lengths get FATAL 08P01 'invalid start-up packet'" \
    "${bad:-ok}" '^ok$'
n=$(count "$GARB_LOG" 'event=front_handshake_failed .*hint=')
expect "garbage: broken TLS handshakes are logged with a hint (event=front_handshake_failed)" \
    "n=$n" '^n=[1-9][0-9]*$'
wait "$GOOD_PID"
rc=$?
out=$(cat "$TMP/garb-good.out")
printf '%s\n' "$out" >"$LOGS/abuse-garbage-good.out"
ms=$(grep -oE 'max_query_ms=[0-9]+' <<<"$out" | cut -d= -f2)
lms=$(grep -oE 'max_login_ms=[0-9]+' <<<"$out" | cut -d= -f2)
if [ "$rc" = 0 ] && [[ $out =~ good\ clients=20\ ok=20 ]] && lt "${ms:-x}" $((2000 * IT_TIME_SCALE)) &&
    lt "${lms:-x}" $((5000 * IT_TIME_SCALE)); then
    pass "garbage: 20 well-behaved clients all succeeded, query latency <= ${ms} ms, login <= ${lms} ms ($(grep -oE 'sessions=[0-9]+ queries=[0-9]+' <<<"$out"))"
else
    fail "garbage: 20 well-behaved clients succeed with queries < 2 s and logins < 5 s" \
        "rc=$rc $(oneline "$out")"
fi
# Every connection accepted was closed and audited (counted once the
# well-behaved clients are done too).
for ((i = 0; i < 100; i++)); do
    acc=$(count "$GARB_LOG" 'event=accepted ') clo=$(count "$GARB_LOG" 'event=closed ')
    [ "$clo" = "$acc" ] && break
    sleep 0.1
done
expect "garbage: one event=closed line per accepted connection ($acc)" "accepted=$acc closed=$clo" \
    "^accepted=$acc closed=$acc$"
abuse_after garbage "$GARB_PID" 32768
stop_proxy garbage
it_note "abuse: slowloris and garbage took $((SECONDS - ABUSE_T0)) s"

# ======================================================================
# 9. Descriptor exhaustion: a proxy limited to 64 open files
# ======================================================================
# ulimit -n sets the soft and the hard limit, so the proxy cannot raise it.
# Under valgrind (PGTP_WRAP) the limit is set before memcheck starts, which
# keeps 12 descriptors of it for itself: 76 leaves the proxy 64.
LOWFD_LIMIT=64
[ ${#IT_WRAP[@]} -gt 0 ] && LOWFD_LIMIT=76
cat >"$TMP/lowfd-proxy" <<EOS
#!/bin/sh
ulimit -n $LOWFD_LIMIT || exit 111
exec ${IT_WRAP[*]} "$PGTP_BIN" "\$@"
EOS
chmod +x "$TMP/lowfd-proxy"
it_free_port LOWFD_PORT
IT_NOWRAP=1 PGTP_BIN=$TMP/lowfd-proxy start_proxy lowfd "$LOWFD_PORT" 127.0.0.1 "$PGPORT" localhost \
    "$CERTS/db-ca.crt"
LOWFD_PID=${IT_PIDS[lowfd]:-0}
LOWFD_LOG=$CUR_LOG
lim=$(awk '/^Max open files/ { print $4 }' "/proc/$LOWFD_PID/limits" 2>/dev/null)
expect "fd exhaustion: the proxy runs with an open-files limit of 64" "limit=$lim" "^limit=$LOWFD_LIMIT\$"
abuse_baseline "$LOWFD_PID" "$LOWFD_PORT"
LOWFD_T0=$SECONDS
LOWFD_CI=$(ci "$LOWFD_PORT")
hold_pids=()
# The sessions hold 24 s: longer than the settling and the probes below
# take, so the table is still full when the probe comes (with 8 s, a storm
# that left the table one short of full made the wait outlast the sessions,
# and the probe found it empty: 6 of 19 runs; with 16 s under ASan, a storm
# that left many holes had the fillers run past the sessions' end).
for ((i = 0; i < 30; i++)); do
    PGC_TIMEOUT=50 pgc hold "$LOWFD_CI" 24 >"$TMP/lowfd-hold.$i" &
    hold_pids+=($!)
done
# Until the storm of handshakes has settled: the count unchanged for 1 s
# (full is 56, the reserve above it; refused sessions may leave it short).
prev=-1 same=0
for ((i = 0; i < 40; i++)); do
    fds=$(fd_count "$LOWFD_PID")
    if [ "$fds" = "$prev" ]; then same=$((same + 1)); else same=0; fi
    [ "$fds" -ge 40 ] && [ "$same" -ge 4 ] && break
    prev=$fds
    sleep 0.25
done
# Descriptors are handed out lowest first: sessions refused in the storm
# leave holes, and a client that lands in one is served. So, until one is
# refused: a probe, and if it was served, one more session holding 2 fds.
# A filler holds as long as the sessions do: 20 rounds of probe + 0.3 s
# take 8 s and more, and fillers that held 8 s gave their holes back while
# the probing went on (every probe served: seen in CI).
fillers=()
for ((i = 0; i < 20; i++)); do
    out=$(raw error localhost "$LOWFD_PORT")
    [[ $out == sqlstate=53300* ]] && break
    PGC_TIMEOUT=50 pgc hold "$LOWFD_CI" 24 >/dev/null &
    fillers+=($!)
    sleep 0.3
done
expect "fd exhaustion: a new client is told FATAL 53300 'out of file descriptors' (${#fillers[@]} more sessions first)" "$out" \
    '^sqlstate=53300 severity=FATAL message=pg-tls-proxy: too many connections: the proxy is (nearly )?out of file descriptors .* raise its open-files limit'
wait "${hold_pids[@]}" "${fillers[@]}"
ok=0 told=0 silent=0 other=""
for ((i = 0; i < 30; i++)); do
    o=$(cat "$TMP/lowfd-hold.$i")
    if [[ $o =~ ^hold\ queries=[0-9]+\ ok$ ]]; then
        ok=$((ok + 1))
    elif [[ $o =~ FATAL:\ \ pg-tls-proxy:\ too\ many\ connections:\ the\ proxy\ is\ (nearly\ )?out\ of\ file\ descriptors ]]; then
        # "nearly out": refused at accept; "out": accepted, but no
        # descriptor was left for its upstream leg (dial.c)
        told=$((told + 1))
    elif [[ $o == *"server closed the connection unexpectedly"* ]]; then
        silent=$((silent + 1)) # closed unanswered: what libuv's EMFILE path did
    else
        other+=" $(oneline "$o");"
    fi
done
# At the very limit (more refusals in their handshakes at once than the
# reserve holds) a client is not accepted: it waits in the listen queue
# (listener.c) and is served or told once descriptors are free, never
# closed unanswered.
if [ "$ok" -ge 10 ] && [ "$told" -ge 1 ] && [ "$silent" = 0 ] && [ -z "$other" ]; then
    pass "fd exhaustion: 30 sessions at once: $ok held 24 s of queries, $told told 53300, $silent closed unanswered"
else
    fail "fd exhaustion: >= 10 sessions work, the rest are refused with 53300, none unanswered" \
        "ok=$ok told=$told silent=$silent other:${other:0:300}"
fi
# Which runs out first depends on timing: a client's own descriptor (near
# the limit at accept: event=fd_limit) or its upstream leg's socket
# (event=upstream_failed with 53300); either line says what to do.
line=$(grep -E 'event=fd_limit |event=upstream_failed .*sqlstate=53300' "$LOWFD_LOG" | head -n 1)
expect "fd exhaustion: logged (event=fd_limit or upstream_failed 53300) with what to do" "$line" \
    'level=warn event=fd_limit open_fds=[0-9]+ limit=64 refused=[0-9]+ .*hint="raise the open-files limit|event=upstream_failed .*sqlstate=53300 .*raise its open-files limit'
n=$(count "$LOWFD_LOG" 'event=(fd_limit|accept_failed) ')
# Each of the two kinds at most once a second, over the seconds the storm ran.
lowfd_s=$((SECONDS - LOWFD_T0 + 1))
if [ "$n" -ge 1 ] && [ "$n" -le $((2 * lowfd_s)) ]; then
    pass "fd exhaustion: those lines are rate-limited: $n in ${lowfd_s} s (each kind at most once a second)"
else
    fail "fd exhaustion: those lines are rate-limited (each kind at most once a second)" \
        "$n lines in ${lowfd_s} s"
fi
out=$(pgc query "$LOWFD_CI" "SELECT 'recovered'")
expect "fd exhaustion: once sessions end, a new session succeeds" "$out" '^recovered$'
abuse_after "fd exhaustion" "$LOWFD_PID" 16384
stop_proxy lowfd
it_note "abuse: section took $((SECONDS - ABUSE_T0)) s"
