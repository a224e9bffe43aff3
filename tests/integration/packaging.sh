# shellcheck shell=bash
# Packaging cases, sourced by run.sh after operations.sh: Google Cloud SQL's
# CN mode (a server certificate whose CN is PROJECT:INSTANCE and that has no
# DNS SAN), and `make install` / `make uninstall` into a temporary DESTDIR
# with the installed binary checked against the harness PostgreSQL.

# ======================================================================
# Cloud SQL: --client-tls-validation-host PROJECT:INSTANCE checks the CN
# ======================================================================
CSQL=$TMP/cloudsql
mkdir -p "$CSQL"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$CSQL/server.key" -subj "/CN=myproj:myinst" -out "$CSQL/server.csr" 2>/dev/null
openssl x509 -req -in "$CSQL/server.csr" -CA "$CERTS/db-ca.crt" -CAkey "$CERTS/db-ca.key" \
    -CAcreateserial -days 30 -out "$CSQL/server.crt" \
    -extfile <(printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n') \
    2>/dev/null
chmod 600 "$CSQL/server.key"
expect "Cloud SQL style certificate: CN=myproj:myinst, no subjectAltName" \
    "$(openssl x509 -in "$CSQL/server.crt" -noout -subject -ext subjectAltName 2>&1)" \
    'CN *= *myproj:myinst'
it_free_port CSQL_PORT
it_spawn fake-cloudsql "$LOGS/fake-upstream-cloudsql.log" "$RAWCLIENT" fake-upstream \
    "$CSQL_PORT" direct-tls "$CSQL/server.crt" "$CSQL/server.key"
if it_wait_port "$CSQL_PORT" 10 "${IT_PIDS[fake-cloudsql]}"; then
    pass "fake upstream with a Cloud SQL style certificate listens"
else
    fail "fake upstream with a Cloud SQL style certificate listens" \
        "$(oneline "$(cat "$LOGS/fake-upstream-cloudsql.log")")"
fi

it_free_port P
start_proxy cloudsql "$P" 127.0.0.1 "$CSQL_PORT" myproj:myinst "$CERTS/db-ca.crt" \
    --client-direct-tls
out=$(raw error localhost "$P")
expect "Cloud SQL CN mode: PROJECT:INSTANCE matching the CN verifies (client gets AuthenticationOk)" \
    "$out" '^auth=0$'
expect "Cloud SQL CN mode: the log says which check it uses" \
    "$(cat "$LOGS/proxy-cloudsql.log")" 'event=verify_mode mode=cloudsql_cn name="myproj:myinst"'
wait_line "$LOGS/fake-upstream-cloudsql.log" 'startup protocol=' 5
expect "Cloud SQL CN mode: no SNI is sent (project:instance is not a host name)" \
    "$(cat "$LOGS/fake-upstream-cloudsql.log")" 'alpn=postgresql sni=(none|-|)'$'\n'
stop_proxy cloudsql

it_free_port P
start_proxy cloudsql-wrong "$P" 127.0.0.1 "$CSQL_PORT" myproj:otherinst "$CERTS/db-ca.crt" \
    --client-direct-tls
out=$(raw error localhost "$P")
expect "Cloud SQL CN mode: another PROJECT:INSTANCE is refused with 08001 'does not match'" \
    "$out" '^sqlstate=08001 severity=FATAL message=.*does not match the name "myproj:otherinst".*CN=myproj:myinst'
stop_proxy cloudsql-wrong

it_free_port P
start_proxy cloudsql-dns "$P" 127.0.0.1 "$CSQL_PORT" localhost "$CERTS/db-ca.crt" \
    --client-direct-tls
out=$(raw error localhost "$P")
expect "a DNS validation host keeps strict SAN checks: a CN-only certificate does not match" \
    "$out" '^sqlstate=08001 severity=FATAL message=.*does not match the name "localhost"'
stop_proxy cloudsql-dns
it_stop fake-cloudsql

# ======================================================================
# make install / make uninstall into a temporary DESTDIR
# ======================================================================
ROOT=$(cd "$HERE/../.." && pwd)
DEST=$TMP/destdir
BUILD_DIR=$(dirname "$PGTP_BIN")
inst_out=$(make -s -C "$ROOT" install DESTDIR="$DEST" PREFIX=/usr/local BUILD="$BUILD_DIR" 2>&1)
SHARE=$DEST/usr/local/share/pg-tls-proxy
missing=
for f in bin/pg-tls-proxy share/man/man1/pg-tls-proxy.1 \
    share/pg-tls-proxy/ca-bundles/aws-rds/global-bundle.pem \
    share/pg-tls-proxy/ca-bundles/aws-rds/PROVENANCE.md \
    share/pg-tls-proxy/ca-bundles/mozilla/ca-certificates.pem; do
    [ -s "$DEST/usr/local/$f" ] || missing="$missing $f"
done
[ -d "$SHARE/ca-bundles/custom" ] || missing="$missing share/pg-tls-proxy/ca-bundles/custom/"
expect "make install: binary, man page, aws-rds and mozilla bundles, empty custom/" \
    "missing:${missing:- none}" '^missing: none$'
[ -n "$inst_out" ] && printf '# make install said: %s\n' "$(oneline "$inst_out")"
expect "installed binary: --version" "$("$DEST/usr/local/bin/pg-tls-proxy" --version 2>&1)" \
    '^pg-tls-proxy [0-9]+\.[0-9]+\.[0-9]+'
cp "$CERTS/db-ca.crt" "$SHARE/ca-bundles/custom/db-ca.pem"
out=$(timeout -k 5 30 "$DEST/usr/local/bin/pg-tls-proxy" --check \
    --server-certificate-path "$CERTS/proxy.crt" --server-private-key-path "$CERTS/proxy.key" \
    --client-connection-host-or-ip 127.0.0.1 --client-connection-port "$PGPORT" \
    --client-tls-validation-host localhost --client-ca-roots-path "$SHARE/ca-bundles/custom" 2>&1)
expect "installed binary: --check against PostgreSQL with the installed custom/ bundle dir" \
    "$out"$'\n'"rc=$?" $'check ok\nrc=0$'
out=$(timeout -k 5 30 "$DEST/usr/local/bin/pg-tls-proxy" --check \
    --server-certificate-path "$CERTS/proxy.crt" --server-private-key-path "$CERTS/proxy.key" \
    --client-connection-host-or-ip 127.0.0.1 --client-connection-port "$PGPORT" \
    --client-tls-validation-host localhost \
    --client-ca-roots-path "$SHARE/ca-bundles/aws-rds/global-bundle.pem" 2>&1)
expect "installed aws-rds bundle loads, and does not vouch for the test database (exit 1)" \
    "$out"$'\n'"rc=$?" 'CA roots: [0-9]+ from .*global-bundle.pem.*check failed: upstream certificate verification failed.*rc=1$'
make -s -C "$ROOT" uninstall DESTDIR="$DEST" PREFIX=/usr/local >/dev/null 2>&1
expect "make uninstall removes what install put there" \
    "$(find "$DEST" -type f | wc -l)" '^0$'
