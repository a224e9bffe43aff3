# shellcheck shell=bash
# scramsecret section of tests/integration/run.sh (sourced; uses its helpers).
#
# Issue 13: `pg-tls-proxy scram-secret USER` prints an auth-file line and an
# ALTER ROLE statement. Applied to the real PostgreSQL, the server must hold
# exactly the printed verifier and accept the password with it, directly
# (not through the proxy), with SCRAM channel binding required. The user
# name has quotes in it and the password non-ASCII characters (one that
# SASLprep maps), so quoting and SASLprep are both proven against the
# server's own implementation.
SS_T0=$SECONDS
CUR_LOG=

ss_sql() {
    it_as_svc timeout 30 "$IT_PG_BINDIR/psql" -X -q -A -t -h "$PGDATA_DIR" -p "$PGPORT" \
        -U postgres -d postgres -v ON_ERROR_STOP=1 "$@" 2>&1
}
# ss_login PASSWORD: log in directly as the role, verify-full, binding required.
ss_login() {
    PGPASSWORD=$1 timeout -k 5 30 psql -X -A -t -q \
        "host=localhost hostaddr=127.0.0.1 port=$PGPORT user='scram \"q\" user' dbname=app \
sslmode=verify-full sslrootcert=$CERTS/db-ca.crt channel_binding=require connect_timeout=20" \
        -c "SELECT 'in as ' || current_user" 2>&1
}

SS_ROLE='scram "q" user'
# Random ASCII, then ä, a no-break space (SASLprep makes it a space) and ö.
SS_PW="$(openssl rand -hex 8)-p$(printf '\xc3\xa4')ss$(printf '\xc2\xa0')w$(printf '\xc3\xb6')rd"
ss_sql -c "CREATE ROLE \"scram \"\"q\"\" user\" LOGIN" >/dev/null
ss_sql -c "GRANT CONNECT ON DATABASE app TO PUBLIC" >/dev/null

out=$(printf '%s\n' "$SS_PW" | "$PGTP_BIN" scram-secret "$SS_ROLE" 2>&1)
SS_LINE1=$(printf '%s\n' "$out" | sed -n 1p)
SS_LINE2=$(printf '%s\n' "$out" | sed -n 2p)
expect "scram-secret: the auth-file line, the user's quotes doubled" "$SS_LINE1" \
    '^"scram ""q"" user" "SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}"$'
expect "scram-secret: the ALTER ROLE line, exactly two lines in all" \
    "$SS_LINE2|$(printf '%s\n' "$out" | wc -l)" \
    "^ALTER ROLE \"scram \"\"q\"\" user\" PASSWORD 'SCRAM-SHA-256\\\$4096:[^']+';\\|2$"
SS_VERIFIER=${SS_LINE1#*\" \"}
SS_VERIFIER=${SS_VERIFIER%\"}
case "$out" in
*"$SS_PW"*) fail "scram-secret: the password appears in the output" ;;
*) pass "scram-secret: the password is not in the output" ;;
esac

out=$(printf '%s\n' "$SS_LINE2" | ss_sql)
expect "scram-secret: PostgreSQL takes the ALTER ROLE line" "$out" '^$'
out=$(ss_sql -c "SELECT rolpassword FROM pg_authid WHERE rolname = 'scram \"q\" user'")
if [ -n "$SS_VERIFIER" ] && [ "$out" = "$SS_VERIFIER" ]; then
    pass "scram-secret: pg_authid holds exactly the printed verifier"
else
    fail "scram-secret: pg_authid holds '$out', printed '$SS_VERIFIER'"
fi
out=$(ss_login "$SS_PW")
expect "scram-secret: the password logs in directly (verify-full, channel_binding=require)" \
    "$out" '^in as scram "q" user$'
out=$(ss_login "${SS_PW}x")
expect "scram-secret: another password is refused by the server" "$out" \
    'password authentication failed for user "scram "q" user"'
# The same password with U+00A0 typed as a plain space: SASLprep makes
# both the same, in libpq and in the verifier alike.
out=$(ss_login "${SS_PW//$(printf '\xc2\xa0')/ }")
expect "scram-secret: SASLprep agrees with the server (no-break space = space)" \
    "$out" '^in as scram "q" user$'

out=$("$PGTP_BIN" scram-secret "$SS_ROLE" </dev/null 2>&1)
expect "scram-secret: no password on stdin -> exit 1 and says so" "$?|$out" \
    '^1\|scram-secret: no password on standard input'
out=$(printf 'x\n' | "$PGTP_BIN" scram-secret 2>&1)
expect "scram-secret: no user -> exit 2 with the usage" "$?|$out" \
    '^2\|usage: pg-tls-proxy scram-secret USER'

ss_sql -c "DROP ROLE \"scram \"\"q\"\" user\"" >/dev/null
it_note "scramsecret section: $((SECONDS - SS_T0)) s"
