# shellcheck shell=bash
# logs section of tests/integration/run.sh (sourced; uses its helpers).
#
# Issue 11, what an operator reads: JSON logs that always parse (item 11),
# failed logins audited with the server's SQLSTATE (15), unknown variables
# and bad options refused before anything listens (17), SIGUSR1/SIGUSR2
# (18), and metrics that move while a session runs, process metrics, and
# readiness probes kept out of the handshake failures (19).
LOGS_T0=$SECONDS
CUR_LOG=

lpsql() { timeout -k 5 60 psql -X -A -t -q "$@" 2>&1; }
# lmetric FILE SERIES: one sample's value (exact name and labels); 0 if absent.
lmetric() { awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }' "$1"; }
lscrape() { curl -s --max-time 3 -o "$2" "$1/metrics" 2>/dev/null; }

# The options every proxy of this section needs, after start_proxy's own.
LOG_ARGS=(--server-certificate-path "$CERTS/proxy.crt" --server-private-key-path "$CERTS/proxy.key"
    --client-connection-host-or-ip 127.0.0.1 --client-tls-validation-host localhost
    --client-ca-roots-path "$CERTS/db-ca.crt")

# ======================================================================
# 11. JSON logs: every line parses, whatever the clients do
# ======================================================================
it_free_port P_LJ
it_free_port ADM_LJ
start_proxy logs-json "$P_LJ" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --log-format json --admin-address "127.0.0.1:$ADM_LJ"
LOG_LJ=$LOGS/proxy-logs-json.log
ADMIN_LJ=http://127.0.0.1:$ADM_LJ
CUR_LOG=$LOG_LJ

out=$(pgc query "$(ci "$P_LJ" application_name=logs-good)" "SELECT 'json ok'")
expect "logs: a session through a --log-format json proxy" "$out" '^json ok$'
# An SNI that is not UTF-8: "\xc3(" is a broken sequence, \xff never valid.
out=$(raw error localhost "$P_LJ" --sni c3286c6f63616c686f7374ff)
expect "logs: a client whose SNI has bytes >= 0x80 reaches the server (auth=10)" "$out" '^auth=10$'

# IPv6: a proxy on ::1 (the test fails, not skips, without IPv6 loopback).
it_free_port P_LJ6
if ip -6 addr show lo 2>/dev/null | grep -q 'inet6 ::1/128'; then
    start_proxy logs-json6 "$P_LJ6" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
        --server-host ::1 --log-format json
    out=$(pgc query "$(ci "$P_LJ6" hostaddr=::1 application_name=logs-v6)" "SELECT 'v6 ok'")
    expect "logs: a session from [::1] through a proxy listening on ::1" "$out" '^v6 ok$'
    stop_proxy logs-json6
else
    fail "logs: a session from [::1]" "this machine has no IPv6 loopback (ip -6 addr show lo)"
fi

# An upstream that is not there: 08001 on every line that has a SQLSTATE.
# Also has the admin endpoint, probing every second (window 3 s): item 19.
it_free_port P_LD
it_free_port ADM_LD
it_free_port DEAD_LD # handed out, never bound
start_proxy logs-dead "$P_LD" 127.0.0.1 "$DEAD_LD" localhost "$CERTS/db-ca.crt" \
    --log-format json --admin-address "127.0.0.1:$ADM_LD" --admin-ready-window 3
LOG_LD=$LOGS/proxy-logs-dead.log
ADMIN_LD=http://127.0.0.1:$ADM_LD
out=$(raw error localhost "$P_LD")
expect "logs: upstream down: the client is told FATAL 08001" "$out" '^sqlstate=08001 severity=FATAL '

