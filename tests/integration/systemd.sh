# shellcheck shell=bash
# systemd cases, sourced by run.sh after packaging.sh:
#   - sd_notify: a real AF_UNIX datagram socket as NOTIFY_SOCKET (what
#     systemd gives a Type=notify service) receives READY=1 once the proxy
#     listens, RELOADING=1 then READY=1 on SIGHUP (also for a failed
#     reload), STOPPING=1 on SIGTERM; the connector's READY=1, STATUS= and
#     STOPPING=1; a NOTIFY_SOCKET nobody listens on is logged, not fatal.
#   - the units: make install into a prefix, then systemd-analyze verify
#     (fails on any complaint: a mistyped key is only a warning to it) and
#     systemd-analyze security (exposure at most 2.0), and the settings the
#     README promises (stop timeout above --shutdown-timeout, LimitNOFILE).
# Starting the units under systemd needs systemd as PID 1, which this
# harness does not assume: it says so in a note, and tests/check-deb.sh
# checks the installed package's units.

SD=$TMP/systemd
mkdir -p "$SD"
ROOT=${ROOT:-$(cd "$HERE/../.." && pwd)}

# The receiver: one line per datagram (its newlines shown as " | "); on
# READY=1 it connects to PORT first and writes "port=open" or
# "port=closed" before the message, so the test knows the proxy listened
# by the time it said it was ready.
cat >"$SD/notify.py" <<'EOF'
import signal, socket, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # it_stop: exit 0
path, out_path, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out_path, "a", buffering=1) as out:
    while True:
        msg = s.recv(4096).decode(errors="replace")
        if port and "READY=1" in msg.split("\n"):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                out.write("port=open\n")
            except OSError:
                out.write("port=closed\n")
        out.write(msg.replace("\n", " | ") + "\n")
EOF

# sd_listen NAME PORT: a receiver at $SD/NAME.sock writing $SD/NAME.msgs.
sd_listen() {
    rm -f "$SD/$1.sock"
    : >"$SD/$1.msgs"
    it_spawn "notify-$1" "$LOGS/notify-$1.log" python3 "$SD/notify.py" "$SD/$1.sock" \
        "$SD/$1.msgs" "$2"
    local i
    for ((i = 0; i < 100; i++)); do
        [ -S "$SD/$1.sock" ] && return 0
        sleep 0.05
    done
    return 1
}

# ======================================================================
# The proxy: READY=1 after it listens, RELOADING=1/READY=1, STOPPING=1
# ======================================================================
it_free_port SD_PORT
sd_listen proxy "$SD_PORT" || fail "sd_notify: the receiver socket exists" "no $SD/proxy.sock"
cp "$CERTS/proxy.crt" "$SD/proxy.crt"
cp "$CERTS/proxy.key" "$SD/proxy.key"
NOTIFY_SOCKET=$SD/proxy.sock PROXY_CRT=$SD/proxy.crt PROXY_KEY=$SD/proxy.key \
    start_proxy sdnotify "$SD_PORT" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt"
wait_line "$SD/proxy.msgs" 'READY=1' $((10 * IT_TIME_SCALE))
expect "sd_notify: READY=1 with STATUS naming the listen address and the route" \
    "$(grep -m1 'READY=1' "$SD/proxy.msgs")" \
    "^READY=1 \| STATUS=started: listening on 127\.0\.0\.1:$SD_PORT; routes: default -> 127\.0\.0\.1:$PGPORT$"
expect "sd_notify: READY=1 came after the port listened (the receiver connected at once)" \
    "$(head -n 2 "$SD/proxy.msgs" | tr '\n' ' ')" '^port=open READY=1 '
out=$(timeout -k 5 30 psql -X -A -t -q "$(ci "$SD_PORT")" -c "SELECT 'notified'" 2>&1)
expect "sd_notify: the proxy serves as usual with NOTIFY_SOCKET set" "$out" '^notified$'

kill -HUP "${IT_PIDS[sdnotify]}"
wait_line "$SD/proxy.msgs" 'STATUS=reloaded' $((10 * IT_TIME_SCALE))
expect "sd_notify: SIGHUP sends RELOADING=1 (with MONOTONIC_USEC), then READY=1 'reloaded (SIGHUP)'" \
    "$(grep -v '^port=' "$SD/proxy.msgs" | sed -n '2,3p' | tr '\n' '~')" \
    '^RELOADING=1 \| MONOTONIC_USEC=[0-9]+ \| STATUS=reloading \(SIGHUP\)~READY=1 \| STATUS=reloaded \(SIGHUP\): listening on 127\.0\.0\.1:[0-9]+; routes: default -> '

