#!/usr/bin/env bash
# Generate a throw-away PKI for tests and the demo (ECDSA P-256).
#
#   certs/gen-test-certs.sh DIR [--force]
#
# DIR/db-ca.{crt,key}        private "upstream" CA (plays the RDS CA)
# DIR/db-server.{crt,key}    PostgreSQL's certificate, signed by db-ca
# DIR/other-ca.{crt,key}     an unrelated CA (wrong-CA tests)
# DIR/public-ca.{crt,key}    the CA that clients of the proxy trust
# DIR/proxy.{crt,key}        the proxy's certificate, signed by public-ca
# DIR/proxy2.{crt,key}       a second proxy certificate from public-ca (reload tests)
# DIR/client-ca.{crt,key}    the CA of client certificates (mTLS, PostgreSQL's ssl_ca_file)
# DIR/client.{crt,key}       client certificate CN=app, signed by client-ca
# DIR/client-certuser.{crt,key} client certificate CN=certuser, signed by client-ca
# DIR/other-client.{crt,key} client certificate CN=app, signed by other-ca (refused)
# DIR/db-roots/db-ca.pem     copy of db-ca.crt   } CA roots given as a directory
# DIR/db-roots/other.crt     copy of other-ca.crt}
# The server leaves carry SAN DNS:localhost, IP:127.0.0.1; the client
# certificates carry only their CN (PostgreSQL's cert auth maps CN to user)
# and extendedKeyUsage clientAuth.
#
# Idempotent: does nothing when DIR/db-ca.crt exists, unless --force.
# Keys are 0600, certificates 0644. Nothing generated here is ever committed.
set -euo pipefail

usage() {
    echo "usage: $0 DIR [--force]" >&2
    exit 2
}
DIR=
FORCE=0
for arg in "$@"; do
    case $arg in
    --force) FORCE=1 ;;
    -*) usage ;;
    *) [ -z "$DIR" ] || usage; DIR=$arg ;;
    esac
done
[ -n "$DIR" ] || usage
command -v openssl >/dev/null || { echo "$0: openssl not found" >&2; exit 1; }

if [ -f "$DIR/db-ca.crt" ] && [ "$FORCE" = 0 ]; then
    echo "certs: $DIR already has a PKI (use --force to regenerate)"
    exit 0
fi

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
WORK=$(mktemp -d "$DIR/.gen.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
umask 077

# Every file is built in WORK and moved into place at the end, so an
# interrupted run never leaves a half-made PKI that later runs would reuse.
new_key() { # FILE
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null
}

# A minimal config: no dependence on the system openssl.cnf.
REQ_CNF=$WORK/req.cnf
printf '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n' >"$REQ_CNF"

make_ca() { # NAME CN
    local ext=$WORK/$1.ext
    cat >"$ext" <<EOT
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOT
    new_key "$WORK/$1.key"
    openssl req -new -key "$WORK/$1.key" -subj "/O=pg-tls-proxy tests/CN=$2" \
        -config "$REQ_CNF" -out "$WORK/$1.csr"
    openssl x509 -req -in "$WORK/$1.csr" -signkey "$WORK/$1.key" -days 3650 -sha256 \
        -extfile "$ext" -out "$WORK/$1.crt" 2>/dev/null
}

make_leaf() { # NAME CN CA [client]
    local ext=$WORK/$1.ext
    if [ "${4:-}" = client ]; then
        cat >"$ext" <<EOT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOT
    else
        cat >"$ext" <<EOT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOT
    fi
    new_key "$WORK/$1.key"
    openssl req -new -key "$WORK/$1.key" -subj "/O=pg-tls-proxy tests/CN=$2" \
        -config "$REQ_CNF" -out "$WORK/$1.csr"
    openssl x509 -req -in "$WORK/$1.csr" -CA "$WORK/$3.crt" -CAkey "$WORK/$3.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 \
        -extfile "$ext" -out "$WORK/$1.crt" 2>/dev/null
}

make_ca db-ca "pg-tls-proxy test upstream CA"
make_leaf db-server localhost db-ca
make_ca other-ca "pg-tls-proxy test unrelated CA"
make_ca public-ca "pg-tls-proxy test public CA"
make_leaf proxy localhost public-ca
make_leaf proxy2 localhost public-ca
make_ca client-ca "pg-tls-proxy test client CA"
make_leaf client app client-ca client
make_leaf client-certuser certuser client-ca client
make_leaf other-client app other-ca client

# Sanity: each leaf chains to its own CA and not to the others.
openssl verify -CAfile "$WORK/db-ca.crt" "$WORK/db-server.crt" >/dev/null
openssl verify -CAfile "$WORK/public-ca.crt" "$WORK/proxy.crt" "$WORK/proxy2.crt" >/dev/null
openssl verify -CAfile "$WORK/client-ca.crt" "$WORK/client.crt" "$WORK/client-certuser.crt" \
    >/dev/null
openssl verify -CAfile "$WORK/other-ca.crt" "$WORK/other-client.crt" >/dev/null
for pair in other-ca:db-server public-ca:db-server db-ca:proxy client-ca:other-client \
    client-ca:proxy public-ca:client; do
    if openssl verify -CAfile "$WORK/${pair%%:*}.crt" "$WORK/${pair#*:}.crt" >/dev/null 2>&1; then
        echo "$0: ${pair#*:}.crt unexpectedly verifies against ${pair%%:*}.crt" >&2
        exit 1
    fi
done

mkdir -p "$WORK/db-roots"
cp "$WORK/db-ca.crt" "$WORK/db-roots/db-ca.pem"
cp "$WORK/other-ca.crt" "$WORK/db-roots/other.crt"

chmod 0600 "$WORK"/*.key
chmod 0644 "$WORK"/*.crt "$WORK"/db-roots/*
chmod 0755 "$WORK/db-roots"
rm -rf "$DIR/db-roots"
for name in db-ca db-server other-ca public-ca proxy proxy2 client-ca client client-certuser \
    other-client; do
    mv -f "$WORK/$name.key" "$WORK/$name.crt" "$DIR/"
done
mv "$WORK/db-roots" "$DIR/db-roots"
chmod 0755 "$DIR"
echo "certs: generated test PKI in $DIR"
