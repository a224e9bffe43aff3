#!/usr/bin/env bash
# make-deb.sh - build the Debian package from a staged "make install".
#
#   scripts/make-deb.sh BUILD_DIR VERSION        (make deb does this)
#
# Stages "make install DESTDIR=... PREFIX=/usr" (binary, man page, CA
# bundles, systemd units, /etc/default files, the empty
# /etc/pg-tls-proxy/ca-bundles/custom/), strips the binary, compresses the
# man page, adds the copyright file, control, conffiles, md5sums and the
# maintainer scripts of packaging/deb/, and builds
# BUILD_DIR/pg-tls-proxy_<version>_<arch>.deb with dpkg-deb
# --root-owner-group (no fakeroot). Prints the package's path last.
#
# Depends: dpkg-shlibdeps (dpkg-dev) reads the binary's libraries and their
# packages' symbols files, so the minimum versions are the ones the binary
# needs, not those of the build machine; plus adduser for postinst.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 BUILD_DIR VERSION" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
VERSION=$2
for tool in dpkg-deb dpkg-shlibdeps dpkg-architecture strip gzip md5sum; do
    command -v "$tool" >/dev/null || {
        echo "make-deb: $tool not found (Debian package dpkg-dev / binutils)" >&2
        exit 1
    }
done

# deb_version VERSION: a version dpkg accepts and orders right. git
# describe's 0.2.0-3-gabc1234 becomes 0.2.0+git3.gabc1234 (after 0.2.0,
# before 0.2.1); -dirty becomes +dirty; a leading v goes; any other hyphen
# (dpkg reads the last one as the Debian revision) becomes ~; a version that
# does not start with a digit gets 0~ in front.
deb_version() {
    local v=${1#v}
    v=$(printf '%s' "$v" | sed -E 's/-([0-9]+)-g([0-9a-f]+)/+git\1.g\2/; s/-dirty$/+dirty/; s/-/~/g; s/[^A-Za-z0-9.+~]/./g')
    [[ $v =~ ^[0-9] ]] || v=0~$v
    printf '%s\n' "$v"
}

DEBVER=$(deb_version "$VERSION")
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
STAGE=$BUILD/deb/root
WORK=$BUILD/deb/work
rm -rf "$BUILD/deb"
mkdir -p "$STAGE" "$WORK/debian"

make -s -C "$ROOT" install DESTDIR="$STAGE" PREFIX=/usr SYSCONFDIR=/etc \
    SYSTEMDUNITDIR=/lib/systemd/system BUILD="$BUILD" >/dev/null
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$STAGE/usr/bin/pg-tls-proxy"
gzip -9n "$STAGE/usr/share/man/man1/pg-tls-proxy.1"
DOC=$STAGE/usr/share/doc/pg-tls-proxy
MAINT=${DEB_MAINTAINER:-pg-tls-proxy maintainers <root@localhost>}
install -D -m 644 "$ROOT/LICENSE" "$DOC/copyright"
# A native package's changelog (Debian format, one entry): the date of the
# commit built (SOURCE_DATE_EPOCH wins), so that two builds of one commit
# match. What changed for users is in CHANGELOG.md, shipped too when present.
when=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}
printf 'pg-tls-proxy (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n -- %s  %s\n' \
    "$DEBVER" "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo "a source tree, version $VERSION")" \
    "$MAINT" "$(LC_ALL=C date -R -u -d "@$when")" | gzip -9n >"$DOC/changelog.gz"
if [ -f "$ROOT/CHANGELOG.md" ]; then
    gzip -9nc "$ROOT/CHANGELOG.md" >"$DOC/CHANGELOG.md.gz"
fi

# dpkg-shlibdeps wants a debian/control to read; a minimal one will do.
printf 'Source: pg-tls-proxy\n\nPackage: pg-tls-proxy\nArchitecture: any\n' >"$WORK/debian/control"
shlibs=$(cd "$WORK" && dpkg-shlibdeps -O "$STAGE/usr/bin/pg-tls-proxy" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "make-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

install -d "$STAGE/DEBIAN"
install -m 755 "$ROOT"/packaging/deb/{postinst,prerm,postrm} "$STAGE/DEBIAN/"
# dpkg keeps conffiles the operator changed, asks on upgrade, deletes on purge.
(cd "$STAGE" && find etc -type f | sed 's|^|/|' | sort) >"$STAGE/DEBIAN/conffiles"
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum) >"$STAGE/DEBIAN/md5sums"
size_kb=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat >"$STAGE/DEBIAN/control" <<EOF
Package: pg-tls-proxy
Version: $DEBVER
Architecture: $ARCH
Maintainer: $MAINT
Installed-Size: $size_kb
Depends: $shlibs, adduser
Section: database
Priority: optional
Description: PostgreSQL TLS proxy: verify-full for clients and upstream
 pg-tls-proxy accepts PostgreSQL clients over TLS with its own certificate
 (verify-full against a public CA works) and connects to the database with
 TLS verified against the database's private CA (AWS RDS, Cloud SQL, Azure).
 .
 This package ships the binary, its man page, the AWS RDS and Mozilla CA
 bundles, systemd units (pg-tls-proxy, pg-tls-proxy-connector; not enabled:
 configure /etc/default/pg-tls-proxy first) and the pgtp system user.
EOF

DEB=$BUILD/pg-tls-proxy_${DEBVER}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
