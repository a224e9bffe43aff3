# shellcheck shell=bash
# certfiles section of tests/integration/run.sh (sourced; uses its helpers).
#
# Issue 11, items 7, 13 and 14:
#  - name constraints: under a CA that permits only example.com, an upstream
#    leaf "CN=localhost" without SAN must not pass for validation host
#    localhost (OpenSSL skips a dotless CN, and the host check falls back to
#    it); controls: a SAN inside the constraints, and the same CN-only leaf
#    under an unconstrained CA (accepted, as before).
#  - the front certificate: expired or not yet valid refuses start-up,
#    --check and a reload (the old one keeps serving); a leaf without its
#    intermediate warns; names and expiry are logged; an expiry within 14
#    days warns and shows on /metrics; a client SNI the certificate does not
#    carry is logged (rate limited) and counted.
#  - file mistakes: each named in words (permission denied with the uid, key
#    for certificate and the converse, DER, empty, garbage, encrypted keys),
#    never a passphrase prompt even on a terminal.
# Every certificate and key is made here, under $TMP.

CF=$TMP/certfiles
mkdir -p "$CF"
CF_T0=$SECONDS
CUR_LOG=

cf_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# cf_ca NAME CN [EXT]: a self-signed CA in $CF/NAME.{crt,key}; EXT is one
# more extension line (nameConstraints).
cf_ca() {
    local ext=(-addext "basicConstraints=critical,CA:TRUE"
        -addext "keyUsage=critical,keyCertSign,cRLSign")
    [ -n "${3:-}" ] && ext+=(-addext "$3")
    cf_key "$CF/$1.key"
    openssl req -x509 -new -key "$CF/$1.key" -subj "/O=pg-tls-proxy tests/CN=$2" -days 30 \
        "${ext[@]}" -out "$CF/$1.crt" 2>/dev/null
}

