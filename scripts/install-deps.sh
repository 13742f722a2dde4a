#!/usr/bin/env bash
# Installs, from Debian's packages only, whatever cloudkeep needs to build,
# test, demo and benchmark that is not already installed. Idempotent: a
# second run installs nothing and does not touch the network.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config ccache clang clang-format libclang-rt-14-dev
  libssl-dev libzstd-dev libcurl4-openssl-dev libunbound-dev libevent-dev libmariadb-dev
  libxml2-dev libcli11-dev nlohmann-json3-dev libtomlplusplus-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  # real components the tests start
  xfsprogs btrfs-progs e2fsprogs util-linux iproute2 procps psmisc kmod
  mariadb-server mariadb-client
  unbound nsd rbldnsd postfix swaks tshark
  python3 python3-dkim python3-dnslib python3-yaml opendkim-tools publicsuffix
  nodejs  # ships npm (a separate Debian npm package conflicts with it)
  # anchors for the benchmarks
  python3-boto3 restic borgbackup sockperf qperf iperf3 spfquery libmail-spf-perl spf-tools-perl hyperfine time bc
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Test-only npm packages (the AWS SDK's SigV4 signer for the signer cross-check),
# pinned by tests/fakes/package-lock.json; installed once, offline afterwards.
npm_fakes() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/fakes"
  if [ -f "$dir/package-lock.json" ] && [ ! -d "$dir/node_modules/@smithy/signature-v4" ]; then
    echo "install-deps: npm ci in tests/fakes"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  npm_fakes
  echo "install-deps: everything is installed"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: not root; using sudo for the package step only" >&2
  SUDO=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure itself: the tests give it their own configuration.
echo "postfix postfix/main_mailer_type select No configuration" | "${SUDO[@]}" debconf-set-selections
# Debian would start the servers it installs; the tests start their own.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
  "${SUDO[@]}" chmod 755 "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
npm_fakes
