# shellcheck shell=bash
# Packaging cases, sourced by run.sh after operations.sh: Google Cloud SQL's
# CN mode (a server certificate whose CN is PROJECT:INSTANCE and that has no
# DNS SAN), and `make install` / `make uninstall` into a temporary DESTDIR
# with the installed binary checked against the harness PostgreSQL, and
# what uninstall keeps (custom/ CAs, an edited /etc/default file).

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
CUSTOM=$DEST/etc/pg-tls-proxy/ca-bundles/custom
missing=
for f in usr/local/bin/pg-tls-proxy usr/local/share/man/man1/pg-tls-proxy.1 \
    usr/local/share/pg-tls-proxy/ca-bundles/aws-rds/global-bundle.pem \
    usr/local/share/pg-tls-proxy/ca-bundles/aws-rds/PROVENANCE.md \
    usr/local/share/pg-tls-proxy/ca-bundles/mozilla/ca-certificates.pem \
    lib/systemd/system/pg-tls-proxy.service lib/systemd/system/pg-tls-proxy-connector.service \
    etc/default/pg-tls-proxy etc/default/pg-tls-proxy-connector; do
    [ -s "$DEST/$f" ] || missing="$missing $f"
done
[ -d "$CUSTOM" ] || missing="$missing etc/pg-tls-proxy/ca-bundles/custom/"
expect "make install: binary, man page, aws-rds and mozilla bundles, units, /etc/default files, empty custom/" \
    "missing:${missing:- none}" '^missing: none$'
[ -n "$inst_out" ] && printf '# make install said: %s\n' "$(oneline "$inst_out")"
expect "make install: the units' ExecStart is PREFIX's binary" \
    "$(grep -h '^ExecStart=' "$DEST"/lib/systemd/system/pg-tls-proxy*.service | sort | tr '\n' ' ')" \
    '^ExecStart=/usr/local/bin/pg-tls-proxy ExecStart=/usr/local/bin/pg-tls-proxy connector $'
expect "make install: the connector's environment file (it may hold the bridge secret) is 0600" \
    "$(stat -c %a "$DEST/etc/default/pg-tls-proxy-connector")" '^600$'
expect "installed binary: --version" "$("$DEST/usr/local/bin/pg-tls-proxy" --version 2>&1)" \
    '^pg-tls-proxy [0-9]+\.[0-9]+\.[0-9]+'
cp "$CERTS/db-ca.crt" "$CUSTOM/db-ca.pem"
out=$(timeout -k 5 30 "$DEST/usr/local/bin/pg-tls-proxy" --check \
    --server-certificate-path "$CERTS/proxy.crt" --server-private-key-path "$CERTS/proxy.key" \
    --client-connection-host-or-ip 127.0.0.1 --client-connection-port "$PGPORT" \
    --client-tls-validation-host localhost --client-ca-roots-path "$CUSTOM" 2>&1)
expect "installed binary: --check against PostgreSQL with the installed custom/ bundle dir" \
    "$out"$'\n'"rc=$?" $'check ok\nrc=0$'
out=$(timeout -k 5 30 "$DEST/usr/local/bin/pg-tls-proxy" --check \
    --server-certificate-path "$CERTS/proxy.crt" --server-private-key-path "$CERTS/proxy.key" \
    --client-connection-host-or-ip 127.0.0.1 --client-connection-port "$PGPORT" \
    --client-tls-validation-host localhost \
    --client-ca-roots-path "$SHARE/ca-bundles/aws-rds/global-bundle.pem" 2>&1)
expect "installed aws-rds bundle loads, and does not vouch for the test database (exit 1)" \
    "$out"$'\n'"rc=$?" 'CA roots: [0-9]+ from .*global-bundle.pem.*check failed: upstream certificate verification failed.*rc=1$'
# The operator edits the proxy's environment file; install again keeps it.
printf 'PG_TLS_PROXY_SERVER_PORT=6432\n' >>"$DEST/etc/default/pg-tls-proxy"
inst_out=$(make -s -C "$ROOT" install DESTDIR="$DEST" PREFIX=/usr/local BUILD="$BUILD_DIR" 2>&1)
expect "make install again keeps an existing /etc/default file (and says so)" \
    "$(tail -n 1 "$DEST/etc/default/pg-tls-proxy") $inst_out" \
    '^PG_TLS_PROXY_SERVER_PORT=6432 .*kept .*/etc/default/pg-tls-proxy '