# cf_leaf NAME CN CA DAYS [SAN]: a server leaf signed by $CF/CA (or $CERTS/CA
# when CA starts with "certs:"); no SAN line when SAN is empty.
cf_leaf() {
    local ca=$CF/$3 ext
    [[ $3 == certs:* ]] && ca=$CERTS/${3#certs:}
    ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth"
    [ -n "${5:-}" ] && ext+="
subjectAltName=$5"
    cf_key "$CF/$1.key"
    openssl req -new -key "$CF/$1.key" -subj "/O=pg-tls-proxy tests/CN=$2" -out "$CF/$1.csr" \
        2>/dev/null
    openssl x509 -req -in "$CF/$1.csr" -CA "$ca.crt" -CAkey "$ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days "$4" -sha256 \
        -extfile <(printf '%s\n' "$ext") -out "$CF/$1.crt" 2>/dev/null
}

# ======================================================================
# Item 7: name constraints and a CN-only upstream leaf
# ======================================================================
cf_ca nc-ca "name-constrained CA" "nameConstraints=critical,permitted;DNS:example.com"
cf_ca free-ca "unconstrained CA"
cf_leaf nc-cnonly localhost nc-ca 30
cf_leaf nc-san db.example.com nc-ca 30 "DNS:db.example.com"
cf_leaf free-cnonly localhost free-ca 30
expect "name constraints: the CA permits only DNS:example.com" \
    "$(openssl x509 -in "$CF/nc-ca.crt" -noout -ext nameConstraints 2>&1 | tr '\n' ' ')" \
    'Permitted: +DNS:example\.com'
expect "name constraints: the leaf is CN=localhost without subjectAltName" \
    "$(openssl x509 -in "$CF/nc-cnonly.crt" -noout -subject -ext subjectAltName 2>&1)" \
    'CN *= *localhost$'

# cf_fake NAME CERT KEY: a direct-TLS fake upstream serving CERT (it answers
# AuthenticationOk once the proxy sends its StartupMessage).
cf_fake() {
    local port
    it_free_port port
    it_spawn "fake-cf-$1" "$LOGS/fake-upstream-cf-$1.log" "$RAWCLIENT" fake-upstream "$port" \
        direct-tls "$2" "$3"
    if it_wait_port "$port" 10 "${IT_PIDS[fake-cf-$1]}"; then
        pass "certfiles: fake upstream '$1' listens"
    else
        fail "certfiles: fake upstream '$1' listens" \
            "$(oneline "$(cat "$LOGS/fake-upstream-cf-$1.log")")"
    fi
    CF_FAKE_PORT=$port
}

cf_fake nc-cnonly "$CF/nc-cnonly.crt" "$CF/nc-cnonly.key"
it_free_port P
start_proxy cf-nc "$P" 127.0.0.1 "$CF_FAKE_PORT" localhost "$CF/nc-ca.crt" --client-direct-tls
out=$(raw error localhost "$P")
expect "name constraints: CN=localhost (no SAN) under a CA for example.com: FATAL 08001 naming the cause and fix" \
    "$out" '^sqlstate=08001 severity=FATAL message=pg-tls-proxy: upstream certificate verification failed for "localhost": the server.s certificate "CN=localhost,O=pg-tls-proxy tests" has no DNS subjectAltName, and its name \(CN=localhost\) is not permitted by the name constraints of its CA "CN=name-constrained CA,O=pg-tls-proxy tests" \(permitted DNS:example\.com\) — .*give the database server a certificate whose subjectAltName has a DNS name inside those constraints'
out=$(pgc query "$(ci "$P")" "SELECT 1")
expect "name constraints: libpq reads the same cause" "$out" \
    'FATAL: +pg-tls-proxy: upstream certificate .*not permitted by the name constraints'
if wait_line "$LOGS/proxy-cf-nc.log" 'event=upstream_failed .*sqlstate=08001 .*name constraints' 5; then
    pass "name constraints: the proxy logs event=upstream_failed naming the name constraints"
else
    fail "name constraints: the proxy logs event=upstream_failed naming the name constraints" \
        "no such line"
fi
stop_proxy cf-nc
# The reason label, on /metrics of a proxy with an admin endpoint.
it_free_port P
it_free_port CF_ADMIN
start_proxy cf-nc-metrics "$P" 127.0.0.1 "$CF_FAKE_PORT" localhost "$CF/nc-ca.crt" \
    --client-direct-tls --admin-address "127.0.0.1:$CF_ADMIN"
raw error localhost "$P" >/dev/null
out=$(curl -s --max-time 10 "http://127.0.0.1:$CF_ADMIN/metrics")
expect "name constraints: handshake failure counted with reason=\"name_constraints\"" "$out" \
    'pg_tls_proxy_handshake_failures_total\{leg="back",reason="name_constraints",route="default"\} [1-9]'
stop_proxy cf-nc-metrics
it_stop fake-cf-nc-cnonly

# Control 1: a SAN inside the constraints verifies (and gets AuthenticationOk).
cf_fake nc-san "$CF/nc-san.crt" "$CF/nc-san.key"
it_free_port P
start_proxy cf-nc-san "$P" 127.0.0.1 "$CF_FAKE_PORT" db.example.com "$CF/nc-ca.crt" \
    --client-direct-tls
out=$(raw error localhost "$P")
expect "name constraints: SAN DNS:db.example.com validated as db.example.com passes" "$out" \
    '^auth=0$'
stop_proxy cf-nc-san
it_stop fake-cf-nc-san

# Control 2: the same CN-only leaf under a CA without constraints is
# accepted, as before (OpenSSL's host check falls back to the CN).
cf_fake free-cnonly "$CF/free-cnonly.crt" "$CF/free-cnonly.key"
it_free_port P
start_proxy cf-free "$P" 127.0.0.1 "$CF_FAKE_PORT" localhost "$CF/free-ca.crt" --client-direct-tls
out=$(raw error localhost "$P")
expect "name constraints: CN-only localhost under an unconstrained CA still verifies" "$out" \
    '^auth=0$'
stop_proxy cf-free
it_stop fake-cf-free-cnonly

# Cloud SQL's CN mode under the constrained CA: the CN is checked too.
cf_leaf nc-cloudsql myproj:myinst nc-ca 30
cf_fake nc-cloudsql "$CF/nc-cloudsql.crt" "$CF/nc-cloudsql.key"
it_free_port P
start_proxy cf-nc-csql "$P" 127.0.0.1 "$CF_FAKE_PORT" myproj:myinst "$CF/nc-ca.crt" \
    --client-direct-tls
out=$(raw error localhost "$P")
expect "name constraints: Cloud SQL CN mode under a CA for example.com: refused, naming the constraints" \
    "$out" '^sqlstate=08001 severity=FATAL message=.*its name \(CN=myproj:myinst\) is not permitted by the name constraints'
stop_proxy cf-nc-csql
it_stop fake-cf-nc-cloudsql

# ======================================================================
# Items 13 and 14: what the proxy itself is given
# ======================================================================
# cf_args FRONT_CRT FRONT_KEY [EXTRA...]: a whole command line for the real upstream.
cf_args() {
    CF_ARGS=(--server-certificate-path "$1" --server-private-key-path "$2"
        --server-host 127.0.0.1 --server-port "$CF_PORT"
        --client-connection-host-or-ip 127.0.0.1 --client-connection-port "$PGPORT"
        --client-tls-validation-host localhost --client-ca-roots-path "$CERTS/db-ca.crt"
        "${@:3}")
}
it_free_port CF_PORT

# cf_fails NAME REGEX [ARGS...]: the proxy, started with ARGS, exits != 0
# within 10 s (no listener: the port stays free) and prints REGEX.
cf_fails() {
    local name=$1 re=$2 rc t0
    shift 2
    CUR_LOG=$LOGS/certfiles-$name.log
    t0=$(now_ms)
    timeout -k 2 10 "$PGTP_BIN" "$@" </dev/null >"$CUR_LOG" 2>&1
    rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] && grep -Eq -- "$re" "$CUR_LOG"; then
        pass "$name: start-up fails (exit $rc, $(($(now_ms) - t0)) ms) and says so"
    else
        fail "$name: start-up fails and says /$re/" "exit $rc: $(oneline "$(cat "$CUR_LOG")")"
    fi
}

