#!/bin/sh
# apt-install.sh NAME PACKAGE...: installs the Debian packages that are not
# installed yet (as root), without starting their services; NAME prefixes its
# messages.  Shared by deps.sh and bench-deps.sh.  Idempotent.
set -eu
export DEBIAN_FRONTEND=noninteractive
name=$1
shift

missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "$name: missing packages:$missing (run as root to install them)" >&2
    exit 1
  fi
  echo "$name: installing$missing"
  apt-get update -q
  # policy-rc.d keeps packaged services (nginx, coturn) from starting: the
  # tests and benchmarks start their own on loopback ports.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
fi
echo "$name: all packages present"
