#!/usr/bin/env bash
# version.sh - print the version this tree builds, for the Makefile's VERSION.
#
#   scripts/version.sh          (from anywhere; reads the repository it is in)
#
# The scheme (README "Releases and versions"); every result starts with a
# digit and uses only [0-9A-Za-z.+~], so it is a valid Debian upstream version
# (make deb) and sorts after the release it follows:
#   at tag vX.Y.Z                      X.Y.Z
#   at a pre-release tag vX.Y.Z-rc1    X.Y.Z~rc1 (sorts before X.Y.Z)
#   N commits after tag vX.Y.Z         X.Y.Z+N.g<sha>
#   no v* tag in the history           <VERSION>+N.g<sha>   (N: commits in all)
#   uncommitted changes                the above + ".dirty" (or "+dirty" at a tag)
#   git archive tarball (no .git)      as above from scripts/version-archive.txt,
#                                      which git fills in (export-subst); no N
#                                      without a tag: <VERSION>+g<sha>
#   any other copy of the sources      <VERSION> (the file holds the last release)
# Only the tree's own .git counts: a tarball unpacked inside another
# repository must not take that repository's tags.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
base=$(tr -d ' \t\r\n' <"$root/VERSION")
case $base in
[0-9]*) ;;
*)
    echo "version.sh: $root/VERSION does not start with a digit: '$base'" >&2
    exit 1
    ;;
esac

# from_describe DESCRIBE [COUNT]: vX.Y.Z[-N-gSHA][-dirty] or SHA[-dirty]
# (no tag: COUNT commits in all, or none) -> the scheme above.
from_describe() {
    local d=$1 count=${2:-} dirty=''
    if [[ $d == *-dirty ]]; then
        dirty=dirty
        d=${d%-dirty}
    fi
    local v tag
    if [[ $d =~ ^v([0-9][0-9A-Za-z.-]*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
        tag=${BASH_REMATCH[1]}
        v="${tag//-/\~}+${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}"
    elif [[ $d =~ ^v([0-9][0-9A-Za-z.-]*)$ ]]; then
        tag=${BASH_REMATCH[1]}
        v=${tag//-/\~}
    elif [[ $d =~ ^[0-9a-f]+$ ]]; then
        v="$base+${count:+$count.}g$d"
    else
        return 1
    fi
    if [ -n "$dirty" ]; then
        if [[ $v == *+* ]]; then v="$v.dirty"; else v="$v+dirty"; fi
    fi
    printf '%s\n' "$v"
}

if [ -e "$root/.git" ] && command -v git >/dev/null 2>&1 &&
    top=$(git -C "$root" rev-parse --show-toplevel 2>/dev/null) &&
    [ "$(cd "$top" && pwd -P)" = "$(cd "$root" && pwd -P)" ]; then
    d=$(git -C "$root" describe --tags --match 'v[0-9]*' --always --dirty)
    count=$(git -C "$root" rev-list --count HEAD)
    from_describe "$d" "$count" && exit 0
    echo "version.sh: cannot read git describe output '$d'" >&2
    exit 1
fi
if [ -e "$root/.git" ]; then
    echo "version.sh: $root/.git exists but git cannot read it; version from VERSION" >&2
fi

# A git archive export: the placeholders were replaced by git.
arch=$root/scripts/version-archive.txt
if [ -r "$arch" ] && ! grep -q 'Format:' "$arch"; then
    describe=$(sed -n 's/^describe=//p' "$arch")
    commit=$(sed -n 's/^commit=//p' "$arch")
    if [ -n "$describe" ]; then
        from_describe "$describe" && exit 0
    elif [ -n "$commit" ]; then
        from_describe "$commit" && exit 0
    fi
    echo "version.sh: cannot read $arch; version from VERSION" >&2
fi
printf '%s\n' "$base"
