# shellcheck shell=bash
# shellcheck disable=SC2034,SC2016,SC2153 # CUR_LOG is read by run.sh's fail(); literal $ in regexes; RT_P and RT_BPORT are set by it_free_port
# routes section of tests/integration/run.sh (sourced; uses its helpers): issue 14.
#
# Three real PostgreSQL clusters behind ONE proxy port, configured by a
# --config file (INI, [route NAME] sections):
#   a: PostgreSQL 15 (Debian), sni a.localhost, databases app_a, auth-mode password
#   b: PostgreSQL 17 (embedded), sni b.localhost, databases app_b, its own listen-port
#   c: PostgreSQL 18 (embedded), sni c.localhost + *.c.localhost, databases app_c,
#      auth-mode scram (an auth file made from the cluster's pg_authid)
# Each cluster has its OWN private CA and server name (a.db.internal,
# b.db.internal, c.db.internal, reached at 127.0.0.1 through
# client-tls-validation-host), a marker table holding its letter and
# cluster_name route-<letter>; each route presents its own front certificate
# (public test CA; c's also covers *.c.localhost). Two routes are wired
# wrongly on purpose: "crossed" (a's server, b's CA) and "misnamed" (b's
# server and CA, a's name): they must fail verification, which shows each
# route checks its own CA and name. There is no default route.
# Checks:
#   - psql with host=X.localhost hostaddr=127.0.0.1 (SNI) reaches X's server
#     (marker, cluster_name and version()), verify-full against the public CA
#     passes, and openssl s_client -starttls postgres -servername X.localhost
#     sees X's certificate (the default one without SNI or with an unknown SNI);
#   - clients without SNI (sslsni=0) are routed by the database; an unknown SNI
#     with a known database too; b's listen-port routes by port alone;
#   - SNI a.localhost + database app_b (mismatch), an unknown SNI with an
#     unknown database, and no SNI with an unlisted database: FATAL 08004
#     inside TLS naming what the client asked for, outcome=no_route logged;
#   - password route with libpq's default channel binding, scram route with
#     channel_binding=require, passthrough route with channel_binding=disable;
#   - cancels (proxy-owned keys): PQcancel (plaintext) and psql's Ctrl-C end a
#     pg_sleep on b with 57014 (only b's server logs the cancel) while a
#     pg_sleep on a keeps running; libpq 18 PQcancelCreate inside TLS with
#     protocol 3.2 (32-byte keys) on c; the BackendKeyData a client gets is
#     not the server's; guessed keys, the server's own pid/key and a replayed
#     key cancel nothing, the right key then does;
#   - audit lines carry route="a"/"b"/"c"; no cancel key in the log.
# Under ASan or valgrind a reduced set runs (no psql Ctrl-C, fewer variants).
# The PKI lives in $TMP and is thrown away with it.

