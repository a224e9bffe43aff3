# shellcheck shell=bash
# Helpers shared by tests/integration/run.sh and scripts/demo.sh: free
# loopback ports, a throw-away PostgreSQL with TLS and SCRAM, and proxy
# processes that are started in the background and always stopped.
#
# Sourced, never executed. Nothing here prints a password. Every wait is
# bounded. Only loopback addresses are used.

IT_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IT_PG_BINDIR=${PG_BINDIR:-$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
# PostgreSQL refuses to run as root: when we are root it runs as this user.
IT_SVC_USER=${IT_SVC_USER:-postgres}
IT_PORTS_TAKEN=" "      # ports handed out in this run, so two helpers never collide
declare -gA IT_PIDS=()  # name -> pid of background processes we started
declare -gA IT_EXIT=()  # name -> exit status once stopped
declare -gA IT_PG_STARTED=() # data dir -> bin dir of the clusters it_pg_start started

# PGTP_WRAP: a command prefix that it_proxy_start puts before $PGTP_BIN (split
# on blanks), e.g. "valgrind --tool=memcheck --error-exitcode=99 ..." (make
# valgrind). Each wrapped proxy finds PGTP_WRAP_LOG in its environment: its
# own log's path without ".log" plus ".wrap", for the wrapper's report next to
# the proxy's log (valgrind: --log-file=%q{PGTP_WRAP_LOG}-%p.log). Unset or
# empty: the proxy runs as before and nothing else changes.
# IT_TIME_SCALE: factor (an integer) on the waits below: for the port and for
# a proxy to exit after SIGTERM. A wrapped proxy starts and stops much more
# slowly (memcheck: 20-50x and a leak check at exit), so it defaults to 10
# when PGTP_WRAP is set, 1 otherwise. Sections may scale their own bounds by
# it too.
IT_WRAP=()
read -r -a IT_WRAP <<<"${PGTP_WRAP:-}"
if [ ${#IT_WRAP[@]} -gt 0 ]; then
    IT_TIME_SCALE=${IT_TIME_SCALE:-10}
else
    IT_TIME_SCALE=${IT_TIME_SCALE:-1}
fi
[[ $IT_TIME_SCALE =~ ^[1-9][0-9]*$ ]] || {
    printf '# FATAL: IT_TIME_SCALE must be a positive integer (got %s)\n' "$IT_TIME_SCALE" >&2
    exit 1
}

it_note() { printf '# %s\n' "$*" >&2; }
it_die() {
    it_note "FATAL: $*"
    exit 1
}

it_is_root() { [ "$(id -u)" = 0 ]; }

# Run a command as the service user (from /, which that user can read).
it_as_svc() {
    if it_is_root; then
        (cd / && runuser -u "$IT_SVC_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# True if anything (any TCP state) uses local port $1.
it_port_used() {
    ss -Htan "sport = :$1" 2>/dev/null | grep -q .
}

it_port_listening() {
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# The kernel's ephemeral range (the local ports of outgoing connections).
# A port in it that is free now may be taken by any client's connect() before
# our listener binds it (EADDRINUSE): likelier the more connections run at
# once (load tests, other suites on the machine) and the slower the proxy
# starts (valgrind), so it_free_port avoids it.
IT_EPHEMERAL_LO=32768 IT_EPHEMERAL_HI=60999
read -r IT_EPHEMERAL_LO IT_EPHEMERAL_HI </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null ||
    true

# it_free_port VAR: store a currently unused port in 20000..60000 in VAR,
# outside the ephemeral range if that leaves any (it does by default:
# 20000..32767). (A variable, not stdout, so the record of taken ports survives.)
it_free_port() {
    local _p _i _avoid=1
    [ "$IT_EPHEMERAL_LO" -le 20000 ] && [ "$IT_EPHEMERAL_HI" -ge 60000 ] && _avoid=0
    for ((_i = 0; _i < 500; _i++)); do
        _p=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
        if [ "$_avoid" = 1 ] && [ "$_p" -ge "$IT_EPHEMERAL_LO" ] && [ "$_p" -le "$IT_EPHEMERAL_HI" ]; then
            continue
        fi
        case $IT_PORTS_TAKEN in *" $_p "*) continue ;; esac
        it_port_used "$_p" && continue
        IT_PORTS_TAKEN+="$_p "
        printf -v "$1" '%s' "$_p"
        return 0
    done
    it_die "no free port found in 20000..60000"
}

# it_wait_port PORT SECONDS [PID]: until PORT listens; fails early if PID dies.
# SECONDS is multiplied by IT_TIME_SCALE.
it_wait_port() {
    local port=$1 secs=$(($2 * IT_TIME_SCALE)) pid=${3:-} i
    for ((i = 0; i < secs * 20; i++)); do
        it_port_listening "$port" && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# it_gen_certs DIR: a fresh throw-away PKI (certs/gen-test-certs.sh).
it_gen_certs() {
    "$IT_REPO/certs/gen-test-certs.sh" "$1" --force >/dev/null ||
        it_die "certificate generation failed"
}

# it_pg_start DATADIR PORT CERTDIR ROLE DB PASSWORD [BINDIR]
# With BINDIR (e.g. an embedded-postgres 17 or 18 from
# scripts/fetch-embedded-pg.sh) its initdb, pg_ctl and postgres run, with
# BINDIR/../lib first on LD_LIBRARY_PATH when that directory exists; the
# roles are created with Debian's psql ($IT_PG_BINDIR) over the Unix socket,
# as the package has none. Default BINDIR: $IT_PG_BINDIR (Debian's).
# initdb (SCRAM for TCP, trust on the private Unix socket in DATADIR),
# TLS with CERTDIR/db-server.{crt,key}, 127.0.0.1 only, then starts the
# server (pg_ctl -w) and creates ROLE with PASSWORD and database DB. ROLE
# may also open replication connections (replication=database), so that a
# walsender session can be tested through the proxy.
# When CERTDIR/client-ca.crt exists it is PostgreSQL's ssl_ca_file, and role
# "certuser" (no password) logs in only with a client certificate for
# CN=certuser from that CA (pg_hba "cert", before the generic lines): what
# the proxy's --client-certificate-path is tested against.
# The server log is DATADIR/server.log. IT_PG_EXTRA_CONF (for one call):
# more postgresql.conf lines, e.g. "wal_level = logical".
it_pg_start() {
    local dir=$1 port=$2 certs=$3 role=$4 db=$5 password=$6 bin=${7:-$IT_PG_BINDIR}
    [ -x "$bin/initdb" ] || it_die "PostgreSQL server binaries not found in $bin (PG_BINDIR)"
    IT_PG_STARTED[$dir]=$bin
    it_pg_init "$dir" "$port" "$certs" "$bin"
    it_port_used "$port" && it_die "port $port is already in use"
    it_pg_run "$bin" pg_ctl -D "$dir" -l "$dir/server.log" -w -t 60 start \
        >/dev/null 2>&1 || {
        tail -n 20 "$dir/server.log" >&2
        it_die "PostgreSQL did not start"
    }
    it_pg_roles "$dir" "$port" "$certs" "$role" "$db" "$password"
}

# it_pg_init DATADIR PORT CERTDIR [BINDIR]: it_pg_start's initdb,
# certificates, postgresql.conf (with IT_PG_EXTRA_CONF) and pg_hba.conf,
# without starting the server (for it_ns_pg_start) and without recording
# DATADIR for it_pg_stop_all.
it_pg_init() {
    local dir=$1 port=$2 certs=$3 bin=${4:-$IT_PG_BINDIR}
    [ -x "$bin/initdb" ] || it_die "PostgreSQL server binaries not found in $bin (PG_BINDIR)"
    mkdir -p "$dir"
    it_is_root && chown "$IT_SVC_USER": "$dir"
    chmod 700 "$dir"
    it_pg_run "$bin" initdb -D "$dir" -U postgres -N -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 >"$dir.initdb.log" 2>&1 || {
        cat "$dir.initdb.log" >&2
        it_die "initdb failed"
    }
    # The key must belong to the server user with 0600 or PostgreSQL refuses it.
    install -m 600 "$certs/db-server.key" "$dir/server.key"
    install -m 644 "$certs/db-server.crt" "$dir/server.crt"
    local ca_line="" cert_hba=""
    if [ -f "$certs/client-ca.crt" ]; then
        install -m 644 "$certs/client-ca.crt" "$dir/client-ca.crt"
        it_is_root && chown "$IT_SVC_USER": "$dir/client-ca.crt"
        ca_line="ssl_ca_file = 'client-ca.crt'"
        cert_hba="hostssl  all       certuser 127.0.0.1/32 cert clientcert=verify-full"
    fi
    cat >>"$dir/postgresql.conf" <<EOF

# --- pg-tls-proxy test settings ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 300
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
$ca_line
password_encryption = scram-sha-256
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_min_messages = warning
${IT_PG_EXTRA_CONF:-}
EOF
    cat >"$dir/pg_hba.conf" <<EOF
# TYPE   DATABASE  USER  ADDRESS        METHOD
local    all       all                  trust
$cert_hba
hostssl  all       all   127.0.0.1/32   scram-sha-256
host     all       all   127.0.0.1/32   scram-sha-256
hostssl  replication all 127.0.0.1/32   scram-sha-256
host     replication all 127.0.0.1/32   scram-sha-256
EOF
    it_is_root && chown "$IT_SVC_USER": "$dir/server.key" "$dir/server.crt" \
        "$dir/postgresql.conf" "$dir/pg_hba.conf"
    return 0
}

# it_pg_roles DATADIR PORT CERTDIR ROLE DB PASSWORD: it_pg_start's roles
# (ROLE with PASSWORD, database DB, and certuser when CERTDIR/client-ca.crt
# exists), over the Unix socket in DATADIR of a running server.
it_pg_roles() {
    local dir=$1 port=$2 certs=$3 role=$4 db=$5 password=$6 cert_role=""
    [ -f "$certs/client-ca.crt" ] && cert_role="CREATE ROLE certuser LOGIN;"
    # The password goes through stdin, never argv; it is hex, so no quoting.
    it_as_svc timeout 60 "$IT_PG_BINDIR/psql" -X -q -h "$dir" -p "$port" -U postgres \
        -d postgres -v ON_ERROR_STOP=1 >/dev/null <<EOF || it_die "could not create role $role"
CREATE ROLE "$role" LOGIN REPLICATION PASSWORD '$password';
CREATE DATABASE "$db" OWNER "$role";
$cert_role
EOF
}

# it_pg_stop DATADIR: immediate stop (the data is thrown away anyway), with
# the binaries it was started with.
it_pg_stop() {
    local bin=${IT_PG_STARTED[$1]:-$IT_PG_BINDIR}
    unset "IT_PG_STARTED[$1]"
    [ -f "$1/postmaster.pid" ] || return 0
    it_pg_run "$bin" pg_ctl -D "$1" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
}

# it_pg_stop_all: every cluster it_pg_start started and nobody stopped yet.
it_pg_stop_all() {
    local dir
    for dir in "${!IT_PG_STARTED[@]}"; do it_pg_stop "$dir"; done
}

# ---- clusters in their own pid namespace (samepid.sh) ----
# DANGER: inside its namespace such a postmaster is pid 1, and its
# postmaster.pid says so: pg_ctl stop/restart/status (and it_pg_stop) on its
# data directory would signal the HOST's pid 1. These clusters are never in
# IT_PG_STARTED; they are stopped only by it_ns_pg_stop, which signals the
# host pid of the namespace's init it recorded at start, after checking that
# the process still lives in that very namespace.
# (Killing the unshare process alone does not stop them: unshare blocks
# SIGTERM and SIGINT, and --kill-child's parent-death signal is cleared when
# setpriv changes the uid, so the postmaster would outlive it.)
declare -gA IT_NS_PG=() # unshare pid -> "init_host_pid pidns_link data_dir"

# it_ns_pg_start DATADIR PORT [BINDIR]: start an it_pg_init'ed cluster as
# pid 1 of a new pid namespace (root only: util-linux unshare + setpriv),
# and wait up to 60 s for PORT. The server log is DATADIR/server.log.
# Returns 1 (with a note) if it did not come up; it_ns_pg_stop_all cleans
# up whatever did start.
it_ns_pg_start() {
    local dir=$1 port=$2 bin=${3:-$IT_PG_BINDIR} upid cpid="" ns="" i
    local env=()
    if ! it_is_root; then
        it_note "a cluster in its own pid namespace needs root (unshare --pid, setpriv)"
        return 1
    fi
    if [ -d "$bin/../lib" ] && [ "$bin" != "$IT_PG_BINDIR" ]; then
        env=(env LD_LIBRARY_PATH="$(cd "$bin/../lib" && pwd)")
    fi
    it_port_used "$port" && it_die "port $port is already in use"
    (cd / && exec unshare --pid --fork --kill-child=SIGQUIT --mount-proc \
        setpriv --reuid="$IT_SVC_USER" --regid="$IT_SVC_USER" --init-groups \
        "${env[@]}" "$bin/postgres" -D "$dir") >>"$dir/server.log" 2>&1 </dev/null &
    upid=$! # our subshell (bash may fork once more before the exec)
    # The namespace's init: the first of our descendants that lives in
    # another pid namespace than ours (unshare's fork, once it runs there).
    for ((i = 0; i < 200; i++)); do
        cpid=$(it_ns_descendant "$upid")
        [ -n "$cpid" ] && ns=$(readlink "/proc/$cpid/ns/pid" 2>/dev/null) && break
        cpid="" ns=""
        kill -0 "$upid" 2>/dev/null || break
        sleep 0.05
    done
    IT_NS_PG[$upid]="${cpid:-none} ${ns:-none} $dir"
    [ -n "$cpid" ] || {
        it_note "unshare did not start a pid namespace for $dir"
        return 1
    }
    it_wait_port "$port" 60 "$cpid" || {
        tail -n 20 "$dir/server.log" >&2
        it_note "PostgreSQL in a pid namespace did not start ($dir)"
        return 1
    }
}

# it_ns_pg_stop UNSHARE_PID: SIGQUIT (immediate shutdown) to the namespace's
# init, SIGKILL after 10 s (the kernel then kills the whole namespace), and
# wait for unshare.
it_ns_pg_stop() {
    local upid=$1 cpid ns dir i
    read -r cpid ns dir <<<"${IT_NS_PG[$upid]:-none none none}"
    unset "IT_NS_PG[$upid]"
    it_ns_is "$cpid" "$ns" && kill -QUIT "$cpid" 2>/dev/null
    for ((i = 0; i < 200; i++)); do
        it_ns_is "$cpid" "$ns" || break
        sleep 0.05
    done
    if it_ns_is "$cpid" "$ns"; then
        it_note "PostgreSQL in a pid namespace ($dir) ignored SIGQUIT for 10 s; sending SIGKILL"
        kill -KILL "$cpid" 2>/dev/null
    fi
    for ((i = 0; i < 200; i++)); do
        kill -0 "$upid" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$upid" 2>/dev/null && kill -KILL "$upid" 2>/dev/null
    wait "$upid" 2>/dev/null
    return 0
}

# it_ns_descendant PID: the first descendant of PID (breadth first) in
# another pid namespace than ours; nothing if none.
it_ns_descendant() {
    local queue=("$1") p c cns self
    self=$(readlink /proc/self/ns/pid)
    while [ ${#queue[@]} -gt 0 ]; do
        p=${queue[0]}
        queue=("${queue[@]:1}")
        for c in $(pgrep -P "$p"); do
            cns=$(readlink "/proc/$c/ns/pid" 2>/dev/null) || continue
            if [ -n "$cns" ] && [ "$cns" != "$self" ]; then
                echo "$c"
                return 0
            fi
            queue+=("$c")
        done
    done
}

# it_ns_is PID PIDNS: PID exists and lives in pid namespace PIDNS (not ours):
# the recorded init, not a process that reused its pid.
it_ns_is() {
    [[ $1 =~ ^[0-9]+$ ]] && [ "$2" != none ] &&
        [ "$(readlink "/proc/$1/ns/pid" 2>/dev/null)" = "$2" ] &&
        [ "$2" != "$(readlink /proc/self/ns/pid)" ]
}

# it_ns_pg_stop_all: every namespace cluster not stopped yet (run.sh's cleanup).
it_ns_pg_stop_all() {
    local upid
    for upid in "${!IT_NS_PG[@]}"; do it_ns_pg_stop "$upid"; done
}

# ---- a private network: a network namespace (bridge.sh) ----
# A new network namespace with only its own loopback: what runs inside
# cannot reach our 127.0.0.1, and we cannot reach its 127.0.0.1. The
# filesystem is shared, so UNIX sockets cross between the two. Root only
# (unshare --net, nsenter). The namespace lives as long as any process in it:
# a holder (sleep) registered as IT_PIDS[NAME] (name it fake-* so that run.sh's
# exit-status check skips it), plus whatever it_netns_spawn and
# it_netns_pg_start put in it.

# it_netns_start NAME VAR: start the holder, bring its lo up, store the path of
# the namespace (/proc/PID/ns/net) in VAR. Returns 1 (with a note) if the
# machine does not allow it.
it_netns_start() {
    local name=$1 pid ns="" self i
    if ! it_is_root; then
        it_note "a network namespace needs root (unshare --net)"
        return 1
    fi
    command -v unshare >/dev/null && command -v nsenter >/dev/null || {
        it_note "unshare/nsenter not found (util-linux)"
        return 1
    }
    self=$(readlink /proc/self/ns/net)
    it_spawn "$name" "/dev/null" unshare --net -- sleep 100000
    pid=${IT_PIDS[$name]}
    for ((i = 0; i < 100; i++)); do
        ns=$(readlink "/proc/$pid/ns/net" 2>/dev/null) || ns=""
        [ -n "$ns" ] && [ "$ns" != "$self" ] && break
        kill -0 "$pid" 2>/dev/null || break
        ns=""
        sleep 0.05
    done
    if [ -z "$ns" ] || ! nsenter --net="/proc/$pid/ns/net" ip link set lo up 2>/dev/null; then
        it_note "unshare --net did not give a network namespace with a working lo"
        it_stop "$name"
        return 1
    fi
    printf -v "$2" '%s' "/proc/$pid/ns/net"
}

# it_netns_spawn NSPATH NAME LOG CMD...: it_spawn inside the namespace
# (nsenter execs CMD, so IT_PIDS[NAME] is CMD's own pid).
it_netns_spawn() {
    local ns=$1 name=$2 log=$3
    shift 3
    it_spawn "$name" "$log" nsenter --net="$ns" -- "$@"
}

# it_netns_run NSPATH CMD...: run CMD inside the namespace, in the foreground.
it_netns_run() {
    local ns=$1
    shift
    nsenter --net="$ns" -- "$@"
}

# it_netns_wait_port NSPATH PORT SECONDS [PID]: it_wait_port inside the namespace.
it_netns_wait_port() {
    local ns=$1 port=$2 secs=$(($3 * IT_TIME_SCALE)) pid=${4:-} i
    for ((i = 0; i < secs * 20; i++)); do
        nsenter --net="$ns" -- ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# it_netns_pg_start DATADIR PORT CERTDIR ROLE DB PASSWORD NSPATH: it_pg_start
# with the server inside the namespace (listening on ITS 127.0.0.1:PORT).
# Roles are created over the Unix socket in DATADIR (shared filesystem).
# Stopped by it_pg_stop / it_pg_stop_all like any other (pg_ctl signals the
# pid in postmaster.pid; the pid namespace is ours).
it_netns_pg_start() {
    local dir=$1 port=$2 certs=$3 ns=$7
    it_pg_init "$dir" "$port" "$certs"
    IT_PG_STARTED[$dir]=$IT_PG_BINDIR
    (cd / && it_netns_run "$ns" runuser -u "$IT_SVC_USER" -- "$IT_PG_BINDIR/pg_ctl" -D "$dir" \
        -l "$dir/server.log" -w -t 60 start) >/dev/null 2>&1 </dev/null || {
        tail -n 20 "$dir/server.log" >&2
        it_die "PostgreSQL did not start in the network namespace"
    }
    it_pg_roles "$dir" "$port" "$certs" "$4" "$5" "$6"
}

# it_pg_run BINDIR PROGRAM ARGS...: BINDIR/PROGRAM as the service user, with
# BINDIR/../lib (an embedded-postgres package's libraries) on
# LD_LIBRARY_PATH when it exists.
it_pg_run() {
    local bin=$1 prog=$2
    shift 2
    if [ -d "$bin/../lib" ] && [ "$bin" != "$IT_PG_BINDIR" ]; then
        it_as_svc env LD_LIBRARY_PATH="$(cd "$bin/../lib" && pwd)" "$bin/$prog" "$@"
    else
        it_as_svc "$bin/$prog" "$@"
    fi
}

# it_spawn NAME LOG CMD...: run CMD in the background, stdout+stderr to LOG
# (which starts with the command line, for reproducing failures).
it_spawn() {
    local name=$1 log=$2
    shift 2
    {
        printf '# started:'
        printf ' %q' "$@"
        printf '\n'
    } >"$log"
    "$@" >>"$log" 2>&1 </dev/null &
    IT_PIDS[$name]=$!
}

# it_proxy_start NAME LOG LISTEN_PORT PROXY_ARGS...: start the proxy
# ($PGTP_BIN, behind $PGTP_WRAP if set) and wait up to 10 s (times
# IT_TIME_SCALE) for LISTEN_PORT. Fails if it exits first. IT_PIDS[NAME] is
# the proxy's own pid either way (valgrind runs the program in its process).
# IT_NOWRAP=1 (for one call) leaves the prefix out but still sets
# PGTP_WRAP_LOG: for a PGTP_BIN that is a script which must act before the
# wrapper starts (e.g. "ulimit -n 64", then exec $PGTP_WRAP and the proxy;
# memcheck keeps 12 descriptors of the limit for itself).
it_proxy_start() {
    local name=$1 log=$2 port=$3
    shift 3
    if [ ${#IT_WRAP[@]} -gt 0 ] && [ -z "${IT_NOWRAP:-}" ]; then
        PGTP_WRAP_LOG=${log%.log}.wrap it_spawn "$name" "$log" "${IT_WRAP[@]}" "$PGTP_BIN" "$@"
    elif [ ${#IT_WRAP[@]} -gt 0 ]; then
        PGTP_WRAP_LOG=${log%.log}.wrap it_spawn "$name" "$log" "$PGTP_BIN" "$@"
    else
        it_spawn "$name" "$log" "$PGTP_BIN" "$@"
    fi
    it_wait_port "$port" 10 "${IT_PIDS[$name]}"
}

# it_stop NAME: SIGTERM, up to 10 s (times IT_TIME_SCALE), then SIGKILL. Only
# our own child's pid is signalled. Records the exit status in IT_EXIT[NAME].
it_stop() {
    local name=$1 pid=${IT_PIDS[$1]:-} i rc
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200 * IT_TIME_SCALE; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        it_note "$name (pid $pid) ignored SIGTERM for $((10 * IT_TIME_SCALE)) s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    # shellcheck disable=SC2034 # read by the callers
    IT_EXIT[$name]=$rc
    unset "IT_PIDS[$name]"
}

# it_wait_exit NAME SECONDS: for a process that is ending by itself (a proxy
# draining its last session), wait up to SECONDS (times IT_TIME_SCALE) for it
# to exit, then it_stop it. Records the exit status in IT_EXIT[NAME] as
# it_stop does; a SIGTERM sent to a proxy that is already on its way out can
# land after its handlers are gone, so this never sends one while it exits.
it_wait_exit() {
    local name=$1 pid=${IT_PIDS[$1]:-} i rc
    [ -n "$pid" ] || return 0
    for ((i = 0; i < $2 * 20 * IT_TIME_SCALE; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        it_note "$name (pid $pid) has not exited by itself in $(($2 * IT_TIME_SCALE)) s"
        it_stop "$name"
        return 0
    fi
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    # shellcheck disable=SC2034 # read by the callers
    IT_EXIT[$name]=$rc
    unset "IT_PIDS[$name]"
}

it_stop_all() {
    local name
    for name in "${!IT_PIDS[@]}"; do it_stop "$name"; done
}

# it_random_password: 32 hex characters.
it_random_password() {
    openssl rand -hex 16
}

# it_write_passfile FILE ROLE PASSWORD: a libpq passfile (0600) for ROLE.
it_write_passfile() {
    (umask 077 && printf '*:*:*:%s:%s\n' "$2" "$3" >"$1")
}
