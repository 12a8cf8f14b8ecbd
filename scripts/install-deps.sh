#!/usr/bin/env bash
# Installs what pg_privacy needs on Debian 12 (as root). Quick when everything is there already.
# Extra package names given as arguments are installed too (bench/install-deps.sh).
set -euo pipefail
packages=(postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap
          libtap-parser-sourcehandler-pgtap-perl libipc-run-perl libio-socket-ssl-perl libssl-dev
          libcurl4-openssl-dev
          openssl jq cmake g++ make googletest libgtest-dev clang-format clang-tidy python3
          "$@")
# Only real packages here: a virtual one (postgresql-contrib-15 is provided by postgresql-15)
# never shows as installed and would send every run to apt-get.
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
