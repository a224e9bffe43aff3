#!/usr/bin/env bash
# check-certbot-hook.sh BIN - contrib/certbot-deploy-hook.sh against a fake
# certbot lineage and a real proxy.
#
#   tests/check-certbot-hook.sh build/pg-tls-proxy     (make check-certbot-hook)
#
# Makes two self-signed certificates (the second also names
# renewed.localhost) in lineage directories laid out as certbot's live/NAME,
# installs the first with the hook, starts the proxy on it (loopback only; no
# upstream is contacted), then runs the hook on the second with
# PGTP_RELOAD_CMD="kill -HUP <proxy>" and checks that:
#   - the files are in place with modes 0644 (chain) and 0600 (key), owned by
#     PGTP_USER:PGTP_GROUP, and no temporary file is left;
#   - the proxy logged event=reloaded and a front_certificate line naming
#     renewed.localhost, and a TLS client now receives the new certificate;
#   - a lineage whose key does not match its certificate is refused (exit 1):
#     nothing changes and no reload runs;
#   - PGTP_LINEAGE skips other lineages; the settings file is read (and an
#     unknown key in it refused); no RENEWED_LINEAGE is a usage error;
#   - the proxy exits 0 on SIGTERM.
# Prints "certbot-hook: N passed, M failed"; exit 1 if anything failed,
# 2 on misuse. Takes about 2 s.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BIN" >&2
    exit 2
fi
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
repo=$(cd "$(dirname "$0")/.." && pwd)
hook=$repo/contrib/certbot-deploy-hook.sh
for t in openssl python3; do
    command -v "$t" >/dev/null || {
        echo "check-certbot-hook: $t not found" >&2
        exit 2
    }