# ---- item 13: dates and chain of the front certificate ----
cf_args "$CERTS/bad-expired.crt" "$CERTS/bad-expired.key"
cf_fails "front certificate expired" \
    'pg-tls-proxy: --server-certificate-path ".*bad-expired\.crt": the certificate "CN=localhost,O=pg-tls-proxy tests" expired on 2021-01-01T00:00:00Z \(its notAfter; this host.s clock says 20[0-9-]{8}T[0-9:]{8}Z\) — clients refuse an expired certificate: renew it' \
    "${CF_ARGS[@]}"
cf_fails "--check with an expired front certificate" 'expired on 2021-01-01T00:00:00Z' \
    --check "${CF_ARGS[@]}"
expect "--check with an expired front certificate does not say 'check ok'" \
    "$(count "$CUR_LOG" 'check ok')" '^0$'
cf_args "$CERTS/bad-notyet.crt" "$CERTS/bad-notyet.key"
cf_fails "front certificate not yet valid" \
    'the certificate "CN=localhost,O=pg-tls-proxy tests" is not valid before 2040-01-01T00:00:00Z \(its notBefore; .* check this host.s clock' \
    "${CF_ARGS[@]}"

# A leaf without its intermediate (certbot's cert.pem): a warning, not a refusal.
cf_args "$CERTS/bad-nointer.crt" "$CERTS/bad-nointer.key"
CUR_LOG=$LOGS/certfiles-check-nointer.log
timeout -k 2 30 "$PGTP_BIN" --check "${CF_ARGS[@]}" </dev/null >"$CUR_LOG" 2>&1
rc=$?
expect "--check with a leaf whose intermediate is not in the file: warns, names the fix, still checks ok" \
    "rc=$rc $(tr '\n' ' ' <"$CUR_LOG")" \
    '^rc=0 .*warning: front certificate: the file holds the certificate "CN=localhost,O=pg-tls-proxy tests" without its issuer "CN=pg-tls-proxy test upstream intermediate CA,O=pg-tls-proxy tests".*fullchain\.pem, not cert\.pem.*check ok'
