#!/usr/bin/env bash
# Check every committed CA bundle (ca-bundles/*/*.pem):
#   - each PEM block parses with openssl x509,
#   - the certificate count equals "Certificates written: N" in the PROVENANCE.md
#     next to it,
#   - no certificate has expired (failure); ones expiring within 90 days are
#     printed as warnings.
# Exit 1 if any bundle fails. The last line is "bundles: N passed, M failed".
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

warn_seconds=$((90 * 24 * 3600))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Committed bundles only (a generated ca-bundles/mozilla/ is not committed);
# outside a git checkout, every bundle present.
bundles=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    while IFS= read -r f; do bundles+=("$f"); done < <(git ls-files -- 'ca-bundles/*/*.pem')
else
    for f in ca-bundles/*/*.pem; do [ -e "$f" ] && bundles+=("$f"); done
fi

passed=0 failed=0
for bundle in "${bundles[@]}"; do
    ok=1
    dir=$(dirname "$bundle")
    rm -f "$tmp"/cert-*.pem
    awk -v dir="$tmp" '
        /-----BEGIN CERTIFICATE-----/ { n++; f = sprintf("%s/cert-%05d.pem", dir, n); inblk = 1 }
        inblk { print > f }
        /-----END CERTIFICATE-----/ { inblk = 0; close(f) }
    ' "$bundle"

    count=0
    for cert in "$tmp"/cert-*.pem; do
        [ -e "$cert" ] || continue
        count=$((count + 1))
        if ! subj=$(openssl x509 -in "$cert" -noout -subject -nameopt RFC2253 2>/dev/null); then
            echo "FAIL $bundle: certificate #$count does not parse"
            ok=0
            continue
        fi
        subj=${subj#subject=}
        end=$(openssl x509 -in "$cert" -noout -enddate)
        end=${end#notAfter=}
        if ! openssl x509 -in "$cert" -noout -checkend 0 >/dev/null; then
            echo "FAIL $bundle: expired ($end): $subj"
            ok=0
        elif ! openssl x509 -in "$cert" -noout -checkend "$warn_seconds" >/dev/null; then
            echo "WARN $bundle: expires within 90 days ($end): $subj"
        fi
    done

    if [ "$count" -eq 0 ]; then
        echo "FAIL $bundle: no certificates"
        ok=0
    fi

    prov=$dir/PROVENANCE.md
    if [ ! -f "$prov" ]; then
        echo "FAIL $bundle: no $prov"
        ok=0
    else
        want=$(sed -n 's/^- Certificates written: \([0-9][0-9]*\)$/\1/p' "$prov" | head -n1)
        if [ -z "$want" ]; then
            echo "FAIL $bundle: no \"Certificates written: N\" line in $prov"
            ok=0
        elif [ "$want" -ne "$count" ]; then
            echo "FAIL $bundle: $count certificates, $prov says $want"
            ok=0
        fi
    fi

    if [ "$ok" -eq 1 ]; then
        echo "ok   $bundle: $count certificates"
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
done

echo "bundles: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