# Fatal start-up errors, usage errors and --check failures, with JSON asked
# for by flag or by variable: their stderr lines are JSON too.
CUR_LOG=$LOGS/logs-fatal.log
: >"$CUR_LOG"
for how in flag env; do
    jf=(--log-format json)
    je=()
    [ "$how" = env ] && jf=() je=(PG_TLS_PROXY_LOG_FORMAT=json)
    env "${je[@]}" timeout -k 5 20 "$PGTP_BIN" "${jf[@]}" --no-such-option >>"$CUR_LOG" 2>&1
    echo "rc=$?" >>"$LOGS/logs-fatal.rc"
    env "${je[@]}" timeout -k 5 20 "$PGTP_BIN" "${jf[@]}" "${LOG_ARGS[@]}" \
        --server-certificate-path "$TMP/no-such.crt" >>"$CUR_LOG" 2>&1
    echo "rc=$?" >>"$LOGS/logs-fatal.rc"
    env "${je[@]}" timeout -k 5 30 "$PGTP_BIN" "${jf[@]}" "${LOG_ARGS[@]}" --check \
        --client-connection-port "$DEAD_LD" 2>>"$CUR_LOG" >/dev/null
    echo "rc=$?" >>"$LOGS/logs-fatal.rc"
done
expect "logs: with JSON asked for, a bad option, a missing file and a failed --check exit 2, 2, 1" \
    "$(tr '\n' ' ' <"$LOGS/logs-fatal.rc")" '^rc=2 rc=2 rc=1 rc=2 rc=2 rc=1 $'

# ======================================================================
# 15. Failed logins: one closed line with the server's SQLSTATE, counted
# ======================================================================
CUR_LOG=$LOG_LJ
out=$(pgc query "$(ci "$P_LJ" password=wrong-password application_name=logs-badpw)" "SELECT 1")
expect "logs: a wrong password through the proxy fails with the server's 28P01 text" "$out" \
    'password authentication failed'
out=$(pgc query "$(ci "$P_LJ" dbname=no_such_db application_name=logs-nodb)" "SELECT 1")
expect "logs: an unknown database through the proxy fails with the server's text" "$out" \
    'database "no_such_db" does not exist'
wait_line "$LOG_LJ" '"application_name": ?"logs-nodb".*"event": ?"closed"|"event": ?"closed".*"application_name": ?"logs-nodb"' 5
for ((i = 0; i < 30; i++)); do
    lscrape "$ADMIN_LJ" "$TMP/logs-m1.txt"
    [ "$(lmetric "$TMP/logs-m1.txt" 'pg_tls_proxy_sessions_total{outcome="login_failed",route="default"}')" -ge 2 ] && break
    sleep 0.1
done
expect "logs: pg_tls_proxy_login_failures_total counts 28P01 and 3D000, sessions_total login_failed" \
    "28P01=$(lmetric "$TMP/logs-m1.txt" 'pg_tls_proxy_login_failures_total{sqlstate="28P01",reason="upstream",route="default"}') 3D000=$(lmetric "$TMP/logs-m1.txt" 'pg_tls_proxy_login_failures_total{sqlstate="3D000",reason="upstream",route="default"}') login_failed=$(lmetric "$TMP/logs-m1.txt" 'pg_tls_proxy_sessions_total{outcome="login_failed",route="default"}')" \
    '^28P01=1 3D000=1 login_failed=2$'

# ======================================================================
# 18. SIGUSR1: a status line; SIGUSR2: logged and ignored; both survive
# ======================================================================
LJ_PID=${IT_PIDS[logs-json]:-0}
kill -USR1 "$LJ_PID" 2>/dev/null
kill -USR2 "$LJ_PID" 2>/dev/null
wait_line "$LOG_LJ" '"event": ?"signal_ignored"' 5
wait_line "$LOG_LJ" '"event": ?"status"' 5
out=$(pgc query "$(ci "$P_LJ")" "SELECT 'after signals'")
alive=no
kill -0 "$LJ_PID" 2>/dev/null && alive=yes
expect "logs: after SIGUSR1 and SIGUSR2 the proxy runs and serves" "alive=$alive $out" \
    '^alive=yes after signals$'

