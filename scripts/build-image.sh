#!/usr/bin/env bash
# build-image.sh - build the container image from the repository's Dockerfile
# with buildah, on a Debian bookworm base image made with debootstrap: no
# Docker engine and no registry needed.
#
#   scripts/build-image.sh          (make image; root: debootstrap and
#                                    buildah's chroot isolation need it)
#
# 1. The base: `debootstrap --variant=minbase bookworm` with the packages the
#    Dockerfile's runtime stage installs (read from its apt-get line, so the
#    two cannot drift), packed as a tarball in the cache and imported into
#    buildah as localhost/pg-tls-proxy-base:bookworm-KEY, KEY being a hash of
#    the suite, mirror and package list. Made once: later builds reuse it.
# 2. `buildah bud` of the Dockerfile with BASE_IMAGE set to that base, chroot
#    isolation (no container runtime needed), the host's network (the build
#    stage runs apt-get) and Docker's image format (OCI's has no
#    HEALTHCHECK). --layers keeps the build stage's apt-get layer between runs.
# 3. `buildah push` to a docker-archive, build/image/pg-tls-proxy.tar by
#    default: what tests/check-image.sh unpacks and runs, and what
#    `docker load -i` or `podman load -i` take.
#
# Cache: $PGTP_IMAGE_CACHE, else /var/cache/pg-tls-proxy/image (root). It
# holds the base tarball and buildah's storage, storage-DRIVER/ (overlay
# where it can be mounted, else vfs; PGTP_IMAGE_STORAGE_DRIVER forces one;
# untagged layers are pruned after each build). Variables: PGTP_IMAGE_OUT
# (the archive; empty: none), PGTP_IMAGE_TAG (default
# localhost/pg-tls-proxy:latest), PGTP_DEBIAN_MIRROR (default
# http://deb.debian.org/debian). To use the image with buildah or podman
# directly, give them the same storage:
#   buildah --root /var/cache/pg-tls-proxy/image/storage-overlay --storage-driver overlay images
# Prints one line per step with its time in seconds, then the archive's path.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DOCKERFILE=$REPO/Dockerfile
SUITE=bookworm
MIRROR=${PGTP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
TAG=${PGTP_IMAGE_TAG:-localhost/pg-tls-proxy:latest}
OUT=${PGTP_IMAGE_OUT-$REPO/build/image/pg-tls-proxy.tar}
CACHE=${PGTP_IMAGE_CACHE:-/var/cache/pg-tls-proxy/image}

say() { printf 'build-image: %s\n' "$*"; }
die() {
    printf 'build-image: %s\n' "$*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || die "run as root: debootstrap and buildah's chroot isolation need it"
for cmd in debootstrap buildah; do
    command -v "$cmd" >/dev/null ||
        die "$cmd not found: scripts/install-deps.sh installs it (Debian package $cmd)"
done
[ -r "$DOCKERFILE" ] || die "cannot read $DOCKERFILE"

# The runtime stage's packages: the last "apt-get install" of the Dockerfile,
# continuation lines joined, options and shell words dropped.
runtime_packages() {
    awk '/\\$/ { sub(/\\$/, ""); line = line $0; next } { print line $0; line = "" }' \
        "$DOCKERFILE" | grep -E '^RUN .*apt-get install' | tail -n 1 |
        sed -E 's/.*apt-get install//; s/&&.*//' | tr ' ' '\n' | grep -Ev '^(-.*)?$' | sort -u
}
mapfile -t PKGS < <(runtime_packages)
[ ${#PKGS[@]} -gt 0 ] || die "no apt-get install line in the Dockerfile's runtime stage"
KEY=$(printf '%s\n' "$SUITE" "$MIRROR" "${PKGS[@]}" | sha256sum | cut -c1-12)
BASE_TAR=$CACHE/base-$SUITE-$KEY.tar
BASE_IMAGE=localhost/pg-tls-proxy-base:$SUITE-$KEY

mkdir -p "$CACHE"
# buildah's storage driver: overlay where the kernel lets us mount it (a
# layer costs only its changes), else vfs (a full copy of the file system
# per layer: slow, but it works anywhere). Chosen once, kept in
# $CACHE/driver, where tests/check-image.sh reads it too.
DRIVER=${PGTP_IMAGE_STORAGE_DRIVER:-$(cat "$CACHE/driver" 2>/dev/null || true)}
storage() { # DRIVER: buildah's global options for that driver's storage
    printf '%s\n' --root "$CACHE/storage-$1" --runroot "$CACHE/run-$1" --storage-driver "$1"
}
if [ -z "$DRIVER" ]; then
    mapfile -t opts < <(storage overlay)
    DRIVER=vfs
    if probe=$(buildah "${opts[@]}" from scratch 2>/dev/null); then
        buildah "${opts[@]}" mount "$probe" >/dev/null 2>&1 && DRIVER=overlay
        buildah "${opts[@]}" rm "$probe" >/dev/null 2>&1 || true
    fi
fi
echo "$DRIVER" >"$CACHE/driver"
mapfile -t opts < <(storage "$DRIVER")
BUILDAH=(buildah "${opts[@]}")

# ---- 1. the base tarball (debootstrap), then the base image ----
t0=$SECONDS
if [ -s "$BASE_TAR" ]; then
    say "base: $BASE_TAR (cached)"
else
    say "base: debootstrap --variant=minbase $SUITE with ${PKGS[*]} (first time: about a minute)"
    work=$(mktemp -d "$CACHE/debootstrap.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    pkgs=$(
        IFS=,
        echo "${PKGS[*]}"
    )
    debootstrap --variant=minbase --include="$pkgs" "$SUITE" "$work/root" "$MIRROR" \
        >"$work/debootstrap.log" 2>&1 || {
        tail -n 20 "$work/debootstrap.log" >&2
        die "debootstrap failed (log above)"
    }
    # What a base image leaves out: package lists and downloaded .debs.
    rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/archives/"*.deb
    tar --numeric-owner --xattrs -C "$work/root" -cf "$work/base.tar" .
    mv "$work/base.tar" "$BASE_TAR"
    rm -rf "$work"
    trap - EXIT
    say "base: debootstrap done in $((SECONDS - t0)) s ($(du -h "$BASE_TAR" | cut -f1))"
fi
if ! "${BUILDAH[@]}" inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    t1=$SECONDS
    ctr=$("${BUILDAH[@]}" from scratch)
    "${BUILDAH[@]}" add "$ctr" "$BASE_TAR" / >/dev/null
    # Debian's own images set only PATH; the Dockerfile sets the rest.
    "${BUILDAH[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        "$ctr"
    "${BUILDAH[@]}" commit -q --format docker --rm "$ctr" "$BASE_IMAGE" >/dev/null
    say "base: imported as $BASE_IMAGE in $((SECONDS - t1)) s"
fi
say "base: ready in $((SECONDS - t0)) s (storage driver $DRIVER)"

# ---- 2. the Dockerfile, built on that base ----
# Each line of buildah's output prefixed with the seconds since the build
# started, so that bud.log shows where the time goes.
stamp() {
    local start=$SECONDS line
    while IFS= read -r line; do printf '%4d %s\n' $((SECONDS - start)) "$line"; done
}
t2=$SECONDS
revision=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
"${BUILDAH[@]}" bud --isolation chroot --network host --format docker --layers \
    --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --label org.opencontainers.image.title=pg-tls-proxy \
    --label org.opencontainers.image.revision="$revision" \
    -f "$DOCKERFILE" -t "$TAG" "$REPO" 2>&1 | stamp >"$CACHE/bud.log" || {
    tail -n 30 "$CACHE/bud.log" >&2
    die "buildah bud failed (log above; all of it in $CACHE/bud.log)"
}
say "image: $TAG built in $((SECONDS - t2)) s"
# The build stage's apt-get layer (the image after its first RUN), tagged so
# that the prune below keeps it and the next build says "Using cache" there:
# installing the compiler is most of a build's time.
deps=$(awk '$2 ~ /^\[1\/[0-9]+\]$/ && $5 == "RUN" { on = 1; next }
    on && $2 == "-->" { print $NF; exit }' "$CACHE/bud.log")
if [ -n "$deps" ]; then
    "${BUILDAH[@]}" tag "$deps" "localhost/pg-tls-proxy-build-deps:$SUITE-$KEY" >/dev/null
fi

# Untagged images (this build's intermediate layers, and what earlier
# builds tagged and this one replaced): without this the vfs storage grows
# by several full copies of a root file system per build.
"${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true

# ---- 3. the archive ----
if [ -z "$OUT" ]; then
    say "archive: not written (PGTP_IMAGE_OUT is empty); total $((SECONDS - t0)) s"
    exit 0
fi
t3=$SECONDS
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT"
"${BUILDAH[@]}" push -q "$TAG" "docker-archive:$OUT:${TAG#localhost/}" >/dev/null
say "archive: $OUT ($(du -h "$OUT" | cut -f1)) in $((SECONDS - t3)) s; total $((SECONDS - t0)) s"
