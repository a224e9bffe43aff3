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
# Broken upstream certificates (fault tests; each with its .key), all with
# SAN DNS:localhost, IP:127.0.0.1 unless said otherwise:
# DIR/bad-expired.crt        from db-ca, valid 2020-01-01..2021-01-01 only
# DIR/bad-notyet.crt         from db-ca, valid 2040-01-01..2041-01-01 only
# DIR/bad-wrongname.crt      from db-ca, for db.other.example (no localhost)
# DIR/bad-otherca.crt        from other-ca (not the upstream's CA)
# DIR/bad-otherca-chain.crt  the same + other-ca.crt appended (a chain ending
#                            at a root the proxy does not trust)
# DIR/bad-selfsigned.crt     self-signed leaf (CA:FALSE)
# DIR/db-inter-ca.crt        an intermediate CA signed by db-ca
# DIR/bad-nointer.crt        from db-inter-ca, the leaf alone (a server that
#                            does not send its intermediate)
# DIR/good-inter-chain.crt   the same leaf + db-inter-ca.crt (key bad-nointer.key):
#                            the correct chain, which verifies against db-ca
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

make_leaf() { # NAME CN CA [client|SAN]
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
subjectAltName = ${4:-DNS:localhost, IP:127.0.0.1}
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

# make_dated_leaf NAME CA START END: a localhost server leaf valid only from
# START to END (YYYYMMDDHHMMSSZ). 'openssl x509 -req' of OpenSSL 3.0 cannot
# set a start date; 'openssl ca' can, given a throw-away CA database.
make_dated_leaf() {
    local db=$WORK/ca-db
    mkdir -p "$db/new"
    : >"$db/index.txt"
    cat >"$WORK/ca.cnf" <<EOT
[ca]
default_ca = dflt
[dflt]
database = $db/index.txt
new_certs_dir = $db/new
rand_serial = yes
default_md = sha256
policy = any
unique_subject = no
[any]
organizationName = optional
commonName = supplied
EOT
    cat >"$WORK/$1.ext" <<EOT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOT
    new_key "$WORK/$1.key"
    openssl req -new -key "$WORK/$1.key" -subj "/O=pg-tls-proxy tests/CN=localhost" \
        -config "$REQ_CNF" -out "$WORK/$1.csr"
    openssl ca -batch -config "$WORK/ca.cnf" -cert "$WORK/$2.crt" -keyfile "$WORK/$2.key" \
        -in "$WORK/$1.csr" -out "$WORK/$1.crt" -notext -preserveDN \
        -startdate "$3" -enddate "$4" -extfile "$WORK/$1.ext" 2>/dev/null
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

# Broken upstream certificates, one fault each.
make_dated_leaf bad-expired db-ca 20200101000000Z 20210101000000Z
make_dated_leaf bad-notyet db-ca 20400101000000Z 20410101000000Z
make_leaf bad-wrongname db.other.example db-ca "DNS:db.other.example"
make_leaf bad-otherca localhost other-ca
cat "$WORK/bad-otherca.crt" "$WORK/other-ca.crt" >"$WORK/bad-otherca-chain.crt"
cp "$WORK/bad-otherca.key" "$WORK/bad-otherca-chain.key"
# A self-signed leaf: signed with its own key, CA:FALSE, no issuer to find.
cat >"$WORK/bad-selfsigned.ext" <<EOT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
EOT
new_key "$WORK/bad-selfsigned.key"
openssl req -new -key "$WORK/bad-selfsigned.key" -subj "/O=pg-tls-proxy tests/CN=localhost" \
    -config "$REQ_CNF" -out "$WORK/bad-selfsigned.csr"
openssl x509 -req -in "$WORK/bad-selfsigned.csr" -signkey "$WORK/bad-selfsigned.key" \
    -days 825 -sha256 -extfile "$WORK/bad-selfsigned.ext" -out "$WORK/bad-selfsigned.crt" \
    2>/dev/null
# An intermediate CA under db-ca, and a leaf it signed.
cat >"$WORK/db-inter-ca.ext" <<EOT
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOT
new_key "$WORK/db-inter-ca.key"
openssl req -new -key "$WORK/db-inter-ca.key" \
    -subj "/O=pg-tls-proxy tests/CN=pg-tls-proxy test upstream intermediate CA" \
    -config "$REQ_CNF" -out "$WORK/db-inter-ca.csr"
openssl x509 -req -in "$WORK/db-inter-ca.csr" -CA "$WORK/db-ca.crt" -CAkey "$WORK/db-ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 1825 -sha256 -extfile "$WORK/db-inter-ca.ext" \
    -out "$WORK/db-inter-ca.crt" 2>/dev/null
make_leaf bad-nointer localhost db-inter-ca
cat "$WORK/bad-nointer.crt" "$WORK/db-inter-ca.crt" >"$WORK/good-inter-chain.crt"
cp "$WORK/bad-nointer.key" "$WORK/good-inter-chain.key"

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

# Each broken certificate fails against db-ca for its own reason, and only
# for it (OpenSSL's error numbers: 10 expired, 9 not yet valid, 62 host
# name mismatch, 20 issuer not found, 19 untrusted root in the chain, 18
# self-signed leaf); the correct intermediate chain verifies.
verify_err() { # CERT [openssl verify options]: prints "error N" of the leaf, or "ok"
    local cert=$1 out
    shift
    if out=$(openssl verify -CAfile "$WORK/db-ca.crt" "$@" "$cert" 2>&1); then
        echo ok
    else
        grep -o -m1 'error [0-9]*' <<<"$out" || echo "?"
    fi
}
for want in bad-expired:10 bad-notyet:9 bad-otherca:20 bad-selfsigned:18 bad-nointer:20; do
    got=$(verify_err "$WORK/${want%%:*}.crt")
    [ "$got" = "error ${want#*:}" ] || {
        echo "$0: ${want%%:*}.crt: expected error ${want#*:}, got $got" >&2
        exit 1
    }
done
if ! { [ "$(verify_err "$WORK/bad-otherca.crt" -untrusted "$WORK/other-ca.crt")" = "error 19" ] &&
    [ "$(verify_err "$WORK/bad-wrongname.crt" -verify_hostname localhost)" = "error 62" ] &&
    [ "$(verify_err "$WORK/bad-wrongname.crt")" = ok ] &&
    [ "$(verify_err "$WORK/bad-nointer.crt" -untrusted "$WORK/db-inter-ca.crt")" = ok ]; }; then
    echo "$0: the chain / host name test certificates are not what they should be" >&2
    exit 1
fi

mkdir -p "$WORK/db-roots"
cp "$WORK/db-ca.crt" "$WORK/db-roots/db-ca.pem"
cp "$WORK/other-ca.crt" "$WORK/db-roots/other.crt"

chmod 0600 "$WORK"/*.key
chmod 0644 "$WORK"/*.crt "$WORK"/db-roots/*
chmod 0755 "$WORK/db-roots"
rm -rf "$DIR/db-roots"
for name in db-ca db-server other-ca public-ca proxy proxy2 client-ca client client-certuser \
    other-client bad-expired bad-notyet bad-wrongname bad-otherca bad-otherca-chain \
    bad-selfsigned db-inter-ca bad-nointer good-inter-chain; do
    mv -f "$WORK/$name.key" "$WORK/$name.crt" "$DIR/"
done
mv "$WORK/db-roots" "$DIR/db-roots"
chmod 0755 "$DIR"
echo "certs: generated test PKI in $DIR"