# The log's level says how likely a mistake it is: a leaf that names where to
# fetch its issuer (authorityInfoAccess caIssuers, as every public CA's leaf
# does) has an intermediate that clients lack: warn. A leaf signed straight by
# a private root (this harness's proxy.crt, most self-run CAs): info only.
cf_leaf aia-leaf localhost certs:db-inter-ca 30 "DNS:localhost
authorityInfoAccess=caIssuers;URI:http://ca.example.invalid/inter.crt"
it_free_port P
PROXY_CRT=$CF/aia-leaf.crt PROXY_KEY=$CF/aia-leaf.key start_proxy cf-aia "$P" 127.0.0.1 \
    "$PGPORT" localhost "$CERTS/db-ca.crt"
expect "a leaf with caIssuers and without its intermediate: the chain line is a warning" \
    "$(grep -o 'level=[a-z]* event=front_certificate_chain' "$LOGS/proxy-cf-aia.log")" \
    '^level=warn event=front_certificate_chain$'
stop_proxy cf-aia
expect "a leaf signed straight by a private root (the harness's proxy.crt): no warning, info only" \
    "$(grep -o 'level=[a-z]* event=front_certificate_chain' "$LOGS/proxy-main.log")" \
    '^level=info event=front_certificate_chain$'
cf_args "$CERTS/good-inter-chain.crt" "$CERTS/bad-nointer.key"
CUR_LOG=$LOGS/certfiles-check-chain.log
timeout -k 2 30 "$PGTP_BIN" --check "${CF_ARGS[@]}" </dev/null >"$CUR_LOG" 2>&1
rc=$?
expect "--check with leaf + intermediate: no chain warning, 2 certificates in the file" \
    "rc=$rc $(grep -c 'without its issuer' "$CUR_LOG") $(tr '\n' ' ' <"$CUR_LOG")" \
    '^rc=0 0 .*2 certificate\(s\) in the file.*check ok'

# A certificate that expires in 3 days: started, with its names and expiry
# logged, a warning, and the gauges on /metrics. Also the SNI check.
cf_leaf soon localhost certs:public-ca 3 "DNS:localhost, IP:127.0.0.1"
it_free_port P
it_free_port CF_ADMIN
PROXY_CRT=$CF/soon.crt PROXY_KEY=$CF/soon.key start_proxy cf-soon "$P" 127.0.0.1 "$PGPORT" \
    localhost "$CERTS/db-ca.crt" --admin-address "127.0.0.1:$CF_ADMIN"
CUR_LOG=$LOGS/proxy-cf-soon.log
out=$(pgc query "$(ci "$P")" "SELECT 'soon ok'")
expect "front certificate expiring in 3 days: the proxy serves verify-full clients" "$out" '^soon ok$'
expect "start-up logs the front certificate's names and expiry" "$(cat "$CUR_LOG")" \
    'level=info event=front_certificate trigger=start file=".*soon\.crt" names="CN=localhost, SAN DNS:localhost, IP:127\.0\.0\.1" not_before=20[0-9-]{8}T[0-9:]{8}Z not_after=20[0-9-]{8}T[0-9:]{8}Z days_left=[23] certificates_in_file=1'
expect "start-up warns that the front certificate expires within 14 days" "$(cat "$CUR_LOG")" \
    'level=warn event=front_certificate_expiring file=".*soon\.crt" not_after=[0-9TZ:-]+ days_left=[23] hint="renew it'
out=$(curl -s --max-time 10 "http://127.0.0.1:$CF_ADMIN/metrics")
secs=$(sed -n 's/^pg_tls_proxy_certificate_expiry_seconds{which="front",[^}]*} \(-\?[0-9]*\)$/\1/p' <<<"$out")
if [[ $secs =~ ^[0-9]+$ ]] && [ "$secs" -gt $((2 * 86400)) ] && [ "$secs" -le $((3 * 86400)) ]; then
    pass "/metrics: pg_tls_proxy_certificate_expiry_seconds{which=\"front\"} = $secs (2-3 days)"
