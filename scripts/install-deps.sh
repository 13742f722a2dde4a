#!/usr/bin/env bash
# Installs, from Debian's packages only, what one use of cloudkeep needs and
# is not already installed. Idempotent: a second run installs nothing and does
# not touch the network.
#
#   scripts/install-deps.sh build   compiler, cmake and the -dev libraries (no servers)
#   scripts/install-deps.sh demo    build + what scripts/demo.sh runs (mkfs, loop devices, python3)
#   scripts/install-deps.sh test    build + demo + every real component the tests start
#                                   (MariaDB, Postfix, nsd, unbound, rbldnsd, tshark, NBD
#                                   clients, etcd, QEMU …), clang for the fuzz build, pandoc
#                                   for the man pages, and the npm packages of tests/fakes
#   scripts/install-deps.sh bench   test + the benchmark anchors (restic, borg, sockperf …)
#   scripts/install-deps.sh demo-mirror  demo + what `make demo-mirror` runs: QEMU, the Debian
#                                   kernel and busybox-static for its VM, arping (also in test)
#
# Add --list to print the profile's packages and which are missing, installing nothing.
set -euo pipefail

BUILD=(
  build-essential cmake pkg-config ccache
  libssl-dev libzstd-dev libcurl4-openssl-dev libunbound-dev libevent-dev libmariadb-dev
  libxml2-dev libcli11-dev nlohmann-json3-dev libtomlplusplus-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libfuse3-dev libsodium-dev libsqlite3-dev libcpp-httplib-dev libsystemd-dev
)
# scripts/demo.sh: mkfs.xfs, mkfs.ext4 and debugfs, losetup and mount, /usr/bin/python3.
DEMO=(
  xfsprogs e2fsprogs mount util-linux python3
)
# Real components the tests start, and the tools of the sanitizer and fuzz builds
# (clang with its libFuzzer runtime) and of the format check.
TEST=(
  clang clang-format libclang-rt-14-dev
  btrfs-progs iproute2 procps psmisc kmod openssl
  mariadb-server mariadb-client
  unbound nsd rbldnsd postfix swaks tshark
  python3-dkim python3-dnslib python3-yaml opendkim-tools publicsuffix
  nbdkit libnbd-bin python3-libnbd qemu-utils fio fuse3 etcd-server qemu-system-x86
  nodejs # ships npm (a separate Debian npm package conflicts with it)
  pandoc # the man pages of docs/manual: built when present, checked by check-manuals.sh
  prometheus # scrapes the agent in test_agent.sh (promtool comes with it)
  chromium # loads the agent dashboard headless (test_agent_dashboard.sh, with puppeteer-core)
  curl # the agent's HTTP endpoints and radosgw's readiness, from the test scripts
  systemd # systemd-analyze verify of dist/systemd/cloudkeep-agent.service (test_agent_systemd.sh)
  python3-boto3 # test-side S3 checks against radosgw (tests/integration/s3_check.py)
  # tests/integration/lib_radosgw.sh: a one-node Ceph (mon, mgr, one memstore OSD) and
  # radosgw, the S3 server of the snapshot store's S3 backend tests
  ceph-mon ceph-mgr ceph-osd ceph-common radosgw
)
# demo/mirror-vm (make demo-mirror, tests/integration/test_mirror_vm.sh): a qemu VM
# booting the Debian kernel (/boot/vmlinuz-*, virtio modules from /lib/modules)
# with a busybox-static initramfs, three network namespaces, a gratuitous ARP, etcd.
# linux-image-amd64 only adds files under /boot and /lib/modules (and builds an
# initrd the demo does not use); no bootloader is installed or run.
MIRROR_VM=(
  qemu-system-x86 linux-image-amd64 busybox-static iputils-arping iproute2 kmod openssl python3
  etcd-server
)
# Anchors for the benchmarks.
BENCH=(
  restic borgbackup sockperf qperf iperf3 spfquery libmail-spf-perl spf-tools-perl
  hyperfine time bc
  prometheus-node-exporter # the anchor of bench/agent.sh
)

usage() {
  echo "usage: scripts/install-deps.sh build|demo|demo-mirror|test|bench [--list]" >&2
  exit 2
}
[ $# -ge 1 ] || usage
profile=$1
list_only=0
case "${2:-}" in
  "") ;;
  --list) list_only=1 ;;
  *) usage ;;
esac
case "$profile" in
  build) PACKAGES=("${BUILD[@]}") ;;
  demo) PACKAGES=("${BUILD[@]}" "${DEMO[@]}") ;;
  demo-mirror) PACKAGES=("${BUILD[@]}" "${DEMO[@]}" "${MIRROR_VM[@]}") ;;
  test) PACKAGES=("${BUILD[@]}" "${DEMO[@]}" "${TEST[@]}" "${MIRROR_VM[@]}") ;;
  bench) PACKAGES=("${BUILD[@]}" "${DEMO[@]}" "${TEST[@]}" "${MIRROR_VM[@]}" "${BENCH[@]}") ;;
  *)
    echo "install-deps: unknown profile '$profile'" >&2
    usage
    ;;
esac

# A package in two of the lists is listed and installed once.
mapfile -t PACKAGES < <(printf '%s\n' "${PACKAGES[@]}" | awk '!seen[$0]++')
missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "$list_only" = 1 ]; then
  echo "profile $profile: ${PACKAGES[*]}"
  echo "missing: ${missing[*]:-(none)}"
  exit 0
fi

# Test-only npm packages (the AWS SDK's SigV4 signer for the signer cross-check),
# pinned by tests/fakes/package-lock.json; installed once, offline afterwards.
npm_fakes() {
  case "$profile" in test | bench) ;; *) return 0 ;; esac
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/fakes"
  if [ -f "$dir/package-lock.json" ] && [ ! -d "$dir/node_modules/@smithy/signature-v4" ]; then
    echo "install-deps: npm ci in tests/fakes"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  npm_fakes
  echo "install-deps: everything for '$profile' is installed"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: not root; using sudo for the package step only" >&2
  SUDO=(sudo)
fi

echo "install-deps ($profile): installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure itself: the tests give it their own configuration.
if [[ " ${missing[*]} " == *" postfix "* ]]; then
  echo "postfix postfix/main_mailer_type select No configuration" | "${SUDO[@]}" debconf-set-selections
fi
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
