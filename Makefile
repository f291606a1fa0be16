# SPDX-License-Identifier: GPL-2.0
#
# fblk: files as block devices through asynchronous kiocb I/O.
#
#   make [KVER=...]          build fblk.ko here against /lib/modules/$KVER/build
#   make tools               build tools/fblksetup/fblksetup
#   make install             install fblk.ko, fblksetup and its man page
#   make deps                install what building and testing need (root)
#   make check [KVER=6.1|6.12|7.3|<release>] [T=pattern] [KERNEL=bzImage]
#                            lint, build for, boot and test one kernel line,
#                            or without KVER the CI set (6.1, 7.3, 6.12)
#   make lint                checkpatch --strict, W=1 and sparse builds
#   make demo [KVER=...]     a guided tour in a VM: fblk next to loop
#   make bench [KVER=...] [PROFILE=default|seeds|full]
#                            fblk vs the raw file, loop and ublk in one VM;
#                            results/bench-<date>-<kver>/ (tools/bench/)
#   make shell [KVER=...]    a root shell in the test VM (Ctrl-a x quits)
#   make build [KVER=...]    what `check` builds, into build/<release>/
#   make clean               remove build outputs (results/ stays)
#
# KVER takes a line (6.1, 6.12, 7.3) or a full release; 7.x lives in the
# Debian 13 root that `make deps` makes, and everything for it builds there.

# KVER as given (an alias or empty) goes to the scripts, which resolve it
# themselves; KREL is the release it stands for here.
KVER_ALIAS := $(KVER)
KREL := $(shell tools/vm/kver.sh $(KVER) 2>/dev/null)
KDIR ?= /lib/modules/$(KREL)/build

# make has a built-in LINT (= lint) for its implicit rules: that one is not
# ours, and exported as is it would turn lint off in check.sh.
ifeq ($(origin LINT),default)
LINT :=
endif
export T KERNEL V LINT

all: modules

modules:
	@test -n "$(KREL)" || { echo "no kernel headers found: make deps" >&2; exit 1; }
	@test -d "$(KDIR)" || { echo "$(KDIR) missing (7.x builds in the Debian 13 root: make build KVER=7.3)" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

tools:
	$(MAKE) -C tools/fblksetup

install: modules tools
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules_install
	$(MAKE) -C tools/fblksetup install PREFIX=/usr/local

deps:
	tools/vm/deps.sh

build:
	tools/vm/build.sh $(KVER_ALIAS)

check:
	KVER=$(KVER_ALIAS) tools/vm/check.sh

lint:
	tools/vm/lint.sh >/dev/null; rc=$$?; cat build/lint/lint.tap; exit $$rc

demo:
	KVER=$(KVER_ALIAS) tools/vm/check.sh --demo

bench:
	KVER=$(KVER_ALIAS) tools/bench/bench.sh

shell:
	tools/vm/build.sh $(KVER_ALIAS)
	tools/vm/vm.sh -k $(KVER_ALIAS) -m shell >/dev/null

clean:
	-test -d "$(KDIR)" && $(MAKE) -C $(KDIR) M=$(CURDIR) clean
	-$(MAKE) -C tools/fblksetup clean
	rm -rf build

.PHONY: all modules tools install deps build check lint demo bench shell clean
