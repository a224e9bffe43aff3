# shellcheck shell=bash
# shellcheck disable=SC2034 # CUR_LOG is read by run.sh's fail()
# conffile.sh - the --config file (issue 14): a proxy started with nothing
# but --config serves psql; the environment and flags win over the file; a
# typo in the file stops the start with exit 2 and a "did you mean" line
# naming the file and line; SIGHUP with a broken file keeps serving, logs
# event=reload_failed with that line and counts the failure; SIGHUP with a
# fixed file reloads, and a changed process-wide option is named as needing
# a restart.
#
# Sourced by run.sh, never executed: it uses run.sh's reporting (pass, fail,
# expect), helpers (wait_line, count), clients (ci, pgc) and variables
# (CERTS, LOGS, TMP, PGPORT). Loopback only; a few seconds.

CF_DIR=$TMP/conffile
mkdir -p "$CF_DIR"

# cf_write FILE PORT ADMIN_PORT [EXTRA LINES...]: a config file of globals
# only (the default route) for the test PostgreSQL, atomically replaced.
cf_write() {
    local file=$1 port=$2 admin=$3
    shift 3
    {
        printf '# pg-tls-proxy test config: the default route in the globals\n'
        printf 'server-certificate-path = %s\n' "$CERTS/proxy.crt"
        printf 'server-private-key-path = %s   ; inline comment\n' "$CERTS/proxy.key"
        printf '[global]\n'
        printf '    server-host = 127.0.0.1\n'
        printf 'server-port = %s\n' "$port"
        printf 'client-connection-host-or-ip = 127.0.0.1\n'
        printf 'client-connection-port = %s\n' "$PGPORT"
        printf 'client-tls-validation-host = localhost\n'
        printf 'client-ca-roots-path = %s\n' "$CERTS/db-ca.crt"
        printf 'admin-address = 127.0.0.1:%s\n' "$admin"
        printf 'workers = 1\n'
        [ $# -eq 0 ] || printf '%s\n' "$@"
    } >"$file.tmp" && mv -f "$file.tmp" "$file"
}

# cf_reloads RESULT ADMIN_PORT: the pg_tls_proxy_reloads_total{result} counter.
cf_reloads() {
    curl -s --max-time 5 "http://127.0.0.1:$2/metrics" |
        sed -n "s/^pg_tls_proxy_reloads_total{result=\"$1\"} \\([0-9]*\\)$/\\1/p"
}

# ---- 1. only --config: psql works ----
it_free_port CF_PORT
it_free_port CF_ADMIN
CF_FILE=$CF_DIR/pg.conf
cf_write "$CF_FILE" "$CF_PORT" "$CF_ADMIN"
CUR_LOG=$LOGS/proxy-conffile.log
if it_proxy_start conffile "$CUR_LOG" "$CF_PORT" --config "$CF_FILE"; then
    pass "conffile: a proxy started with only --config listens on the file's server-port"
else
    fail "conffile: a proxy started with only --config listens" "not listening after 10 s"
fi
out=$(timeout -k 5 30 psql -X -A -t -q "$(ci "$CF_PORT")" \
    -c "SELECT 'conf ok', ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)
expect "conffile: psql through the proxy configured by the file alone (back leg TLS)" "$out" \
    '^conf ok\|t$'

# ---- 2. precedence: environment and flags over the file ----
# The file names a validation host the upstream certificate does not carry
# and a port nobody listens on: only the variable and the flag make it work.
it_free_port CF_PORT2
it_free_port CF_FILEPORT
it_free_port CF_ADMIN2
cf_write "$CF_DIR/prec.conf" "$CF_FILEPORT" "$CF_ADMIN2"
sed -i 's/^client-tls-validation-host = localhost$/client-tls-validation-host = wrong.example/' \
    "$CF_DIR/prec.conf"
CUR_LOG=$LOGS/proxy-conffile-prec.log
if PG_TLS_PROXY_CLIENT_TLS_VALIDATION_HOST=localhost it_proxy_start conffile-prec "$CUR_LOG" \
    "$CF_PORT2" --config "$CF_DIR/prec.conf" --server-port "$CF_PORT2"; then
    pass "conffile: --server-port wins over the file's server-port"
else
    fail "conffile: --server-port wins over the file's server-port" "not listening on $CF_PORT2"
fi
out=$(pgc query "$(ci "$CF_PORT2")" "SELECT 'env wins'")
expect "conffile: PG_TLS_PROXY_CLIENT_TLS_VALIDATION_HOST wins over the file's wrong name" \
    "$out" '^env wins$'
it_port_listening "$CF_FILEPORT" && fail "conffile: the file's server-port is not used" \
    "something listens on $CF_FILEPORT" || pass "conffile: the file's server-port is not used"
stop_proxy conffile-prec

# ---- 3. a typo in the file: exit 2, "did you mean", file and line ----
cf_write "$CF_DIR/typo.conf" "$CF_FILEPORT" "$CF_ADMIN2" "client-conection-port = 5432"
TYPO_LINE=$(grep -n '^client-conection-port' "$CF_DIR/typo.conf" | cut -d: -f1)
out=$(timeout -k 5 10 "$PGTP_BIN" --config "$CF_DIR/typo.conf" 2>&1)
rc=$?
expect "conffile: a typo in the file stops the start with exit 2" "$rc" '^2$'
expect "conffile: the error names file:line, the key and the key meant" "$out" \
    "typo\\.conf:$TYPO_LINE: unknown key \"client-conection-port\" \\(did you mean client-connection-port\\?\\)"
cf_write "$CF_DIR/route.conf" "$CF_FILEPORT" "$CF_ADMIN2" "[route a]" "sni = a.localhost" \
    "max-connections = 5"
out=$(timeout -k 5 10 "$PGTP_BIN" --config "$CF_DIR/route.conf" 2>&1)
rc=$?
expect "conffile: a process-wide option in a route section: exit 2, named with its line" \
    "$rc:$out" '^2:.*route\.conf:[0-9]+: max-connections is process-wide: set it in the globals'

# ---- 4. SIGHUP with a broken file: keeps serving, says why, counts it ----
CUR_LOG=$LOGS/proxy-conffile.log
CF_PID=${IT_PIDS[conffile]:-0}
failed0=$(cf_reloads failure "$CF_ADMIN")
cf_write "$CF_FILE" "$CF_PORT" "$CF_ADMIN" "[route b]" "sni = b.localhost" "client-ca-roots-pat = x"
BROKEN_LINE=$(grep -n '^client-ca-roots-pat ' "$CF_FILE" | cut -d: -f1)
kill -HUP "$CF_PID"
if wait_line "$CUR_LOG" 'event=reload_failed' 10; then
    out=$(grep 'event=reload_failed' "$CUR_LOG" | tail -n 1)
    expect "conffile: SIGHUP with a broken file logs reload_failed with file:line and the fix" \
        "$out" "reason=\"[^\"]*pg\\.conf:$BROKEN_LINE: unknown key \\\\\"client-ca-roots-pat\\\\\" \\(did you mean client-ca-roots-path\\?\\)\" hint=\"the running configuration stays in use"
else
    fail "conffile: SIGHUP with a broken file logs reload_failed" "no such line in 10 s"
fi
failed1=$(cf_reloads failure "$CF_ADMIN")
expect "conffile: the failed reload is counted (reloads_total{result=\"failure\"} $failed0 -> $failed1)" \
    "$failed0:$failed1" "^$failed0:$((failed0 + 1))\$"
out=$(pgc query "$(ci "$CF_PORT")" "SELECT 'still serving'")
expect "conffile: after the failed reload new sessions still work" "$out" '^still serving$'

# ---- 5. SIGHUP with a fixed file: reloads; a process-wide change is named ----
ok0=$(cf_reloads success "$CF_ADMIN")
cf_write "$CF_FILE" "$CF_PORT" "$CF_ADMIN"
sed -i 's/^workers = 1$/workers = 2/' "$CF_FILE"
n0=$(count "$CUR_LOG" 'event=reloaded')
kill -HUP "$CF_PID"
for _i in $(seq 1 100); do
    [ "$(count "$CUR_LOG" 'event=reloaded')" -gt "$n0" ] && break
    sleep 0.1
done
ok1=$(cf_reloads success "$CF_ADMIN")
expect "conffile: SIGHUP with the fixed file reloads (reloads_total{result=\"success\"} $ok0 -> $ok1)" \
    "$ok0:$ok1" "^$ok0:$((ok0 + 1))\$"
expect "conffile: a changed process-wide option is named as needing a restart" \
    "$(grep 'event=reload_restart_needed' "$CUR_LOG" | tail -n 1)" 'options="workers"'
out=$(pgc query "$(ci "$CF_PORT")" "SELECT 'after reload'")
expect "conffile: sessions work after the reload" "$out" '^after reload$'
stop_proxy conffile
expect "conffile: the proxy exits 0 on SIGTERM" "${IT_EXIT[conffile]:-unset}" '^0$'
