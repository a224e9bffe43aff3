#!/usr/bin/env bash
# check-deb.sh - build the Debian package, install it into THIS machine,
# remove it and purge it, checking what each step leaves.
#
#   tests/check-deb.sh BUILD_DIR VERSION           (make check-deb does this)
#
# It changes the machine (dpkg -i, the pgtp system user), so it runs only
# with CI=true (.ci/run, a throw-away machine) or PGTP_DEB_INSTALL=1, as
# root, and refuses when a pg-tls-proxy package is installed already (it
# would purge it). Otherwise it says it skipped and exits 0.
#
# Checks: the package's version, Depends and conffiles; after dpkg -i: the
# binary's --version (also run as pgtp), the man page, the pgtp user (system
# uid, no login shell), both units in place and clean under systemd-analyze
# verify; then a CA file put in /etc/pg-tls-proxy/ca-bundles/custom/ and an
# edited /etc/default/pg-tls-proxy survive dpkg -r while the binary, man
# page, units and bundles go; dpkg -P removes the conffiles and still keeps
# the CA file (never the package's) and the user (Debian practice). Starting
# the unit needs systemd as PID 1, which the test machines lack (said in a
# note): instead its ExecStart runs as pgtp with LimitNOFILE, only the
# /etc/default file's settings and a notify socket (READY=1, STOPPING=1).
# Leaves the machine as it found it (the user too, if this run created it).
# Prints "deb: N passed, M failed" last; exits 1 if anything failed.
set -uo pipefail

[ $# -eq 2 ] || { echo "usage: $0 BUILD_DIR VERSION" >&2; exit 2; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$1
VERSION=$2

if [ "${CI:-}" != true ] && [ "${PGTP_DEB_INSTALL:-}" != 1 ]; then
    echo "check-deb: skipped: it installs the package into this machine and creates the"
    echo "check-deb: pgtp user; run it with PGTP_DEB_INSTALL=1 (as root), CI does it with CI=true"
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "check-deb: must run as root (dpkg -i)" >&2; exit 1; }
if [ "$(dpkg-query -W -f='${db:Status-Status}' pg-tls-proxy 2>/dev/null)" != "" ] &&
    [ "$(dpkg-query -W -f='${db:Status-Status}' pg-tls-proxy 2>/dev/null)" != not-installed ]; then
    echo "check-deb: a pg-tls-proxy package is on this machine already; this test would purge it" >&2
    exit 1
fi
CUSTOM=/etc/pg-tls-proxy/ca-bundles/custom
[ ! -e "$CUSTOM/check-deb-ca.pem" ] || { echo "check-deb: $CUSTOM/check-deb-ca.pem exists" >&2; exit 1; }

# shellcheck source=tests/checklib.sh
. "$REPO/tests/checklib.sh"
# expect DESCRIPTION OUTPUT REGEX
expect() {
    if [[ $2 =~ $3 ]]; then ok "$1"; else bad "$1: expected /$3/, got: $(printf '%s' "$2" | tr '\n' ' ' | cut -c1-300)"; fi
}
note() { echo "# $*"; }
t0=$SECONDS

user_before=no
getent passwd pgtp >/dev/null && user_before=yes
WORK=$(mktemp -d /tmp/pgtp-check-deb.XXXXXX)
chmod 755 "$WORK" # pgtp reaches the notify socket inside
pid='' rcv=''
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    [ -n "$rcv" ] && kill -TERM "$rcv" 2>/dev/null
    rm -rf "$WORK" /etc/pg-tls-proxy/tls
    rm -f "$CUSTOM/check-deb-ca.pem"
    rmdir "$CUSTOM" /etc/pg-tls-proxy/ca-bundles /etc/pg-tls-proxy 2>/dev/null
    if [ "$(dpkg-query -W -f='${db:Status-Status}' pg-tls-proxy 2>/dev/null)" = installed ] ||
        [ "$(dpkg-query -W -f='${db:Status-Status}' pg-tls-proxy 2>/dev/null)" = config-files ]; then
        dpkg -P pg-tls-proxy >/dev/null 2>&1
    fi
    if [ "$user_before" = no ] && getent passwd pgtp >/dev/null; then
        userdel pgtp 2>/dev/null
        getent group pgtp >/dev/null && groupdel pgtp 2>/dev/null
    fi
}
trap cleanup EXIT

# ---- the package ----
t=$SECONDS
DEB=$("$REPO/scripts/make-deb.sh" "$BUILD" "$VERSION" | tail -n 1)
if [ -f "$DEB" ]; then ok "make deb: $(basename "$DEB") ($((SECONDS - t)) s)"; else bad "make deb built no package"; exit 1; fi
debver=$(dpkg-deb -f "$DEB" Version)
expect "the package version ($debver) is valid for dpkg and comes from VERSION ($VERSION)" \
    "$(dpkg --validate-version "$debver" 2>&1 && echo valid) $debver" "^valid [0-9].*"