else
    fail "/metrics: the front certificate's seconds to expiry" "got '$secs': $(oneline "$(grep expiry <<<"$out")")"
fi
expect "/metrics: the expiry timestamp of the front certificate" "$out" \
    'pg_tls_proxy_certificate_expiry_timestamp_seconds\{which="front",subject="[^"]*CN=localhost"\} [0-9]{10}'

# SNI mismatch: libpq sends the host name it was given; the certificate
# carries localhost only. Two clients, one log line (rate limited), two counted.
for i in 1 2; do
    out=$(pgc query "$(ci "$P" host=wrong.example)" "SELECT 1")
done
expect "SNI wrong.example: the client itself refuses the certificate (verify-full)" "$out" \
    'does not match host name "wrong\.example"|wrong\.example'
if wait_line "$CUR_LOG" 'level=warn event=sni_mismatch conn=[0-9]+ front=127\.0\.0\.1:[0-9]+ sni="wrong\.example" certificate_names="CN=localhost, SAN DNS:localhost, IP:127\.0\.0\.1"' 5; then
    pass "SNI mismatch: logged at warn with the SNI and the certificate's names"
else
    fail "SNI mismatch: logged at warn with the SNI and the certificate's names" "no such line"
fi
expect "SNI mismatch: one line per name per minute (2 mismatches)" \
    "$(count "$CUR_LOG" 'event=sni_mismatch')" '^1$'
out=$(curl -s --max-time 10 "http://127.0.0.1:$CF_ADMIN/metrics")
expect "/metrics: pg_tls_proxy_front_sni_mismatch_total counts both" "$out" \
    $'(^|\n)pg_tls_proxy_front_sni_mismatch_total 2(\n|$)'
out=$(pgc query "$(ci "$P")" "SELECT 'sni ok'")
expect "SNI localhost (covered): no mismatch logged" \
    "$out $(count "$CUR_LOG" 'event=sni_mismatch')" '^sni ok 1$'
stop_proxy cf-soon

# Reload (SIGHUP) to an expired certificate, then to an encrypted key: both
# refused, the old certificate keeps serving; then back to a good pair.
cp "$CERTS/proxy.crt" "$CF/live.crt"
cp "$CERTS/proxy.key" "$CF/live.key"
openssl pkey -in "$CERTS/proxy.key" -aes256 -passout pass:not-a-secret -out "$CF/enc-pkcs8.key"
openssl pkey -in "$CERTS/proxy.key" -traditional -aes256 -passout pass:not-a-secret \
    -out "$CF/enc-trad.key"
it_free_port P
PROXY_CRT=$CF/live.crt PROXY_KEY=$CF/live.key start_proxy cf-reload "$P" 127.0.0.1 "$PGPORT" \
    localhost "$CERTS/db-ca.crt"
CUR_LOG=$LOGS/proxy-cf-reload.log
CF_RELOAD_PID=${IT_PIDS[cf-reload]:-0}
# cf_reload CRT KEY REGEX: install the pair, SIGHUP, wait for REGEX in the log.
cf_reload() {
    local n
    n=$(count "$CUR_LOG" 'event=(reloaded|reload_failed)')
    cp "$1" "$CF/live.crt"
    cp "$2" "$CF/live.key"
    kill -HUP "$CF_RELOAD_PID"
    for ((i = 0; i < 100; i++)); do
        [ "$(count "$CUR_LOG" 'event=(reloaded|reload_failed)')" -gt "$n" ] && break
        sleep 0.05
    done
    grep -E 'event=(reloaded|reload_failed)' "$CUR_LOG" | tail -n 1
}
out=$(cf_reload "$CERTS/bad-expired.crt" "$CERTS/bad-expired.key")
expect "reload to an expired front certificate: refused, naming the file, the date and the fix" \
    "$out" 'level=error event=reload_failed trigger=SIGHUP reason="--server-certificate-path \\".*live\.crt\\": the certificate \\"CN=localhost,O=pg-tls-proxy tests\\" expired on 2021-01-01T00:00:00Z .*renew it.*" hint="the old certificates stay in use"'
