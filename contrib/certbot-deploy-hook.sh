#!/usr/bin/env bash
# certbot-deploy-hook.sh - install a certificate certbot has just issued or
# renewed where pg-tls-proxy, running as a non-root user, can read it, then
# make the proxy load it.
#
#   install -m 755 contrib/certbot-deploy-hook.sh /etc/letsencrypt/renewal-hooks/deploy/pg-tls-proxy.sh
#   (run at each renewal; once by hand after the first certonly), or
#   certbot certonly ... --deploy-hook /path/to/certbot-deploy-hook.sh
#
# certbot runs deploy hooks as root after a successful issue or renewal,
# with RENEWED_LINEAGE set to the certificate's live directory
# (/etc/letsencrypt/live/NAME). certbot keeps its keys in directories only
# root may enter, and swaps its symlinks non-atomically, so the proxy must not
# read them there. This hook:
#   1. checks that fullchain.pem holds a certificate and privkey.pem the key
#      that matches it (a broken pair is never installed: exit 1);
#   2. writes them into PGTP_CERT_DIR as fullchain.pem (mode 0644) and
#      privkey.pem (mode 0600), owned by PGTP_USER:PGTP_GROUP, each through a
#      temporary file renamed into place, so the proxy never reads half a file;
#   3. runs PGTP_RELOAD_CMD (default: systemctl reload pg-tls-proxy, which
#      sends SIGHUP); set it to "" when the proxy runs with
#      --watch-certificates, which notices the renames by itself.
# Settings come from the environment, else from PGTP_HOOK_CONF
# (default /etc/pg-tls-proxy/certbot-hook.conf: KEY=VALUE lines, read, not
# executed), else the defaults below:
#   PGTP_CERT_DIR     /etc/pg-tls-proxy/tls
#   PGTP_USER         pgtp      (the image's user is 10001)
#   PGTP_GROUP        the user's primary group
#   PGTP_LINEAGE      empty: every lineage; else only /etc/letsencrypt/live/<this>
#   PGTP_RELOAD_CMD   systemctl reload pg-tls-proxy
# Point the proxy at $PGTP_CERT_DIR/fullchain.pem and $PGTP_CERT_DIR/privkey.pem
# (docs/certificates.md). Exit status: 0 installed (or lineage skipped),
# 1 refused or failed (nothing half-installed), 2 misuse.
set -euo pipefail

conf=${PGTP_HOOK_CONF:-/etc/pg-tls-proxy/certbot-hook.conf}
if [ -r "$conf" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in '' | '#'*) continue ;; esac
        key=${line%%=*}
        val=${line#*=}
        case $key in
        PGTP_CERT_DIR | PGTP_USER | PGTP_GROUP | PGTP_LINEAGE | PGTP_RELOAD_CMD)
            # the environment wins over the file
            if [ -z "${!key+set}" ]; then printf -v "$key" '%s' "$val"; fi
            ;;
        *)
            echo "certbot-deploy-hook: $conf: unknown key '$key'" >&2
            exit 2
            ;;
        esac
    done <"$conf"
fi

dir=${PGTP_CERT_DIR:-/etc/pg-tls-proxy/tls}
user=${PGTP_USER:-pgtp}
group=${PGTP_GROUP:-}
reload=${PGTP_RELOAD_CMD-systemctl reload pg-tls-proxy}
lineage=${RENEWED_LINEAGE:-}

say() { echo "certbot-deploy-hook: $*" >&2; }

if [ -z "$lineage" ]; then
    say "RENEWED_LINEAGE is not set: run me as certbot's --deploy-hook"
    exit 2
fi
if [ -n "${PGTP_LINEAGE:-}" ] && [ "$(basename "$lineage")" != "$PGTP_LINEAGE" ]; then
    say "lineage $(basename "$lineage") is not PGTP_LINEAGE=$PGTP_LINEAGE: nothing to do"
    exit 0
fi
if [ -z "$group" ]; then
    group=$(id -gn "$user" 2>/dev/null) || {
        say "no user '$user' (set PGTP_USER to the user the proxy runs as)"
        exit 2
    }
fi
chain=$lineage/fullchain.pem
key=$lineage/privkey.pem
for f in "$chain" "$key"; do
    [ -r "$f" ] || {
        say "cannot read $f"
        exit 1
    }
done

# The certificate and the key must belong together: compare public keys.
cert_pub=$(openssl x509 -in "$chain" -noout -pubkey 2>/dev/null) || {
    say "$chain holds no PEM certificate"
    exit 1
}
key_pub=$(openssl pkey -in "$key" -pubout -passin pass: 2>/dev/null) || {
    say "$key holds no unencrypted PEM private key"
    exit 1
}
if [ "$cert_pub" != "$key_pub" ]; then
    say "$key is not the key of the certificate in $chain: nothing installed"
    exit 1
fi

mkdir -p "$dir"
tmp_chain=$(mktemp "$dir/.fullchain.pem.XXXXXX")
tmp_key=$(mktemp "$dir/.privkey.pem.XXXXXX")
trap 'rm -f "$tmp_chain" "$tmp_key"' EXIT
# mktemp made them 0600 and root's: fill, then give them to the proxy's user.
cat "$key" >"$tmp_key"
cat "$chain" >"$tmp_chain"
chown "$user:$group" "$tmp_chain" "$tmp_key"
chmod 0600 "$tmp_key"
chmod 0644 "$tmp_chain"
# The key first: with --watch-certificates a reload between the two renames
# fails on the mismatch and keeps the old pair, and the second rename
# triggers the reload that succeeds.
mv -f "$tmp_key" "$dir/privkey.pem"
mv -f "$tmp_chain" "$dir/fullchain.pem"
trap - EXIT
say "installed $(basename "$lineage") into $dir (owner $user:$group)"

if [ -n "$reload" ]; then
    # A word list on purpose: PGTP_RELOAD_CMD is a command line.
    # shellcheck disable=SC2086
    if ! $reload; then
        say "'$reload' failed: the new files are in place, reload the proxy by hand"
        exit 1
    fi
    say "ran '$reload'"
fi
