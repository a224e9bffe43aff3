# shellcheck shell=bash
# shellcheck disable=SC2034 # CUR_LOG is read by run.sh's fail()
# operations.sh - the proxy as an operator runs it: certificate reload
# (SIGHUP, a failed reload, --watch-certificates), drain on SIGTERM and the
# shutdown timeout, the start-up / upstream-connect / idle timeouts,
# --max-connections, the JSON audit log, mTLS on the front leg, a client
# certificate on the back leg, the TLS version and cipher policy, the admin
# endpoint (/metrics, /healthz, /readyz) and the PROXY protocol.
#
# Sourced by run.sh after protocol.sh while proxy 'main' runs, never
# executed: it uses run.sh's reporting (pass, fail, expect, oneline),
# helpers (now_ms, lt, wait_line, count), clients (ci, pgc, raw), proxies
# (start_proxy, stop_proxy) and variables (CERTS, LOGS, TMP, PGPORT,
# PASSWORD, MAIN_PORT, CI_MAIN), and protocol.sh's start_session and
# backend_active. Every client is bounded by timeout; loopback only.
#
# The waits are what takes time here (timeouts of 2 s, a drain of 3 s), so
# the slow cases start in the background first, the quick ones run
# meanwhile, and the slow ones are collected afterwards. Each case says what
# the client saw; the proxy's log is only a second witness.

OPS_T0=$SECONDS

# ---- helpers ----

# psqlc CONNINFO ARGS...: psql, unaligned and tuples only, bounded.
psqlc() { timeout -k 5 30 psql -X -A -t -q "$@" 2>&1; }

# bg NAME CMD...: run CMD in the background; its output goes to
# $TMP/NAME.out, followed by a line "rc=<exit status> ms=<run time>
# end=<epoch ms>" when it ends. CMD must be bounded (raw, pgc, psqlc or
# timeout). BG_PID[NAME] is the background job.
declare -A BG_PID=()
bg() {
    local name=$1
    shift
    (
        t0=$(now_ms)
        "$@" >"$TMP/$name.out" 2>&1
        rc=$?
        t1=$(now_ms)
        echo "rc=$rc ms=$((t1 - t0)) end=$t1" >>"$TMP/$name.out"
    ) &
    BG_PID[$name]=$!
}

# bg_wait NAME: wait for it; BG_OUT is its output, BG_RC, BG_MS, BG_END
# its exit status, run time and end (epoch ms).
bg_wait() {
    wait "${BG_PID[$1]}"
    unset "BG_PID[$1]"
    BG_OUT=$(cat "$TMP/$1.out")
    BG_RC=$(sed -n 's/^rc=\([0-9]*\) ms=.*/\1/p' <<<"$BG_OUT" | tail -n 1)
    BG_MS=$(sed -n 's/^rc=[0-9]* ms=\([0-9]*\) .*/\1/p' <<<"$BG_OUT" | tail -n 1)
    BG_END=$(sed -n 's/^rc=.* end=\([0-9]*\)$/\1/p' <<<"$BG_OUT" | tail -n 1)
}

