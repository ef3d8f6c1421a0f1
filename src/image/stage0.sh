#!/bin/sh
# kiln's stage 0, /init of the small initramfs on a card's boot partition. Debian's
# generic kernels build SD/MMC host drivers, virtio_blk and ext4 as modules, so the
# kernel cannot mount the root by itself: this loads the board's modules, finds the root
# filesystem by root= (LABEL= or UUID= through findfs, or a /dev path; device numbering
# is not stable), mounts it and hands over to its /sbin/init (the s6 stage 1) with
# switch_root. On failure it says why and exits, so the kernel panics: with panic=-1
# and QEMU's -no-reboot the VM ends and kiln boot reports the reason.
export PATH=/bin

fail() {
    echo "kiln stage 0: $*"
    exit 1
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

root=
fstype=ext4
flags=ro
delay=30
init=/sbin/init
for word in $(cat /proc/cmdline); do
    case $word in
        root=*) root=${word#root=} ;;
        rootfstype=*) fstype=${word#rootfstype=} ;;
        rootdelay=*) delay=${word#rootdelay=} ;;
        init=*) init=${word#init=} ;;
        ro) flags=ro ;;
        rw) flags=rw ;;
    esac
done

if [ -r /etc/kiln/modules ]; then
    while read -r module; do
        insmod "$module" || echo "kiln stage 0: insmod $module failed"
    done < /etc/kiln/modules
fi

[ -n "$root" ] || fail "no root= on the kernel command line"
device=
tries=$((delay * 10))
while [ "$tries" -gt 0 ]; do
    case $root in
        LABEL=* | UUID=*) device=$(findfs "$root" 2>/dev/null) ;;
        *) device=$root ;;
    esac
    [ -n "$device" ] && [ -b "$device" ] && break
    device=
    sleep 0.1
    tries=$((tries - 1))
done
[ -n "$device" ] || fail "root $root did not appear within $delay s (are the storage modules in [image] modules?)"
mount -t "$fstype" -o "$flags" "$device" /newroot || fail "cannot mount $device ($fstype, $flags)"
[ -x "/newroot$init" ] || [ -L "/newroot$init" ] || fail "$device has no $init"
echo "kiln stage 0: root $root is $device ($fstype, $flags), starting $init"
umount /proc /sys /dev
exec switch_root /newroot "$init"