RT_T0=$SECONDS
RT_REDUCED=0
grep -q __asan_init "$PGTP_BIN" 2>/dev/null && RT_REDUCED=1
[ ${#IT_WRAP[@]} -gt 0 ] && RT_REDUCED=1
RT=$TMP/routes
mkdir -p "$RT"
chmod 755 "$RT" # the postgres user reads the cluster certificates from here
RT_PSQL=$IT_PG_BINDIR/psql # the binary, not Debian's pg_wrapper script
RT_PGCLIENT18=${PGCLIENT18:-$(dirname "$PGCLIENT")/pgclient18}
RT_LETTERS=(a b c)
declare -A RT_PORT=() RT_DATA=() RT_BIN=() RT_MAJOR=([a]=15 [b]=17 [c]=18)

# ======================================================================
# 1. PKI: a private CA and a server certificate per cluster, front
#    certificates per route from the public test CA
# ======================================================================
RT_CNF=$RT/req.cnf
printf '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n' >"$RT_CNF"
rt_key() { (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null); }
# rt_ca NAME CN: $RT/NAME.{crt,key}, self-signed, CA:TRUE.
rt_ca() {
    rt_key "$RT/$1.key" &&
        openssl req -x509 -new -key "$RT/$1.key" -subj "/O=pg-tls-proxy tests/CN=$2" \
            -config "$RT_CNF" -days 30 -sha256 \
            -addext 'basicConstraints=critical,CA:TRUE' \
            -addext 'keyUsage=critical,keyCertSign,cRLSign' -out "$RT/$1.crt" 2>/dev/null
}
# rt_leaf OUT_PREFIX CN CA_PREFIX SAN: a serverAuth leaf signed by CA_PREFIX.{crt,key}.
rt_leaf() {
    printf '%s\n' 'basicConstraints = critical, CA:FALSE' \
        'keyUsage = critical, digitalSignature' 'extendedKeyUsage = serverAuth' \
        "subjectAltName = $4" 'subjectKeyIdentifier = hash' \
        'authorityKeyIdentifier = keyid' >"$1.ext"
    rt_key "$1.key" &&
        openssl req -new -key "$1.key" -subj "/O=pg-tls-proxy tests/CN=$2" -config "$RT_CNF" \
            -out "$1.csr" 2>/dev/null &&
        openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" \
            -set_serial "0x$(openssl rand -hex 16)" -days 30 -sha256 -extfile "$1.ext" \
            -out "$1.crt" 2>/dev/null
}
pki_bad=""
for L in "${RT_LETTERS[@]}"; do
    mkdir -p "$RT/pki-$L"
    chmod 755 "$RT/pki-$L"
    rt_ca "ca-$L" "route $L upstream CA" || pki_bad+=" ca-$L"
    # it_pg_start takes CERTDIR/db-server.{crt,key}.
    rt_leaf "$RT/pki-$L/db-server" "$L.db.internal" "$RT/ca-$L" "DNS:$L.db.internal" ||
        pki_bad+=" server-$L"
    front_san="DNS:$L.localhost"
    [ "$L" = c ] && front_san+=", DNS:*.c.localhost"
    rt_leaf "$RT/front-$L" "$L.localhost" "$CERTS/public-ca" "$front_san" || pki_bad+=" front-$L"
done
# Each server certificate verifies against its own CA and name, and against
# no other CA: what makes "crossed" and "misnamed" below fail.
for L in "${RT_LETTERS[@]}"; do
    openssl verify -CAfile "$RT/ca-$L.crt" -verify_hostname "$L.db.internal" \
        "$RT/pki-$L/db-server.crt" >/dev/null 2>&1 || pki_bad+=" $L-own-ca"
    for M in "${RT_LETTERS[@]}"; do
        [ "$L" = "$M" ] && continue
        openssl verify -CAfile "$RT/ca-$M.crt" "$RT/pki-$L/db-server.crt" >/dev/null 2>&1 &&
            pki_bad+=" $L-verifies-against-ca-$M"
    done
    openssl verify -CAfile "$CERTS/public-ca.crt" -verify_hostname "$L.localhost" \
        "$RT/front-$L.crt" >/dev/null 2>&1 || pki_bad+=" front-$L"
done
openssl verify -CAfile "$CERTS/public-ca.crt" -verify_hostname x.c.localhost \
    "$RT/front-c.crt" >/dev/null 2>&1 || pki_bad+=" front-c-wildcard"
expect "routes PKI: three private CAs, each server certificate verifies only against its own CA and name; front certificates a/b/c(.localhost, *.c.localhost) from the public CA" \
    "${pki_bad:-ok}" '^ok$'

# ======================================================================
# 2. Three clusters: PostgreSQL 15 (Debian), 17 and 18 (embedded)
# ======================================================================
# rt_su LETTER DB SQL: superuser over the cluster's Unix socket.
rt_su() {
    it_as_svc timeout 60 "$RT_PSQL" -X -A -t -q -v ON_ERROR_STOP=1 -h "${RT_DATA[$1]}" \
        -p "${RT_PORT[$1]}" -U postgres -d "$2" -c "$3" 2>&1
}

CUR_LOG=$LOGS/fetch-embedded-pg.log
RT_LIB18=""
if out=$("$IT_REPO/scripts/fetch-embedded-pg.sh" 17 18 2>>"$CUR_LOG"); then
    while read -r m d; do
        [ "$m" = 17 ] && RT_BIN[b]=$d/bin
        [ "$m" = 18 ] && RT_BIN[c]=$d/bin RT_LIB18=$d/lib
    done <<<"$out"
else
    fail "routes: embedded PostgreSQL 17 and 18 fetched and verified" "$(oneline "$(cat "$CUR_LOG")")"
fi
RT_BIN[a]=$IT_PG_BINDIR

for L in "${RT_LETTERS[@]}"; do
    V=${RT_MAJOR[$L]}
    it_free_port "RT_P"
    RT_PORT[$L]=$RT_P RT_DATA[$L]=$RT/pgdata-$L
    CUR_LOG=$LOGS/routes-pg-$L-start.log
    t=$(now_ms)
    rc=1
    if [ -n "${RT_BIN[$L]:-}" ]; then
        # A subshell, so that it_die ends only this attempt; the parent
        # records the cluster so that cleanup stops it whatever happened.
        (IT_PG_EXTRA_CONF="cluster_name = 'route-$L'" it_pg_start "${RT_DATA[$L]}" \
            "${RT_PORT[$L]}" "$RT/pki-$L" app "app_$L" "$PASSWORD" "${RT_BIN[$L]}") \
            >"$CUR_LOG" 2>&1
        rc=$?
        # shellcheck disable=SC2004 # an associative array (lib.sh), not arithmetic
        IT_PG_STARTED[${RT_DATA[$L]}]=${RT_BIN[$L]}
    fi
    rt_su "$L" "app_$L" "CREATE TABLE marker (letter text); INSERT INTO marker VALUES ('$L');
        ALTER TABLE marker OWNER TO app" >>"$CUR_LOG" 2>&1
    # Control: the cluster itself, verify-full against its own CA and name.
    out=$(pgc query "host=$L.db.internal hostaddr=127.0.0.1 port=${RT_PORT[$L]} user=app \
dbname=app_$L sslmode=verify-full sslrootcert=$RT/ca-$L.crt connect_timeout=20" \
        "SELECT letter, current_setting('cluster_name'), current_setting('server_version_num') FROM marker")
    expect "routes: PostgreSQL $V as cluster $L (rc=$rc), direct verify-full against ca-$L as $L.db.internal: marker $L ($(($(now_ms) - t)) ms)" \
        "$out" "^$L"$'\t'"route-$L"$'\t'"${V}[0-9]{4}$"
done

# c's auth file: PgBouncer's userlist format, the verifier from pg_authid.
(umask 077 && printf '"app" "%s"\n' \
    "$(rt_su c postgres "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")" \
    >"$RT/c.userlist")
expect "routes: c's auth file holds app's SCRAM verifier from PostgreSQL 18's pg_authid" \
    "$(cat "$RT/c.userlist")" '^"app" "SCRAM-SHA-256\$4096:'

# ======================================================================
# 3. One proxy, one config file
# ======================================================================
it_free_port RT_MAIN
it_free_port RT_BPORT
cat >"$RT/routes.ini" <<EOF
; pg-tls-proxy routes test (issue 14). The globals name no upstream: there
; is no default route, a client that matches no route is refused.
server-certificate-path = $CERTS/proxy.crt
server-private-key-path = $CERTS/proxy.key
server-host = 127.0.0.1
server-port = $RT_MAIN

[route a]
sni = a.localhost
databases = app_a
server-certificate-path = $RT/front-a.crt
server-private-key-path = $RT/front-a.key
client-connection-host-or-ip = 127.0.0.1
client-connection-port = ${RT_PORT[a]}
client-tls-validation-host = a.db.internal
client-ca-roots-path = $RT/ca-a.crt
auth-mode = password

[route b]
sni = b.localhost
databases = app_b
listen-port = $RT_BPORT
server-certificate-path = $RT/front-b.crt
server-private-key-path = $RT/front-b.key
client-connection-host-or-ip = 127.0.0.1
client-connection-port = ${RT_PORT[b]}
client-tls-validation-host = b.db.internal
client-ca-roots-path = $RT/ca-b.crt

[route c]
sni = c.localhost, *.c.localhost
databases = app_c
server-certificate-path = $RT/front-c.crt
server-private-key-path = $RT/front-c.key
client-connection-host-or-ip = 127.0.0.1
client-connection-port = ${RT_PORT[c]}
client-tls-validation-host = c.db.internal
client-ca-roots-path = $RT/ca-c.crt
auth-mode = scram
auth-file = $RT/c.userlist

; Wired wrongly on purpose: a's server with b's CA; b's server under a's name.
[route crossed]
sni = crossed.localhost
client-connection-host-or-ip = 127.0.0.1
client-connection-port = ${RT_PORT[a]}
client-tls-validation-host = a.db.internal
client-ca-roots-path = $RT/ca-b.crt

[route misnamed]
sni = misnamed.localhost
client-connection-host-or-ip = 127.0.0.1
client-connection-port = ${RT_PORT[b]}
client-tls-validation-host = a.db.internal
client-ca-roots-path = $RT/ca-b.crt
EOF
CUR_LOG=$LOGS/proxy-routes.log
RT_LOG=$CUR_LOG
RT_UP=0
if it_proxy_start routes "$CUR_LOG" "$RT_MAIN" --config "$RT/routes.ini"; then
    pass "routes: one proxy from --config with routes a, b, c listens on 127.0.0.1:$RT_MAIN"
    RT_UP=1
else
    fail "routes: one proxy from --config with routes a, b, c listens on 127.0.0.1:$RT_MAIN" \
        "not listening after 10 s (or exited)"
fi
if [ "$RT_UP" = 1 ] && it_wait_port "$RT_BPORT" 5 "${IT_PIDS[routes]}"; then
    pass "routes: route b's listen-port $RT_BPORT listens too"
else
    fail "routes: route b's listen-port $RT_BPORT listens too" "not listening"
fi

# ---- clients ----
# rci PORT HOST [KEY=VALUE...]: verify-full against the public CA as HOST
# (libpq sends it as SNI), connecting to 127.0.0.1:PORT.
rci() {
    printf 'host=%s hostaddr=127.0.0.1 port=%s user=app sslmode=verify-full sslrootcert=%s' \
        "$2" "$1" "$CERTS/public-ca.crt"
    printf ' connect_timeout=20'
    shift 2
    [ $# -eq 0 ] || printf ' %s' "$@"
}
rpsql() { timeout -k 5 40 "$RT_PSQL" -X -A -t -q -v ON_ERROR_STOP=1 "$1" -c "$2" 2>&1; }
rt_hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
ID_SQL="SELECT letter, current_setting('cluster_name'), split_part(version(), ' ', 2) FROM marker"
# id_re LETTER: what ID_SQL prints on that cluster.
id_re() { printf '^%s\\|route-%s\\|%s\\.[0-9]+$' "$1" "$1" "${RT_MAJOR[$1]}"; }
# rt_front SERVERNAME|-: subject and issuer of the certificate the proxy
# presents to openssl s_client -starttls postgres (- : no SNI at all).
rt_front() {
    local sn=(-servername "$1")
    [ "$1" = - ] && sn=(-noservername)
    timeout -k 2 10 openssl s_client -starttls postgres -connect "127.0.0.1:$RT_MAIN" "${sn[@]}" \
        </dev/null 2>/dev/null | openssl x509 -noout -subject -issuer -nameopt RFC2253 2>&1 |
        tr '\n' ' '
}
RT_FRONT_ISSUER='issuer=CN=pg-tls-proxy test public CA,'

if [ "$RT_UP" = 1 ]; then
# ======================================================================
# 4a. SNI: each route's server, certificate and auth mode
# ======================================================================
# a: auth-mode password, libpq's default channel_binding (prefer).
out=$(rpsql "$(rci "$RT_MAIN" a.localhost dbname=app_a)" "$ID_SQL")
expect "routes: psql host=a.localhost (SNI), verify-full, default channel binding (route a, auth-mode password) reaches PostgreSQL 15, marker a" \
    "$out" "$(id_re a)"
# b: passthrough; channel binding cannot pass through the proxy.
out=$(rpsql "$(rci "$RT_MAIN" b.localhost dbname=app_b channel_binding=disable)" "$ID_SQL")
expect "routes: psql host=b.localhost (SNI), verify-full (route b, passthrough) reaches PostgreSQL 17, marker b" \
    "$out" "$(id_re b)"
# c: auth-mode scram: the client may insist on channel binding.
out=$(rpsql "$(rci "$RT_MAIN" c.localhost dbname=app_c channel_binding=require)" "$ID_SQL")
expect "routes: psql host=c.localhost (SNI), verify-full, channel_binding=require (route c, auth-mode scram) reaches PostgreSQL 18, marker c" \
    "$out" "$(id_re c)"
out=$(rpsql "$(rci "$RT_MAIN" x.c.localhost dbname=app_c channel_binding=require)" "$ID_SQL")
expect "routes: psql host=x.c.localhost (wildcard *.c.localhost), verify-full reaches PostgreSQL 18, marker c" \
    "$out" "$(id_re c)"
# The password route side by side with the scram one: a client that insists
# on channel binding is refused by libpq there (the proxy asks for the password).
out=$(rpsql "$(rci "$RT_MAIN" a.localhost dbname=app_a channel_binding=require)" "$ID_SQL")
expect "routes: route a (auth-mode password) with channel_binding=require: libpq refuses, as documented" \
    "$out" 'channel binding'

# The certificate each SNI gets.
for sn in a.localhost b.localhost c.localhost x.c.localhost; do
    cn=${sn#x.}
    out=$(rt_front "$sn")
    expect "routes: openssl s_client -starttls postgres -servername $sn sees CN=$cn from the public CA" \
        "$out" "^subject=CN=${cn//./\\.},O=pg-tls-proxy tests $RT_FRONT_ISSUER"
    [ "$RT_REDUCED" = 1 ] && break
done
out=$(rt_front -)
expect "routes: no SNI: the default certificate (CN=localhost)" "$out" \
    "^subject=CN=localhost,O=pg-tls-proxy tests $RT_FRONT_ISSUER"
out=$(rt_front zz.localhost)
expect "routes: an SNI that names no route: the default certificate (CN=localhost)" "$out" \
    "^subject=CN=localhost,O=pg-tls-proxy tests $RT_FRONT_ISSUER"

# ======================================================================
# 4b. No SNI: the database, then the listen port
# ======================================================================
out=$(rpsql "$(rci "$RT_MAIN" localhost sslsni=0 dbname=app_b channel_binding=disable)" "$ID_SQL")
expect "routes: sslsni=0 dbname=app_b (database routing, default certificate verify-full as localhost) reaches PostgreSQL 17, marker b" \
    "$out" "$(id_re b)"
out=$(rpsql "$(rci "$RT_MAIN" localhost sslsni=0 dbname=app_c channel_binding=require)" "$ID_SQL")
expect "routes: sslsni=0 dbname=app_c reaches PostgreSQL 18, marker c" "$out" "$(id_re c)"
out=$(rpsql "$(rci "$RT_MAIN" localhost sslsni=0 dbname=app_a)" "$ID_SQL")
expect "routes: sslsni=0 dbname=app_a reaches PostgreSQL 15, marker a" "$out" "$(id_re a)"
# An SNI that names no route falls back to the database.
out=$(raw session 127.0.0.1 "$RT_MAIN" --sni "$(rt_hex zz.localhost)" --database app_b \
    --query "SELECT current_setting('cluster_name')")
expect "routes: SNI zz.localhost (no route) with database app_b reaches cluster b" "$out" \
    $'(^|\n)row=route-b\n'
# Port routing: a database no route lists, on b's own listen port.
out=$(rpsql "$(rci "$RT_BPORT" localhost sslsni=0 dbname=postgres channel_binding=disable)" \
    "SELECT current_setting('cluster_name'), current_database()")
expect "routes: sslsni=0 dbname=postgres on route b's listen-port reaches cluster b" "$out" \
    '^route-b\|postgres$'

# ======================================================================
# 4c. Refusals: mismatch and no route, 08004 inside TLS
# ======================================================================
nr0=$(count "$RT_LOG" 'outcome=no_route')
out=$(raw error 127.0.0.1 "$RT_MAIN" --sni "$(rt_hex a.localhost)" --database app_b)
expect "routes: SNI a.localhost + database app_b (route b): FATAL 08004 inside TLS" "$out" \
    '^sqlstate=08004 severity=FATAL message='
expect "routes: the mismatch FATAL names both a.localhost and app_b" "$out" \
    'message=.*(a\.localhost.*app_b|app_b.*a\.localhost)'
out=$(rpsql "$(rci "$RT_MAIN" a.localhost dbname=app_b)" "SELECT 'not refused'")
expect "routes: psql host=a.localhost dbname=app_b is refused, the text names a.localhost and app_b" \
    "$out" 'FATAL: .*(a\.localhost.*app_b|app_b.*a\.localhost)'
out=$(raw error 127.0.0.1 "$RT_MAIN" --sni "$(rt_hex zz.localhost)" --database nosuchdb)
expect "routes: unknown SNI zz.localhost + unknown database: FATAL 08004 naming both" "$out" \
    '^sqlstate=08004 severity=FATAL message=.*(zz\.localhost.*nosuchdb|nosuchdb.*zz\.localhost)'
out=$(rpsql "$(rci "$RT_MAIN" localhost sslsni=0 dbname=postgres)" "SELECT 'not refused'")
expect "routes: no SNI, database postgres (no route lists it), main port: refused, the text names postgres" \
    "$out" 'FATAL: .*[^a-z_]postgres([^a-z_]|$)'
out=$(raw error 127.0.0.1 "$RT_MAIN" --sni "$(rt_hex localhost)" --database postgres)
expect "routes: no route at all: FATAL 08004" "$out" '^sqlstate=08004 severity=FATAL '
wait_line "$RT_LOG" 'outcome=no_route' 2
nr=$(($(count "$RT_LOG" 'outcome=no_route') - nr0))
expect "routes: the proxy logs each refusal with outcome=no_route" "no_route=$nr" \
    '^no_route=([5-9]|[1-9][0-9]+)$'

# Each route verifies against its own CA and name.
out=$(raw error 127.0.0.1 "$RT_MAIN" --sni "$(rt_hex crossed.localhost)")
expect "routes: route 'crossed' (a's server, b's CA): FATAL 08001, certificate verification failed" \
    "$out" '^sqlstate=08001 severity=FATAL message=.*verification failed'
out=$(raw error 127.0.0.1 "$RT_MAIN" --sni "$(rt_hex misnamed.localhost)")
expect "routes: route 'misnamed' (b's server as a.db.internal): FATAL 08001 naming a.db.internal" \
    "$out" '^sqlstate=08001 severity=FATAL message=.*a\.db\.internal'

# ======================================================================
# 4d. Cancels: the right server, and only with the proxy's own key
# ======================================================================
# rt_active LETTER TAG: pid of the backend of cluster LETTER running a query
# tagged /* TAG */ (a cancel sent before it runs would prove nothing).
rt_active() {
    local pid i
    for ((i = 0; i < 200; i++)); do
        pid=$(rt_su "$1" postgres "SELECT pid FROM pg_stat_activity WHERE query LIKE
            '%/* $2 */' AND state = 'active' AND pid <> pg_backend_pid()")
        [[ $pid =~ ^[0-9]+$ ]] && echo "$pid" && return 0
        sleep 0.05
    done
    return 1
}
# rt_cancels LETTER: "canceling statement" lines in the cluster's log so far.
rt_cancels() { count "${RT_DATA[$1]}/server.log" 'canceling statement due to user request'; }
# rt_session NAME SNI DB SQL: rawclient logs in through the proxy in the
# background (SCRAM: routes b and c); sets RS_PID, RS_BPID, RS_KEY (the
# BackendKeyData the client got) once the query runs.
rt_session() {
    timeout -k 5 45 "$RAWCLIENT" session 127.0.0.1 "$RT_MAIN" --sni "$(rt_hex "$2")" \
        --database "$3" --query "$4" >"$TMP/$1.out" 2>&1 &
    RS_PID=$! RS_BPID='' RS_KEY=''
    wait_line "$TMP/$1.out" '^query-sent$' 10 || return 1
    read -r RS_BPID RS_KEY < <(sed -n \
        's/^login=ok pid=\([0-9]*\) key=\([0-9a-f]*\)$/\1 \2/p' "$TMP/$1.out")
    [ -n "$RS_BPID" ]
}
# rt_running NAME PID: the session's client is still waiting for its query.
rt_running() { kill -0 "$2" 2>/dev/null && ! grep -q '^query-end' "$TMP/$1.out"; }
rt_end() { # NAME PID SECONDS: wait for the client; its output
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        kill -0 "$2" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$2" 2>/dev/null && kill -TERM "$2" 2>/dev/null
    wait "$2" 2>/dev/null
    cat "$TMP/$1.out"
}

# a keeps sleeping while b's query is cancelled by PQcancel (plaintext, as psql).
rpsql "$(rci "$RT_MAIN" a.localhost dbname=app_a)" \
    "SELECT 'a survived' FROM pg_sleep(4) /* rt-a-sleeper */" >"$TMP/rt-a-sleeper.out" &
A_SLEEPER=$!
rt_active a rt-a-sleeper >/dev/null || it_note "routes: a's sleeper never showed up"
ca0=$(rt_cancels a) cb0=$(rt_cancels b)
out=$(pgc cancel "$(rci "$RT_MAIN" b.localhost dbname=app_b channel_binding=disable)" 500)
expect "routes: PQcancel (plaintext CancelRequest) on route b: pg_sleep ends with 57014" "$out" \
    '^cancel sent=1 sqlstate=57014 '
wait "$A_SLEEPER"
expect "routes: meanwhile the pg_sleep on route a keeps running to its end" \
    "$(cat "$TMP/rt-a-sleeper.out")" '^a survived$'
sleep 0.2
expect "routes: the cancel reached b's server only (cancel lines in the server logs)" \
    "a=$(($(rt_cancels a) - ca0)) b=$(($(rt_cancels b) - cb0))" '^a=0 b=1$'

# psql's Ctrl-C (SIGINT: its handler calls PQcancel) on route b.
if [ "$RT_REDUCED" = 0 ]; then
    timeout -k 5 40 "$RT_PSQL" -X -q "$(rci "$RT_MAIN" b.localhost dbname=app_b \
        channel_binding=disable)" -c "SELECT pg_sleep(30) /* rt-sigint */" >"$TMP/rt-sigint.out" 2>&1 &
    tpid=$!
    if rt_active b rt-sigint >/dev/null; then
        ppid=$(pgrep -P "$tpid" -x psql)
        t0=$(now_ms)
        kill -INT "${ppid:-$tpid}"
        wait "$tpid"
        ms=$(($(now_ms) - t0))
        expect "routes: psql Ctrl-C (SIGINT) on route b: 'canceling statement due to user request' (${ms} ms)" \
            "$(cat "$TMP/rt-sigint.out") ms=$ms" 'canceling statement due to user request.* ms=(1?[0-9]{1,3})$'
    else
        kill -TERM "$tpid" 2>/dev/null
        wait "$tpid"
        fail "routes: psql Ctrl-C on route b" "the query never ran: $(oneline "$(cat "$TMP/rt-sigint.out")")"
    fi
fi

# libpq 18, protocol 3.2 (a 32-byte key) on route c: PQcancelCreate inside TLS.
modes=(tls plain)
[ "$RT_REDUCED" = 1 ] && modes=(tls)
for mode in "${modes[@]}"; do
    if [ -x "$RT_PGCLIENT18" ] && [ -n "$RT_LIB18" ]; then
        out=$(LD_LIBRARY_PATH=$RT_LIB18 timeout -k 5 45 "$RT_PGCLIENT18" cancel \
            "$(rci "$RT_MAIN" c.localhost dbname=app_c channel_binding=require max_protocol_version=3.2)" \
            500 "$mode" 2>&1)
        expect "routes: libpq 18 cancel ($mode) on route c, protocol 3.2: 57014" "$out" \
            "^cancel mode=$mode proto=30002 sent=1 sqlstate=57014 "
    else
        fail "routes: libpq 18 cancel ($mode) on route c" "no $RT_PGCLIENT18 or no libpq 18"
    fi
done

# The BackendKeyData a client gets carries the backend's own pid (only its
# key is the proxy's: the server's real key cancels nothing, below).
out=$(raw session 127.0.0.1 "$RT_MAIN" --sni "$(rt_hex b.localhost)" --database app_b \
    --query "SELECT pg_backend_pid()")
kpid=$(sed -n 's/^login=ok pid=\([0-9]*\) .*/\1/p' <<<"$out")
bpid=$(sed -n 's/^row=\([0-9]*\)$/\1/p' <<<"$out")
if [[ $kpid =~ ^[0-9]+$ ]] && [[ $bpid =~ ^[0-9]+$ ]] && [ "$kpid" = "$bpid" ]; then
    pass "routes: the client's BackendKeyData pid ($kpid) is the backend's pg_backend_pid()"
else
    fail "routes: the client's BackendKeyData pid is the backend's pg_backend_pid()" \
        "key pid '$kpid', backend pid '$bpid': $(oneline "$out")"
fi

# A server's real pid/key (a session straight to b's server) sent to the
# proxy cancels nothing; sent to the server itself it does (the key was live).
timeout -k 5 45 "$RAWCLIENT" session 127.0.0.1 "${RT_PORT[b]}" --database app_b \
    --query "SELECT pg_sleep(20) /* rt-direct */" >"$TMP/rt-direct.out" 2>&1 &
DPID=$!
if wait_line "$TMP/rt-direct.out" '^query-sent$' 10 && rt_active b rt-direct >/dev/null; then
    read -r dbpid dkey < <(sed -n 's/^login=ok pid=\([0-9]*\) key=\([0-9a-f]*\)$/\1 \2/p' \
        "$TMP/rt-direct.out")
    raw cancel 127.0.0.1 "$RT_MAIN" "$dbpid" "$dkey" --from 127.0.0.51 >/dev/null
    raw cancel localhost "$RT_MAIN" "$dbpid" "$dkey" --tls --from 127.0.0.52 >/dev/null
    raw cancel 127.0.0.1 "$RT_BPORT" "$dbpid" "$dkey" --from 127.0.0.53 >/dev/null
    sleep 1.5
    if rt_running rt-direct "$DPID"; then
        pass "routes: b's server's own pid/key sent to the proxy (plaintext, TLS, b's port) cancels nothing"
    else
        fail "routes: b's server's own pid/key sent to the proxy cancels nothing" \
            "$(oneline "$(cat "$TMP/rt-direct.out")")"
    fi
    raw cancel 127.0.0.1 "${RT_PORT[b]}" "$dbpid" "$dkey" >/dev/null
    expect "routes: control: that key sent to b's server itself cancels (57014)" \
        "$(rt_end rt-direct "$DPID" 5)" 'query-end sqlstate=57014 '
else
    kill -TERM "$DPID" 2>/dev/null
    wait "$DPID"
    fail "routes: a session straight to b's server" "$(oneline "$(cat "$TMP/rt-direct.out")")"
fi

# Guessed keys (random keys with the right pid, the right key with a
# neighbouring pid), then the right key.
if rt_session rt-s1 b.localhost app_b "SELECT pg_sleep(20) /* rt-s1 */" &&
    rt_active b rt-s1 >/dev/null; then
    S1_PID=$RS_PID S1_BPID=$RS_BPID S1_KEY=$RS_KEY
    klen=$((${#S1_KEY} / 2))
    raw cancel 127.0.0.1 "$RT_MAIN" "$S1_BPID" "$(openssl rand -hex "$klen")" --from 127.0.0.61 >/dev/null
    raw cancel localhost "$RT_MAIN" "$S1_BPID" "$(openssl rand -hex "$klen")" --tls \
        --from 127.0.0.62 >/dev/null
    raw cancel 127.0.0.1 "$RT_MAIN" "$((S1_BPID ^ 1))" "$S1_KEY" --from 127.0.0.64 >/dev/null
    sleep 1.5
    if rt_running rt-s1 "$S1_PID"; then
        pass "routes: guessed keys, the right key with a neighbouring pid: nothing cancelled"
    else
        fail "routes: guessed keys cancel nothing" "$(oneline "$(cat "$TMP/rt-s1.out")")"
    fi
    raw cancel 127.0.0.1 "$RT_MAIN" "$S1_BPID" "$S1_KEY" --from 127.0.0.65 >/dev/null
    expect "routes: the client's own key (plaintext) then cancels its query on b (57014)" \
        "$(rt_end rt-s1 "$S1_PID" 5)" 'query-end sqlstate=57014 '
    # Replayed: the ended session's key against a new session.
    if rt_session rt-s2 b.localhost app_b "SELECT pg_sleep(20) /* rt-s2 */" &&
        rt_active b rt-s2 >/dev/null; then
        S2_PID=$RS_PID
        raw cancel 127.0.0.1 "$RT_MAIN" "$S1_BPID" "$S1_KEY" --from 127.0.0.66 >/dev/null
        raw cancel localhost "$RT_MAIN" "$S1_BPID" "$S1_KEY" --tls --from 127.0.0.67 >/dev/null
        sleep 1.5
        if rt_running rt-s2 "$S2_PID"; then
            pass "routes: an ended session's key, replayed, cancels nothing"
        else
            fail "routes: a replayed key cancels nothing" "$(oneline "$(cat "$TMP/rt-s2.out")")"
        fi
        raw cancel localhost "$RT_MAIN" "$RS_BPID" "$RS_KEY" --tls --from 127.0.0.68 >/dev/null
        expect "routes: the new session's own key inside TLS cancels it (57014)" \
            "$(rt_end rt-s2 "$S2_PID" 5)" 'query-end sqlstate=57014 '
        RT_KEYS="$S1_KEY $RS_KEY"
    else
        fail "routes: a second session on b" "$(oneline "$(cat "$TMP/rt-s2.out")")"
        kill -TERM "$RS_PID" 2>/dev/null
        wait "$RS_PID"
    fi
else
    fail "routes: a session on b through the proxy runs its query" \
        "$(oneline "$(cat "$TMP/rt-s1.out" 2>/dev/null)")"
    kill -TERM "$RS_PID" 2>/dev/null
    wait "$RS_PID"
fi

# ======================================================================
# 4e. Audit lines name the route; no key in the log
# ======================================================================
sleep 0.3 # the last closed lines
bad=""
for L in "${RT_LETTERS[@]}"; do
    n=$(grep 'event=established ' "$RT_LOG" | grep -c "database=\"app_$L\"")
    wrong=$(grep 'event=established ' "$RT_LOG" | grep "database=\"app_$L\"" |
        grep -c -v "route=\"$L\"")
    [ "$n" -ge 1 ] && [ "$wrong" = 0 ] || bad+=" app_$L: $n established, $wrong without route=\"$L\";"
done
n=$(grep 'event=established ' "$RT_LOG" | grep 'database="postgres"' | grep -c 'route="b"')
[ "$n" -ge 1 ] || bad+=" b's listen port: no established line with route=\"b\";"
n=$(grep -c 'event=closed .*route="b"' "$RT_LOG")
[ "$n" -ge 1 ] || bad+=" no event=closed line with route=\"b\";"
expect "routes: audit lines: established (and closed) name the route: route=\"a\", \"b\", \"c\"" \
    "${bad:-ok}" '^ok$'
leaked=0
read -r -a rt_keys <<<"${RT_KEYS:-} ${dkey:-}"
for k in "${rt_keys[@]}"; do
    [ "${#k}" -ge 8 ] && grep -q -i -F -- "$k" "$RT_LOG" && leaked=$((leaked + 1))
done
expect "routes: no cancel key (the client's or the server's) in the proxy's log" \
    "leaked=$leaked keys=${#rt_keys[@]}" '^leaked=0 keys=[1-9]'

else
    fail "routes: the checks through the proxy run" "the proxy did not start (see above)"
fi # RT_UP

stop_proxy routes
for L in "${RT_LETTERS[@]}"; do
    cp "${RT_DATA[$L]}/server.log" "$LOGS/routes-pg-$L-server.log" 2>/dev/null
    it_pg_stop "${RT_DATA[$L]}"
done
CUR_LOG=$LOGS/proxy-main.log
it_note "routes section took $((SECONDS - RT_T0)) s"
