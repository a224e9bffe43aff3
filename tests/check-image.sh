#!/usr/bin/env bash
# check-image.sh - build the container image and run it the way a container
# engine would, without one (none runs in this sandbox).
#
#   tests/check-image.sh            (make check-image; root; run by .ci/run)
#
# 1. scripts/build-image.sh (buildah, on a debootstrap base; no archive),
#    unless PGTP_IMAGE_SKIP_BUILD=1 reuses the image built last.
# 2. `buildah from` + `buildah mount`: a writable copy of the image's root
#    file system; `buildah inspect`: its config (entrypoint, command, user,
#    environment, health check, stop signal), so nothing below is hard-coded.
# 3. Static checks: numeric USER, exec-form entrypoint and health check, the
#    CA bundles present, parsing (openssl storeutl) and readable by the
#    image's user, no key material anywhere in the file system.
# 4. Every shell (sh, bash, dash, rbash) deleted from that copy, the test
#    certificates "mounted" at /tls and the test CA in ca-bundles/custom/,
#    then the entrypoint and command run in it, in a private mount namespace
#    with /proc and /dev (unshare + chroot, as the image's uid:gid), with the
#    image's environment plus exactly the variables of README.md's
#    `docker run` (the upstream, the admin address and ports mapped onto a
#    throw-away PostgreSQL 15 with a private CA: tests/integration/lib.sh).
# 5. Checks: the first log line is event=starting as uid 10001; psql with
#    sslmode=verify-full through it; the image's health check command exits 0
#    while it listens and 1 once it has stopped; SIGTERM while a session runs
#    a query: the query finishes, the process exits 0.
# Prints "image: N passed, M failed" last; exits 1 if anything failed, 2 when
# it cannot run (not root, buildah missing): under CI=true that is a failure
# too, never a skip.
# shellcheck disable=SC2317 # check functions are called indirectly, through check()
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${PGTP_IMAGE_CACHE:-/var/cache/pg-tls-proxy/image}
TAG=${PGTP_IMAGE_TAG:-localhost/pg-tls-proxy:latest}
CHROOT=$(command -v chroot || echo /usr/sbin/chroot)
T0=$SECONDS

cannot() {
    echo "check-image: cannot run: $*" >&2
    [ "${CI:-}" = true ] && echo "check-image: CI=true: this is a failure, not a skip" >&2
    exit 2
}
[ "$(id -u)" = 0 ] || cannot "needs root (chroot, buildah, a private mount namespace)"
for cmd in buildah debootstrap unshare openssl psql python3; do
    command -v "$cmd" >/dev/null || cannot "$cmd not found (scripts/install-deps.sh)"
done

# shellcheck source=tests/checklib.sh
. "$REPO/tests/checklib.sh"
expect() { # DESCRIPTION TEXT ERE: TEXT, its lines joined by spaces, matches ERE
    local text
    text=$(printf '%s' "$2" | tr '\n' ' ')
    if printf '%s\n' "$text" | grep -Eq -- "$3"; then ok "$1"; else bad "$1: got: ${text:0:400}"; fi
}

# ---- 1. build ----
if [ "${PGTP_IMAGE_SKIP_BUILD:-}" != 1 ]; then
    t=$SECONDS
    PGTP_IMAGE_OUT='' "$REPO/scripts/build-image.sh" || { bad "scripts/build-image.sh"; exit 1; }
    echo "# image built in $((SECONDS - t)) s"
fi

# The storage build-image.sh chose (overlay, else vfs).
DRIVER=$(cat "$CACHE/driver" 2>/dev/null) || cannot "no $CACHE/driver: build the image first"
BUILDAH=(buildah --root "$CACHE/storage-$DRIVER" --runroot "$CACHE/run-$DRIVER" --storage-driver "$DRIVER")

