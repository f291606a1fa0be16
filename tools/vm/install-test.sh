#!/usr/bin/env bash
# `make install` and `make uninstall` into staging trees, as a packager or
# an administrator with DESTDIR, PREFIX and INSTALL_MOD_PATH runs them: every
# file lands under the stage where the Makefile says it goes, nothing lands
# in the live system, and uninstall takes back all but the administrator's
# modules-load.d snippet.  Builds from a clean copy of the tree.
#
#   install-test.sh KVER      (a release with headers in /lib/modules)
#
# TAP on stdout; exits 1 if a check failed.
set -uo pipefail
kver=${1:?usage: install-test.sh KVER}
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/fblk-install-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

n=0 failed=0
check() {
	local name=$1
	shift
	n=$((n + 1))
	if "$@" >>"$work/log" 2>&1; then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name"
		failed=$((failed + 1))
	fi
}
# present STAGE PATH...: every PATH (a glob under STAGE) exists.
present() {
	local stage=$1 p
	shift
	for p in "$@"; do
		compgen -G "$stage$p" >/dev/null || { echo "missing: $p"; return 1; }
	done
}
# only_left STAGE PATH...: no file but these under STAGE.
only_left() {
	local stage=$1 left
	shift
	left=$(cd "$stage" && find . -type f | sed 's|^\.||' | sort)
	[ "$left" = "$(printf '%s\n' "$@" | sort)" ] || { echo "left: $left"; return 1; }
}

src=$work/src
mkdir -p "$src"
(cd "$top" && git ls-files -z | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf -) | tar -C "$src" -xf -
live_before=$(ls /lib/modules/"$kver"/*/fblk.ko* /usr/sbin/fblksetup /usr/local/sbin/fblksetup \
	/usr/include/linux/fblk.h /usr/local/include/linux/fblk.h 2>/dev/null)

echo "TAP version 13"
# A package's layout: PREFIX=/usr, module and all into the stage.
pkg=$work/pkg
check "make install DESTDIR PREFIX=/usr INSTALL_MOD_PATH builds and installs for $kver" \
	make -s -C "$src" install KVER="$kver" PREFIX=/usr DESTDIR="$pkg" INSTALL_MOD_PATH="$pkg"
check "each file where a package puts it" present "$pkg" \
	"/lib/modules/$kver/extra/fblk.ko*" /usr/sbin/fblksetup \
	"/usr/share/man/man8/fblksetup.8*" /usr/share/bash-completion/completions/fblksetup \
	/usr/lib/udev/rules.d/60-fblk.rules /usr/lib/systemd/system/fblk@.service \
	/usr/include/linux/fblk.h /etc/modules-load.d/fblk.conf
check "the unit runs the installed fblksetup" \
	grep -q '^ExecStart=/usr/sbin/fblksetup ' "$pkg/usr/lib/systemd/system/fblk@.service"
check "make uninstall takes it all back but modules-load.d/fblk.conf" sh -c \
	"make -s -C '$src' uninstall KVER='$kver' PREFIX=/usr DESTDIR='$pkg' INSTALL_MOD_PATH='$pkg' &&
	 $(declare -f only_left); only_left '$pkg' /etc/modules-load.d/fblk.conf"

# An administrator's layout: the default PREFIX (/usr/local), rules and the
# unit under /etc, the tools only.
adm=$work/adm
check "make install-tools with the default PREFIX" \
	make -s -C "$src" install-tools DESTDIR="$adm"
check "each file where an administrator's go" present "$adm" \
	/usr/local/sbin/fblksetup "/usr/local/share/man/man8/fblksetup.8*" \
	/usr/local/include/linux/fblk.h /etc/systemd/system/fblk@.service
check "nothing landed in the live system" \
	test "$live_before" = "$(ls /lib/modules/"$kver"/*/fblk.ko* /usr/sbin/fblksetup \
		/usr/local/sbin/fblksetup /usr/include/linux/fblk.h \
		/usr/local/include/linux/fblk.h 2>/dev/null)"
[ "$failed" = 0 ] || sed 's/^/# /' "$work/log" | tail -n 30
echo "1..$n"
[ "$failed" = 0 ]
