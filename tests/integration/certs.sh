# shellcheck shell=bash
# certs section of tests/integration/run.sh (sourced; uses its helpers).
#
# The real PostgreSQL presents one broken certificate after another
# (certs/gen-test-certs.sh makes them): expired, not yet valid, wrong name,
# another CA (leaf alone, and leaf + that CA's root), self-signed, and a leaf
# whose intermediate the server does not send. For each, through the main
# proxy: libpq's error names the cause and its fix, rawclient reads FATAL
# 08001 with the same text, and the proxy's log line names it too.
#
# How: the test cluster's ssl_cert_file/ssl_key_file are switched with ALTER
# SYSTEM + pg_reload_conf() (superuser over the Unix socket), and a switch
# counts only once openssl s_client sees the new certificate (PostgreSQL
# keeps the old one if it cannot load the new). The original is restored at
# the end. Same cluster, same main proxy: no second initdb (~2-5 s here), and
# the proxy that fails the new sessions is the one whose established session
# must keep working. That session (psql, opened before the first switch)
# runs a query during every case; afterwards the main proxy's new sessions
# work again and its fds are back to where they were.

# shellcheck disable=SC2034 # CUR_LOG is read by run.sh's fail()
CUR_LOG=$LOGS/proxy-main.log
CERTS_T0=$SECONDS

# Superuser SQL on the test cluster (trust on its private Unix socket).
certs_sql() {
    it_as_svc timeout -k 5 30 "$IT_PG_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 \
        -h "$PGDATA_DIR" -p "$PGPORT" -U postgres -d postgres "$@" 2>&1
}