un_out=$(make -s -C "$ROOT" uninstall DESTDIR="$DEST" PREFIX=/usr/local 2>&1)
expect "make uninstall removes what install put there, keeps the user's CA and the edited /etc/default file" \
    "$(cd "$DEST" && find . -type f | sort | tr '\n' ' ')" \
    '^\./etc/default/pg-tls-proxy \./etc/pg-tls-proxy/ca-bundles/custom/db-ca\.pem $'
expect "make uninstall says what it kept" "$(oneline "$un_out")" \
    'kept .*/etc/default/pg-tls-proxy .*kept .*ca-bundles/custom/'
rm -f "$CUSTOM/db-ca.pem" "$DEST/etc/default/pg-tls-proxy"
make -s -C "$ROOT" uninstall DESTDIR="$DEST" PREFIX=/usr/local >/dev/null 2>&1
expect "make uninstall with an empty custom/ leaves no directory of ours behind" \
    "$(find "$DEST" -path '*pg-tls-proxy*' | wc -l)" '^0$'

# ======================================================================
# The Docker image as a container runs it (no engine here): the runtime
# stage's ENTRYPOINT and CMD, its numeric USER, and only the variables of
# README.md's "docker run" (paths and the upstream mapped onto this
# harness), then psql with verify-full through it, the HEALTHCHECK command,
# PG_TLS_PROXY_CHECK=1, and SIGTERM.
# ======================================================================
DF=$ROOT/Dockerfile
# The last stage's instructions, continuation lines joined.
df_runtime=$(awk '/\\$/ { sub(/\\$/, ""); line = line $0; next }
    { line = line $0; if (line ~ /^FROM /) stage = ""; stage = stage line "\n"; line = "" }
    END { printf "%s", stage }' "$DF")
df_json() { # df_json INSTRUCTION: its JSON array, one element per line
    printf '%s\n' "$df_runtime" | grep -E "^$1 " | tail -n 1 | sed -E "s/^$1 +//" |
        python3 -c 'import json,sys; t=sys.stdin.read().strip(); [print(a) for a in (json.loads(t) if t else [])]'
}
mapfile -t df_cmd < <(df_json ENTRYPOINT; df_json CMD)
df_user=$(printf '%s\n' "$df_runtime" | awk '$1 == "USER" { u = $2 } END { print u }')
expect "Dockerfile: the container's command is the proxy alone (ENTRYPOINT, no CMD)" \
    "${df_cmd[*]}" '^pg-tls-proxy$'
expect "Dockerfile: USER is numeric uid:gid" "$df_user" '^[1-9][0-9]*:[0-9]+$'
uid=${df_user%%:*} gid=${df_user##*:}
# README.md's docker run of the proxy (not the connector's): its -e NAME=VALUE pairs.
mapfile -t readme_env < <(awk '/^docker run/ && !/ connector / { on = 1 } on && /-e PG_TLS_PROXY_/ {
        for (i = 1; i <= NF; i++) if ($i == "-e") print $(i + 1) }
    on && !/\\$/ { on = 0 }' "$ROOT/README.md")
expect "README.md's docker run sets the four required variables and the admin address" \
    "$(printf '%s\n' "${readme_env[@]%%=*}" | sort | tr '\n' ' ')" \
    '^PG_TLS_PROXY_ADMIN_ADDRESS PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH PG_TLS_PROXY_CLIENT_CONNECTION_HOST_OR_IP PG_TLS_PROXY_SERVER_CERTIFICATE_PATH PG_TLS_PROXY_SERVER_PRIVATE_KEY_PATH $'
# The mounted /tls directory: owned by the image's user, key 0600.
CT=$TMP/container
mkdir -p "$CT/tls"
cp "$CERTS/proxy.crt" "$CT/tls/db.example.com.crt"
cp "$CERTS/proxy.key" "$CT/tls/db.example.com.key"
chmod 600 "$CT/tls/db.example.com.key"
chmod 755 "$CT" "$CT/tls"
as_image_user=()
if it_is_root; then
    chown -R "$uid:$gid" "$CT/tls"
    as_image_user=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
    ct_who="uid $uid"
else
    ct_who="uid $(id -u) (not root here: cannot switch to $uid)"
fi
it_free_port CT_PORT
it_free_port CT_ADMIN
ct_env=(env -i PATH=/usr/bin:/bin)
for kv in "${readme_env[@]}"; do
    k=${kv%%=*} v=${kv#*=}
    case $k in
    PG_TLS_PROXY_SERVER_CERTIFICATE_PATH | PG_TLS_PROXY_SERVER_PRIVATE_KEY_PATH) v=$CT$v ;;
    PG_TLS_PROXY_CLIENT_CONNECTION_HOST_OR_IP) v=127.0.0.1 ;;
    PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH) v=$CERTS/db-ca.crt ;;
    PG_TLS_PROXY_ADMIN_ADDRESS) v=127.0.0.1:$CT_ADMIN ;; # loopback only in tests
    esac
    ct_env+=("$k=$v")