# within MS LO HI: true if LO <= MS <= HI (integers, milliseconds).
within() { [ -n "$1" ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

# wait_count FILE REGEX N SECONDS: until more than N lines of FILE match.
wait_count() {
    local i
    for ((i = 0; i < $4 * 20; i++)); do
        [ "$(count "$1" "$2")" -gt "$3" ] && return 0
        sleep 0.05
    done
    return 1
}

# wait_exit NAME SECONDS: until proxy NAME exits by itself (no signal is
# sent). Records IT_EXIT[NAME], sets EXIT_AT (epoch ms). False if it still
# runs (it_stop deals with it later).
wait_exit() {
    local pid=${IT_PIDS[$1]:-} i rc=0
    [ -n "$pid" ] || return 1
    for ((i = 0; i < $2 * 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.02
    done
    kill -0 "$pid" 2>/dev/null && return 1
    EXIT_AT=$(now_ms)
    wait "$pid" || rc=$?
    IT_EXIT[$1]=$rc
    unset "IT_PIDS[$1]"
}

# fp_file CERT: SHA-256 fingerprint of a certificate file.
fp_file() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'; }

# fp_seen PORT: the SHA-256 fingerprint of the certificate a client is
# shown on PORT (SSLRequest, then TLS: openssl s_client -starttls postgres).
fp_seen() {
    timeout -k 2 10 openssl s_client -starttls postgres -connect "127.0.0.1:$1" \
        -servername localhost </dev/null 2>/dev/null |
        openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//'
}

# s_client PORT ARGS...: openssl s_client -starttls postgres, all output.
s_client() {
    local port=$1
    shift
    timeout -k 2 10 openssl s_client -starttls postgres -connect "127.0.0.1:$port" \
        -servername localhost "$@" </dev/null 2>&1
}

# proxy_exit2 NAME ARGS...: run the proxy with a configuration it must
# reject; pass if it exits 2 at once and its message names the first of
# ARGS (the option at fault).
proxy_exit2() {
    local name=$1 out rc
    shift
    out=$(timeout -k 5 10 "$PGTP_BIN" --server-certificate-path "$CERTS/proxy.crt" \
        --server-private-key-path "$CERTS/proxy.key" --server-host 127.0.0.1 \
        --server-port "$MAIN_PORT" --client-connection-host-or-ip 127.0.0.1 \
        --client-connection-port "$PGPORT" --client-ca-roots-path "$CERTS/db-ca.crt" "$@" 2>&1)
    rc=$?
    expect "$name: exit 2, the message names $1" "rc=$rc $(oneline "$out")" "^rc=2 .*$1"
}

# closed_line LOG REGEX: the last event=closed line of LOG that matches.
closed_line() { grep -E 'event=closed ' "$1" | grep -E -- "$2" | tail -n 1; }

# http_code [CURL-ARGS...] URL: the status code ("000": no answer).
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$@" 2>/dev/null; }
# metrics_get FILE: fetch /metrics into FILE and check it line by line
# against the Prometheus text format; prints "valid ..." or what is wrong.
metrics_get() {
    curl -s --max-time 3 -o "$1" "$ADMIN/metrics" 2>/dev/null || {
        echo "no answer from $ADMIN/metrics"
        return 1
    }
    python3 - "$1" <<'PY'
import math, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"'
SAMPLE = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (\S+)$" % (NAME, LABEL, LABEL))
HELP = re.compile(r"^# HELP (%s) \S.*$" % NAME)
TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)
errors, types, helps, samples, seen = [], {}, set(), 0, set()
if not text.endswith("\n"):
    errors.append("does not end with a newline")
for i, line in enumerate(text.splitlines(), 1):
    if m := HELP.match(line):
        if m[1] in helps:
            errors.append("line %d: second HELP for %s" % (i, m[1]))
        helps.add(m[1])
    elif m := TYPE.match(line):
        if m[1] in types:
            errors.append("line %d: second TYPE for %s" % (i, m[1]))
        types[m[1]] = m[2]
    elif m := SAMPLE.match(line):
        name, labels, value = m[1], m[2] or "", m[3]
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
                family = name[: -len(suffix)]
        if family not in types:
            errors.append("line %d: %s has no TYPE before it" % (i, name))
        try:
            v = float(value)
            if math.isnan(v):
                raise ValueError
        except ValueError:
            errors.append("line %d: bad value %r" % (i, value))
        if (name, labels) in seen:
            errors.append("line %d: duplicate series %s%s" % (i, name, labels))
        seen.add((name, labels))
        if types.get(family) == "counter" and float(value) < 0:
            errors.append("line %d: negative counter" % i)
        samples += 1
    else:
        errors.append("line %d: not HELP, TYPE or a sample: %r" % (i, line[:100]))
missing = [f for f in types if f not in helps]
if missing:
    errors.append("TYPE without HELP: " + ",".join(missing))
if errors or samples == 0:
    print("invalid: samples=%d %s" % (samples, " | ".join(errors[:3])))
else:
    print("valid families=%d samples=%d" % (len(types), samples))
PY
}
# metric FILE SERIES: the value of one series (exact name and labels).
metric() { awk -v s="$2" '$1 == s { print $2 }' "$1"; }

# readyz_poll: GET /readyz every 0.1 s for up to 5 s; prints the first
# status seen and when it became 200 ("never" if it did not).
readyz_poll() {
    local t0 code first=""
    t0=$(now_ms)
    while [ $(($(now_ms) - t0)) -lt 5000 ]; do
        code=$(http_code "$ADMIN/readyz")
        first=${first:-$code}
        if [ "$code" = 200 ]; then
            echo "first=$first ready_after_ms=$(($(now_ms) - t0))"
            return 0
        fi
        sleep 0.1
    done
    echo "first=$first ready_after_ms=never last=$code"
}

# ======================================================================
# Slow cases, started first and collected below
# ======================================================================
CUR_LOG=

# ---- 3. timeouts: start-up, upstream connect, idle ----
it_free_port P_TMO
start_proxy timeouts "$P_TMO" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --server-handshake-timeout 2 --idle-timeout 2
LOG_TMO=$LOGS/proxy-timeouts.log
# Half an SSLRequest, then nothing.
bg tmo-half raw stall 127.0.0.1 "$P_TMO" 4 10
# TLS handshake done, no StartupMessage.
bg tmo-nostartup raw error localhost "$P_TMO" --no-startup
# A psql session that is idle for 3.5 s between two queries.
idle_psql() {
    # (Under valgrind the proxy's set-up alone can take 3 s of that sleep.)
    { echo "SELECT 'first';"; sleep "$([ "$IT_TIME_SCALE" = 1 ] && echo 3.5 || echo 8)"
        echo "SELECT 'second';"; } |
        timeout -k 5 30 psql -X -A -t -q "$(ci "$P_TMO" application_name=idle-test)" 2>&1
}
bg tmo-idle idle_psql
# A session with a query every 100 ms for 4 s: never idle for 2 s.
bg tmo-busy pgc hold "$(ci "$P_TMO" application_name=busy-test)" 4

# An upstream that accepts TCP and never answers the SSLRequest.
it_free_port OPS_SILENT_PORT
it_spawn fake-silent-ops "$LOGS/fake-upstream-silent-ops.log" "$RAWCLIENT" fake-upstream \
    "$OPS_SILENT_PORT" silent
if it_wait_port "$OPS_SILENT_PORT" 10 "${IT_PIDS[fake-silent-ops]}"; then
    pass "fake upstream (silent, for --client-connect-timeout) listens"
else
    fail "fake upstream (silent, for --client-connect-timeout) listens" \
        "$(oneline "$(cat "$LOGS/fake-upstream-silent-ops.log")")"
fi
it_free_port P_CTO
start_proxy connect-timeout "$P_CTO" 127.0.0.1 "$OPS_SILENT_PORT" localhost "$CERTS/db-ca.crt" \
    --client-connect-timeout 2
bg cto raw error localhost "$P_CTO"

# ---- 9. admin endpoint: started now so that its idle probe has run ----
it_free_port P_ADM
it_free_port ADMIN_PORT
start_proxy admin "$P_ADM" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --admin-address "127.0.0.1:$ADMIN_PORT"
ADMIN=http://127.0.0.1:$ADMIN_PORT
bg readyz readyz_poll

# ======================================================================
# 1. Certificate reload: SIGHUP, a failed reload, --watch-certificates
# ======================================================================
FP1=$(fp_file "$CERTS/proxy.crt")
FP2=$(fp_file "$CERTS/proxy2.crt")
RDIR=$TMP/reload-certs
mkdir -p "$RDIR"
install -m 644 "$CERTS/proxy.crt" "$RDIR/server.crt"
install -m 600 "$CERTS/proxy.key" "$RDIR/server.key"
it_free_port P_RELOAD
PROXY_CRT=$RDIR/server.crt PROXY_KEY=$RDIR/server.key \
    start_proxy reload "$P_RELOAD" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt"
LOG_RELOAD=$LOGS/proxy-reload.log
CUR_LOG=$LOG_RELOAD
RELOAD_PID=${IT_PIDS[reload]:-0}
expect "reload: before SIGHUP a client is shown proxy.crt (SHA-256 $FP1)" \
    "$(fp_seen "$P_RELOAD")" "^$FP1\$"

# A session that is mid-query while the certificate changes.
bg reload-session psqlc "$(ci "$P_RELOAD")" \
    -c "SELECT 'old session done' FROM pg_sleep(3) /* reload-session */"
backend_active "query LIKE '%/* reload-session */'" >/dev/null ||
    fail "reload: the session's query is running" "not seen in pg_stat_activity"
cp "$CERTS/proxy2.crt" "$RDIR/server.crt"
cp "$CERTS/proxy2.key" "$RDIR/server.key"
n=$(count "$LOG_RELOAD" 'event=reloaded')
kill -HUP "$RELOAD_PID"
wait_count "$LOG_RELOAD" 'event=reloaded' "$n" 5
expect "reload: after SIGHUP a new client is shown proxy2.crt (SHA-256 $FP2)" \
    "$(fp_seen "$P_RELOAD")" "^$FP2\$"
# (still running now: the session really was open across the reload)
SESSION_OPEN=no
kill -0 "${BG_PID[reload-session]}" 2>/dev/null && SESSION_OPEN=yes
out=$(pgc query "$(ci "$P_RELOAD")" "SELECT 'new cert ok'")
expect "reload: libpq verify-full against public-ca works with the new certificate" "$out" \
    '^new cert ok$'
bg_wait reload-session
expect "reload: the session open across SIGHUP completes its pg_sleep(3) normally" \
    "open-at-reload=$SESSION_OPEN $BG_OUT" $'^open-at-reload=yes old session done\nrc=0 '

# A failed reload changes nothing.
printf 'not a key\n' >"$RDIR/server.key"
n=$(count "$LOG_RELOAD" 'event=reload_failed')
kill -HUP "$RELOAD_PID"
if wait_count "$LOG_RELOAD" 'event=reload_failed' "$n" 5; then
    pass "failed reload (garbage key): the log has event=reload_failed"
else
    fail "failed reload (garbage key): the log has event=reload_failed" "no such line in 5 s"
fi
expect "failed reload: new clients are still shown proxy2.crt" "$(fp_seen "$P_RELOAD")" "^$FP2\$"
out=$(pgc query "$(ci "$P_RELOAD")" "SELECT 'still serving'")
expect "failed reload: new sessions still work" "$out" '^still serving$'
# A certificate that does not match its key (the certificate was updated,
# the key not yet): refused as a whole, nothing changes.
cp "$CERTS/proxy2.key" "$RDIR/server.key"
cp "$CERTS/proxy.crt" "$RDIR/server.crt"
n=$(count "$LOG_RELOAD" 'event=reload_failed')
kill -HUP "$RELOAD_PID"
wait_count "$LOG_RELOAD" 'event=reload_failed' "$n" 5
expect "failed reload (certificate and key do not match): reload_failed says so" \
    "$(grep 'event=reload_failed' "$LOG_RELOAD" | tail -n 1)" 'does not match'
expect "failed reload (mismatch): new clients are still shown proxy2.crt" \
    "$(fp_seen "$P_RELOAD")" "^$FP2\$"
if kill -0 "$RELOAD_PID" 2>/dev/null; then
    pass "failed reload: the proxy keeps running"
else
    fail "failed reload: the proxy keeps running" "process $RELOAD_PID is gone"
fi
stop_proxy reload

# --watch-certificates: new files renamed into place (as cert-manager or
# an editor that writes a temp file does), and a Kubernetes secret volume
# (files are symlinks through ..data, which is swapped atomically).
WDIR=$TMP/watch-certs
mkdir -p "$WDIR"
install -m 644 "$CERTS/proxy.crt" "$WDIR/server.crt"
install -m 600 "$CERTS/proxy.key" "$WDIR/server.key"
KDIR=$TMP/k8s-certs
mkdir -p "$KDIR/..v1" "$KDIR/..v2"
install -m 644 "$CERTS/proxy.crt" "$KDIR/..v1/tls.crt"
install -m 600 "$CERTS/proxy.key" "$KDIR/..v1/tls.key"
install -m 644 "$CERTS/proxy2.crt" "$KDIR/..v2/tls.crt"
install -m 600 "$CERTS/proxy2.key" "$KDIR/..v2/tls.key"
ln -s ..v1 "$KDIR/..data"
ln -s ..data/tls.crt "$KDIR/tls.crt"
ln -s ..data/tls.key "$KDIR/tls.key"
it_free_port P_WATCH
PROXY_CRT=$WDIR/server.crt PROXY_KEY=$WDIR/server.key \
    start_proxy watch "$P_WATCH" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --watch-certificates
it_free_port P_K8S
PROXY_CRT=$KDIR/tls.crt PROXY_KEY=$KDIR/tls.key \
    start_proxy watch-k8s "$P_K8S" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --watch-certificates
expect "--watch-certificates: before the change a client is shown proxy.crt" \
    "$(fp_seen "$P_WATCH") $(fp_seen "$P_K8S")" "^$FP1 $FP1\$"
install -m 644 "$CERTS/proxy2.crt" "$WDIR/.server.crt.new"
install -m 600 "$CERTS/proxy2.key" "$WDIR/.server.key.new"
t0=$(now_ms)
mv -f "$WDIR/.server.key.new" "$WDIR/server.key"
mv -f "$WDIR/.server.crt.new" "$WDIR/server.crt"
ln -s ..v2 "$KDIR/..data_tmp"
mv -T "$KDIR/..data_tmp" "$KDIR/..data"
seen_w="" seen_k="" ms_w="" ms_k=""
while [ $(($(now_ms) - t0)) -lt 3000 ] && { [ -z "$ms_w" ] || [ -z "$ms_k" ]; }; do
    if [ -z "$ms_w" ]; then
        seen_w=$(fp_seen "$P_WATCH")
        [ "$seen_w" = "$FP2" ] && ms_w=$(($(now_ms) - t0))
    fi
    if [ -z "$ms_k" ]; then
        seen_k=$(fp_seen "$P_K8S")
        [ "$seen_k" = "$FP2" ] && ms_k=$(($(now_ms) - t0))
    fi
    sleep 0.1
done
CUR_LOG=$LOGS/proxy-watch.log
if [ -n "$ms_w" ]; then
    pass "--watch-certificates: files renamed into the directory, no signal: proxy2.crt shown after ${ms_w} ms (< 3 s)"
else
    fail "--watch-certificates: files renamed into the directory: proxy2.crt shown within 3 s" \
        "still shown ${seen_w:-nothing}"
fi
CUR_LOG=$LOGS/proxy-watch-k8s.log
if [ -n "$ms_k" ]; then
    pass "--watch-certificates: Kubernetes-style ..data symlink swap: proxy2.crt shown after ${ms_k} ms (< 3 s)"
else
    fail "--watch-certificates: Kubernetes-style ..data symlink swap: proxy2.crt shown within 3 s" \
        "still shown ${seen_k:-nothing}"
fi
out=$(pgc query "$(ci "$P_K8S")" "SELECT 'watched'")
expect "--watch-certificates: sessions work after the swap" "$out" '^watched$'
stop_proxy watch
stop_proxy watch-k8s

# ======================================================================
# 4. --max-connections
# ======================================================================
it_free_port P_LIM
start_proxy limits "$P_LIM" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" --max-connections 2
LOG_LIM=$LOGS/proxy-limits.log
CUR_LOG=$LOG_LIM
LIM_OK=1
start_session limit-1 "$P_LIM" "SELECT pg_sleep(20) /* limit-1 */" || LIM_OK=0
LIM1_PID=$SESS_PID
start_session limit-2 "$P_LIM" "SELECT pg_sleep(20) /* limit-2 */" || LIM_OK=0
LIM2_PID=$SESS_PID
if [ "$LIM_OK" = 1 ]; then
    pass "--max-connections 2: two sessions are open and running queries"
else
    fail "--max-connections 2: two sessions are open and running queries" \
        "$(oneline "$(cat "$TMP/limit-1.out" "$TMP/limit-2.out")")"
fi
out=$(raw error localhost "$P_LIM")
expect "--max-connections 2: the third client gets FATAL 53300 'too many clients'" "$out" \
    '^sqlstate=53300 severity=FATAL message=.*too many clients'
out=$(pgc query "$(ci "$P_LIM")" "SELECT 1")
expect "--max-connections 2: libpq shows the third client 'too many clients'" "$out" \
    '^error: .*FATAL:  pg-tls-proxy: sorry, too many clients'
wait_line "$LOG_LIM" 'event=closed .*outcome=too_many' 2
expect "--max-connections: logged as event=closed outcome=too_many" \
    "too_many=$(count "$LOG_LIM" 'event=closed .*outcome=too_many')" '^too_many=[2-9]$'
n=$(count "$LOG_LIM" 'event=closed ')
kill -TERM "$LIM1_PID" 2>/dev/null
wait "$LIM1_PID"
wait_count "$LOG_LIM" 'event=closed ' "$n" 5
out=$(raw session localhost "$P_LIM" --query "SELECT 'slot free'")
expect "--max-connections 2: after one session ends, a new client works" "$out" \
    $'\nrow=slot free\n'
kill -TERM "$LIM2_PID" 2>/dev/null
wait "$LIM2_PID"
stop_proxy limits

# ======================================================================
# 5. JSON log: every line parses; the closed line is the audit record
# ======================================================================
it_free_port P_JSON
start_proxy json "$P_JSON" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" --log-format json
LOG_JSON=$LOGS/proxy-json.log
CUR_LOG=$LOG_JSON
out=$(psqlc "$(ci "$P_JSON" application_name=audit-test)" -c "SELECT 'audited'")
expect "--log-format json: psql application_name=audit-test works" "$out" '^audited$'
# A client-chosen value made to break out of its quotes: a double quote,
# a backslash, a forged key, a control character, a byte that is not UTF-8.
HOSTILE=$'evil" outcome=forged \\ \x01 \xff end'
out=$(PGAPPNAME=$HOSTILE psqlc "$(ci "$P_JSON")" -c "SELECT 'hostile'")
expect "--log-format json: a session whose application_name has quotes, a forged key, bad UTF-8" \
    "$out" '^hostile$'
# Lines of other kinds too: a refused plaintext client, a failed reload.
raw error 127.0.0.1 "$P_JSON" --plaintext >/dev/null
raw garbage 127.0.0.1 "$P_JSON" 64 >/dev/null
kill -HUP "${IT_PIDS[json]:-0}"
wait_line "$LOG_JSON" '"event": ?"(reloaded|reload_failed)"' 5
wait_line "$LOG_JSON" '"application_name": ?"audit-test"' 5
stop_proxy json
out=$(python3 - "$LOG_JSON" "$PASSWORD" <<'PY'
import json, sys
path, password = sys.argv[1], sys.argv[2]
raw = open(path, "rb").read()
try:
    text = raw.decode("utf-8")
except UnicodeDecodeError as e:
    print("lines=? objects=0 bad=1 not UTF-8: %s" % e)
    text = raw.decode("utf-8", "replace")
lines = [l for l in text.splitlines() if not l.startswith("# started:")]
bad, objs = [], []

def no_dup_keys(pairs):
    keys = [k for k, _ in pairs]
    dups = sorted({k for k in keys if keys.count(k) > 1})
    if dups:
        raise ValueError("duplicate keys " + ",".join(dups))
    return dict(pairs)

for i, line in enumerate(lines, 1):
    try:
        o = json.loads(line, object_pairs_hook=no_dup_keys)
        if not isinstance(o, dict):
            raise ValueError("not an object")
        objs.append(o)
    except ValueError as e:
        bad.append("line %d: %s: %s" % (i, e, line[:120]))
print("lines=%d objects=%d bad=%d %s" % (len(lines), len(objs), len(bad), " | ".join(bad[:3])))
closed = [o for o in objs if o.get("event") == "closed" and o.get("application_name") == "audit-test"]
if not closed:
    print("audit: no closed line for audit-test")
else:
    c = closed[-1]
    want = ["sni", "user", "database", "application_name", "upstream", "front_tls", "back_tls",
            "bytes_from_client", "bytes_from_upstream", "duration_ms", "outcome"]
    missing = [k for k in want if k not in c]
    print("audit: missing=%s sni=%s user=%s database=%s front_tls=%s back_tls=%s "
          "bytes_from_client=%r bytes_from_upstream=%r duration_ms=%r outcome=%s upstream=%s" % (
              ",".join(missing) or "none", c.get("sni"), c.get("user"), c.get("database"),
              c.get("front_tls"), c.get("back_tls"), c.get("bytes_from_client"),
              c.get("bytes_from_upstream"), c.get("duration_ms"), c.get("outcome"),
              c.get("upstream")))
hostile = [o for o in objs if o.get("event") == "closed"
           and str(o.get("application_name", "")).startswith("evil")]
print("hostile: %s" % ("outcome=%s" % hostile[-1].get("outcome") if hostile else "no closed line"))
print("password-in-log=%s" % (password in text))
PY
)
expect "--log-format json: every line of the log is one JSON object" "$out" \
    '^lines=[1-9][0-9]* objects=[1-9][0-9]* bad=0 '
expect "--log-format json: the audit-test closed line has every field, typed" "$out" \
    $'\naudit: missing=none sni=localhost user=app database=app front_tls=TLSv1\\.[23] back_tls=TLSv1\\.[23] bytes_from_client=[1-9][0-9]* bytes_from_upstream=[1-9][0-9]* duration_ms=[0-9]+ outcome=closed upstream=127\\.0\\.0\\.1:[0-9]+\n'
expect "--log-format json: the hostile application_name stays inside its string (one outcome, closed)" \
    "$out" $'\nhostile: outcome=closed\n'
expect "--log-format json: the password appears nowhere in the log" "$out" \
    $'\npassword-in-log=False$'

# The same value in the text log (proxy 'main'): outside quoted values the
# closed line has one outcome=, and it is the real one.
CUR_LOG=$LOGS/proxy-main.log
out=$(PGAPPNAME=$HOSTILE psqlc "$CI_MAIN" -c "SELECT 'hostile'")
wait_line "$LOGS/proxy-main.log" 'event=closed .*application_name="evil' 2
line=$(closed_line "$LOGS/proxy-main.log" 'application_name="evil')
unquoted=$(sed -E 's/"([^"\\]|\\.)*"/""/g' <<<"$line")
expect "text log: the hostile application_name cannot forge a key (one outcome=, =closed)" \
    "$out $(grep -o ' outcome=[a-z_]*' <<<"$unquoted" | tr '\n' ' ')" '^hostile  outcome=closed $'

# ======================================================================
# 6. mTLS on the front leg (--server-client-ca-path)
# ======================================================================
it_free_port P_MTLS
start_proxy mtls "$P_MTLS" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --server-client-ca-path "$CERTS/client-ca.crt"
LOG_MTLS=$LOGS/proxy-mtls.log
CUR_LOG=$LOG_MTLS
out=$(psqlc "$(ci "$P_MTLS" sslcert="$CERTS/client.crt" sslkey="$CERTS/client.key")" \
    -c "SELECT 'mtls ok'")
expect "mTLS: psql with sslcert/sslkey from client-ca logs in" "$out" '^mtls ok$'
n=$(count "$LOG_MTLS" 'event=front_handshake_failed')
out=$(psqlc "$(ci "$P_MTLS")" -c "SELECT 1")
rc=$?
expect "mTLS: psql without a certificate fails (libpq: certificate required)" "rc=$rc $out" \
    '^rc=2 .*certificate required'
wait_count "$LOG_MTLS" 'event=front_handshake_failed' "$n" 2
expect "mTLS: the log says front_handshake_failed, with a hint naming sslcert" \
    "$(grep 'event=front_handshake_failed' "$LOG_MTLS" | tail -n 1)" 'hint="[^"]*sslcert'
n=$(count "$LOG_MTLS" 'event=front_handshake_failed')
out=$(psqlc "$(ci "$P_MTLS" sslcert="$CERTS/other-client.crt" sslkey="$CERTS/other-client.key")" \
    -c "SELECT 1")
rc=$?
expect "mTLS: psql with a certificate from other-ca fails (libpq: unknown ca)" "rc=$rc $out" \
    '^rc=2 .*(unknown ca|certificate)'
wait_count "$LOG_MTLS" 'event=front_handshake_failed' "$n" 2
expect "mTLS: the log names the client certificate as the problem" \
    "$(grep 'event=front_handshake_failed' "$LOG_MTLS" | tail -n 1)" 'reason="client certificate'
# psql's Ctrl-C: libpq sends its CancelRequest in plaintext, without a
# certificate; the key is its credential, so it must still work.
out=$(pgc cancel "$(ci "$P_MTLS" sslcert="$CERTS/client.crt" sslkey="$CERTS/client.key")" 500)
expect "mTLS: PQcancel (plaintext CancelRequest, no certificate) still cancels: 57014" "$out" \
    '^cancel sent=1 sqlstate=57014 '
stop_proxy mtls

# ======================================================================
# 7. A client certificate for the upstream (--client-certificate-path)
# ======================================================================
it_free_port P_CC
start_proxy client-cert "$P_CC" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --client-certificate-path "$CERTS/client-certuser.crt" \
    --client-private-key-path "$CERTS/client-certuser.key"
CUR_LOG=$LOGS/proxy-client-cert.log
out=$(psqlc "$(ci "$P_CC" user=certuser)" \
    -c "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
expect "client certificate upstream: psql user=certuser logs in by certificate (no password)" \
    "$out" '^certuser\|t$'
out=$(psqlc "$(ci "$P_CC")" -c "SELECT 'scram still ok'")
expect "client certificate upstream: user app still logs in with SCRAM" "$out" '^scram still ok$'
stop_proxy client-cert
CUR_LOG=$LOGS/proxy-main.log
out=$(psqlc "$(ci "$MAIN_PORT" user=certuser)" -c "SELECT 1")
expect "no client certificate upstream: user=certuser gets PostgreSQL's own FATAL, relayed" \
    "$out" 'FATAL:  connection requires a valid client certificate'
CUR_LOG=
proxy_exit2 "--client-certificate-path without --client-private-key-path" \
    --client-certificate-path "$CERTS/client-certuser.crt"
proxy_exit2 "--client-private-key-path without --client-certificate-path" \
    --client-private-key-path "$CERTS/client-certuser.key"

# ======================================================================
# 8. TLS policy: versions and cipher suites
# ======================================================================
it_free_port P_T13
start_proxy tls13 "$P_T13" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --server-min-tls-version 1.3 --client-min-tls-version 1.3
CUR_LOG=$LOGS/proxy-tls13.log
out=$(s_client "$P_T13" -tls1_2)
rc=$?
expect "--server-min-tls-version 1.3: s_client -tls1_2 fails the handshake" \
    "rc=$rc $(oneline "$(grep -E 'alert|error|Cipher is' <<<"$out")")" \
    '^rc=1 .*(protocol version|no protocols|unsupported protocol)'
out=$(s_client "$P_T13" -tls1_3)
expect "--server-min-tls-version 1.3: s_client -tls1_3 completes (TLSv1.3)" \
    "$(grep -E 'New, TLSv1\.3' <<<"$out")" '^New, TLSv1\.3, Cipher is '
out=$(pgc info "$(ci "$P_T13")")
expect "--client-min-tls-version 1.3 against PostgreSQL 15: sessions work, both legs TLS" "$out" \
    '^front_ssl=1 front_protocol=TLSv1\.3 backend_ssl=t$'
expect "--client-min-tls-version 1.3: the back leg is TLSv1.3 (established line)" \
    "$(grep 'event=established' "$LOGS/proxy-tls13.log" | tail -n 1)" 'back_tls=TLSv1\.3 '
stop_proxy tls13

it_free_port P_CHACHA
start_proxy chacha "$P_CHACHA" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --server-tls13-ciphersuites TLS_CHACHA20_POLY1305_SHA256
CUR_LOG=$LOGS/proxy-chacha.log
out=$(s_client "$P_CHACHA" -tls1_3)
expect "--server-tls13-ciphersuites TLS_CHACHA20_POLY1305_SHA256: s_client gets that suite" \
    "$(grep -E 'Cipher is' <<<"$out")" 'Cipher is TLS_CHACHA20_POLY1305_SHA256'
out=$(pgc info "$(ci "$P_CHACHA")")
expect "--server-tls13-ciphersuites: libpq sessions work" "$out" '^front_ssl=1 .* backend_ssl=t$'
stop_proxy chacha
CUR_LOG=
proxy_exit2 "a bad --server-tls12-ciphers" --server-tls12-ciphers NO-SUCH-CIPHER
proxy_exit2 "a bad --server-tls13-ciphersuites" --server-tls13-ciphersuites TLS_NO_SUCH_SUITE
proxy_exit2 "a bad --client-tls12-ciphers" --client-tls12-ciphers NO-SUCH-CIPHER
proxy_exit2 "--server-min-tls-version 1.1" --server-min-tls-version 1.1

# ======================================================================
# 10. PROXY protocol (--server-proxy-protocol)
# ======================================================================
it_free_port P_PP
start_proxy proxy-protocol "$P_PP" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --server-proxy-protocol
LOG_PP=$LOGS/proxy-proxy-protocol.log
CUR_LOG=$LOG_PP
for v in 1 2; do
    n=$(count "$LOG_PP" 'event=closed .*front=203\.0\.113\.7:')
    out=$(raw session localhost "$P_PP" "--proxy-v$v" 203.0.113.7 --query "SELECT 'pp v$v'")
    expect "PROXY v$v header claiming 203.0.113.7: a whole session works" "$out" \
        $'\nrow=pp v'"$v"$'\n'
    wait_count "$LOG_PP" 'event=closed .*front=203\.0\.113\.7:' "$n" 2
    expect "PROXY v$v: the closed line has front=203.0.113.7:40001 via=127.0.0.1:<port>" \
        "$(count "$LOG_PP" 'event=closed .*front=203\.0\.113\.7:') $(closed_line "$LOG_PP" 'front=203\.0\.113\.7:')" \
        "^$((n + 1)) .*front=203\\.0\\.113\\.7:40001 via=127\\.0\\.0\\.1:[0-9]+ .*outcome=closed"
done
out=$(raw error localhost "$P_PP" --proxy-v1 203.0.113.7 --proxy-split)
expect "PROXY v1 header in two writes 50 ms apart, SSLRequest after: reaches PostgreSQL" "$out" \
    '^auth=10$'
n=$(count "$LOG_PP" 'event=closed ')
out=$(raw error localhost "$P_PP" --proxy-v2 LOCAL)
expect "PROXY v2 LOCAL (a health check's header): reaches PostgreSQL" "$out" '^auth=10$'
wait_count "$LOG_PP" 'event=closed ' "$n" 2
expect "PROXY v2 LOCAL: the closed line has the connection's own address, no via=" \
    "$(closed_line "$LOG_PP" 'application_name="rawclient"')" 'front=127\.0\.0\.1:[0-9]+ sni='
n=$(count "$LOG_PP" 'event=(back_tls_up|established)')
out=$(raw error localhost "$P_PP")
expect "--server-proxy-protocol: an SSLRequest without a header is closed unanswered" "$out" \
    '^(eof|reset)$'
out=$(pgc query "$(ci "$P_PP")" "SELECT 1")
expect "--server-proxy-protocol: libpq without a header fails" "$out" '^error: '
wait_count "$LOG_PP" 'event=closed .*outcome=refused' 1 2
expect "--server-proxy-protocol: connections without a header never reach PostgreSQL" \
    "upstream-legs=$(($(count "$LOG_PP" 'event=(back_tls_up|established)') - n)) $(grep -E 'event=closed .*outcome=refused' "$LOG_PP" | grep -c -v ' upstream=- ') refused=$(count "$LOG_PP" 'event=closed .*outcome=refused reason="PROXY protocol header')" \
    '^upstream-legs=0 0 refused=2$'
stop_proxy proxy-protocol

it_free_port P_PPA
start_proxy proxy-protocol-allow "$P_PPA" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --server-proxy-protocol --server-allow-from 203.0.113.0/24
CUR_LOG=$LOGS/proxy-proxy-protocol-allow.log
out=$(raw error localhost "$P_PPA" --proxy-v1 203.0.113.7)
expect "PROXY + --server-allow-from 203.0.113.0/24: a client claiming 203.0.113.7 reaches PostgreSQL" \
    "$out" '^auth=10$'
out=$(raw error localhost "$P_PPA" --proxy-v2 198.51.100.1)
expect "PROXY + --server-allow-from 203.0.113.0/24: a client claiming 198.51.100.1 gets 28000" \
    "$out" '^sqlstate=28000 severity=FATAL message=.*198\.51\.100\.1 .*not allowed'
stop_proxy proxy-protocol-allow

# ======================================================================
# 3. Timeouts, collected
# ======================================================================
CUR_LOG=$LOG_TMO
bg_wait tmo-half
t=$(sed -n 's/^after=//p' <<<"$BG_OUT")
if [[ $BG_OUT =~ end=(eof|reset) ]] && ! lt "$t" 1.5 && lt "$t" 4; then
    pass "--server-handshake-timeout 2: half an SSLRequest, then silence: closed after ${t} s"
else
    fail "--server-handshake-timeout 2: half an SSLRequest is closed after 1.5-4 s" \
        "$(oneline "$BG_OUT")"
fi
bg_wait tmo-nostartup
t=$(sed -n 's/^after=//p' <<<"$BG_OUT")
if [[ $BG_OUT =~ $'tls-up\nsqlstate=08P01 severity=FATAL message=pg-tls-proxy: '[^$'\n']*start-up\ packet ]] &&
    ! lt "$t" 1.5 && lt "$t" 4; then
    pass "--server-handshake-timeout 2: TLS but no StartupMessage: FATAL 08P01 about the start-up packet after ${t} s"
else
    fail "--server-handshake-timeout 2: TLS but no StartupMessage: FATAL 08P01 after 1.5-4 s" \
        "$(oneline "$BG_OUT")"
fi
bg_wait tmo-idle
if [[ $BG_OUT =~ ^first$'\n' ]] && [[ ! $BG_OUT =~ second ]] &&
    [[ $BG_OUT =~ (closed|lost|terminat) ]]; then
    pass "--idle-timeout 2: psql idle for 3.5 s: the next query fails ($(oneline "$(sed -n 2p <<<"$BG_OUT")"))"
else
    fail "--idle-timeout 2: psql idle for 3.5 s: the next query fails" "$(oneline "$BG_OUT")"
fi
expect "--idle-timeout: the log has event=idle_timeout, the closed line outcome=timeout" \
    "$(count "$LOG_TMO" 'event=idle_timeout') $(closed_line "$LOG_TMO" 'application_name="idle-test"')" \
    '^[1-9] .*outcome=timeout '
bg_wait tmo-busy
expect "--idle-timeout 2: a session busy for 4 s (a query every 100 ms) is not closed" "$BG_OUT" \
    '^hold queries=[0-9]+ ok'$'\nrc=0 '
stop_proxy timeouts
CUR_LOG=$LOGS/proxy-connect-timeout.log
bg_wait cto
if [[ $BG_OUT =~ ^sqlstate=08001\ severity=FATAL\ message=[^$'\n']*timed\ out ]] &&
    within "$BG_MS" 1500 4000; then
    pass "--client-connect-timeout 2, upstream silent: FATAL 08001 'timed out' after ${BG_MS} ms"
else
    fail "--client-connect-timeout 2, upstream silent: FATAL 08001 'timed out' after 1.5-4 s" \
        "after ${BG_MS} ms: $(oneline "$BG_OUT")"
fi
stop_proxy connect-timeout
it_stop fake-silent-ops

# ======================================================================
# 2. Drain on SIGTERM, the shutdown timeout, a second SIGTERM
# ======================================================================
it_free_port P_DRAIN
start_proxy drain "$P_DRAIN" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --shutdown-timeout 3
it_free_port P_DTMO
start_proxy drain-timeout "$P_DTMO" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
    --shutdown-timeout 3
it_free_port P_DTWICE
start_proxy drain-twice "$P_DTWICE" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt"
CUR_LOG=$LOGS/proxy-drain-timeout.log
bg drain-nostartup raw error localhost "$P_DTMO" --no-startup
bg drain-long psqlc "$(ci "$P_DTMO")" -c "SELECT 'not reached' FROM pg_sleep(10) /* drain-long */"
bg drain-twice psqlc "$(ci "$P_DTWICE")" -c "SELECT 'not reached' FROM pg_sleep(10) /* drain-twice */"
backend_active "query LIKE '%/* drain-long */'" >/dev/null ||
    fail "drain: the long session is running" "not seen in pg_stat_activity"
backend_active "query LIKE '%/* drain-twice */'" >/dev/null ||
    fail "drain: the session for the second SIGTERM is running" "not seen in pg_stat_activity"
wait_line "$TMP/drain-nostartup.out" '^tls-up$' 5
bg drain-short psqlc "$(ci "$P_DRAIN")" -c "SELECT 'drained' FROM pg_sleep(1) /* drain-short */"
backend_active "query LIKE '%/* drain-short */'" >/dev/null ||
    fail "drain: the short session is running" "not seen in pg_stat_activity"
T_TERM=$(now_ms)
kill -TERM "${IT_PIDS[drain]}" "${IT_PIDS[drain-timeout]}" "${IT_PIDS[drain-twice]}"
sleep 0.3
T_TERM2=$(now_ms)
kill -TERM "${IT_PIDS[drain-twice]}"

# A second SIGTERM stops at once (polled now, so EXIT_AT is accurate).
CUR_LOG=$LOGS/proxy-drain-twice.log
if wait_exit drain-twice $((3 * IT_TIME_SCALE)); then
    ms=$((EXIT_AT - T_TERM2))
    if [ "$ms" -le $((1000 * IT_TIME_SCALE)) ]; then
        pass "second SIGTERM: the proxy exits (status ${IT_EXIT[drain-twice]}) ${ms} ms later, with a session open"
    else
        fail "second SIGTERM: the proxy exits within 1 s" "after ${ms} ms"
    fi
else
    fail "second SIGTERM: the proxy exits within 1 s" "still running 3 s later"
fi
bg_wait drain-twice
expect "second SIGTERM: the open session's psql sees the connection closed" "$BG_OUT" \
    '(closed|lost|terminat).*'$'\nrc=[1-9]'

# Draining: the listener is closed at once.
CUR_LOG=$LOGS/proxy-drain.log
for ((i = 0; i < 20; i++)); do
    it_port_listening "$P_DRAIN" || break
    sleep 0.05
done
out=$(raw error localhost "$P_DRAIN")
expect "drain: after SIGTERM a new connection is refused" "$out" \
    '^connect-failed=Connection refused$'
bg_wait drain-short
expect "drain: a session running pg_sleep(1) at SIGTERM completes normally" "$BG_OUT" \
    $'^drained\nrc=0 '
SHORT_END=$BG_END
if wait_exit drain $((5 * IT_TIME_SCALE)); then
    ms=$((EXIT_AT - SHORT_END))
    if [ "${IT_EXIT[drain]}" = 0 ] && [ "$ms" -le $((2000 * IT_TIME_SCALE)) ]; then
        pass "drain: the proxy exits 0, ${ms} ms after its last session ended"
    else
        fail "drain: the proxy exits 0 within 2 s of its last session" \
            "exit ${IT_EXIT[drain]} after ${ms} ms"
    fi
else
    fail "drain: the proxy exits 0 within 2 s of its last session" "still running 5 s later"
fi

CUR_LOG=$LOGS/proxy-drain-timeout.log
bg_wait drain-nostartup
ms=$((BG_END - T_TERM))
if [[ $BG_OUT =~ $'tls-up\nsqlstate=57P01 severity=FATAL message=pg-tls-proxy: terminating connection due to proxy shutdown' ]] &&
    within "$ms" 2500 4500; then
    pass "--shutdown-timeout 3: a client before its StartupMessage gets FATAL 57P01 'proxy shutdown' ${ms} ms after SIGTERM"
else
    fail "--shutdown-timeout 3: a client before its StartupMessage gets FATAL 57P01 2.5-4.5 s after SIGTERM" \
        "after ${ms} ms: $(oneline "$BG_OUT")"
fi
bg_wait drain-long
ms=$((BG_END - T_TERM))
if [[ $BG_OUT =~ (closed|lost|terminat) ]] && [[ ! $BG_OUT =~ not\ reached ]] &&
    [ "$BG_RC" != 0 ] && within "$ms" 2500 4500; then
    pass "--shutdown-timeout 3: psql running pg_sleep(10) sees the connection closed ${ms} ms after SIGTERM"
else
    fail "--shutdown-timeout 3: psql running pg_sleep(10) sees the connection closed 2.5-4.5 s after SIGTERM" \
        "after ${ms} ms: $(oneline "$BG_OUT")"
fi
if wait_exit drain-timeout 3; then
    expect "--shutdown-timeout 3: the proxy exits 0 once the sessions are ended" \
        "exit=${IT_EXIT[drain-timeout]} after=$((EXIT_AT - T_TERM))" '^exit=0 '
else
    fail "--shutdown-timeout 3: the proxy exits 0 once the sessions are ended" \
        "still running $((($(now_ms) - T_TERM) / 1000)) s after SIGTERM"
fi

# ======================================================================
# 9. Admin endpoint: /healthz, /readyz, /metrics
# ======================================================================
CUR_LOG=$LOGS/proxy-admin.log
expect "admin: GET /healthz is 200" "$(http_code "$ADMIN/healthz")" '^200$'
bg_wait readyz
expect "admin: GET /readyz turns 200 within 5 s of start, the proxy probing when idle ($(head -n 1 <<<"$BG_OUT"))" \
    "$BG_OUT" '^first=(200|503) ready_after_ms=[0-9]+'$'\n'
# A failed front handshake (only ALPN http/1.1 offered), for the counters.
raw error localhost "$P_ADM" --direct --alpn http/1.1 >/dev/null
out=$(metrics_get "$TMP/metrics-1.txt")
expect "admin: /metrics is valid Prometheus text (strict parser)" "$out" '^valid '
S0=$(metric "$TMP/metrics-1.txt" 'pg_tls_proxy_sessions_total{outcome="closed",route="default"}')
out=$(pgc query "$(ci "$P_ADM")" "SELECT 'metered'")
expect "admin: a session through the proxy" "$out" '^metered$'
S1=$S0
for ((i = 0; i < 20; i++)); do
    metrics_get "$TMP/metrics-2.txt" >/dev/null
    S1=$(metric "$TMP/metrics-2.txt" 'pg_tls_proxy_sessions_total{outcome="closed",route="default"}')
    [[ $S0 =~ ^[0-9]+$ && $S1 =~ ^[0-9]+$ ]] && [ "$S1" -gt "$S0" ] && break
    sleep 0.1
done
grew=no
[[ $S0 =~ ^[0-9]+$ && $S1 =~ ^[0-9]+$ ]] && [ "$S1" -gt "$S0" ] && grew=yes
expect "admin: pg_tls_proxy_sessions_total{outcome=\"closed\"} grows after a session" \
    "grew=$grew before=${S0:-none} after=${S1:-none}" '^grew=yes '
expect "admin: pg_tls_proxy_bytes_total, both directions > 0" \
    "from_client=$(metric "$TMP/metrics-2.txt" 'pg_tls_proxy_bytes_total{direction="from_client"}') from_upstream=$(metric "$TMP/metrics-2.txt" 'pg_tls_proxy_bytes_total{direction="from_upstream"}')" \
    '^from_client=[1-9][0-9]* from_upstream=[1-9][0-9]*$'
expect "admin: a failed front handshake is counted in pg_tls_proxy_handshake_failures_total" \
    "$(awk '/^pg_tls_proxy_handshake_failures_total\{leg="front",/ { s += $2 } END { print "front=" s + 0 }' \
        "$TMP/metrics-2.txt")" '^front=[1-9][0-9]*$'
expect "admin: the front certificate's expiry is exported, in the future" \
    "$(awk -v now="$(date +%s)" '/^pg_tls_proxy_certificate_expiry_timestamp_seconds\{which="front",/ {
        print ($2 > now ? "future" : "past") }' "$TMP/metrics-2.txt")" '^future$'
expect "admin: pg_tls_proxy_build_info is present and 1" \
    "$(grep -E '^pg_tls_proxy_build_info\{' "$TMP/metrics-2.txt" 2>/dev/null)" \
    '^pg_tls_proxy_build_info\{version="[^"]+",.*\} 1$'
expect "admin: GET /readyz is 200 after a session" "$(http_code "$ADMIN/readyz")" '^200$'
expect "admin: an unknown path is 404" "$(http_code "$ADMIN/no-such-page")" '^404$'
expect "admin: POST /metrics is 405" "$(http_code -X POST --data x "$ADMIN/metrics")" '^405$'
stop_proxy admin

CUR_LOG=
echo "# operations.sh cases took $((SECONDS - OPS_T0)) s"
