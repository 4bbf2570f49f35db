#!/usr/bin/env bash
# Makes a throwaway certificate authority and certificates for Sluice's TLS listeners, with
# openssl. For tests and for trying TLS out; production certificates come from your own CA.
#
#   scripts/make-certs.sh DIR [BROKER_HOST...]
#
# DIR gets (PEM):
#   ca.crt ca.key             the CA (10 years); clients trust ca.crt, --ssl-ca checks client certs
#   broker.crt broker.key     the brokers' certificate: SAN localhost, 127.0.0.1 and each BROKER_HOST;
#                             serverAuth and clientAuth, so it also serves --internal-tls (the
#                             Raft port's mTLS: give every host name or IP peers dial)
#   client-<name>.crt/.key    client certificates for mTLS: CN=alice and CN=bob (principal
#                             User:CN=alice,OU=clients,O=sluice-test)
#   untrusted.crt/.key        a self-signed client certificate no broker trusts
#   expired.crt/.key          a client certificate of the CA that expired yesterday
set -euo pipefail
dir=${1:?usage: make-certs.sh DIR [BROKER_HOST...]}
shift
mkdir -p "$dir"
cd "$dir"
san="DNS:localhost,IP:127.0.0.1"
for host in "$@"; do
    if [[ $host =~ ^[0-9.]+$ ]]; then san+=",IP:$host"; else san+=",DNS:$host"; fi
done
quiet() { "$@" 2>/dev/null >/dev/null || "$@"; }

quiet openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout ca.key -out ca.crt \
    -subj "/O=sluice-test/CN=sluice test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

sign() { # name subject extensions [days|expired]
    local name=$1 subject=$2 ext=$3 days=${4:-825}
    quiet openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subject"
    printf '%s\n' "$ext" >"$name.ext"
    if [[ $days == expired ]]; then
        # A certificate whose validity ended yesterday: openssl ca can backdate both ends.
        mkdir -p ca-db && : >ca-db/index.txt && echo 1000 >ca-db/serial
        cat >ca-db/ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
organizationName = optional
organizationalUnitName = optional
CNF
        quiet openssl ca -batch -config ca-db/ca.cnf -cert ca.crt -keyfile ca.key -in "$name.csr" -out "$name.crt" \
            -startdate 20200101000000Z -enddate "$(date -u -d yesterday +%Y%m%d%H%M%SZ)" -extfile "$name.ext" -notext
        rm -rf ca-db
    else
        quiet openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" \
            -days "$days" -extfile "$name.ext"
    fi
    rm -f "$name.csr" "$name.ext"
}

sign broker "/O=sluice-test/CN=sluice-broker" \
    "subjectAltName=$san
extendedKeyUsage=serverAuth,clientAuth"
for user in alice bob; do
    sign "client-$user" "/O=sluice-test/OU=clients/CN=$user" "extendedKeyUsage=clientAuth"
done
sign expired "/O=sluice-test/OU=clients/CN=expired" "extendedKeyUsage=clientAuth" expired
quiet openssl req -x509 -newkey rsa:2048 -nodes -days 365 -keyout untrusted.key -out untrusted.crt \
    -subj "/O=mallory/CN=alice"
rm -f ca.srl
chmod 600 ./*.key
echo "certificates in $PWD: ca.crt broker.crt/key client-alice client-bob expired untrusted"
