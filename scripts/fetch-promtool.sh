#!/usr/bin/env bash
# Print the path of a promtool (Prometheus' rule and metrics checker) for
# tests/check-observability.sh, fetching it on first use.
#
#   scripts/fetch-promtool.sh        prints the path of promtool
#
# promtool ships in Debian's "prometheus" package, which is not installed:
# its postinst would create a user and start a Prometheus server. Instead its
# .deb is downloaded with apt-get download (apt checks it against the signed
# archive index, as for an install) and unpacked with dpkg-deb -x; only
# usr/bin/promtool is kept. Debian 12's package is 19 MB and takes about a
# second on a fast mirror; the binary is cached in $PGTP_TOOLS_CACHE (default
# build/tools, so make clean removes it) and reused without network access.
# A promtool on PATH is used as it is. A failure exits 1 naming the step:
# the checks that need promtool then fail, never skip.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${PGTP_TOOLS_CACHE:-$HERE/build/tools}

die() {
    echo "fetch-promtool: $*" >&2
    exit 1
}

if command -v promtool >/dev/null; then
    command -v promtool
    exit 0
fi
if [ -x "$CACHE/promtool" ]; then
    echo "$CACHE/promtool"
    exit 0
fi

mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.promtool.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt's download runs as _apt unless told otherwise

SUDO=()
[ "$(id -u)" = 0 ] || SUDO=(sudo)
# No package lists yet (a fresh container): fetch them once.
if ! apt-cache show prometheus >/dev/null 2>&1; then
    "${SUDO[@]}" apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
fi
start=$SECONDS
(cd "$tmp" && apt-get download -q -o APT::Sandbox::User="$(id -un)" prometheus \
    >"$tmp/apt.log" 2>&1) || {
    cat "$tmp/apt.log" >&2
    die "apt-get download prometheus failed (the checks need its promtool)"
}
deb=$(compgen -G "$tmp/prometheus_*.deb" | head -n 1) || die "no prometheus .deb downloaded"
dpkg-deb -x "$deb" "$tmp/root" || die "dpkg-deb -x $deb failed"
[ -x "$tmp/root/usr/bin/promtool" ] || die "$deb has no usr/bin/promtool"
mv -f "$tmp/root/usr/bin/promtool" "$CACHE/promtool"
echo "fetch-promtool: $(basename "$deb") ($(du -k "$deb" | cut -f1) KB) in" \
    "$((SECONDS - start)) s -> $CACHE/promtool" >&2
echo "$CACHE/promtool"
