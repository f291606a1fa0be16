# SPDX-License-Identifier: GPL-2.0
#
# fblk: files as block devices through asynchronous kiocb I/O.
#
# On a machine that uses fblk:
#   make [KVER=...]          build fblk.ko against /lib/modules/$KVER/build
#                            (default: the running kernel)
#   make tools               build tools/bin/fblksetup
#   make install             the module (and depmod), fblksetup, its man page,
#                            bash completion, udev rules, fblk@.service, the
#                            uapi header; DESTDIR, PREFIX (/usr/local) and
#                            INSTALL_MOD_PATH are honoured
#   make uninstall           remove what make install put in place
#   make install-dkms        the module's sources into /usr/src/fblk-$(VERSION)
#                            for `dkms install fblk/$(VERSION)`
#   make deb                 the Debian packages fblk-dkms and fblk-utils (../)
#
# Developing and testing (qemu VMs; `check` and `demo` run `deps` first when
# something it installs is missing):
#   make deps                install what building and testing need (root)
#   make check [KVER=6.1|6.12|7.3|<release>] [T=pattern] [KERNEL=bzImage]
#                            lint, build for, boot and test one kernel line,
#                            or without KVER the CI set (6.1, 7.3, 6.12)
#   make lint                checkpatch --strict, W=1 and sparse builds,
#                            shellcheck, fblksetup's host checks under ASan
#   make demo [KVER=...]     a guided tour in a VM: fblk next to loop
#   make bench [KVER=...] [PROFILE=default|seeds|goals|full]
#                            fblk vs the raw file, loop and ublk in one VM;
#                            results/bench-<date>-<kver>/ (tools/bench/)
#   make blktests [KVER=...] [BLKTESTS=/path] [BT_TESTS="block/003 fblk ..."]
#                            blktests' device tests on fblk and loop devices,
#                            its loop group and the fblk group (tools/suites/)
#   make xfstests [KVER=...] [XFSTESTS=/path] [GROUP=quick] [XT_FSTYP=xfs]
#                            xfstests on fblk (buffered, direct) and loop
#                            (dio off, on): a curated list, or GROUP
#   make suites-deps         the suites' build and run-time packages (root)
#   make shell [KVER=...]    a root shell in the test VM (Ctrl-a x quits)
#   make build [KVER=...]    what `check` builds, into build/<release>/
#   make clean               remove build outputs (results/ stays)
#
VERSION := 0.1

# KVER as given (an alias or empty) goes to the harness scripts, which
# resolve it themselves.  KREL is the release `make` builds for here: the
# running kernel unless KVER names another.
KVER_ALIAS := $(KVER)
ifeq ($(KVER),)
KREL := $(shell uname -r)
else
KREL := $(shell tools/vm/kver.sh $(KVER) 2>/dev/null)
endif
KDIR ?= /lib/modules/$(KREL)/build

# Install paths.  Under /usr (a package) udev rules and units go where the
# distribution's do; under any other prefix, where the administrator's do.
PREFIX	?= /usr/local
SBINDIR	?= $(PREFIX)/sbin
MANDIR	?= $(PREFIX)/share/man
INCLUDEDIR ?= $(PREFIX)/include
DOCDIR	?= $(PREFIX)/share/doc/fblk
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
SYSCONFDIR ?= /etc
ifeq ($(PREFIX),/usr)
UDEVRULESDIR ?= /usr/lib/udev/rules.d
SYSTEMDUNITDIR ?= /usr/lib/systemd/system
else
UDEVRULESDIR ?= $(SYSCONFDIR)/udev/rules.d
SYSTEMDUNITDIR ?= $(SYSCONFDIR)/systemd/system
endif
DKMSDIR	?= /usr/src/fblk-$(VERSION)
INSTALL_MOD_PATH ?= $(DESTDIR)
INSTALL_MOD_DIR ?= extra
TOOLS_INSTALL = $(MAKE) -C tools VERSION=$(VERSION) PREFIX=$(PREFIX) \
	SBINDIR=$(SBINDIR) MANDIR=$(MANDIR) COMPLETIONDIR=$(COMPLETIONDIR)

# What the module is made of, for DKMS's copy of the sources.
MODULE_SOURCES := Kbuild dkms.conf include/uapi/linux/fblk.h \
	$(wildcard drivers/block/fblk/*.[ch])

# make has a built-in LINT (= lint) for its implicit rules: that one is not
# ours, and exported as is it would turn lint off in check.sh.
ifeq ($(origin LINT),default)
LINT :=
endif
export T KERNEL V LINT

all: modules

modules:
	@test -n "$(KREL)" || { echo "fblk: no kernel matches KVER=$(KVER) (6.1, 6.12, 7.3 or a release in /lib/modules)" >&2; exit 1; }
	@test -d "$(KDIR)" || { \
		echo "fblk: cannot build for $(KREL): its headers are not installed ($(KDIR) is missing)." >&2; \
		echo "  Install them:  apt-get install linux-headers-$(KREL)" >&2; \
		echo "  or build for another kernel:  make KVER=<release>  (headers here: $$(ls -d /lib/modules/*/build 2>/dev/null | cut -d/ -f4 | tr '\n' ' '))" >&2; \
		case "$(KREL)" in 7.*) echo "  (7.x builds in the Debian 13 root: make build KVER=7.3)" >&2;; esac; \
		exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