# ======================================================================
# 19. Metrics: bytes move during a session; process metrics; probes
# ======================================================================
# 50 MB out of a COPY, then the session stays open 3 s more: the counter
# must show the 50 MB before the session ends (it used to move only then).
LJ_MB=$((50 / IT_TIME_SCALE))
lscrape "$ADMIN_LJ" "$TMP/logs-m2.txt"
B0=$(lmetric "$TMP/logs-m2.txt" 'pg_tls_proxy_bytes_total{direction="from_upstream"}')
C0=$(lmetric "$TMP/logs-m2.txt" 'pg_tls_proxy_sessions_total{outcome="closed",route="default"}')
lpsql "$(ci "$P_LJ" application_name=logs-copy)" \
    -c "\\copy (SELECT repeat('x', 1000) FROM generate_series(1, $((LJ_MB * 1000)))) TO '/dev/null'" \
    -c "SELECT pg_sleep($((3 * IT_TIME_SCALE)))" >"$TMP/logs-copy.out" &
LJ_COPY=$!
seen="" grew=no
for ((i = 0; i < 200 * IT_TIME_SCALE; i++)); do
    kill -0 "$LJ_COPY" 2>/dev/null || break
    lscrape "$ADMIN_LJ" "$TMP/logs-m3.txt" || continue
    b=$(lmetric "$TMP/logs-m3.txt" 'pg_tls_proxy_bytes_total{direction="from_upstream"}')
    c=$(lmetric "$TMP/logs-m3.txt" 'pg_tls_proxy_sessions_total{outcome="closed",route="default"}')
    [ "$c" = "$C0" ] || break # the session has ended: too late to tell
    seen="$((b - B0))"
    if [ $((b - B0)) -ge $((LJ_MB * 1000 * 1000)) ]; then
        grew=yes
        break
    fi
    sleep 0.1
done
wait "$LJ_COPY"
expect "logs: pg_tls_proxy_bytes_total{from_upstream} shows the ${LJ_MB} MB COPY while its session is open" \
    "grew=$grew bytes=${seen:-none}" '^grew=yes '

# Process metrics, compared with what the kernel says about the process.
lscrape "$ADMIN_LJ" "$TMP/logs-m4.txt"
fds_now=$(fd_count "$LJ_PID")
lim=$(awk '/^Max open files/ { print $4 }' "/proc/$LJ_PID/limits")
rss=$(($(rss_kb "$LJ_PID") * 1024))
out=$(awk -v fds="$fds_now" -v lim="$lim" -v rss="$rss" -v now="$(date +%s)" '
    $1 == "process_open_fds" { f = $2 } $1 == "process_max_fds" { m = $2 }
    $1 == "process_resident_memory_bytes" { r = $2 } $1 == "process_cpu_seconds_total" { c = $2 }
    $1 == "process_start_time_seconds" { s = $2 }
    END {
        printf "open_fds=%s max_fds=%s rss=%s cpu=%s start=%s\n", \
            (f > 0 && f >= fds - 10 && f <= fds + 10) ? "ok" : f " vs " fds, \
            (m == lim) ? "ok" : m " vs " lim, \
            (r > 0 && r >= rss / 2 && r <= rss * 2) ? "ok" : r " vs " rss, \
            (c > 0) ? "ok" : c, (s > now - 3600 && s <= now) ? "ok" : s }' "$TMP/logs-m4.txt")
expect "logs: process_* metrics present and as /proc says (fds, limit, RSS, CPU, start)" "$out" \
    '^open_fds=ok max_fds=ok rss=ok cpu=ok start=ok$'

# Readiness probes in front of a dead upstream: counted apart, not as
# handshake failures (the one client above is the only back-leg failure).
CUR_LOG=$LOG_LD
sleep "$((3 * IT_TIME_SCALE))"
lscrape "$ADMIN_LD" "$TMP/logs-m5.txt"
out="probes=$(lmetric "$TMP/logs-m5.txt" 'pg_tls_proxy_readiness_probe_failures_total{route="default"}') back_failures=$(awk '/^pg_tls_proxy_handshake_failures_total\{leg="back",/ { s += $2 } END { print s + 0 }' "$TMP/logs-m5.txt") readyz=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$ADMIN_LD/readyz")"
expect "logs: readiness probes against a dead upstream are not handshake failures" "$out" \
    '^probes=[2-9][0-9]* back_failures=1 readyz=503$'