expect "Depends: the binary's libraries (dpkg-shlibdeps) and adduser" "$(dpkg-deb -f "$DEB" Depends)" \
    'libc6 \(>= [0-9.]+\).*libssl3.*libsystemd0.*libuv1.*adduser'
expect "conffiles: both /etc/default files" \
    "$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles | tr '\n' ' ')" \
    '^/etc/default/pg-tls-proxy /etc/default/pg-tls-proxy-connector $'

# ---- install ----
t=$SECONDS
out=$(dpkg -i "$DEB" 2>&1)
expect "dpkg -i: installed ($((SECONDS - t)) s)" "rc=$? $(dpkg-query -W -f='${db:Status-Status}' pg-tls-proxy) $out" \
    '^rc=0 installed'

v_line=$(/usr/bin/pg-tls-proxy --version 2>&1 | head -n 1)
if [[ $v_line == "pg-tls-proxy $VERSION" || $v_line == "pg-tls-proxy $VERSION "* ]]; then
    ok "/usr/bin/pg-tls-proxy --version is this build's ($v_line)"
else
    bad "/usr/bin/pg-tls-proxy --version is this build's: expected 'pg-tls-proxy $VERSION', got '$v_line'"
fi
man_path=$(man -w pg-tls-proxy 2>&1)
expect "the man page is where man looks" "$man_path" '^/usr/share/man/man1/pg-tls-proxy\.1\.gz$'
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd pgtp)
[ "$user_before" = yes ] && note "the pgtp user existed before this run (uid $uid)"
system=no
[[ ${uid:-x} =~ ^[0-9]+$ ]] && [ "$uid" -gt 0 ] && [ "$uid" -lt 1000 ] && system=yes
expect "user pgtp: a system user (uid $uid) with group pgtp, home /nonexistent, no login shell" \
    "system=$system group=$(getent group "${gid:-x}" | cut -d: -f1) home=${home:-?} shell=${shell:-?}" \
    '^system=yes group=pgtp home=/nonexistent shell=/(usr/sbin/nologin|bin/false)$'
expect "the binary runs as pgtp" \
    "$(setpriv --reuid=pgtp --regid=pgtp --clear-groups /usr/bin/pg-tls-proxy --version 2>&1)" '^pg-tls-proxy '
for u in pg-tls-proxy pg-tls-proxy-connector; do
    uf=/lib/systemd/system/$u.service
    out=$(systemd-analyze verify "$uf" 2>&1)
    expect "$u.service installed; systemd-analyze verify (man page too) has no complaint" \
        "rc=$? ${out:-(none)} $(grep '^ExecStart=' "$uf")" "^rc=0 \(none\) ExecStart=/usr/bin/pg-tls-proxy"
done
expect "the units are not enabled by the package (the proxy needs configuration first)" \
    "$(find /etc/systemd/system -name 'pg-tls-proxy*' 2>/dev/null | wc -l)" '^0$'
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    expect "systemd knows the unit: Type=notify, User=pgtp" \
        "$(systemctl show -p Type -p User pg-tls-proxy.service | sort | tr '\n' ' ')" '^Type=notify User=pgtp $'
else
    note "not started under systemd: PID 1 is '$(ps -o comm= -p 1)', not systemd (checked with systemd-analyze)"
fi

# ---- the unit's command as systemd runs it (without systemd) ----
# ExecStart as user pgtp with the unit's LimitNOFILE, the environment file
# as its only settings (a key root:pgtp 0640, as the README says), and a
# notify socket: READY=1 once it listens, STOPPING=1 and exit 0 on SIGTERM.
# The upstream is never dialled (no client connects).
TLS=/etc/pg-tls-proxy/tls
install -d -o root -g pgtp -m 750 "$TLS"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$TLS/proxy.key" -out "$TLS/proxy.crt" 2>/dev/null
chgrp pgtp "$TLS/proxy.key" "$TLS/proxy.crt"
chmod 640 "$TLS/proxy.key" "$TLS/proxy.crt"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cp /etc/default/pg-tls-proxy "$WORK/default.orig"
{
    echo "PG_TLS_PROXY_SERVER_CERTIFICATE_PATH=$TLS/proxy.crt"
    echo "PG_TLS_PROXY_SERVER_PRIVATE_KEY_PATH=$TLS/proxy.key"
    echo "PG_TLS_PROXY_SERVER_HOST=127.0.0.1"
    echo "PG_TLS_PROXY_SERVER_PORT=$port"
    echo "PG_TLS_PROXY_CLIENT_CONNECTION_HOST_OR_IP=127.0.0.1"
    echo "PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH=/usr/share/pg-tls-proxy/ca-bundles/mozilla"
} >>/etc/default/pg-tls-proxy
python3 -c '
import os, signal, socket, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)  # the proxy runs as pgtp
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode(errors="replace").replace("\n", " | ") + "\n")
' "$WORK/notify.sock" "$WORK/notify.msgs" &
rcv=$!
for _ in $(seq 50); do [ -S "$WORK/notify.sock" ] && break; sleep 0.1; done
read -r -a exec_start < <(sed -n 's/^ExecStart=//p' /lib/systemd/system/pg-tls-proxy.service)
mapfile -t unit_env < <(grep -E '^[A-Z0-9_]+=' /etc/default/pg-tls-proxy)
nofile=$(sed -n 's/^LimitNOFILE=//p' /lib/systemd/system/pg-tls-proxy.service)
# systemd (PID 1) may raise the hard limit; a sandboxed root may not.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$nofile" ]; then
    note "LimitNOFILE=$nofile is above this machine's hard limit ($hard): running with $hard"
    nofile=$hard