out=$(pgc query "$(ci "$P")" "SELECT 'old still serves'")
expect "after the refused reload, verify-full clients still connect (the old certificate)" "$out" \
    '^old still serves$'
out=$(cf_reload "$CERTS/proxy.crt" "$CF/enc-pkcs8.key")
expect "reload to an encrypted key: refused with 'encrypted keys are not supported'" "$out" \
    'event=reload_failed .*--server-private-key-path \\".*live\.key\\": encrypted keys are not supported'
out=$(pgc query "$(ci "$P")" "SELECT 'still serves'")
expect "after the second refused reload, clients still connect" "$out" '^still serves$'
out=$(cf_reload "$CERTS/proxy2.crt" "$CERTS/proxy2.key")
expect "reload to a good pair: reloaded, and the front certificate logged again" \
    "$out $(grep 'event=front_certificate trigger=SIGHUP' "$CUR_LOG" | tail -n 1)" \
    'event=reloaded trigger=SIGHUP .*event=front_certificate trigger=SIGHUP file=".*live\.crt" names="CN='
stop_proxy cf-reload

# ---- item 14: files in words ----
head -c 600 /dev/urandom | base64 >"$CF/garbage.pem"
: >"$CF/empty.pem"
openssl x509 -in "$CERTS/proxy.crt" -outform der -out "$CF/proxy.der"
openssl pkey -in "$CERTS/proxy.key" -outform der -out "$CF/proxy-key.der"
openssl x509 -in "$CERTS/db-ca.crt" -outform der -out "$CF/db-ca.der"
C=$CERTS/proxy.crt K=$CERTS/proxy.key
cf_args "$K" "$K"
cf_fails "key given as the certificate" \
    '--server-certificate-path ".*proxy\.key": this file holds a private key, not a certificate — were the certificate and key options swapped\?' \
    "${CF_ARGS[@]}"
cf_args "$C" "$C"
cf_fails "certificate given as the key" \
    '--server-private-key-path ".*proxy\.crt": this file holds a certificate, not a private key' \
    "${CF_ARGS[@]}"
cf_args "$CF/proxy.der" "$K"
cf_fails "DER certificate" \
    "--server-certificate-path \".*proxy\.der\": this file is DER, not PEM — convert it with openssl x509 -inform der -in '.*proxy\.der' -out CERT\.pem" \
    "${CF_ARGS[@]}"
cf_args "$C" "$CF/proxy-key.der"
cf_fails "DER key" "this file is DER, not PEM — convert it with openssl pkey -inform der -in" \
    "${CF_ARGS[@]}"
cf_args "$CF/empty.pem" "$K"
cf_fails "empty certificate file" '--server-certificate-path ".*empty\.pem": empty file' \
    "${CF_ARGS[@]}"
cf_args "$CF/garbage.pem" "$K"
cf_fails "garbage certificate file" \
    '--server-certificate-path ".*garbage\.pem": no PEM certificate found in this file' \
    "${CF_ARGS[@]}"
cf_args "$CF/nope.crt" "$K"
cf_fails "missing certificate file" '--server-certificate-path ".*nope\.crt": no such file' \
    "${CF_ARGS[@]}"
cf_args "$C" "$CF/enc-pkcs8.key"
cf_fails "encrypted PKCS#8 key" \
    "encrypted keys are not supported .* decrypt it with openssl pkey -in '.*enc-pkcs8\.key' -out KEY\.pem" \
    "${CF_ARGS[@]}"
cf_args "$C" "$CF/enc-trad.key"
cf_fails "encrypted traditional key (Proc-Type: 4,ENCRYPTED)" \
    '--server-private-key-path ".*enc-trad\.key": encrypted keys are not supported' \
    "${CF_ARGS[@]}"
