#!/usr/bin/env bash
# check-dockerfile.sh - check the Dockerfile without a Docker engine.
#
#   tests/check-dockerfile.sh          (make check-dockerfile)
#
# Copies the build context (git's tracked and untracked-but-not-ignored files,
# minus what .dockerignore excludes, roughly) into a temporary directory, runs
# the build stage's own "make clean && make ... install" RUN line there with
# /staging redirected into the temporary directory, then checks that:
#   - every path the runtime stage copies with COPY --from=build exists in the
#     staging tree (directories non-empty, everything world-readable);
#   - the staged binary runs (--version) and its shared libraries come from the
#     runtime stage's packages or the base system;
#   - the build stage installs ca-certificates (make install copies its roots);
#   - the runtime stage has a numeric non-root USER, no help-printing CMD,
#     ENTRYPOINT ["pg-tls-proxy"],
#     STOPSIGNAL SIGTERM, a HEALTHCHECK in exec form that runs the binary's
#     healthcheck subcommand (no shell), and copies no key material;
#   - hadolint, when installed, has no complaint (skipped with a note if not).
# Prints "dockerfile: N passed, M failed" last; exits 1 if anything failed,
# 2 on misuse.
# shellcheck disable=SC2317 # check functions are called indirectly, through check()
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DOCKERFILE=$REPO/Dockerfile
[ -r "$DOCKERFILE" ] || { echo "check-dockerfile: cannot read $DOCKERFILE" >&2; exit 2; }
command -v git >/dev/null || { echo "check-dockerfile: git not found" >&2; exit 2; }

# shellcheck source=tests/checklib.sh
. "$REPO/tests/checklib.sh"
not() { ! "$@"; }
finish() {
    echo "dockerfile: $PASS passed, $FAIL failed"
    [ "$FAIL" = 0 ] || exit 1
    exit 0
}

TMP=$(mktemp -d /tmp/pgtp-dockerfile.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# Instructions, one per line: continuation lines joined, comments dropped.
# Each line is prefixed with its stage number (0 = build, 1 = runtime, ...).
instructions() {
    awk '
        /^[[:space:]]*#/ && cont == "" { next }
        /^[[:space:]]*$/ && cont == "" { next }
        {
            line = $0
            if (line ~ /\\[[:space:]]*$/) { sub(/\\[[:space:]]*$/, " ", line); cont = cont line; next }
            line = cont line; cont = ""
            sub(/^[[:space:]]+/, "", line)
            if (toupper(line) ~ /^FROM[[:space:]]/) stage++
            print stage - 1 "\t" line
        }' "$DOCKERFILE"
}
INSTR=$(instructions)
LAST_STAGE=$(printf '%s\n' "$INSTR" | awk -F'\t' 'END { print $1 }')
stage_lines() { printf '%s\n' "$INSTR" | awk -F'\t' -v s="$1" '$1 == s { print $2 }'; }
BUILD_LINES=$(stage_lines 0)
RUNTIME_LINES=$(stage_lines "$LAST_STAGE")

# ---- static checks on the runtime (last) stage ----
# has TEXT ERE: some line of TEXT matches ERE (case-sensitive).
has() { printf '%s\n' "$1" | grep -Eq -- "$2"; }
multi_stage() { [ "$LAST_STAGE" -ge 1 ] && printf '%s\n' "$BUILD_LINES" | grep -Eiq '^FROM [^ ]+ AS build$'; }
check "multi-stage: build stage is 'FROM ... AS build', runtime is a later stage" multi_stage

user=$(printf '%s\n' "$RUNTIME_LINES" | grep -Ei '^USER[[:space:]]' | tail -n 1 | awk '{ print $2 }')
non_root() { [ -n "$user" ] && case ${user%%:*} in root | 0) false ;; *) true ;; esac; }
check "runtime stage: USER is set and not root ($user)" non_root
numeric_user() { [[ $user =~ ^[1-9][0-9]*(:[0-9]+)?$ ]]; }
check "runtime stage: USER is numeric, so Kubernetes runAsNonRoot can check it ($user)" \
    numeric_user