# A reload that fails (the certificate file is now garbage): still ready,
# serving the old certificate, and STATUS says so.
printf 'not a certificate\n' >"$SD/proxy.crt"
kill -HUP "${IT_PIDS[sdnotify]}"
wait_line "$SD/proxy.msgs" 'STATUS=reload failed' $((10 * IT_TIME_SCALE))
expect "sd_notify: a failed reload: RELOADING=1, then READY=1 'reload failed ... still serving'" \
    "$(grep -v '^port=' "$SD/proxy.msgs" | sed -n '4,5p' | tr '\n' '~')" \
    '^RELOADING=1 .*~READY=1 \| STATUS=reload failed \(SIGHUP\): still serving the previous configuration on 127\.0\.0\.1:[0-9]+; see event=reload_failed'

# SIGTERM with a session open (it drains), then SIGHUP while draining: the
# reload runs, but systemd, told STOPPING=1, hears no RELOADING or READY.
start_session sd-drain "$SD_PORT" "SELECT pg_sleep(3)" ||
    fail "sd_notify: a session runs before the drain" "$(oneline "$(cat "$TMP/sd-drain.out")")"
kill -TERM "${IT_PIDS[sdnotify]}"
wait_line "$SD/proxy.msgs" 'STOPPING=1' $((10 * IT_TIME_SCALE))
kill -HUP "${IT_PIDS[sdnotify]}"
for ((i = 0; i < 100 * IT_TIME_SCALE; i++)); do
    [ "$(count "$CUR_LOG" 'event=(reloaded|reload_failed) trigger=SIGHUP')" -ge 3 ] && break
    sleep 0.05
done
expect "sd_notify: SIGHUP while draining reloads, and sends no RELOADING=1 or READY=1 after STOPPING=1" \
    "reloads=$(count "$CUR_LOG" 'event=(reloaded|reload_failed) trigger=SIGHUP') after:$(sed -n '/STOPPING=1/,$p' "$SD/proxy.msgs" |
        grep -c -E 'READY=1|RELOADING=1')" '^reloads=3 after:0$'
wait "$SESS_PID" 2>/dev/null
expect "sd_notify: the open session finished during the drain" "$(cat "$TMP/sd-drain.out")" \
    'login=ok'
# Its last session done, the draining proxy exits by itself.
it_wait_exit sdnotify 10
expect "sd_notify: SIGTERM sends STOPPING=1 'draining (SIGTERM)' and the proxy exits 0" \
    "$(grep -m1 'STOPPING=1' "$SD/proxy.msgs") rc=${IT_EXIT[sdnotify]:-?}" \
    '^STOPPING=1 \| STATUS=draining \(SIGTERM\): 1 sessions open, up to 30 s rc=0$'
expect "sd_notify: drain progress in STATUS= (every worker done)" \
    "$(tail -n 1 "$SD/proxy.msgs")" '^STATUS=stopping: ([0-9]+) of \1 workers done, 0 sessions open$'
it_stop notify-proxy

# NOTIFY_SOCKET naming a socket nobody listens on: one warning, and it serves.
it_free_port SD_PORT2
NOTIFY_SOCKET=$SD/nobody.sock start_proxy sdnotify-nobody "$SD_PORT2" 127.0.0.1 "$PGPORT" \
    localhost "$CERTS/db-ca.crt"
out=$(timeout -k 5 30 psql -X -A -t -q "$(ci "$SD_PORT2")" -c "SELECT 'still serving'" 2>&1)
expect "sd_notify: an unreachable NOTIFY_SOCKET does not stop the proxy" "$out" '^still serving$'
stop_proxy sdnotify-nobody
expect "sd_notify: an unreachable NOTIFY_SOCKET is logged once (event=sd_notify_failed), with the fix" \
    "$(count "$LOGS/proxy-sdnotify-nobody.log" 'event=sd_notify_failed') $(grep -m1 'event=sd_notify_failed' \
        "$LOGS/proxy-sdnotify-nobody.log")" '^1 .*level=warn.*socket=".*nobody\.sock".*hint="systemd will not see'