# certs_pem TEXT: REPLY = "<first PEM certificate of TEXT> <how many>", in
# bash alone (this runs on a busy machine: every process counts).
certs_pem() {
    local t=$1 rest
    rest=${t//-----BEGIN CERTIFICATE-----/}
    t=${t#*-----BEGIN CERTIFICATE-----}
    REPLY="${t%%-----END CERTIFICATE-----*} $(((${#1} - ${#rest}) / 27))"
}

# certs_serve NAME: PostgreSQL presents cert-cases/NAME.{crt,key} (a chain,
# leaf first) to new connections; NAME "original" is its own server.crt.
# Polls up to 15 s for what openssl s_client sees; fails if the switch does
# not happen (the server log says why).
certs_serve() {
    local name=$1 want i
    if [ "$name" = original ]; then
        certs_pem "$(<"$PGDATA_DIR/server.crt")"
        want=$REPLY
        certs_sql -c "ALTER SYSTEM RESET ssl_cert_file" -c "ALTER SYSTEM RESET ssl_key_file" \
            -c "SELECT pg_reload_conf()" >/dev/null || return 1
    else
        certs_pem "$(<"$PGDATA_DIR/cert-cases/$name.crt")"
        want=$REPLY
        certs_sql -c "ALTER SYSTEM SET ssl_cert_file = 'cert-cases/$name.crt'" \
            -c "ALTER SYSTEM SET ssl_key_file = 'cert-cases/$name.key'" \
            -c "SELECT pg_reload_conf()" >/dev/null || return 1
    fi
    for ((i = 0; i < 150; i++)); do
        certs_pem "$(timeout -k 2 10 openssl s_client -starttls postgres \
            -connect "127.0.0.1:$PGPORT" -servername localhost -showcerts </dev/null 2>/dev/null)"
        [ "$REPLY" = "$want" ] && return 0
        sleep 0.1
    done
    it_note "certs: PostgreSQL does not present cert-cases/$name.crt after 15 s"
    return 1
}

# Every case's certificate and key, where the server (its own user) reads them.
CERTS_FILES=(bad-expired bad-notyet bad-wrongname bad-otherca bad-otherca-chain bad-selfsigned
    bad-nointer good-inter-chain)
mkdir -p "$PGDATA_DIR/cert-cases"
CERTS_COPY=()
for f in "${CERTS_FILES[@]}"; do CERTS_COPY+=("$CERTS/$f.crt" "$CERTS/$f.key"); done
cp "${CERTS_COPY[@]}" "$PGDATA_DIR/cert-cases/"
chmod 600 "$PGDATA_DIR"/cert-cases/*.key
it_is_root && chown -R "$IT_SVC_USER": "$PGDATA_DIR/cert-cases"

pgc query "$CI_MAIN" "SELECT 1" >/dev/null # warm: anything opened lazily is open now
prev=-1 CERTS_FDS=$(fd_count "$MAIN_PID")
for ((i = 0; i < 20 && CERTS_FDS != prev; i++)); do # wait until the count is steady
    sleep 0.25
    prev=$CERTS_FDS CERTS_FDS=$(fd_count "$MAIN_PID")
done
CERTS_RSS0=$(rss_kb "$MAIN_PID")

# An established session through the main proxy, held across every case:
# psql reading queries from a coprocess pipe, one answer line per query.
coproc CERTS_PSQL { timeout -k 5 300 psql -X -A -t -q "$CI_MAIN" 2>&1; }
CERTS_PSQL_CHILD=$CERTS_PSQL_PID # bash unsets CERTS_PSQL_PID when it ends
CERTS_Q=0
# certs_ask: one query on the held session; true if it answered in time.
certs_ask() {
    local line in=${CERTS_PSQL[0]:-} to=${CERTS_PSQL[1]:-}
    CERTS_Q=$((CERTS_Q + 1))
    [ -n "$to" ] && [ -n "$in" ] || return 1 # psql is gone
    printf "SELECT 'held-%s';\n" "$CERTS_Q" >&"$to" || return 1
    IFS= read -r -t 20 line <&"$in" || return 1
    [ "$line" = "held-$CERTS_Q" ]
}
if certs_ask; then
    pass "certs: a session through the main proxy is open before the certificate switches"
else
    fail "certs: a session through the main proxy is open before the certificate switches" \
        "no answer from psql"
fi

# One line per case: NAME|CERT FILE|cause and fix the client must read (ERE;
# '.' for the apostrophes)|what the proxy's upstream_failed log line must
# name (ERE; the log escapes quotes, so none here).
CERTS_CASES=(
    "expired|bad-expired|verification failed for \"localhost\": the server.s certificate \"CN=localhost,O=pg-tls-proxy tests\" expired on 2021-01-01T00:00:00Z \(its notAfter; the proxy.s clock says 20[0-9]{2}-[0-9-]{5}T[0-9:]{8}Z\) — renew the database server.s certificate \(its ssl_cert_file\)|expired on 2021-01-01T00:00:00Z \(its notAfter"
    "not yet valid|bad-notyet|verification failed for \"localhost\": the server.s certificate \"CN=localhost,O=pg-tls-proxy tests\" is not valid before 2040-01-01T00:00:00Z \(its notBefore; the proxy.s clock says 20[0-9]{2}-[0-9-]{5}T[0-9:]{8}Z\) — check the clocks|is not valid before 2040-01-01T00:00:00Z \(its notBefore"
    "wrong name|bad-wrongname|does not match the name \"localhost\" \(the certificate has CN=db\.other\.example, SAN DNS:db\.other\.example\) — set --client-tls-validation-host to a name the certificate carries, or give the database server a certificate for \"localhost\"|does not match the name .*CN=db\.other\.example, SAN DNS:db\.other\.example\)"
    "wrong CA, leaf alone|bad-otherca|verification failed for \"localhost\": the server sent only its own certificate \"CN=localhost,O=pg-tls-proxy tests\", and its issuer \"CN=pg-tls-proxy test unrelated CA,O=pg-tls-proxy tests\" is not in --client-ca-roots-path — .*otherwise --client-ca-roots-path is not the CA that signed the server.s certificate|sent only its own certificate .*its issuer ..CN=pg-tls-proxy test unrelated CA"
    "wrong CA, leaf + its root|bad-otherca-chain|verification failed for \"localhost\": the server.s chain ends at the root CA \"CN=pg-tls-proxy test unrelated CA,O=pg-tls-proxy tests\", which is not in --client-ca-roots-path — is --client-ca-roots-path the CA that signed the database server.s certificate\?|chain ends at the root CA ..CN=pg-tls-proxy test unrelated CA"
    "self-signed leaf|bad-selfsigned|verification failed for \"localhost\": the server.s certificate \"CN=localhost,O=pg-tls-proxy tests\" is self-signed \(no CA issued it\) — give the database server a certificate signed by a CA in --client-ca-roots-path|is self-signed \(no CA issued it\)"
    "intermediate not sent|bad-nointer|verification failed for \"localhost\": the server sent only its own certificate \"CN=localhost,O=pg-tls-proxy tests\", and its issuer \"CN=pg-tls-proxy test upstream intermediate CA,O=pg-tls-proxy tests\" is not in --client-ca-roots-path — if that is an intermediate CA, the server did not send it: append it to the database server.s ssl_cert_file after the server.s certificate, or add it to --client-ca-roots-path|sent only its own certificate .*its issuer ..CN=pg-tls-proxy test upstream intermediate CA"
)
for entry in "${CERTS_CASES[@]}"; do
    IFS='|' read -r cname cfile cre clog <<<"$entry"
    if ! certs_serve "$cfile"; then
        fail "certs: $cname: PostgreSQL presents $cfile.crt after pg_reload_conf()" \
            "$(oneline "$(tail -n 5 "$PGDATA_DIR/server.log")")"
        continue
    fi
    out=$(pgc query "$CI_MAIN" "SELECT 'must not connect'")
    expect "certs: $cname: libpq reads the cause and the fix" "$out" \
        "^error: .*FATAL: +pg-tls-proxy: upstream certificate $cre"
    out=$(raw error localhost "$MAIN_PORT")
    expect "certs: $cname: FATAL 08001 with the same message" "$out" \
        "^sqlstate=08001 severity=FATAL message=pg-tls-proxy: upstream certificate $cre"
    if wait_line "$LOGS/proxy-main.log" "event=upstream_failed .*sqlstate=08001 message=.*$clog" 5 &&
        [ "$(count "$LOGS/proxy-main.log" "event=upstream_failed .*$clog")" -ge 2 ]; then
        pass "certs: $cname: the proxy logs event=upstream_failed naming the cause (2 lines)"
    else
        fail "certs: $cname: the proxy logs event=upstream_failed naming the cause" \
            "$(count "$LOGS/proxy-main.log" "event=upstream_failed .*$clog") lines match /$clog/"
    fi
    if certs_ask; then
        pass "certs: $cname: the established session keeps answering queries"
    else
        fail "certs: $cname: the established session keeps answering queries" \
            "no answer to query $CERTS_Q"
    fi
done

# Control: the same leaf with its intermediate verifies (so the failure
# above is the missing intermediate, not a broken certificate).
if certs_serve good-inter-chain; then
    out=$(pgc query "$CI_MAIN" "SELECT 'chain ok'")
    expect "certs: leaf + intermediate (2 certificates sent) verifies against db-ca" "$out" \
        '^chain ok$'
else
    fail "certs: PostgreSQL presents good-inter-chain.crt" \
        "$(oneline "$(tail -n 5 "$PGDATA_DIR/server.log")")"
fi

# Restore the original certificate: everything after this section needs it.
if certs_serve original; then
    pass "certs: PostgreSQL presents its original certificate again"
else
    fail "certs: PostgreSQL presents its original certificate again" \
        "$(oneline "$(tail -n 5 "$PGDATA_DIR/server.log")")"
fi
out=$(pgc query "$CI_MAIN" "SELECT 'main again'")
expect "certs: new sessions through the main proxy work again" "$out" '^main again$'
if certs_ask; then
    pass "certs: the established session answered all $CERTS_Q queries"
else
    fail "certs: the established session answered all queries" "no answer to query $CERTS_Q"
fi
[ -n "${CERTS_PSQL[1]:-}" ] && eval "exec ${CERTS_PSQL[1]}>&-" # psql's stdin: it ends
wait "$CERTS_PSQL_CHILD" 2>/dev/null

fds=$(fd_count "$MAIN_PID")
for ((i = 0; i < 50 && fds > CERTS_FDS; i++)); do
    sleep 0.1
    fds=$(fd_count "$MAIN_PID")
done
if [ "$fds" -le "$CERTS_FDS" ] && [ "$CERTS_FDS" -gt 0 ]; then
    pass "certs: main proxy's open fds back to baseline ($fds <= $CERTS_FDS) within 5 s"
else
    fail "certs: main proxy's open fds back to baseline within 5 s" "baseline $CERTS_FDS, now $fds"
fi
# Under ASan freed memory sits in its quarantine (LeakSanitizer judges
# leaks at exit instead): a looser bound there.
rss=$(rss_kb "$MAIN_PID") CERTS_RSS_MAX=8
grep -q __asan_init "$PGTP_BIN" 2>/dev/null && CERTS_RSS_MAX=64
if [ $((rss - CERTS_RSS0)) -lt $((CERTS_RSS_MAX * 1024)) ]; then
    pass "certs: main proxy's RSS after $((${#CERTS_CASES[@]} * 2)) failed verifications: $CERTS_RSS0 -> $rss KB (< +$CERTS_RSS_MAX MB)"
else
    fail "certs: main proxy's RSS grows < $CERTS_RSS_MAX MB over the failed verifications" \
        "$CERTS_RSS0 -> $rss KB"
fi
it_note "certs section took $((SECONDS - CERTS_T0)) s"
