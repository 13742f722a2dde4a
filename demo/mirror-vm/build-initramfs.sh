#!/usr/bin/env bash
# build-initramfs.sh OUT_DIR: the demo VM's boot files, from Debian packages
# only (linux-image-amd64, busybox-static, gcc's static libc): nothing is
# downloaded. Prints two lines, KERNEL=PATH and INITRD=PATH.
#
# The initramfs holds busybox (static), the kernel's virtio modules with
# their dependencies (modinfo -F depends, loaded in dependency order), the
# guest writer (guest_writer.c, gcc -static) and an /init that loads the
# modules, waits for /dev/vda and runs the writer on it.
#
# Cached in OUT_DIR/KERNEL_VERSION-HASH (HASH of this script, the init and
# the writer's source, and the busybox binary): a rerun only prints the paths.
# KERNEL is the kernel's uncompressed ELF where it has a PVH entry (qemu
# boots it without decompressing: seconds faster under TCG), else the bzImage.
# KVER=VERSION picks a kernel (default: the newest /boot/vmlinuz-*).
set -euo pipefail
[ $# -eq 1 ] || {
  echo "usage: build-initramfs.sh OUT_DIR" >&2
  exit 2
}
OUT=$1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() {
  echo "build-initramfs: $*" >&2
  exit 1
}

KVER=${KVER:-}
if [ -z "$KVER" ]; then
  k=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$k" ] || die "no /boot/vmlinuz-*: install linux-image-amd64 (scripts/install-deps.sh demo-mirror)"
  KVER=${k#/boot/vmlinuz-}
fi
VMLINUZ=/boot/vmlinuz-$KVER
MODDIR=/lib/modules/$KVER
[ -r "$VMLINUZ" ] || die "$VMLINUZ missing or unreadable"
[ -d "$MODDIR" ] || die "$MODDIR missing (linux-image-$KVER)"
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing: install busybox-static"
if ! file -b "$BUSYBOX" 2>/dev/null | grep -q 'statically linked'; then
  # `file` may be absent; ldd says "not a dynamic executable" for a static one.
  if ldd "$BUSYBOX" >/dev/null 2>&1; then die "$BUSYBOX is dynamically linked: install busybox-static"; fi
fi
command -v gcc >/dev/null || die "gcc missing (build-essential)"
command -v modinfo >/dev/null || die "modinfo missing (kmod)"
command -v python3 >/dev/null || die "python3 missing"

hash=$( (cat "${BASH_SOURCE[0]}" "$HERE/guest_writer.c" "$HERE/init.sh" "$HERE/extract-vmlinux.py" "$BUSYBOX") | sha256sum | cut -c1-12)
DIR="$OUT/$KVER-$hash"
if [ -s "$DIR/initramfs.cpio.gz" ] && [ -s "$DIR/kernel" ]; then
  echo "KERNEL=$DIR/kernel"
  echo "INITRD=$DIR/initramfs.cpio.gz"
  exit 0
fi

mkdir -p "$OUT"
STAGE=$(mktemp -d "$OUT/.stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
R=$STAGE/root
mkdir -p "$R"/{bin,dev,proc,sys,lib/modules}

# busybox and the applets /init uses (links, so nothing runs at build time).
cp "$BUSYBOX" "$R/bin/busybox"
for a in sh mount insmod sleep cat echo poweroff mkdir ls dmesg; do ln -s busybox "$R/bin/$a"; done

# The virtio modules this kernel needs for a virtio-blk-pci disk, and what
# they depend on, in load order (dependencies first). Built-in ones
# (modules.builtin) need nothing.
declare -A seen=()
order=()
add_module() {
  local m=$1 f deps d
  m=${m//-/_}
  [ -n "${seen[$m]:-}" ] && return 0
  seen[$m]=1
  if ! f=$(modinfo -k "$KVER" -n "$m" 2>/dev/null); then
    die "module $m not found for $KVER"
  fi
  case "$f" in
  "(builtin)" | builtin*) return 0 ;;
  esac
  deps=$(modinfo -k "$KVER" -F depends "$m")
  for d in ${deps//,/ }; do add_module "$d"; done
  local base
  base=$(basename "$f")
  case "$base" in
  *.ko) cp "$f" "$R/lib/modules/$base" ;;
  *.ko.xz) xz -dc "$f" >"$R/lib/modules/${base%.xz}" ;;
  *.ko.zst) zstd -qdc "$f" >"$R/lib/modules/${base%.zst}" ;;
  *.ko.gz) gzip -dc "$f" >"$R/lib/modules/${base%.gz}" ;;
  *) die "unexpected module file $f" ;;
  esac
  order+=("${base%%.ko*}")
}
# virtio_pci (the PCI transport; on 5.16+ it depends on virtio_pci_modern_dev
# and virtio_pci_legacy_dev) and virtio_blk; both pull in virtio and virtio_ring.
for m in virtio_pci virtio_blk; do add_module "$m"; done
printf '%s\n' "${order[@]}" >"$R/lib/modules/load-order"

# The guest writer: one static binary.
gcc -static -O2 -Wall -Wextra -Werror -o "$R/bin/guest_writer" "$HERE/guest_writer.c"
strip "$R/bin/guest_writer" 2>/dev/null || true

install -m 0755 "$HERE/init.sh" "$R/init"

# newc archive, gzip (CONFIG_RD_GZIP). busybox cpio: no dependency on the cpio package.
(cd "$R" && find . -mindepth 1 | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null) | gzip -9 >"$STAGE/initramfs.cpio.gz"
# The kernel. Under TCG, decompressing the xz bzImage takes 10-20 s before the
# kernel prints a line; qemu boots the uncompressed ELF inside it directly
# through its PVH entry point (CONFIG_PVH, an ELF note XEN_ELFNOTE_PHYS32_ENTRY,
# type 0x12), which starts in seconds. Fall back to the bzImage when the
# payload is not such an ELF.
if python3 "$HERE/extract-vmlinux.py" "$VMLINUZ" "$STAGE/vmlinux" 2>"$STAGE/extract.err" &&
  readelf -n "$STAGE/vmlinux" 2>/dev/null | grep -q 'note type: (0x00000012)'; then
  mv "$STAGE/vmlinux" "$STAGE/kernel"
  kind="uncompressed ELF, PVH entry"
else
  echo "build-initramfs: no PVH kernel ($(cat "$STAGE/extract.err" 2>/dev/null)); booting the bzImage" >&2
  cp "$VMLINUZ" "$STAGE/kernel"
  kind="bzImage"
fi
mkdir -p "$DIR"
# Builds of this kernel from older versions of these files are stale now.
for old in "$OUT/$KVER"-*; do [ "$old" != "$DIR" ] && [ -d "$old" ] && rm -rf "$old"; done
mv "$STAGE/initramfs.cpio.gz" "$STAGE/kernel" "$DIR/"
printf '%s\n' "${order[@]}" >"$DIR/modules.txt"
echo "build-initramfs: $KVER: kernel $kind; modules ${order[*]}; initramfs $(stat -c %s "$DIR/initramfs.cpio.gz") bytes" >&2
echo "KERNEL=$DIR/kernel"
echo "INITRD=$DIR/initramfs.cpio.gz"
