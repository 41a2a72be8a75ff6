#!/usr/bin/env bash
# Installs Debian's PostgreSQL server binaries (initdb, pg_ctl, psql) when they are
# missing: tests run the charts' provisioning scripts against a real server that the
# test starts on loopback (reconciler/secrets). The package's own cluster is not
# started; nothing listens until a test starts its server.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && command -v psql >/dev/null; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "ensure-postgresql: not root and no sudo: install Debian's postgresql package" >&2; exit 1; }
  sudo="sudo -n"
fi
echo "ensure-postgresql: installing Debian's postgresql package (server binaries for the provisioning tests)"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# policy-rc.d keeps the package from starting its own cluster on install.
$sudo sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
$sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