stop_proxy logs-dead

# ======================================================================
# 17. Unknown variables and bad options: refused before anything listens
# ======================================================================
CUR_LOG=$LOGS/logs-typo.log
it_free_port P_TYPO
PG_TLS_PROXY_SERVER_PORTT=$P_TYPO timeout -k 5 20 "$PGTP_BIN" "${LOG_ARGS[@]}" \
    --server-host 127.0.0.1 --server-port "$P_TYPO" >"$CUR_LOG" 2>&1
rc=$?
expect "logs: PG_TLS_PROXY_SERVER_PORTT (a typo) is refused with a did-you-mean, exit 2" \
    "rc=$rc $(head -n 1 "$CUR_LOG")" \
    '^rc=2 pg-tls-proxy: unknown environment variable PG_TLS_PROXY_SERVER_PORTT \(did you mean PG_TLS_PROXY_SERVER_PORT\?\)$'
out=$(timeout -k 5 20 "$PGTP_BIN" "${LOG_ARGS[@]}" --server-portt 1 2>&1)
expect "logs: --server-portt (a typo) is refused with a did-you-mean" "$out" \
    'unknown option "--server-portt" \(did you mean --server-port\?\)'

# A bad admin address, and one that cannot be bound (PostgreSQL's port):
# the proxy exits 2 without ever listening on its front port or logging
# event=started. ss watches the port the whole time.
for bad in "127.0.0.1:99999" "127.0.0.1:$PGPORT"; do
    it_free_port P_BAD
    CUR_LOG=$LOGS/logs-bad-admin-$P_BAD.log
    "$PGTP_BIN" "${LOG_ARGS[@]}" --server-host 127.0.0.1 --server-port "$P_BAD" \
        --client-connection-port "$PGPORT" --admin-address "$bad" >"$CUR_LOG" 2>&1 &
    BAD_PID=$!
    listened=no
    for ((i = 0; i < 400; i++)); do
        it_port_listening "$P_BAD" && listened=yes
        kill -0 "$BAD_PID" 2>/dev/null || break
        sleep 0.02
    done
    kill -0 "$BAD_PID" 2>/dev/null && kill -TERM "$BAD_PID"
    wait "$BAD_PID"
    rc=$?
    it_port_listening "$P_BAD" && listened=yes
    expect "logs: --admin-address $bad: exit 2, front port never bound, no event=started" \
        "rc=$rc listened=$listened started=$(count "$CUR_LOG" 'event=started') $(grep -c 'admin-address' "$CUR_LOG")" \
        '^rc=2 listened=no started=0 [1-9]'
done