# A CMD of "--help" made "docker run -e PG_TLS_PROXY_..." print help and exit 0.
no_help_cmd() { ! has "$RUNTIME_LINES" '^CMD .*(--help|-h\b|--version)'; }
check "runtime stage: no CMD that prints help instead of serving" no_help_cmd
check 'runtime stage: ENTRYPOINT ["pg-tls-proxy"]' \
    has "$RUNTIME_LINES" '^ENTRYPOINT \[ *"pg-tls-proxy" *\]$'
check "runtime stage: STOPSIGNAL SIGTERM" has "$RUNTIME_LINES" '^STOPSIGNAL SIGTERM$'
check "runtime stage: HEALTHCHECK (not NONE)" has "$RUNTIME_LINES" '^HEALTHCHECK +([^N]|N[^O])'
# Exec form and the binary's own subcommand: the image needs no shell at run time.
check 'runtime stage: HEALTHCHECK CMD ["pg-tls-proxy", "healthcheck"] (exec form, no shell)' \
    has "$RUNTIME_LINES" '^HEALTHCHECK .*CMD \[ *"pg-tls-proxy", *"healthcheck" *\]$'
no_key_copy() {
    ! printf '%s\n' "$INSTR" | cut -f2 | grep -Ei '^(COPY|ADD)[[:space:]]' |
        grep -Eiq '\.key\b|\.p12\b|\.pfx\b|key\.pem|private'
}
check "no COPY/ADD of key material (*.key, *.p12, *.pfx, key.pem, private)" no_key_copy
check ".dockerignore keeps *.key files out of the build context" \
    grep -Eqx '(\*\*/)?\*\.key' "$REPO/.dockerignore"
check "build stage installs ca-certificates (make install copies its roots)" \
    has "$BUILD_LINES" '^RUN .*apt-get install.* ca-certificates( |$)'
RUNTIME_PKGS=$(printf '%s\n' "$RUNTIME_LINES" | grep -E '^RUN .*apt-get install' |
    sed -E 's/.*apt-get install//; s/&&.*//' | tr ' ' '\n' | grep -Ev '^(-.*)?$' | sort -u)
check "runtime stage installs no build tools or -dev packages" \
    not has "$RUNTIME_PKGS" '-dev$|^build-essential$|^gcc|^make$|^curl$'

