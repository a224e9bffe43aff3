#!/bin/sh
# check-docs.sh BIN - every long flag and every PG_TLS_PROXY_* variable that
# `BIN --help` prints must appear in the man page and in the README, and
# those of `BIN connector --help` in their connector sections; and every
# subcommand --help lists in the man page's SYNOPSIS and the README.
#
# --help is generated from the option table in src/options.c, so this keeps
# the hand-written docs in step with the code. Run from the repository root.
# Exit 0 when everything is documented, 1 otherwise (2 on misuse).
set -u

if [ $# -ne 1 ]; then
    echo "usage: $0 BIN" >&2
    exit 2
fi
bin=$1
man_page=man/pg-tls-proxy.1
readme=README.md

for f in "$man_page" "$readme"; do
    if [ ! -r "$f" ]; then
        echo "check-docs: cannot read $f (run from the repository root)" >&2
        exit 2
    fi
done

help=$("$bin" --help) || {
    echo "check-docs: \"$bin --help\" failed" >&2
    exit 2
}

# Both a flag and its own prefix could be printed (--log, --log-format); match
# whole names only. Flags are [a-z0-9-] and variables [A-Z0-9_] (digits as in
# --server-tls12-ciphers), so neither holds a regex metacharacter.
flags=$(printf '%s\n' "$help" | grep -oE -- '--[a-z0-9-]+' | sort -u)
vars=$(printf '%s\n' "$help" | grep -oE 'PG_TLS_PROXY_[A-Z0-9_]+' | sort -u)

if [ -z "$flags" ] || [ -z "$vars" ]; then
    echo "check-docs: found no flags or no variables in \"$bin --help\"" >&2
    exit 2
fi

# roff writes a literal hyphen as \- and may put \% (no hyphenation) or \&
# before a word; drop those so "\%\-\-server\-port" reads "--server-port".
man_text=$(sed -e 's/\\-/-/g' -e 's/\\%//g' -e 's/\\&//g' "$man_page")
readme_text=$(cat "$readme")

passed=0
failed=0

# has TEXT PATTERN: TEXT contains PATTERN as a whole word of [a-zA-Z0-9_-].
has() {
    printf '%s\n' "$1" | grep -qE -- "(^|[^a-zA-Z0-9_-])$2([^a-zA-Z0-9_-]|\$)"
}

for item in $flags $vars; do
    for where in "$man_page" "$readme"; do
        if [ "$where" = "$man_page" ]; then text=$man_text; else text=$readme_text; fi
        if has "$text" "$item"; then
            passed=$((passed + 1))
        else
            echo "missing: $item is not in $where"
            failed=$((failed + 1))
        fi
    done
done

# Subcommands (--help's "Subcommands:" lines, "  pg-tls-proxy NAME ..."):
# each in the man page's SYNOPSIS and, as "pg-tls-proxy NAME", in the README.
subs=$(printf '%s\n' "$help" | awk '/^Subcommands/ { on = 1; next } on && /^$/ { on = 0 }
    on && $1 == "pg-tls-proxy" { print $2 }')
man_synopsis=$(printf '%s\n' "$man_text" | awk '/^\.SH /{ on = ($0 ~ /^\.SH SYNOPSIS/) } on')
for sub in $subs; do
    if printf '%s\n' "$man_synopsis" | grep -qx "\.B $sub"; then
        passed=$((passed + 1))
    else
        echo "missing: subcommand $sub is not in $man_page's SYNOPSIS"
        failed=$((failed + 1))
    fi
    if has "$readme_text" "pg-tls-proxy $sub"; then
        passed=$((passed + 1))
    else
        echo "missing: \"pg-tls-proxy $sub\" is not in $readme"
        failed=$((failed + 1))
    fi
done

# The connector (issue 15) has its own --help: each of its flags and
# variables must be in the man page's CONNECTOR section and the README's
# "Connector options" section (its --config, --log... are not the proxy's).
chelp=$("$bin" connector --help) || {
    echo "check-docs: \"$bin connector --help\" failed" >&2
    exit 2
}
cflags=$(printf '%s\n' "$chelp" | grep -oE -- '--[a-z0-9-]+' | sort -u)
cvars=$(printf '%s\n' "$chelp" | grep -oE 'PG_TLS_PROXY_[A-Z0-9_]+' | sort -u)
if [ -z "$cflags" ] || [ -z "$cvars" ]; then
    echo "check-docs: found no flags or no variables in \"$bin connector --help\"" >&2
    exit 2
fi
man_conn=$(printf '%s\n' "$man_text" | awk '/^\.SH /{ on = ($0 ~ /^\.SH CONNECTOR/) } on')
readme_conn=$(awk '/^## /{ on = ($0 ~ /^## Connector options/) } on' "$readme")
for item in $cflags $cvars; do
    for where in "$man_page" "$readme"; do
        if [ "$where" = "$man_page" ]; then text=$man_conn; else text=$readme_conn; fi
        if has "$text" "$item"; then
            passed=$((passed + 1))
        else
            echo "missing: connector's $item is not in $where (its connector section)"
            failed=$((failed + 1))
        fi
    done
done

# The other direction: every --flag the hand-written docs mention must exist
# (in the proxy's --help, the connector's, or a subcommand's), so that a
# renamed or misspelt option in a guide fails here. Flags of other programs
# that the docs quote are listed by name: adding one is a conscious act.
foreign_flags="
--flag
--format --instance
--leak-check
--rm --ulimit --signal
--attributes --target-group-arn
--cert-name --deploy-hook --dns-cloudflare --dns-route53 --force-renewal --standalone --webroot
--use-system-ca
--now
--build-arg --isolation --layers --network --root --storage-driver --variant
"
sub_help=$("$bin" scram-secret --help 2>&1; "$bin" bridge-secret --help 2>&1) || true
known=$(printf '%s\n%s\n%s\n%s\n' "$help" "$chelp" "$sub_help" "$foreign_flags" |
    grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u)
for doc in "$readme" "$man_page" CHANGELOG.md docs/*.md; do
    [ -r "$doc" ] || continue
    text=$(sed -e 's/\\-/-/g' -e 's/\\%//g' -e 's/\\&//g' "$doc")
    # A flag starts a word: not the tail of "a--b" or of a longer name.
    for flag in $(printf '%s\n' "$text" | grep -oE -- '(^|[^a-zA-Z0-9_-])--[a-z0-9][a-z0-9-]*' |
        grep -oE -- '--[a-z0-9-]+' | sort -u); do
        if printf '%s\n' "$known" | grep -qxF -- "$flag"; then
            passed=$((passed + 1))
        else
            echo "unknown: $doc mentions $flag, which no --help prints (a renamed option?)"
            failed=$((failed + 1))
        fi
    done
done

# A newcomer's walk through the README's commands (issue 11, item 20).
doc_check() { # doc_check NAME CONDITION...
    name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        echo "README: $name"
        failed=$((failed + 1))
    fi
}
# Each shell block that downloads into a directory creates it first.
curl_without_mkdir() {
    awk '/^```sh/ { blk = 1; made = ""; next } /^```/ { blk = 0; next }
        blk && /mkdir -p/ { for (i = 1; i <= NF; i++) if ($i ~ /^\//) made = made " " $i }
        blk && /curl .*-[a-zA-Z]*o / { for (i = 1; i <= NF; i++) if ($i ~ /^\// ) {
            d = $i; sub(/\/[^\/]*$/, "", d); if (index(made " ", " " d " ") == 0) bad = 1 } }
        END { exit bad ? 0 : 1 }' "$readme"
}
doc_check "a curl -o into a directory that the same block does not mkdir -p" \
    eval '! curl_without_mkdir'
# sslrootcert=system is libpq 16+: Debian 12's psql (libpq 15) needs a file.
doc_check "sslrootcert=system is given without the libpq 15 form (a CA file)" \
    grep -q 'sslrootcert=/etc/ssl/certs/ca-certificates.crt' "$readme"
doc_check "the libpq 16 requirement of sslrootcert=system is not stated" \
    grep -q 'root certificate file "system" does not exist' "$readme"
# pgJDBC ignores libpq's channel_binding: both spellings are named.
for spelling in channel_binding=disable channelBinding=disable; do
    doc_check "channel binding: $spelling is not named" grep -q "$spelling" "$readme"
done

echo "docs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