# ======================================================================
# Every line of every JSON log parses; the fields are typed as promised
# ======================================================================
CUR_LOG=$LOG_LJ
stop_proxy logs-json
out=$(python3 - "$LOG_LJ" "$LOGS/proxy-logs-json6.log" "$LOG_LD" "$LOGS/logs-fatal.log" <<'PY'
import json, re, sys
objs, bad, nlines = [], [], 0
for path in sys.argv[1:]:
    try:
        raw = open(path, "rb").read()
    except OSError as e:
        bad.append("%s: %s" % (path, e))
        continue
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        bad.append("%s: not UTF-8: %s" % (path.rsplit("/", 1)[-1], e))
        text = raw.decode("utf-8", "replace")
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith("# started:"):
            continue
        nlines += 1
        try:
            o = json.loads(line)
            if not isinstance(o, dict):
                raise ValueError("not an object")
            o["_file"] = path.rsplit("/", 1)[-1]
            objs.append(o)
        except ValueError as e:
            bad.append("%s:%d: %s: %s" % (path.rsplit("/", 1)[-1], i, e, line[:100]))
print("lines=%d bad=%d %s" % (nlines, len(bad), " | ".join(bad[:3])))
sq = [o["sqlstate"] for o in objs if "sqlstate" in o]
print("sqlstates=%d all_strings=%s has_08001=%s" % (len(sq), all(isinstance(s, str) for s in sq),
                                                  "08001" in sq))
v6 = [o.get("front") for o in objs if o.get("_file") == "proxy-logs-json6.log" and "front" in o]
print("v6_fronts=%d all_with_port=%s" % (len(v6), bool(v6) and all(
    isinstance(f, str) and re.fullmatch(r"\[::1\]:[0-9]+", f) for f in v6)))
sni = [o.get("sni") for o in objs if o.get("event") == "closed" and str(o.get("sni", "")).endswith("localhost\u00ff")]
print("sni=%s" % (ascii(sni[-1]) if sni else "none"))
fatal = [o for o in objs if o.get("_file") == "logs-fatal.log"
         and o.get("event") in ("fatal", "check_failed")]
print("fatal=%d events=%s" % (len(fatal), ",".join(sorted({str(o.get("event")) for o in fatal}))))
def closed(app):
    c = [o for o in objs if o.get("event") == "closed" and o.get("application_name") == app]
    return c[-1] if c else {}
def established(app):
    return sum(1 for o in objs if o.get("event") == "established" and o.get("application_name") == app)
for app in ("logs-badpw", "logs-nodb", "logs-good"):
    c = closed(app)
    print("%s: outcome=%s sqlstate=%s severity=%s established=%d" % (
        app, c.get("outcome"), c.get("sqlstate"), c.get("severity"), established(app)))
est = [o for o in objs if o.get("event") == "established" and o.get("application_name") == "logs-good"]
print("login_ms=%s" % (type(est[-1].get("login_ms")).__name__ if est else "none"))
st = [o for o in objs if o.get("event") == "status"]
print("status=%s" % (("active_sessions=%s workers=%s open_fds=%s" % (
    type(st[-1].get("active_sessions")).__name__, type(st[-1].get("workers")).__name__,
    type(st[-1].get("open_fds")).__name__)) if st else "none"))
print("usr2=%d" % sum(1 for o in objs if o.get("event") == "signal_ignored" and o.get("signal") == "SIGUSR2"))
PY
)
expect "logs: every line of the JSON logs (sessions, IPv6, SNI, upstream down, fatal errors) parses" \
    "$out" '^lines=[1-9][0-9]* bad=0 '
expect "logs: JSON sqlstate is always a string (08001 included)" "$out" \
    $'\nsqlstates=[1-9][0-9]* all_strings=True has_08001=True\n'
expect "logs: JSON front of an IPv6 client keeps its port ([::1]:PORT)" "$out" \
    $'\nv6_fronts=[1-9][0-9]* all_with_port=True\n'
expect "logs: JSON sni with bytes >= 0x80 escaped, its bytes kept (\\u00c3(localhost\\u00ff)" "$out" \
    $'\nsni=\'\\\\xc3\\(localhost\\\\xff\'\n'
expect "logs: fatal, usage and --check errors are JSON lines (6 runs)" "$out" \
    $'\nfatal=6 events=check_failed,fatal\n'
expect "logs: wrong password: closed outcome=login_failed sqlstate 28P01, no established line" "$out" \
    $'\nlogs-badpw: outcome=login_failed sqlstate=28P01 severity=FATAL established=0\n'
expect "logs: unknown database: closed outcome=login_failed sqlstate 3D000, no established line" "$out" \
    $'\nlogs-nodb: outcome=login_failed sqlstate=3D000 severity=FATAL established=0\n'
expect "logs: a good login: established once (login_ms a number), closed as closed" "$out" \
    $'\nlogs-good: outcome=closed sqlstate=None severity=None established=1\nlogin_ms=int\n'
expect "logs: SIGUSR1 logs event=status (numbers), SIGUSR2 event=signal_ignored" "$out" \
    $'\nstatus=active_sessions=int workers=int open_fds=int\nusr2=1'

CUR_LOG=
echo "# logs.sh cases took $((SECONDS - LOGS_T0)) s"