# ======================================================================
# The connector: ready when it starts dialling, STATUS= on the tunnel
# ======================================================================
it_free_port SD_BRIDGE # nothing listens there
(umask 077 && openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n' >"$SD/bridge.secret")
sd_listen connector 0 || fail "sd_notify: the connector's receiver socket exists" "no socket"
CUR_LOG=$LOGS/connector-sdnotify.log
NOTIFY_SOCKET=$SD/connector.sock it_spawn connector-sdnotify "$CUR_LOG" "$PGTP_BIN" connector \
    --bridge-address "127.0.0.1:$SD_BRIDGE" --bridge-id lab --bridge-secret-file "$SD/bridge.secret" \
    --bridge-ca-path "$CERTS/public-ca.crt" --bridge-tls-validation-host localhost \
    --allow "127.0.0.1:$PGPORT" --reconnect-max 1
wait_line "$SD/connector.msgs" 'tunnel down' $((10 * IT_TIME_SCALE))
expect "sd_notify: the connector says READY=1 when it starts dialling, then STATUS 'tunnel down'" \
    "$(sed -n '1,2p' "$SD/connector.msgs" | tr '\n' '~')" \
    "^READY=1 \| STATUS=connecting to 127\.0\.0\.1:$SD_BRIDGE \(bridge lab\)~STATUS=tunnel down to 127\.0\.0\.1:$SD_BRIDGE \(bridge lab\): .*; retrying~$"
it_stop connector-sdnotify
expect "sd_notify: SIGTERM: the connector sends STOPPING=1 and exits 0" \
    "$(grep -m1 'STOPPING=1' "$SD/connector.msgs") rc=${IT_EXIT[connector-sdnotify]:-?}" \
    '^STOPPING=1 \| STATUS=stopping: 0 streams open, up to [0-9]+ s rc=0$'
it_stop notify-connector

# ======================================================================
# The units, installed into a prefix (ExecStart must name a real file)
# ======================================================================
SDP=$SD/prefix
inst_out=$(make -s -C "$ROOT" install PREFIX="$SDP" SYSCONFDIR="$SDP/etc" \
    SYSTEMDUNITDIR="$SDP/lib/systemd/system" BUILD="$(dirname "$PGTP_BIN")" 2>&1)
[ -n "$inst_out" ] && printf '# make install said: %s\n' "$(oneline "$inst_out")"
for unit in pg-tls-proxy pg-tls-proxy-connector; do
    uf=$SDP/lib/systemd/system/$unit.service
    expect "$unit.service: installed, ExecStart is the installed binary" \
        "$(grep '^ExecStart=' "$uf" 2>&1)" "^ExecStart=$SDP/bin/pg-tls-proxy( connector)?\$"
    # --man=no: the man page is not where man looks (check-deb.sh verifies with it).
    out=$(systemd-analyze verify --man=no "$uf" 2>&1)
    expect "$unit.service: systemd-analyze verify has no complaint" "rc=$? ${out:-(none)}" '^rc=0 \(none\)$'
    out=$(systemd-analyze security --offline=yes "$uf" 2>&1 | tail -n 1)
    expect "$unit.service: systemd-analyze security: exposure at most 2.0" "$out" \
        'Overall exposure level for .*: (0\.[0-9]|1\.[0-9]|2\.0) '
    printf '# %s\n' "$(oneline "$out")"
done
# The check above would catch a typo: systemd only warns about one.
sed 's/^ProtectHome=/ProtecHome=/' "$SDP/lib/systemd/system/pg-tls-proxy.service" >"$SD/typo.service"
out=$(systemd-analyze verify --man=no "$SD/typo.service" 2>&1)
expect "systemd-analyze verify reports a mistyped key (so the check above can fail)" "$out" \
    "Unknown key( name)? 'ProtecHome'"
uf=$SDP/lib/systemd/system/pg-tls-proxy.service
stop_s=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$uf")
drain_s=$("$PGTP_BIN" --help | grep -A3 -- '--shutdown-timeout' | sed -n 's/.*Default: \([0-9]*\)\..*/\1/p')
expect "pg-tls-proxy.service: TimeoutStopSec ($stop_s s) above the default --shutdown-timeout ($drain_s s)" \
    "$((${stop_s:-0} > ${drain_s:-999}))" '^1$'
expect "pg-tls-proxy.service: Type=notify, User=pgtp, EnvironmentFile, ExecReload SIGHUP, LimitNOFILE=65536" \
    "$(grep -E '^(Type|User|EnvironmentFile|ExecReload|LimitNOFILE)=' "$uf" | tr '\n' ' ')" \
    "^Type=notify User=pgtp EnvironmentFile=-$SDP/etc/default/pg-tls-proxy ExecReload=/bin/kill -HUP \\\$MAINPID LimitNOFILE=65536 \$"
if [ -d /run/systemd/system ]; then
    it_note "systemd runs here (PID 1: $(ps -o comm= -p 1)): tests/check-deb.sh starts the unit"
else
    it_note "not started under systemd: PID 1 is '$(ps -o comm= -p 1)', not systemd; checked with systemd-analyze only"
fi
make -s -C "$ROOT" uninstall PREFIX="$SDP" SYSCONFDIR="$SDP/etc" \
    SYSTEMDUNITDIR="$SDP/lib/systemd/system" >/dev/null 2>&1
expect "make uninstall (prefix install): nothing left" "$(find "$SDP" -type f | wc -l)" '^0$'
