#!/bin/sh
# `make run`: nginx in the foreground (Ctrl-C stops it) with
# examples/nginx/nginx.conf on 127.0.0.1:$PORT, configured by the environment.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
port=${PORT:-8080}
prefix=$root/build/run
mkdir -p "$prefix"
resolver=$(awk '/^nameserver/ { print $2; exit }' /etc/resolv.conf 2>/dev/null)
case "$resolver" in ""|*:*) resolver=127.0.0.1 ;; esac
ca_file=${ICESERVERS_NGINX_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}
# The workers read this checkout; a tree under root's home needs root workers.
user=$(id -un)
sed -e "s|\${port}|$port|g" -e "s|\${root}|$root|g" -e "s|\${prefix}|$prefix|g" \
    -e "s|\${workers}|${WORKERS:-2}|g" -e "s|\${user}|$user|g" \
    -e "s|\${resolver}|$resolver|g" -e "s|\${ca_file}|$ca_file|g" \
    examples/nginx/nginx.conf > "$prefix/nginx.conf"
nginx -t -q -p "$prefix" -c "$prefix/nginx.conf"
echo "iceservers: http://127.0.0.1:$port/ (demo page), http://127.0.0.1:$port/ice-servers"
echo "iceservers: for Janus: turn_rest_api = \"http://127.0.0.1:$port/ice-servers\" (no query needed)"
echo "iceservers: provider: ${TURN_PROVIDER:-stun}; Ctrl-C stops nginx"
exec nginx -p "$prefix" -c "$prefix/nginx.conf" -g 'daemon off;'
