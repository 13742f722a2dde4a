#!/bin/sh
# /init of the demo VM (busybox sh): load the virtio modules, find the
# virtio disk, run the guest writer on it. Kernel command-line options
# (passed to init as environment variables by the kernel):
#   ck_interval_ms=N   pause between records (default 5)
#   ck_dev=/dev/vda    the disk
#   ck_writers=N       writers on it at once (default 1)
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
exec </dev/console >/dev/console 2>&1
# boot_id is new at every boot: the host counts them (a VM that rebooted
# across the failover would print a second one).
echo "INIT kernel $(cat /proc/sys/kernel/osrelease) boot_id=$(cat /proc/sys/kernel/random/boot_id) up $(cat /proc/uptime)"
for m in $(cat /lib/modules/load-order); do
  insmod "/lib/modules/$m.ko" || echo "INIT insmod $m failed"
done
dev=${ck_dev:-/dev/vda}
i=0
while [ ! -b "$dev" ] && [ $i -lt 100 ]; do
  sleep 0.1
  i=$((i + 1))
done
if [ ! -b "$dev" ]; then
  echo "INIT FATAL: no $dev after 10 s"
  ls /sys/block
  poweroff -f
fi
echo "INIT disk $dev: $(cat "/sys/block/${dev#/dev/}/size") sectors, modules loaded, up $(cat /proc/uptime)"
# ck_writers=N: N writers, each in its own region of the disk (after the
# first MiB), so that N requests are in flight at once.
n=${ck_writers:-1}
base=1048576
slots=$((($(cat "/sys/block/${dev#/dev/}/size") * 512 - base) / 4096 / n))
k=0
while [ $k -lt "$n" ]; do
  /bin/guest_writer "$dev" "${ck_interval_ms:-5}" $((base + k * slots * 4096)) "$slots" "$k" &
  k=$((k + 1))
done
wait
echo "INIT guest_writer exited"
poweroff -f
