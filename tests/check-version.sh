#!/usr/bin/env bash
# check-version.sh BIN - the version the binary prints is the one the tree's
# git history (or its VERSION file) says, and scripts/version.sh's scheme
# holds in every kind of copy of the sources.
#
#   tests/check-version.sh build/pg-tls-proxy        (make check-version)
#
# Checks, in this tree and in throw-away clones and exports under $TMPDIR
# (tags are made only in those clones, never in this repository):
#   - `BIN --version` and `BIN connector --version` print `make print-version`,
#     which is git describe's answer rewritten by the scheme, and so do the
#     running proxy's event=started line and pg_tls_proxy_build_info;
#   - at a tag, after a tag, with no tag, with uncommitted changes;
#   - a `git archive` export (no .git) of a tagged and of an untagged commit,
#     also when unpacked inside another git repository;
#   - a copy with neither .git nor git archive's substitutions: VERSION;
#   - every answer is a valid Debian version, and later builds sort later.
# Prints "version: N passed, M failed"; exits 1 if anything failed (2 on misuse).
# Takes about 3 s (no compiler run: the exports are asked with make print-version).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BIN" >&2
    exit 2
fi
bin=$1
repo=$(cd "$(dirname "$0")/.." && pwd)
command -v git >/dev/null || {
    echo "check-version: git not found" >&2
    exit 2
}

pass=0
fail=0
expect() { # expect WHAT GOT WANT
    if [ "$2" = "$3" ]; then
        pass=$((pass + 1))
    else
        echo "FAIL $1: got '$2', want '$3'"
        fail=$((fail + 1))
    fi
}
valid() { # valid VERSION: starts with a digit, only [0-9A-Za-z.+], dpkg agrees
    local ok=no
    if [[ $1 =~ ^[0-9][0-9A-Za-z.+~]*$ ]]; then ok=yes; fi
    if [ $ok = yes ] && command -v dpkg >/dev/null && ! dpkg --validate-version "$1" 2>/dev/null; then
        ok=no
    fi
    expect "'$1' is a valid Debian version" "$ok" yes
}
later() { # later A B: dpkg sorts B after A
    command -v dpkg >/dev/null || return 0
    local ok=no
    if dpkg --compare-versions "$1" lt "$2"; then ok=yes; fi
    expect "'$2' sorts after '$1'" "$ok" yes
}
ver() { # ver DIR: what make says DIR's sources build
    make -s -C "$1" --no-print-directory print-version || echo "(make print-version failed in $1)"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-version.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

base=$(tr -d ' \t\r\n' <"$repo/VERSION")

# 1. This tree: the binary says what make says, and make says git describe.
want=$(ver "$repo")
valid "$want"
expect "--version" "$("$bin" --version)" "pg-tls-proxy $want"
expect "connector --version" "$("$bin" connector --version)" "pg-tls-proxy connector $want"
if [ -e "$repo/.git" ]; then
    d=$(git -C "$repo" describe --tags --match 'v[0-9]*' --always --dirty)
    n=$(git -C "$repo" rev-list --count HEAD)
    case $d in
    v*) ;; # the tag cases are checked in the clone below
    *-dirty) expect "git describe (no tag, dirty)" "$want" "$base+$n.g${d%-dirty}.dirty" ;;
    *) expect "git describe (no tag)" "$want" "$base+$n.g$d" ;;
    esac
fi

# The running proxy shows it too: the event=started line and the metric
# pg_tls_proxy_build_info{version} (a self-signed certificate, loopback
# ports, no upstream contacted).
port_of() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
if command -v openssl >/dev/null && command -v python3 >/dev/null && command -v curl >/dev/null; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost -keyout "$tmp/key.pem" -out "$tmp/crt.pem" 2>/dev/null
    port=$(port_of)
    aport=$(port_of)
    "$bin" --server-certificate-path "$tmp/crt.pem" --server-private-key-path "$tmp/key.pem" \
        --server-host 127.0.0.1 --server-port "$port" --client-connection-host-or-ip 127.0.0.1 \
        --client-connection-port 1 --client-tls-validation-host localhost \
        --client-ca-roots-path "$tmp/crt.pem" --admin-address "127.0.0.1:$aport" --workers 1 \
        </dev/null >"$tmp/proxy.log" 2>&1 &
    ppid_=$!
    for _ in $(seq 100); do
        grep -q 'event=started' "$tmp/proxy.log" && break
        sleep 0.1
    done
    expect "event=started version=" "$(sed -n 's/.*event=started version=\([^ ]*\).*/\1/p' "$tmp/proxy.log")" "$want"
    expect "pg_tls_proxy_build_info{version}" \
        "$(curl -s "http://127.0.0.1:$aport/metrics" | sed -n 's/^pg_tls_proxy_build_info{version="\([^"]*\)".*} 1$/\1/p')" "$want"
    kill -TERM "$ppid_" 2>/dev/null || true
    wait "$ppid_" 2>/dev/null || true