tools:
	$(MAKE) -C tools VERSION=$(VERSION) fblksetup

install: install-module install-tools

# The module, and depmod unless it goes into a staging tree.
install-module: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR) INSTALL_MOD_PATH=$(INSTALL_MOD_PATH) \
		INSTALL_MOD_DIR=$(INSTALL_MOD_DIR) modules_install
	$(if $(INSTALL_MOD_PATH),,depmod -a $(KREL))
	$(MAKE) install-udev

# The rules and the modules-load.d snippet (off by default): fblk-dkms's.
install-udev:
	install -D -m 0644 dist/60-fblk.rules $(DESTDIR)$(UDEVRULESDIR)/60-fblk.rules
	test -e $(DESTDIR)$(SYSCONFDIR)/modules-load.d/fblk.conf || \
		install -D -m 0644 dist/modules-load.conf $(DESTDIR)$(SYSCONFDIR)/modules-load.d/fblk.conf
	$(if $(DESTDIR),,-udevadm control --reload)

# fblksetup, man page, completion, unit, header: fblk-utils's.
install-tools: tools
	$(TOOLS_INSTALL) install DESTDIR=$(DESTDIR)
	install -D -m 0644 include/uapi/linux/fblk.h $(DESTDIR)$(INCLUDEDIR)/linux/fblk.h
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	sed 's|@SBINDIR@|$(SBINDIR)|g' dist/fblk@.service.in >$(DESTDIR)$(SYSTEMDUNITDIR)/fblk@.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/fblk@.service
	install -D -m 0644 dist/fblk.conf.example $(DESTDIR)$(DOCDIR)/fblk0.conf.example
	$(if $(DESTDIR),,-systemctl daemon-reload 2>/dev/null)

# The sources DKMS builds from (fblk-dkms's, or by hand before dkms install).
install-dkms:
	for f in $(MODULE_SOURCES); do \
		install -D -m 0644 $$f $(DESTDIR)$(DKMSDIR)/$$f || exit 1; done

uninstall:
	rm -f $(addprefix $(INSTALL_MOD_PATH)/lib/modules/$(KREL)/,extra/fblk.ko updates/fblk.ko \
		$(INSTALL_MOD_DIR)/fblk.ko)
	$(if $(INSTALL_MOD_PATH),,-test -d /lib/modules/$(KREL) && depmod -a $(KREL))
	$(TOOLS_INSTALL) uninstall DESTDIR=$(DESTDIR)
	rm -f $(DESTDIR)$(INCLUDEDIR)/linux/fblk.h $(DESTDIR)$(UDEVRULESDIR)/60-fblk.rules \
		$(DESTDIR)$(SYSTEMDUNITDIR)/fblk@.service $(DESTDIR)$(DOCDIR)/fblk0.conf.example
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null
	@! test -e $(DESTDIR)$(SYSCONFDIR)/modules-load.d/fblk.conf || \
		echo "fblk: kept $(DESTDIR)$(SYSCONFDIR)/modules-load.d/fblk.conf (yours to edit); remove it by hand if you wish"

deps:
	tools/vm/deps.sh

# check and demo need what deps installs: run it when something is missing
# (a quick offline test; deps.sh itself is idempotent but goes to the network).
deps-if-missing:
	@tools/vm/deps.sh --if-missing

build:
	tools/vm/build.sh $(KVER_ALIAS)

check: deps-if-missing
	KVER=$(KVER_ALIAS) tools/vm/check.sh

lint:
	tools/vm/lint.sh >/dev/null; rc=$$?; cat build/lint/lint.tap; exit $$rc

demo: deps-if-missing
	KVER=$(KVER_ALIAS) tools/vm/check.sh --demo

bench:
	KVER=$(KVER_ALIAS) tools/bench/bench.sh

blktests:
	KVER=$(KVER_ALIAS) tools/suites/blktests.sh

xfstests:
	KVER=$(KVER_ALIAS) tools/suites/xfstests.sh

suites-deps:
	tools/suites/deps.sh

shell:
	tools/vm/build.sh $(KVER_ALIAS)
	tools/vm/vm.sh -k $(KVER_ALIAS) -m shell >/dev/null

# The Debian packages, unsigned, into the parent directory (debian/).
deb:
	dpkg-buildpackage -us -uc -b

clean:
	-test -d "$(KDIR)" && $(MAKE) -C $(KDIR) M=$(CURDIR) clean
	rm -f fblk.ko fblk.o fblk.mod fblk.mod.c fblk.mod.o Module.symvers modules.order
	find drivers \( -name '*.o' -o -name '.*.cmd' \) -delete
	-$(MAKE) -C tools clean
	rm -rf build

.PHONY: all modules tools install install-module install-udev install-tools \
	install-dkms uninstall deb deps deps-if-missing build check lint demo bench \
	blktests xfstests suites-deps \
	shell clean