# ---- the build context, as docker would send it ----
# .dockerignore, roughly: "dir/" and "name" exclude that path and everything
# under it; a leading "**/" matches at any depth.
ignored() { # PATH
    local pat p
    while IFS= read -r pat; do
        case $pat in '' | '#'*) continue ;; esac
        pat=${pat%/}
        p=${pat#\*\*/}
        # shellcheck disable=SC2053 # the patterns are globs on purpose
        if [[ $1 == $p || $1 == $p/* ]] ||
            { [ "$p" != "$pat" ] && [[ $1 == */$p || $1 == */$p/* ]]; }; then
            return 0
        fi
    done <"$REPO/.dockerignore"
    return 1
}
CTX=$TMP/src
mkdir -p "$CTX"
(
    cd "$REPO" || exit 1
    git ls-files -z -c -o --exclude-standard | while IFS= read -r -d '' f; do
        [ -e "$f" ] || continue # deleted in the working tree
        ignored "$f" || printf '%s\0' "$f"
    done | tar --null -T - -cf -
) | tar -C "$CTX" -xf - || { bad "copy the build context"; finish; }
ok "build context copied ($(find "$CTX" -type f | wc -l) files)"

# ---- the build stage's make line, with /staging moved under $TMP ----
MAKE_LINE=$(printf '%s\n' "$BUILD_LINES" | grep -E '^RUN .*make install' | head -n 1)
if [ -z "$MAKE_LINE" ]; then
    bad "build stage has a RUN line with 'make install'"
    finish
fi
STAGING=$TMP/staging
CMD=${MAKE_LINE#RUN }
CMD=${CMD//\/staging/$STAGING}
echo "---- build stage, in $CTX:"
echo "     $CMD"
if (cd "$CTX" && sh -c "$CMD") >"$TMP/build.log" 2>&1; then
    ok "build stage's make commands succeed"
else
    tail -n 30 "$TMP/build.log"
    bad "build stage's make commands succeed (log above)"
    finish
fi

# ---- every COPY --from=build source exists in the staging tree ----
non_empty_dir() { [ -n "$(ls -A "$1")" ]; }
readable() { # PATH: every file o+r, every directory o+rx
    [ -z "$(find "$1" ! -perm -o=r -print -quit)" ] &&
        [ -z "$(find "$1" -type d ! -perm -o=x -print -quit)" ]
}
while IFS= read -r line; do
    # COPY [--chown=..] --from=build SRC... DEST (shell form only)
    read -r -a words <<<"$line"
    srcs=()
    for w in "${words[@]:1}"; do
        case $w in --*) continue ;; *) srcs+=("$w") ;; esac
    done
    unset 'srcs[${#srcs[@]}-1]' # the destination
    for src in "${srcs[@]}"; do
        rel=${src#/staging}
        path=$STAGING$rel
        if [ -d "$path" ]; then
            check "COPY --from=build $src: a non-empty directory" non_empty_dir "$path"
            check "COPY --from=build $src: everything readable by others" readable "$path"
        elif [ -f "$path" ]; then
            check "COPY --from=build $src: a file readable by others" readable "$path"
        else
            bad "COPY --from=build $src: missing from the staging tree (is make install up to date?)"
        fi
    done
done < <(printf '%s\n' "$RUNTIME_LINES" | grep -E '^COPY[[:space:]].*--from=build')

# A runtime COPY of the mozilla bundle needs its one file, which make install
# only copies when the build machine has ca-certificates.
if printf '%s\n' "$RUNTIME_LINES" | grep -q 'ca-bundles/mozilla'; then
    check "mozilla bundle has ca-certificates.pem (needs the ca-certificates package here too)" \
        test -s "$STAGING/usr/local/share/pg-tls-proxy/ca-bundles/mozilla/ca-certificates.pem"
fi
check "runtime stage makes the empty ca-bundles/custom/ directory" \
    has "$RUNTIME_LINES" '^RUN .*install -d .*/etc/pg-tls-proxy/ca-bundles/custom'

# ---- the staged binary and its shared libraries ----
BIN=$STAGING/usr/local/bin/pg-tls-proxy
runs() { "$BIN" --version >/dev/null 2>&1; }
check "staged binary runs: $("$BIN" --version 2>&1 | head -n 1)" runs
if command -v ldd >/dev/null && command -v dpkg >/dev/null; then
    # The binary's own libraries (DT_NEEDED), not ldd's whole closure: what
    # those pull in (libsystemd0's liblzma5, libzstd1, ...) are their
    # packages' dependencies, which apt installs with them.
    needed=$(objdump -p "$BIN" | awk '$1 == "NEEDED" { printf "%s ", $2 }')
    missing=
    while IFS= read -r lib; do
        pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n 1 | cut -d: -f1) ||
            pkg=
        [ -n "$pkg" ] || pkg=$(dpkg -S "$lib" 2>/dev/null | head -n 1 | cut -d: -f1)
        [ -n "$pkg" ] || { missing+=" $lib(no package)"; continue; }
        printf '%s\n' "$RUNTIME_PKGS" | grep -qx "$pkg" && continue
        # in every Debian image, slim included
        case $pkg in libc6 | libgcc-s1) continue ;; esac
        [ "$(dpkg-query -W -f '${Priority}' "$pkg" 2>/dev/null)" = required ] && continue
        missing+=" $lib($pkg)"
    done < <(ldd "$BIN" | awk -v needed=" $needed " '$2 == "=>" && $3 ~ /^\// &&
        index(needed, " " $1 " ") { print $3 }')
    check "shared libraries come from the runtime packages or the base system${missing:+; not:$missing}" \
        test -z "$missing"
else
    echo "note: ldd or dpkg not found; shared-library check skipped"
fi

# ---- hadolint, when there is one (Debian bookworm does not package it) ----
if command -v hadolint >/dev/null; then
    check "hadolint" hadolint "$DOCKERFILE"
else
    echo "note: hadolint not installed; lint skipped (not a failure)"
fi

finish