else
    expect "openssl, python3 and curl (to start the proxy) are installed" no yes
fi

# 2. A clone where this test may make tags: the scheme, case by case.
git clone -q --shared "$repo" "$tmp/clone" 2>/dev/null || git clone -q "$repo" "$tmp/clone"
c=$tmp/clone
gc() { git -C "$c" -c user.name=check -c user.email=check@localhost "$@"; }
git -C "$c" tag -l | xargs -r git -C "$c" tag -d >/dev/null
# The clone gets this tree's versioning files as they are now, committed or not.
for f in Makefile VERSION .gitattributes scripts/version.sh scripts/version-archive.txt; do
    cp "$repo/$f" "$c/$f"
done
gc add -A
gc commit -q --allow-empty -m "this tree's versioning files"
sha=$(git -C "$c" rev-parse --short HEAD)
n=$(git -C "$c" rev-list --count HEAD)
expect "no tag" "$(ver "$c")" "$base+$n.g$sha"
gc tag -a v7.8.9 -m v7.8.9
expect "at tag v7.8.9" "$(ver "$c")" "7.8.9"
gc tag -a not-a-release -m x
expect "a tag that is not v<digit> is ignored" "$(ver "$c")" "7.8.9"
echo "# change" >>"$c/VERSION.note"
git -C "$c" add VERSION.note
expect "at tag, uncommitted change" "$(ver "$c")" "7.8.9+dirty"
gc commit -q -m "one more"
sha2=$(git -C "$c" rev-parse --short HEAD)
after=$(ver "$c")
expect "one commit after the tag" "$after" "7.8.9+1.g$sha2"
valid "$after"
later 7.8.9 "$after"
echo "# change" >>"$c/VERSION.note"
expect "after the tag, dirty" "$(ver "$c")" "7.8.9+1.g$sha2.dirty"
later "$after" "$(ver "$c")"

# A pre-release tag (semver's vX.Y.Z-rc1): Debian's "~", before the release.
git -C "$c" stash -q
gc tag -a v8.0.0-rc1 -m v8.0.0-rc1
expect "at tag v8.0.0-rc1" "$(ver "$c")" "8.0.0~rc1"
valid "$(ver "$c")"
later 8.0.0~rc1 8.0.0
later 7.8.9+1.g"$sha2" 8.0.0~rc1
gc commit -q --allow-empty -m "after the rc"
sha3=$(git -C "$c" rev-parse --short HEAD)
expect "one commit after v8.0.0-rc1" "$(ver "$c")" "8.0.0~rc1+1.g$sha3"
later 8.0.0~rc1 "$(ver "$c")"
git -C "$c" reset -q --hard HEAD~1
git -C "$c" tag -d v8.0.0-rc1 >/dev/null

# 3. git archive exports: no .git; git filled in scripts/version-archive.txt.
export_to() { # export_to DIR COMMIT
    mkdir -p "$1"
    git -C "$c" archive "$2" | tar -x -C "$1"
}
export_to "$tmp/ex-tag" v7.8.9
expect "git archive of tag v7.8.9" "$(ver "$tmp/ex-tag")" "7.8.9"
export_to "$tmp/ex-after" HEAD
expect "git archive one commit after the tag" "$(ver "$tmp/ex-after")" "7.8.9+1.g$sha2"
git -C "$c" tag -d v7.8.9 >/dev/null
export_to "$tmp/ex-notag" HEAD
expect "git archive with no tag" "$(ver "$tmp/ex-notag")" "$base+g$sha2"
valid "$(ver "$tmp/ex-notag")"
# Unpacked inside another repository: that repository's tags do not count.
export_to "$c/inner" "$sha2"
gc tag -a v99.0.0 -m v99.0.0
expect "git archive unpacked inside another repository" "$(ver "$c/inner")" "$base+g$sha2"

# 4. Neither .git nor substitutions (a plain copy of the files): VERSION.
export_to "$tmp/plain" HEAD
cp "$repo/scripts/version-archive.txt" "$tmp/plain/scripts/version-archive.txt"
expect "a copy without .git" "$(ver "$tmp/plain" 2>/dev/null)" "$base"

echo "version: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