done

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL $*"
}
check() { # check WHAT COMMAND...
    local what=$1
    shift
    if "$@"; then ok; else bad "$what"; fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-certbot-hook.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# lineage NAME SANS [KEYFROM]: a certbot-like live/NAME directory.
lineage() {
    local d=$tmp/live/$1
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=localhost" -addext "subjectAltName=$2" \
        -keyout "$d/privkey.pem" -out "$d/fullchain.pem" 2>/dev/null
}
lineage first DNS:localhost
lineage second DNS:localhost,DNS:renewed.localhost
lineage broken DNS:localhost
cp "$tmp/live/first/privkey.pem" "$tmp/live/broken/privkey.pem" # not its key

dest=$tmp/tls
me=$(id -un)
grp=$(id -gn)
run_hook() { # run_hook LINEAGE [VAR=VALUE...]: the hook's exit status
    local l=$1
    shift
    env PGTP_HOOK_CONF=/nonexistent PGTP_CERT_DIR="$dest" PGTP_USER="$me" \
        PGTP_GROUP="$grp" PGTP_RELOAD_CMD= RENEWED_LINEAGE="$tmp/live/$l" "$@" \
        "$hook" 2>>"$tmp/hook.log"
}

rc=0
run_hook first || rc=$?
check "first install exits 0" [ "$rc" -eq 0 ]
check "chain installed" cmp -s "$dest/fullchain.pem" "$tmp/live/first/fullchain.pem"
check "key installed" cmp -s "$dest/privkey.pem" "$tmp/live/first/privkey.pem"
check "key mode 0600" [ "$(stat -c %a "$dest/privkey.pem")" = 600 ]
check "chain mode 0644" [ "$(stat -c %a "$dest/fullchain.pem")" = 644 ]
check "owner $me:$grp" [ "$(stat -c %U:%G "$dest/privkey.pem")" = "$me:$grp" ]

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$tmp/proxy.log
"$bin" --server-certificate-path "$dest/fullchain.pem" --server-private-key-path "$dest/privkey.pem" \
    --server-host 127.0.0.1 --server-port "$port" --client-connection-host-or-ip 127.0.0.1 \
    --client-connection-port 1 --client-tls-validation-host localhost \
    --client-ca-roots-path "$tmp/live/first/fullchain.pem" --workers 1 </dev/null >"$log" 2>&1 &
pid=$!
wait_log() { # wait_log PATTERN: up to 10 s for the proxy's log to match
    local _
    for _ in $(seq 100); do
        grep -q -- "$1" "$log" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
served_names() { # the SANs of the certificate the proxy serves now
    openssl s_client -starttls postgres -connect "127.0.0.1:$port" -servername localhost \
        </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName 2>/dev/null | tail -n 1
}
if ! wait_log 'event=started'; then
    echo "check-certbot-hook: the proxy did not start:" >&2
    cat "$log" >&2
    exit 1
fi
check "first certificate served" [ "$(served_names | tr -d ' ')" = "DNS:localhost" ]

rc=0
run_hook second PGTP_RELOAD_CMD="kill -HUP $pid" || rc=$?
check "renewal exits 0" [ "$rc" -eq 0 ]
check "proxy reloaded on the hook's SIGHUP" wait_log 'event=reloaded trigger=SIGHUP'
check "front_certificate names renewed.localhost" wait_log 'event=front_certificate.*renewed.localhost'
check "renewed certificate served" [ "$(served_names | tr -d ' ')" = "DNS:localhost,DNS:renewed.localhost" ]
check "no temporary file left" [ -z "$(find "$dest" -name '.*.pem.*')" ]

reloads=$(grep -c 'event=reloaded' "$log")
rc=0
run_hook broken PGTP_RELOAD_CMD="kill -HUP $pid" || rc=$?
check "mismatched key refused with exit 1" [ "$rc" -eq 1 ]
check "mismatched key named" grep -q 'is not the key of the certificate' "$tmp/hook.log"
check "nothing installed from the broken lineage" cmp -s "$dest/fullchain.pem" "$tmp/live/second/fullchain.pem"
sleep 0.3
check "no reload for the broken lineage" [ "$(grep -c 'event=reloaded' "$log")" = "$reloads" ]

rc=0
run_hook first PGTP_LINEAGE=second || rc=$?
check "another lineage skipped with exit 0" [ "$rc" -eq 0 ]
check "skipped lineage changes nothing" cmp -s "$dest/privkey.pem" "$tmp/live/second/privkey.pem"

printf 'PGTP_CERT_DIR=%s\nPGTP_USER=%s\nPGTP_GROUP=%s\nPGTP_RELOAD_CMD=\n' "$tmp/fromconf" "$me" "$grp" >"$tmp/hook.conf"
rc=0
env -u PGTP_CERT_DIR PGTP_HOOK_CONF="$tmp/hook.conf" RENEWED_LINEAGE="$tmp/live/first" "$hook" 2>>"$tmp/hook.log" || rc=$?
check "settings file read (exit 0)" [ "$rc" -eq 0 ]
check "settings file's PGTP_CERT_DIR used" [ -f "$tmp/fromconf/privkey.pem" ]
echo 'PGTP_CERT_DRI=/x' >>"$tmp/hook.conf"
rc=0
PGTP_HOOK_CONF="$tmp/hook.conf" RENEWED_LINEAGE="$tmp/live/first" "$hook" 2>>"$tmp/hook.log" || rc=$?
check "unknown settings key refused with exit 2" [ "$rc" -eq 2 ]
rc=0
env -u RENEWED_LINEAGE PGTP_HOOK_CONF=/nonexistent "$hook" 2>>"$tmp/hook.log" || rc=$?
check "no RENEWED_LINEAGE is a usage error" [ "$rc" -eq 2 ]

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
check "proxy exits 0 on SIGTERM" [ "$rc" -eq 0 ]

if [ "$fail" -ne 0 ]; then
    echo "--- hook log"
    cat "$tmp/hook.log"
    echo "--- proxy log"
    cat "$log"
fi
echo "certbot-hook: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
