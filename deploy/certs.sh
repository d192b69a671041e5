#!/usr/bin/env bash
# Make a private CA and a SuperLink server certificate signed by it.
#
#   deploy/certs.sh [--hosts H1,H2,...] [--days N] [OUT_DIR]
#
# OUT_DIR (default deploy/certs/, git-ignored) receives:
#   ca.crt        the CA certificate: give it to every SuperNode (--root-certificates)
#                 and to `flwr` (root-certificates in $FLWR_HOME/config.toml)
#   ca.key        the CA private key (0600): keep it off the devices
#   server.crt    the SuperLink certificate, valid for every name in --hosts
#   server.key    the SuperLink private key (0600)
# --hosts lists the DNS names and IP addresses the SuperLink is reached by
# (default localhost,127.0.0.1); each becomes a subjectAltName entry.
set -euo pipefail

usage() {
    echo "usage: $(basename "$0") [--hosts H1,H2,...] [--days N] [OUT_DIR]" >&2
    echo "  --hosts  DNS names and IPs of the SuperLink (default localhost,127.0.0.1)" >&2
    echo "  --days   validity in days (default 365)" >&2
    echo "  OUT_DIR  where to write ca.crt, ca.key, server.crt, server.key (default deploy/certs)" >&2
}

die() {
    echo "error: $*" >&2
    usage
    exit 2
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
hosts="localhost,127.0.0.1"
days=365
out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --hosts) [[ $# -ge 2 && -n "$2" ]] || die "--hosts needs a value"; hosts="$2"; shift 2 ;;
        --hosts=*) hosts="${1#--hosts=}"; [[ -n "$hosts" ]] || die "--hosts needs a value"; shift ;;
        --days) [[ $# -ge 2 ]] || die "--days needs a value"; days="$2"; shift 2 ;;
        --days=*) days="${1#--days=}"; shift ;;
        -*) die "unknown option $1" ;;
        *) [[ -z "$out" ]] || die "more than one OUT_DIR given"; out="$1"; shift ;;
    esac
done
[[ "$days" =~ ^[1-9][0-9]*$ ]] || die "--days must be a positive integer, got '$days'"
out="${out:-$here/certs}"
command -v openssl >/dev/null || { echo "error: openssl not found on PATH" >&2; exit 1; }

# subjectAltName: IP:... for IPv4/IPv6 literals, DNS:... for names.
san=""
IFS=',' read -ra names <<< "$hosts"
for h in "${names[@]}"; do
    h="${h// /}"
    [[ -n "$h" ]] || continue
    [[ "$h" =~ ^[A-Za-z0-9.:*-]+$ ]] || die "not a host name or IP address: '$h'"
    if [[ "$h" =~ ^[0-9]+(\.[0-9]+){3}$ || "$h" == *:* ]]; then
        san+="${san:+,}IP:$h"
    else
        san+="${san:+,}DNS:$h"
    fi
done
[[ -n "$san" ]] || die "--hosts lists no host"
cn="${names[0]// /}"

mkdir -p "$out"
umask 077
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days "$days" \
    -keyout "$out/ca.key" -out "$out/ca.crt" -subj "/CN=fedotl private CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req -new -newkey rsa:3072 -sha256 -nodes \
    -keyout "$out/server.key" -out "$work/server.csr" -subj "/CN=$cn" 2>/dev/null

cat > "$work/ext.cnf" <<CNF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
CNF
openssl x509 -req -sha256 -days "$days" -in "$work/server.csr" \
    -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -CAserial "$work/ca.srl" \
    -out "$out/server.crt" -extfile "$work/ext.cnf" 2>/dev/null

chmod 600 "$out/ca.key" "$out/server.key"
chmod 644 "$out/ca.crt" "$out/server.crt"
openssl verify -CAfile "$out/ca.crt" "$out/server.crt" >/dev/null
echo "wrote $out/{ca.crt,ca.key,server.crt,server.key} for $san"