done
# What only this harness needs: loopback, its ports, its upstream's name.
ct_env+=(PG_TLS_PROXY_SERVER_HOST=127.0.0.1 PG_TLS_PROXY_SERVER_PORT="$CT_PORT"
    PG_TLS_PROXY_CLIENT_CONNECTION_PORT="$PGPORT" PG_TLS_PROXY_CLIENT_TLS_VALIDATION_HOST=localhost)
ct_bin=("$PGTP_BIN" "${df_cmd[@]:1}")
CUR_LOG=$LOGS/container-check.log
out=$("${as_image_user[@]}" "${ct_env[@]}" PG_TLS_PROXY_CHECK=1 timeout -k 5 30 "${ct_bin[@]}" 2>&1)
rc=$?
printf '%s\n' "$out" >"$CUR_LOG"
expect "container ($ct_who), README variables + PG_TLS_PROXY_CHECK=1: check ok, exit 0" \
    "$out"$'\n'"rc=$rc" $'check ok\nrc=0$'
CUR_LOG=$LOGS/container.log
it_spawn container "$CUR_LOG" "${as_image_user[@]}" "${ct_env[@]}" "${ct_bin[@]}"
if it_wait_port "$CT_PORT" 10 "${IT_PIDS[container]}"; then
    pass "container ($ct_who) from README variables alone: serving on 127.0.0.1:$CT_PORT"
else
    fail "container ($ct_who) from README variables alone: serving" "$(oneline "$(tail -n 5 "$CUR_LOG")")"
fi
out=$(timeout -k 5 30 psql -X -A -t -q "$(ci "$CT_PORT")" \
    -c "SELECT 'via container', ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)
expect "container: psql verify-full through it, TLS upstream" "$out" '^via container\|t$'
hc=$(printf '%s\n' "$df_runtime" | grep -E '^HEALTHCHECK ' | sed -E 's/.* CMD +//')
mapfile -t hc_cmd < <(printf '%s\n' "$hc" | python3 -c 'import json,sys; [print(a) for a in json.load(sys.stdin)]')
expect "Dockerfile: the HEALTHCHECK is the binary's own subcommand, no shell" "${hc_cmd[*]}" \
    '^pg-tls-proxy healthcheck$'
hc_cmd[0]=$PGTP_BIN # the image's PATH finds it in /usr/local/bin
"${as_image_user[@]}" env -i PATH=/usr/bin:/bin PG_TLS_PROXY_ADMIN_ADDRESS="127.0.0.1:$CT_ADMIN" \
    timeout -k 2 10 "${hc_cmd[@]}" >/dev/null 2>&1
rc=$?
expect "container: the image's HEALTHCHECK command reports healthy (exit 0)" "rc=$rc" '^rc=0$'
expect "container: its first log line says what runs and as whom (event=starting, $ct_who)" \
    "$(grep -v '^# started:' "$CUR_LOG" | head -n 1)" \
    "level=info event=starting version=[^ ]+ pid=[0-9]+ uid=$(if it_is_root; then echo "$uid"; else id -u; fi) "
expect "container: its log says it started, where and for which upstream, with no warning" \
    "$(grep -m1 'event=started' "$CUR_LOG") $(grep -c 'level=\(warn\|error\)' "$CUR_LOG")" \
    'event=started .*127\.0\.0\.1.* 0$'
it_stop container
expect "container: SIGTERM (docker stop) ends it with exit 0" "rc=${IT_EXIT[container]:-?}" '^rc=0$'
out=$("${as_image_user[@]}" env -i PATH=/usr/bin:/bin PG_TLS_PROXY_ADMIN_ADDRESS="127.0.0.1:$CT_ADMIN" \
    timeout -k 2 10 "${hc_cmd[@]}" 2>&1)
expect "container: once stopped, the HEALTHCHECK command exits 1 and says why" \
    "$out"$'\n'"rc=$?" 'unhealthy: connect to 127\.0\.0\.1:[0-9]+: Connection refused'$'\n''rc=1$'
