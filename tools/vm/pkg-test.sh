#!/usr/bin/env bash
# The Debian packages on a machine that boots them: build fblk-dkms and
# fblk-utils, install them into a scratch Debian root, let DKMS build for
# the guest's kernel, configure a boot-time attach, boot the root with
# systemd and udev under qemu, and check what an administrator relies on.
#
#   pkg-test.sh [-k 7.3|6.1] [-o RUN_DIR]
#   pkg-test.sh -p -k 6.1    only make the cached Debian 12 root (deps.sh)
#
#   7.3  the Debian 13 root of deps.sh (never changed: an overlay on it)
#   6.1  a Debian 12 root made here with debootstrap (cached in
#        $FBLK_CACHE/pkgtest-bookworm-root, 6.1's image and headers in it)
#
# TAP on stdout ("N passed, N failed" last); exits 1 on any failure.  The
# guest writes its TAP to its second serial port (RUN_DIR/stream.log); the
# console is RUN_DIR/console.log.  Needs root (chroot, mount), network for
# apt in the scratch root, and what deps.sh installs.
set -euo pipefail
{
. "$(dirname "$0")/lib.sh"
FBLK_LOG_TAG=pkg-test

spec=7.3 run_dir= prepare_only=
while getopts k:o:p opt; do
	case $opt in
	k) spec=$OPTARG ;;
	o) run_dir=$OPTARG ;;
	p) prepare_only=1 ;;
	*) exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || die "must run as root (chroot, mount)"

work=/var/tmp/fblk-pkgtest-$$
mkdir -p "$work"
root=$work/root
mounts=()
cleanup() {
	local i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount -l "${mounts[i]}" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
	LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

# ---- the root --------------------------------------------------------------

# What the packages' machine has besides them: init, udev, DKMS, the tools
# the checks use.
guest_pkgs=(systemd-sysv udev dkms bash-completion e2fsprogs fdisk kmod procps)
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
case $spec in
7*)
	lower=$FBLK_ROOT13
	[ -e "$lower/.fblk-ready" ] || die "no Debian 13 root: make deps"
	;;
6.1)
	lower=$FBLK_CACHE/pkgtest-bookworm-root
	if [ ! -e "$lower/.fblk-ready" ]; then
		k61=$(_newest_kver / '6.1.*')
		[ -n "$k61" ] || die "no 6.1 kernel here: make deps"
		log "making a Debian 12 root in $lower (once)"
		rm -rf "$lower"
		debootstrap --variant=minbase bookworm "$lower" "$mirror" >/dev/null
		chroot "$lower" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends "linux-image-$k61" "linux-headers-$k61" \
			"${guest_pkgs[@]}" >/dev/null
		chroot "$lower" apt-get clean
		touch "$lower/.fblk-ready"
	fi
	root_install_missing "$lower" "${guest_pkgs[@]}" ||
		die "cannot install ${guest_pkgs[*]} in $lower"
	;;
*) die "unknown kernel line '$spec' (7.3 or 6.1)" ;;
esac
[ -z "$prepare_only" ] || exit 0
kver=$(_newest_kver "$lower" "${spec%%.*}.*")
[ -n "$kver" ] && [ -e "$lower/boot/vmlinuz-$kver" ] || die "no kernel in $lower"
log "scratch root: an overlay on $lower (kernel $kver)"
mkdir -p "$work"/{upper,ovl-work,root}
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$work/upper,workdir=$work/ovl-work" "$root"
mounts+=("$root")
for d in proc sys dev; do
	mount --rbind "/$d" "$root/$d"
	mounts+=("$root/$d")
done

# ---- the packages ----------------------------------------------------------

log "building the packages"
src=$work/src/fblk
mkdir -p "$src"
(cd "$FBLK_TOP" && git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf -) | tar -C "$src" -xf -
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 ||
	{ tail -n 30 "$work/build.log" >&2; die "dpkg-buildpackage failed"; }
