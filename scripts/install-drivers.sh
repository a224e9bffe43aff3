#!/usr/bin/env bash
# Put the client drivers of issue 13's login tests (tests/integration/auth.sh)
# in a cache that survives the run: pgJDBC 42.7 and postgres.js 4. Debian's
# packages (psycopg2, psycopg 3, a JDK) are installed by scripts/install-deps.sh,
# which calls this script.
#
#   scripts/install-drivers.sh          prints one summary line
#   scripts/install-drivers.sh --dir    prints only the cache directory
#
# pgJDBC: Debian 12 ships 42.5, whose channelBinding does not exist yet; 42.7
# (channelBinding=prefer by default, the client the issue is about) comes
# from Debian 13's libpostgresql-jdbc-java. Its .deb is downloaded with a
# private apt state (its own sources list, lists and cache under the cache
# directory: the machine's apt configuration is not touched), its sha256 is
# checked against the pin below, and the jar is unpacked with dpkg-deb -x.
# The package is never installed. (The jar bundles its SCRAM library.)
#
# postgres.js: the npm package "postgres" at the exact version of
# tests/integration/drivers/package.json, installed with `npm ci` from the
# committed lock file (which carries the tarball's sha512), through the
# registry npm is configured for.
#
# Cache: $PGTP_DRIVERS_CACHE if set, else /var/cache/pg-tls-proxy/drivers when
# root, else ${XDG_CACHE_HOME:-~/.cache}/pg-tls-proxy/drivers. A component
# whose stamp matches its pin is reused without any network access; each is
# built in a temporary directory and renamed into place, so an interrupted
# run leaves nothing that looks complete. A failure exits 1 with a line that
# says which component; the tests that need it then fail, never skip.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
JDBC_SUITE=trixie
JDBC_PKG=libpostgresql-jdbc-java
JDBC_VERSION=42.7.7-1
JDBC_SHA256=4c073f02ce43f6c6fde57cc687db007fe73f65f1d7048f0a6740b0116f1554d1
NODE_SPEC=$HERE/tests/integration/drivers

die() {
    echo "install-drivers: $*" >&2
    exit 1
}

if [ -n "${PGTP_DRIVERS_CACHE:-}" ]; then
    ROOT=$PGTP_DRIVERS_CACHE
elif [ "$(id -u)" = 0 ]; then
    ROOT=/var/cache/pg-tls-proxy/drivers
else
    ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/pg-tls-proxy/drivers
fi
if [ "${1:-}" = --dir ]; then
    echo "$ROOT"
    exit 0
fi
mkdir -p "$ROOT"
chmod 755 "$ROOT" "$(dirname "$ROOT")" 2>/dev/null || true
exec 9>"$ROOT/.lock" # two suites at once: one installs, the other waits
flock -w 600 9 || die "waited 10 min for $ROOT/.lock"

TMPS=()
trap 'rm -rf "${TMPS[@]}"' EXIT
did=()

# ---- pgJDBC 42.7 from Debian 13 ----
jdbc_dir=$ROOT/jdbc-$JDBC_VERSION
if [ "$(cat "$jdbc_dir/.sha256" 2>/dev/null)" != "$JDBC_SHA256" ] ||
    ! compgen -G "$jdbc_dir/postgresql-*.jar" >/dev/null; then
    tmp=$(mktemp -d "$ROOT/.jdbc.XXXXXX")
    TMPS+=("$tmp")
    chmod 755 "$tmp" # apt's download runs as _apt unless told otherwise
    mkdir -p "$tmp/state/lists/partial" "$tmp/cache/archives/partial" "$tmp/etc/parts" \
        "$tmp/etc/prefs"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
        "http://deb.debian.org/debian $JDBC_SUITE main" >"$tmp/etc/sources.list"
    apt_opts=(-q -o "Dir::State=$tmp/state" -o "Dir::State::status=/dev/null"
        -o "Dir::Cache=$tmp/cache" -o "Dir::Etc::SourceList=$tmp/etc/sources.list"
        -o "Dir::Etc::SourceParts=$tmp/etc/parts" -o "Dir::Etc::Parts=$tmp/etc/parts"
        -o "Dir::Etc::Preferences=$tmp/etc/prefs/none"
        -o "Dir::Etc::PreferencesParts=$tmp/etc/prefs" -o "Acquire::Languages=none"
        -o "APT::Sandbox::User=root")
    apt-get "${apt_opts[@]}" update >"$tmp/apt.log" 2>&1 ||
        die "apt-get update for Debian $JDBC_SUITE failed: $(tail -n 3 "$tmp/apt.log")"
    (cd "$tmp" && apt-get "${apt_opts[@]}" download "$JDBC_PKG=$JDBC_VERSION") \
        >>"$tmp/apt.log" 2>&1 ||
        die "apt-get download $JDBC_PKG=$JDBC_VERSION failed: $(tail -n 3 "$tmp/apt.log")"
    deb=$(compgen -G "$tmp/${JDBC_PKG}_*.deb" | head -n 1) || true
    [ -n "$deb" ] || die "apt-get download wrote no $JDBC_PKG .deb"
    got=$(sha256sum "$deb" | cut -d' ' -f1)
    [ "$got" = "$JDBC_SHA256" ] ||
        die "$JDBC_PKG $JDBC_VERSION: sha256 $got differs from the pinned $JDBC_SHA256; not used"
    dpkg-deb -x "$deb" "$tmp/x"
    mkdir "$tmp/out"
    find "$tmp/x/usr/share/java" -maxdepth 1 -type f -name 'postgresql-*.jar' \
        -exec cp {} "$tmp/out/" \;
    compgen -G "$tmp/out/postgresql-*.jar" >/dev/null || die "no postgresql-*.jar in the .deb"
    echo "$JDBC_SHA256" >"$tmp/out/.sha256"
    chmod -R a+rX "$tmp/out"
    rm -rf "$jdbc_dir"
    mv "$tmp/out" "$jdbc_dir"
    did+=("pgJDBC $JDBC_VERSION")
fi

# ---- postgres.js from the committed lock file ----
lock_sum=$(cat "$NODE_SPEC/package.json" "$NODE_SPEC/package-lock.json" | sha256sum | cut -d' ' -f1)
node_dir=$ROOT/node
if [ "$(cat "$node_dir/.sha256" 2>/dev/null)" != "$lock_sum" ] ||
    [ ! -f "$node_dir/node_modules/postgres/package.json" ]; then
    command -v npm >/dev/null || die "npm not found (scripts/install-deps.sh installs it)"
    tmp=$(mktemp -d "$ROOT/.node.XXXXXX")
    TMPS+=("$tmp")
    cp "$NODE_SPEC/package.json" "$NODE_SPEC/package-lock.json" "$tmp/"
    npm ci --prefix "$tmp" --loglevel=error --no-audit --no-fund >"$tmp/npm.log" 2>&1 ||
        die "npm ci (postgres.js) failed: $(tail -n 3 "$tmp/npm.log")"
    rm -f "$tmp/npm.log"
    echo "$lock_sum" >"$tmp/.sha256"
    chmod -R a+rX "$tmp"
    rm -rf "$node_dir"
    mv "$tmp" "$node_dir"
    did+=("postgres.js $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' \
        "$node_dir/node_modules/postgres/package.json" | head -n 1)")
fi

if [ ${#did[@]} -eq 0 ]; then
    echo "install-drivers: pgJDBC and postgres.js present in $ROOT"
else
    echo "install-drivers: installed ${did[*]} in $ROOT"
fi