# ---- 2. a writable copy of the image's root file system, and its config ----
# shellcheck disable=SC1091 # sourced at run time
source "$REPO/tests/integration/lib.sh"
TMP=$(mktemp -d /tmp/pgtp-image.XXXXXX)
chmod 755 "$TMP" # the postgres user reaches its data directory inside
CTR=
cleanup() {
    it_stop_all
    it_pg_stop_all
    if [ -n "$CTR" ]; then
        "${BUILDAH[@]}" umount "$CTR" >/dev/null 2>&1
        "${BUILDAH[@]}" rm "$CTR" >/dev/null 2>&1
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

CTR=$("${BUILDAH[@]}" from -q --pull-never --name "pgtp-check-image-$$" "$TAG") ||
    cannot "no image $TAG in $CACHE/storage-$DRIVER (build it: scripts/build-image.sh)"
ROOTFS=$("${BUILDAH[@]}" mount "$CTR") || cannot "buildah mount failed"
"${BUILDAH[@]}" inspect --type image "$TAG" >"$TMP/inspect.json"
# cfg KEY: the Docker config's KEY, one array element per line.
cfg() {
    python3 - "$1" "$TMP/inspect.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[2]))["Docker"]["config"]
v = c.get(sys.argv[1])
if sys.argv[1] == "Healthcheck":
    v = (v or {}).get("Test") or []
for x in (v if isinstance(v, list) else [] if v is None else [v]):
    print(x)
EOF
}
mapfile -t ENTRY < <(cfg Entrypoint)
mapfile -t CMD < <(cfg Cmd)
mapfile -t IMG_ENV < <(cfg Env)
mapfile -t HC < <(cfg Healthcheck)
USER_SPEC=$(cfg User)
WORKDIR=$(cfg WorkingDir)
echo "# image $TAG: entrypoint=[${ENTRY[*]}] cmd=[${CMD[*]}] user=$USER_SPEC healthcheck=[${HC[*]}]"

# ---- 3. static checks ----
expect "USER is numeric uid:gid, not root (Kubernetes runAsNonRoot can check it)" \
    "$USER_SPEC" '^[1-9][0-9]*:[0-9]+$'
IMG_UID=${USER_SPEC%%:*}
IMG_GID=${USER_SPEC##*:}
[ "$IMG_GID" = "$USER_SPEC" ] && IMG_GID=$IMG_UID
no_shell_first() { # ARGS...: the first word is not a shell
    [ $# -gt 0 ] && ! [[ ${1##*/} =~ ^(sh|bash|dash|rbash)$ ]]
}
check "entrypoint + command in exec form, no shell: [${ENTRY[*]} ${CMD[*]}]" \
    no_shell_first "${ENTRY[@]}" "${CMD[@]}"
hc_exec_form() { [ "${HC[0]:-}" = CMD ] && no_shell_first "${HC[@]:1}"; }
check "health check in exec form (CMD, not CMD-SHELL), no shell: [${HC[*]}]" hc_exec_form
expect "stop signal SIGTERM" "$(cfg StopSignal)" '^SIGTERM$'

# image_cmd [--user]: IMAGE_CMD becomes the command prefix that runs a
# program inside the root file system the way a container engine would:
# a private mount namespace (ends with the process) with /proc and /dev,
# only RUN_ENV in the environment, chroot, and with --user the image's
# uid:gid. Each step execs the next: the pid started is the program's.
image_cmd() {
    local spec=()
    [ "${1:-}" = --user ] && spec=(--userspec="$IMG_UID:$IMG_GID" --groups="$IMG_GID")
    # shellcheck disable=SC2016 # the inner script's own variables
    IMAGE_CMD=(unshare --mount --propagation private -- "$BASH" -c '
        r=$1; shift
        mount -t proc proc "$r/proc" && mount --rbind /dev "$r/dev" || exit 125
        exec "$@"' image "$ROOTFS" env -i "${RUN_ENV[@]}" "$CHROOT" "${spec[@]}" "$ROOTFS")
}
RUN_ENV=("${IMG_ENV[@]}")

BUNDLES=/etc/pg-tls-proxy/ca-bundles
for b in aws-rds/global-bundle.pem mozilla/ca-certificates.pem; do
    n=$(openssl storeutl -noout -certs "$ROOTFS$BUNDLES/$b" 2>&1 | awk '/^Total found:/ { print $3 }')
    expect "bundled CA $BUNDLES/$b parses (openssl storeutl): ${n:-0} certificates" \
        "${n:-0}" '^[1-9][0-9]+$'
    size=$(stat -c %s "$ROOTFS$BUNDLES/$b")
    expect "bundled CA $BUNDLES/$b readable by uid $IMG_UID inside the image ($size bytes)" \
        "$(image_cmd --user && "${IMAGE_CMD[@]}" /usr/bin/wc -c "$BUNDLES/$b" 2>&1)" \
        "^$size $BUNDLES/$b\$"
done
custom_empty() { [ -d "$ROOTFS$BUNDLES/custom" ] && [ -z "$(ls -A "$ROOTFS$BUNDLES/custom")" ]; }
check "$BUNDLES/custom/ exists (empty: for the user's own CA)" custom_empty
keys=$(cd "$ROOTFS" && {
    find . -xdev -type f \( -name '*.key' -o -name '*.p12' -o -name '*.pfx' \) -print
    grep -rlIE --exclude-dir=proc --exclude-dir=sys -- '-----BEGIN ([A-Z]+ )?PRIVATE KEY-----' . 2>/dev/null
} | head -n 5)
expect "no key material in the image (*.key, *.p12, *.pfx, PEM private keys)" "${keys:-none}" '^none$'

# ---- 4. the container: no shell, the README's variables ----
for sh in sh bash dash rbash; do rm -f "$ROOTFS/usr/bin/$sh" "$ROOTFS/bin/$sh"; done
no_shells() { ! ls "$ROOTFS"/usr/bin/{sh,bash,dash,rbash} "$ROOTFS"/bin/{sh,bash,dash,rbash} >/dev/null 2>&1; }
check "no shell left in the copy it runs in (sh, bash, dash, rbash deleted)" no_shells

CERTS=$TMP/certs
it_gen_certs "$CERTS"
PGDATA_DIR=$TMP/pg
it_free_port PGPORT
PGPASS=$(it_random_password)
it_pg_start "$PGDATA_DIR" "$PGPORT" "$CERTS" app app "$PGPASS"
PASSFILE=$TMP/pgpass
it_write_passfile "$PASSFILE" app "$PGPASS"

# README.md's docker run of the proxy (not the connector's): -v and -e.
readme_run=$(awk '/^docker run/ && !/ connector / { on = 1 } on { print }
    on && !/\\$/ { exit }' "$REPO/README.md")
mapfile -t README_ENV < <(printf '%s\n' "$readme_run" |
    awk '{ for (i = 1; i <= NF; i++) if ($i == "-e") print $(i + 1) }')
tls_mount=$(printf '%s\n' "$readme_run" | awk '{ for (i = 1; i <= NF; i++) if ($i == "-v") print $(i + 1) }' |
    head -n 1 | cut -d: -f2)
expect "README.md's docker run: the four required variables and the admin address" \
    "$(printf '%s\n' "${README_ENV[@]%%=*}" | sort | tr '\n' ' ')" \
    '^PG_TLS_PROXY_ADMIN_ADDRESS PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH PG_TLS_PROXY_CLIENT_CONNECTION_HOST_OR_IP PG_TLS_PROXY_SERVER_CERTIFICATE_PATH PG_TLS_PROXY_SERVER_PRIVATE_KEY_PATH $'
expect "README.md's docker run mounts a directory for the certificates (-v HOST:DIR:ro)" \
    "$tls_mount" '^/[a-z]+$'
# "-v ...:/tls:ro": the test certificates there, owned by the image's user.
mkdir -p "$ROOTFS$tls_mount"
for kv in "${README_ENV[@]}"; do
    case $kv in
    PG_TLS_PROXY_SERVER_CERTIFICATE_PATH=*) cp "$CERTS/proxy.crt" "$ROOTFS${kv#*=}" ;;
    PG_TLS_PROXY_SERVER_PRIVATE_KEY_PATH=*) install -m 600 "$CERTS/proxy.key" "$ROOTFS${kv#*=}" ;;
    esac
done
chown -R "$IMG_UID:$IMG_GID" "$ROOTFS$tls_mount"
# The private CA of the test database where the image says to mount one's own.
cp "$CERTS/db-ca.crt" "$ROOTFS$BUNDLES/custom/db-ca.pem"

it_free_port PORT
it_free_port ADMIN
RUN_ENV=("${IMG_ENV[@]}")
for kv in "${README_ENV[@]}"; do
    k=${kv%%=*} v=${kv#*=}
    case $k in
    PG_TLS_PROXY_CLIENT_CONNECTION_HOST_OR_IP) v=127.0.0.1 ;;
    PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH) v=$BUNDLES/custom ;;
    PG_TLS_PROXY_ADMIN_ADDRESS) v=127.0.0.1:$ADMIN ;; # loopback only in tests
    esac
    RUN_ENV+=("$k=$v")
done
# What only this harness needs (docker run -p does it there): loopback, its
# ports, the name in its database's certificate. A short drain for the test.
RUN_ENV+=(PG_TLS_PROXY_SERVER_HOST=127.0.0.1 PG_TLS_PROXY_SERVER_PORT="$PORT"
    PG_TLS_PROXY_CLIENT_CONNECTION_PORT="$PGPORT"
    PG_TLS_PROXY_CLIENT_TLS_VALIDATION_HOST=localhost PG_TLS_PROXY_SHUTDOWN_TIMEOUT=20)
echo "# environment: ${RUN_ENV[*]}"
[ -z "$WORKDIR" ] || echo "# working directory $WORKDIR (chroot starts in /)"

LOG=$TMP/container.log
image_cmd --user
it_spawn container "$LOG" "${IMAGE_CMD[@]}" "${ENTRY[@]}" "${CMD[@]}"
if it_wait_port "$PORT" 15 "${IT_PIDS[container]}"; then
    ok "entrypoint + command serve on 127.0.0.1:$PORT from the README's variables alone"
else
    bad "entrypoint + command serve: $(tail -n 5 "$LOG" | tr '\n' ' ')"
fi
first=$(grep -v '^# started:' "$LOG" | head -n 1)
expect "first log line: event=starting, version, uid and gid of the image's user" "$first" \
    "level=info event=starting version=[^ ]+ pid=[0-9]+ uid=$IMG_UID gid=$IMG_GID "
expect "the proxy runs as uid $IMG_UID (ps)" \
    "$(ps -o uid=,comm= -p "${IT_PIDS[container]}" 2>/dev/null | awk '{ print $1, $2 }')" \
    "^$IMG_UID pg-tls-proxy\$"

conninfo="host=localhost hostaddr=127.0.0.1 port=$PORT user=app dbname=app sslmode=verify-full sslrootcert=$CERTS/public-ca.crt channel_binding=disable connect_timeout=10"
out=$(PGPASSFILE=$PASSFILE timeout -k 5 30 psql -X -A -t -q "$conninfo" \
    -c "SELECT 'via image', ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)
expect "psql sslmode=verify-full through the image, TLS to the database" "$out" '^via image\|t$'

# The image's health check, with the container's environment, as its user.
healthcheck() {
    timeout -k 2 10 "${IMAGE_CMD[@]}" "${HC[@]:1}" 2>&1
    echo "rc=$?"
}
expect "the image's health check exits 0 while the proxy listens" "$(healthcheck)" '^rc=0$'

# SIGTERM during a query: the query ends normally, then the process exits 0.
( PGPASSFILE=$PASSFILE timeout -k 5 40 psql -X -A -t -q "$conninfo" \
    -c "SELECT 'drained', pg_sleep(3)" >"$TMP/drain.out" 2>&1; echo "rc=$?" >>"$TMP/drain.out" ) &
drain_pid=$!
for _ in $(seq 200); do # until the second session (the first was psql above) is up
    [ "$(grep -c 'event=established' "$LOG")" -ge 2 ] && break
    sleep 0.05
done
sleep 0.5
t=$SECONDS
it_stop container
wait "$drain_pid"
expect "SIGTERM with a query running: the query finishes normally" \
    "$(cat "$TMP/drain.out")" '^drained\| rc=0$'
expect "SIGTERM: the process exits 0 (after $((SECONDS - t)) s)" "rc=${IT_EXIT[container]:-?}" '^rc=0$'
expect "SIGTERM: the log shows the drain (event=shutdown, then event=stopped)" \
    "$(grep -o 'event=shutdown\b\|event=stopped' "$LOG" | tr '\n' ' ')" '^event=shutdown .*event=stopped $'
expect "the image's health check exits 1 once the proxy has stopped, saying why" "$(healthcheck)" \
    'unhealthy: connect to 127\.0\.0\.1:[0-9]+: Connection refused.*rc=1$'

if [ "$FAIL" != 0 ]; then
    echo "---- container log:"
    cat "$LOG"
fi
echo "image: $PASS passed, $FAIL failed ($((SECONDS - T0)) s)"
[ "$FAIL" = 0 ]