lintian_out=$(lintian "$work"/src/*.changes 2>&1 | grep -v 'running with root privileges' || true)

log "installing them in the scratch root (DKMS builds for $kver)"
cp "$work"/src/fblk-dkms_*_all.deb "$work"/src/fblk-utils_*_amd64.deb "$root/tmp/"
in_root apt-get update -qq
in_root apt-get install -y -qq --no-install-recommends "${guest_pkgs[@]}" \
	>"$work/apt.log" 2>&1 ||
	{ tail -n 30 "$work/apt.log" >&2; die "apt-get install in the root failed"; }
in_root sh -c 'apt-get install -y --no-install-recommends /tmp/fblk-dkms_*.deb /tmp/fblk-utils_*.deb' \
	>"$work/install.log" 2>&1 ||
	{ tail -n 40 "$work/install.log" >&2; die "installing the packages failed"; }
# DKMS's postinst builds for the running kernel (the host's, no headers
# here) and the newest installed: the guest's.
grep -E 'dkms|Building|Signing|Installing' "$work/install.log" | head -n 20 >&2 || true

# ---- what the administrator configures -------------------------------------

img=/var/lib/fblk/disk0.img
uuid0=2f6c2a6e-1b0c-4e0e-9d1f-0fb1c0000001
in_root mkdir -p /var/lib/fblk /etc/fblk /srv/data
in_root truncate -s 32M "$img"
in_root sh -c "mkdir -p /tmp/seed && echo fblk >/tmp/seed/hello &&
	mkfs.ext4 -q -F -L fblkboot -U $uuid0 -d /tmp/seed $img"
# auto: direct I/O where the guest's file can (its root is an overlay on
# tmpfs: 6.1's tmpfs has no O_DIRECT), else dontcache, else buffered.
printf 'FILE=%s\nOPTIONS=--io-mode=auto\n' "$img" >"$root/etc/fblk/fblk0.conf"
# The guest's first write-open copies the image up from 9p to its tmpfs, and
# TCG is slow on a busy host: more than systemd's default 90 s may pass
# before the device appears.
echo "UUID=$uuid0 /srv/data ext4 defaults,x-systemd.requires=fblk@fblk0.service,x-systemd.device-timeout=15min 0 2" \
	>>"$root/etc/fstab"
in_root systemctl enable fblk@fblk0.service >/dev/null 2>&1

# The checks, as a unit that runs once the machine is up, and a unit that
# stops after fblk@fblk0 at shutdown to see what it left.
mkdir -p "$root/usr/local/lib/fblk-pkgtest"
install -m 0755 "$FBLK_TOP/tools/vm/pkg-guest.sh" "$root/usr/local/lib/fblk-pkgtest/guest.sh"
cat >"$root/etc/systemd/system/fblk-pkgtest.service" <<EOS
[Unit]
Description=fblk package checks
After=multi-user.target
[Service]
Type=oneshot
Environment=UUID0=$uuid0 IMG=$img
ExecStart=/usr/local/lib/fblk-pkgtest/guest.sh
ExecStartPost=/bin/systemctl --no-block poweroff
[Install]
WantedBy=multi-user.target
EOS
cat >"$root/etc/systemd/system/fblk-pkgtest-shutdown.service" <<EOS
[Unit]
Description=fblk package checks at shutdown
DefaultDependencies=no
Before=fblk@fblk0.service shutdown.target
Conflicts=shutdown.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=/usr/local/lib/fblk-pkgtest/guest.sh --shutdown
[Install]
WantedBy=sysinit.target
EOS
in_root systemctl enable fblk-pkgtest.service fblk-pkgtest-shutdown.service >/dev/null 2>&1
in_root systemctl mask serial-getty@ttyS0.service serial-getty@ttyS1.service \
	getty@tty1.service >/dev/null 2>&1 || true
# A machine that has booted before: no first-boot prompts on the console.
echo 0fb1c0de0fb1c0de0fb1c0de0fb1c0de >"$root/etc/machine-id"

# ---- boot ------------------------------------------------------------------

run_dir=${run_dir:-$FBLK_RESULTS/$(date -u +%Y%m%d-%H%M%S)-pkg-$kver}
mkdir -p "$run_dir"
cp "$work/install.log" "$run_dir/install.log"
initrd=$FBLK_BUILD/initramfs/pkg-$kver.cpio.gz
FBLK_INIT="$FBLK_TOP/tools/vm/pkg-init" "$FBLK_TOP/tools/vm/initramfs.sh" "$kver" "$lower" "$initrd"
qemu=(qemu-system-x86_64 -cpu max -smp 2 -m 2048 -nographic -no-reboot
	-kernel "$lower/boot/vmlinuz-$kver" -initrd "$initrd"
	-append "console=ttyS0 panic=-1 rdinit=/init systemd.show_status=1"
	-virtfs "local,path=$root,mount_tag=root,security_model=none,readonly=on,multidevs=remap"
	-serial mon:stdio -serial "file:$run_dir/stream.log")
vm_lock=${FBLK_VM_LOCK:-/tmp/fblk-vm.lock}
if [ "$vm_lock" != 0 ]; then
	exec 8>>"$vm_lock"
	flock -n 8 || { log "waiting for another test VM to finish ($vm_lock)"; flock 8; }
fi
log "booting $kver with systemd -> ${run_dir#"$FBLK_TOP"/}"
timeout "${FBLK_VM_TIMEOUT:-900}" "${qemu[@]}" </dev/null >"$run_dir/console.log" 2>&1 || true
exec 8>&-

# ---- report ----------------------------------------------------------------

n=0 failed=0
tap() {
	n=$((n + 1))
	if [ "$1" = ok ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
echo "TAP version 13"
tap "$([ -z "$lintian_out" ] && echo ok || echo no)" "lintian is clean"
[ -z "$lintian_out" ] || sed 's/^/# /' <<<"$lintian_out"
if grep -qE 'Building module|Building for|dkms.*(build|install)' "$work/install.log" &&
	in_root sh -c "ls /lib/modules/$kver/updates/dkms/fblk.ko*" >/dev/null 2>&1; then
	tap ok "installing fblk-dkms built fblk.ko for $kver with DKMS"
else
	tap no "installing fblk-dkms built fblk.ko for $kver with DKMS"
	grep -iE 'dkms|error' "$work/install.log" | head -n 20 | sed 's/^/# /'
fi
# The guest's own lines, renumbered.
guest_lines=0
while IFS= read -r line; do
	line=${line%$'\r'}
	case $line in
	"ok "*) tap ok "${line#ok * - }"; guest_lines=$((guest_lines + 1)) ;;
	"not ok "*) tap no "${line#not ok * - }"; guest_lines=$((guest_lines + 1)) ;;
	"#"*) echo "$line" ;;
	esac
done <"$run_dir/stream.log"
if [ "$guest_lines" = 0 ]; then
	tap no "the guest ran its checks (see console.log)"
	tail -n 30 "$run_dir/console.log" | sed 's/^/# /'
fi
grep -q '^PKGTEST-END' "$run_dir/stream.log" || tap no "the guest finished its checks"
grep -q '^PKGTEST-SHUTDOWN-END' "$run_dir/stream.log" || tap no "the shutdown check ran"
echo "1..$n"
echo "$((n - failed)) passed, $failed failed"
[ "$failed" = 0 ]
exit
}
