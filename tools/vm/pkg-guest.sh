#!/bin/bash
# pkg-test.sh's checks inside the booted guest (systemd, udev, the fblk
# packages installed, fblk@fblk0 enabled, /srv/data in fstab on its UUID).
# TAP on the second serial port, which the host keeps as stream.log.
#
#   guest.sh              after boot (fblk-pkgtest.service); powers off after
#   guest.sh --shutdown   at shutdown, after fblk@fblk0.service stopped
exec >/dev/ttyS1 2>&1
n=0 fails=0

# check NAME CMD...: one TAP line.
check() {
	local name=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n - $name"
	else
		fails=$((fails + 1))
		echo "not ok $n - $name"
	fi
}
same() { [ "$1" = "$2" ] || { echo "#   '$1' is not '$2'"; return 1; }; }
state() { cat "/sys/block/$1/fblk/state" 2>/dev/null; }
link_of() { readlink -f "$1" 2>/dev/null; }
has_prop() { udevadm info -q property "$1" 2>/dev/null | grep -qx "$2"; }

if [ "${1:-}" = --shutdown ]; then
	bound=
	for d in /sys/block/fblk*; do
		[ -e "$d" ] || continue
		[ "$(state "${d##*/}")" = unbound ] || bound+=" ${d##*/}"
	done
	check "at shutdown fblk@fblk0 detached: no fblk device bound" same "$bound" ""
	check "at shutdown /srv/data was unmounted first" sh -c '! findmnt /srv/data >/dev/null'
	echo "PKGTEST-SHUTDOWN-END"
	exit 0
fi

echo "# kernel $(uname -r), $(systemctl is-system-running 2>/dev/null)"
kv=$(uname -r)

# -- what the boot did --
check "fblk.ko for $kv came from DKMS" sh -c "ls /lib/modules/$kv/updates/dkms/fblk.ko* >/dev/null"
check "fblk@fblk0.service is active" systemctl is-active --quiet fblk@fblk0.service
check "fblk0 is bound to $IMG" same "$(cat /sys/block/fblk0/fblk/backing_file 2>/dev/null)" "$IMG"
check "fblk@fblk0 applied OPTIONS (--io-mode=auto)" \
	same "$(cat /sys/block/fblk0/fblk/io_mode_requested 2>/dev/null)" auto
check "/srv/data was mounted at boot from fblk0" same "$(findmnt -n -o SOURCE /srv/data)" /dev/fblk0
check "the file system on it is the image's" same "$(cat /srv/data/hello 2>/dev/null)" fblk
check "/dev/disk/by-uuid/$UUID0 -> fblk0" same "$(link_of "/dev/disk/by-uuid/$UUID0")" /dev/fblk0
check "/dev/disk/by-label/fblkboot -> fblk0" same "$(link_of /dev/disk/by-label/fblkboot)" /dev/fblk0
ino=$(stat -c %i "$IMG")
check "/dev/disk/by-fblk-inode/*-$ino -> fblk0" \
	same "$(link_of /dev/disk/by-fblk-inode/*-"$ino")" /dev/fblk0
check "/dev/fblk-control is 0660 root:disk" same "$(stat -c %a:%U:%G /dev/fblk-control)" 660:root:disk
check "systemd sees fblk0 as a ready device" \
	same "$(systemctl show -p ActiveState --value dev-fblk0.device)" active

# -- detach, unload, and the first use of fblksetup --
umount /srv/data
systemctl stop fblk@fblk0.service
udevadm settle
check "stopping fblk@fblk0 detaches it" same "$(state fblk0)" unbound
check "an unbound fblk0 has SYSTEMD_READY=0" has_prop /dev/fblk0 SYSTEMD_READY=0
check "its by-uuid link is gone" test ! -e "/dev/disk/by-uuid/$UUID0"
modprobe -r fblk
check "fblk unloads" test ! -e /sys/module/fblk
truncate -s 64M /tmp/a.img
dev=$(fblksetup -f --show /tmp/a.img)
check "the first fblksetup -f loads the module" test -e /sys/module/fblk
check "and attaches: $dev" same "$(state "${dev#/dev/}")" bound
udevadm settle
check "/dev/fblk-control is 0660 root:disk after that load" \
	same "$(stat -c %a:%U:%G /dev/fblk-control)" 660:root:disk
uuid1=7a1e0b52-5f7e-4c11-8c33-0fb1c0000002
mkfs.ext4 -q -F -L fblktest -U "$uuid1" "$dev"
udevadm settle
check "a new file system on $dev appears in /dev/disk/by-uuid" \
	same "$(link_of "/dev/disk/by-uuid/$uuid1")" "$dev"
check "and in /dev/disk/by-label" same "$(link_of /dev/disk/by-label/fblktest)" "$dev"

# -- partitions --
puuid=5c0ffee0-0b1c-4d2e-8f00-0fb1c0000003
truncate -s 64M /tmp/p.img
printf 'label: gpt\nsize=32MiB, type=L, uuid=%s, name=fblkpart\n' "$puuid" | sfdisk -q /tmp/p.img
pdev=$(fblksetup -f --show -P /tmp/p.img)
udevadm settle
check "by-partuuid of ${pdev}p1" same "$(link_of "/dev/disk/by-partuuid/$puuid")" "${pdev}p1"
check "by-partlabel of ${pdev}p1" same "$(link_of /dev/disk/by-partlabel/fblkpart)" "${pdev}p1"
mkfs.ext4 -q -F -L fblkp1 "${pdev}p1"
udevadm settle
check "a file system on ${pdev}p1 in by-label" same "$(link_of /dev/disk/by-label/fblkp1)" "${pdev}p1"

# -- completion --
complete_words() {
	bash -c '. /usr/share/bash-completion/bash_completion
		_completion_loader fblksetup 2>/dev/null ||
			. /usr/share/bash-completion/completions/fblksetup
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_fblksetup fblksetup "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}"' _ "$@" | sort | tr '\n' ' '
}
check "completion: --rem -> --remove" same "$(complete_words fblksetup --rem)" "--remove "
check "completion: -d lists bound devices" same "$(complete_words fblksetup -d /dev/fb)" "$dev $pdev "
check "completion: --io-mode d" same "$(complete_words fblksetup --io-mode d)" "direct dontcache "
check "completion: -O NAME,BACK-F" same "$(complete_words fblksetup -O NAME,BACK-F)" "NAME,BACK-FILE "

# -- --remove --
fblksetup --remove "$pdev"
check "--remove $pdev detaches and removes it" test ! -e "/sys/block/${pdev#/dev/}"
fblksetup -d "$dev"
check "-d $dev detaches" same "$(state "${dev#/dev/}")" unbound

# -- attached again for the shutdown check --
systemctl start fblk@fblk0.service && mount /srv/data
check "fblk@fblk0 attaches again and /srv/data mounts" same "$(findmnt -n -o SOURCE /srv/data)" /dev/fblk0

echo "1..$n"
echo "PKGTEST-END fails=$fails"