fi
env -i PATH=/usr/bin:/bin NOTIFY_SOCKET="$WORK/notify.sock" "${unit_env[@]}" \
    prlimit --nofile="$nofile" setpriv --reuid=pgtp --regid=pgtp --init-groups "${exec_start[@]}" \
    >"$WORK/unit.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q 'READY=1' "$WORK/notify.msgs" 2>/dev/null && break; sleep 0.1; done
expect "ExecStart as pgtp, configured by /etc/default/pg-tls-proxy alone: READY=1 once it listens" \
    "$(grep -m1 'READY=1' "$WORK/notify.msgs" 2>&1) $(tail -n 3 "$WORK/unit.log")" \
    "^READY=1 \| STATUS=started: listening on 127\.0\.0\.1:$port; "
kill -TERM "$pid" 2>/dev/null
rc=0
wait "$pid" || rc=$?
pid=
expect "SIGTERM (systemctl stop): STOPPING=1, exit 0" \
    "$(grep -m1 -o 'STOPPING=1' "$WORK/notify.msgs") rc=$rc" '^STOPPING=1 rc=0$'
kill -TERM "$rcv" 2>/dev/null
wait "$rcv" 2>/dev/null
rcv=
cp "$WORK/default.orig" /etc/default/pg-tls-proxy
rm -rf "$TLS"

# ---- the operator's files, then remove ----
cp "$REPO/ca-bundles/aws-rds/global-bundle.pem" "$CUSTOM/check-deb-ca.pem"
printf 'PG_TLS_PROXY_SERVER_PORT=6432\n' >>/etc/default/pg-tls-proxy
t=$SECONDS
out=$(dpkg -r pg-tls-proxy 2>&1)
expect "dpkg -r: removed, conffiles kept ($((SECONDS - t)) s)" \
    "rc=$? $(dpkg-query -W -f='${db:Status-Status}' pg-tls-proxy) $out" '^rc=0 config-files '

left=
for f in /usr/bin/pg-tls-proxy /usr/share/man/man1/pg-tls-proxy.1.gz /usr/share/pg-tls-proxy \
    /lib/systemd/system/pg-tls-proxy.service /lib/systemd/system/pg-tls-proxy-connector.service; do
    [ -e "$f" ] && left="$left $f"
done
expect "dpkg -r: binary, man page, bundles and units gone" "left:${left:- none}" '^left: none$'
expect "dpkg -r: the CA file in custom/ and the edited /etc/default/pg-tls-proxy survive" \
    "$(test -s "$CUSTOM/check-deb-ca.pem" && echo ca-kept) $(tail -n 1 /etc/default/pg-tls-proxy 2>&1)" \
    '^ca-kept PG_TLS_PROXY_SERVER_PORT=6432$'

# ---- purge ----
out=$(dpkg -P pg-tls-proxy 2>&1)
expect "dpkg -P: purged" "rc=$? $(dpkg-query -W -f='${db:Status-Status}' pg-tls-proxy 2>&1) $out" \
    '^rc=0 (not-installed|.*no packages found)'

expect "dpkg -P: the conffiles are gone" \
    "$(find /etc/default -maxdepth 1 -name 'pg-tls-proxy*' | wc -l)" '^0$'
expect "dpkg -P: the CA file in custom/ is still there (the operator's, never the package's)" \
    "$(test -s "$CUSTOM/check-deb-ca.pem" && echo kept)" '^kept$'
expect "dpkg -P: the pgtp user stays (Debian practice: it may still own files)" \
    "$(getent passwd pgtp | cut -d: -f1)" '^pgtp$'

echo "deb: $PASS passed, $FAIL failed ($((SECONDS - t0)) s)"
[ "$FAIL" = 0 ]