cf_args "$C" "$K" --client-ca-roots-path "$CF/garbage.pem"
cf_fails "garbage CA roots file" \
    '--client-ca-roots-path ".*garbage\.pem": no PEM certificate found in this file' \
    "${CF_ARGS[@]}"
cf_args "$C" "$K" --client-ca-roots-path "$CERTS/db-ca.key"
cf_fails "a key as the CA roots" \
    '--client-ca-roots-path ".*db-ca\.key": this file holds a private key, not a certificate' \
    "${CF_ARGS[@]}"
mkdir -p "$CF/der-roots"
cp "$CF/db-ca.der" "$CF/der-roots/db-ca.crt"
cf_args "$C" "$K" --client-ca-roots-path "$CF/der-roots"
cf_fails "CA roots directory holding only a DER file" \
    '--client-ca-roots-path ".*der-roots": 0 CA certificates loaded .*; file ".*der-roots/db-ca\.crt": this file is DER, not PEM' \
    "${CF_ARGS[@]}"
cf_args "$C" "$K" --server-client-ca-path "$CF/db-ca.der"
cf_fails "DER mTLS CA" '--server-client-ca-path ".*db-ca\.der": this file is DER, not PEM' \
    "${CF_ARGS[@]}"
cf_args "$C" "$K" --client-certificate-path "$CERTS/client.key" \
    --client-private-key-path "$CERTS/client.key"
cf_fails "a key as the upstream client certificate" \
    '--client-certificate-path ".*client\.key": this file holds a private key, not a certificate' \
    "${CF_ARGS[@]}"
cf_args "$C" "$CF/enc-pkcs8.key"
cf_fails "--check with an encrypted key" 'encrypted keys are not supported' --check "${CF_ARGS[@]}"

# An encrypted key with a terminal on stdin: no passphrase prompt, no hang.
cf_args "$C" "$CF/enc-trad.key"
CUR_LOG=$LOGS/certfiles-tty.log
t0=$(now_ms)
timeout -k 2 15 script -qec "$(printf '%q ' "$PGTP_BIN" "${CF_ARGS[@]}")" /dev/null \
    </dev/null >"$CUR_LOG" 2>&1
rc=$? ms=$(($(now_ms) - t0))
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$ms" -lt 5000 ] &&
    grep -q 'encrypted keys are not supported' "$CUR_LOG" && ! grep -qi 'pass phrase' "$CUR_LOG"; then
    pass "encrypted key on a terminal: exits at once with the message, no prompt ($ms ms, exit $rc)"
else
    fail "encrypted key on a terminal: exits at once with the message, no prompt" \
        "exit $rc after $ms ms: $(oneline "$(cat "$CUR_LOG")")"
fi

# A root-only 0600 key read by another user: the errno in words, with the uid.
cp "$K" "$CF/root-only.key"
chmod 600 "$CF/root-only.key"
cf_args "$C" "$CF/root-only.key"
CUR_LOG=$LOGS/certfiles-perm.log
if it_is_root; then
    CF_UID=$(id -u "$IT_SVC_USER")
    (cd / && timeout -k 2 10 runuser -u "$IT_SVC_USER" -- "$PGTP_BIN" "${CF_ARGS[@]}") \
        </dev/null >"$CUR_LOG" 2>&1
    rc=$?
else
    CF_UID=$(id -u) # not root: a file this user may not read does the same
    chmod 000 "$CF/root-only.key"
    timeout -k 2 10 "$PGTP_BIN" "${CF_ARGS[@]}" </dev/null >"$CUR_LOG" 2>&1
    rc=$?
fi
expect "key readable only by root, proxy as uid $CF_UID: 'permission denied (running as uid $CF_UID)'" \
    "rc=$rc $(grep -v 'event=starting ' "$CUR_LOG")" \
    "^rc=[1-9][0-9]* pg-tls-proxy: --server-private-key-path \".*root-only\.key\": permission denied \(running as uid $CF_UID\)"

CUR_LOG=
it_note "certfiles section took $((SECONDS - CF_T0)) s"
