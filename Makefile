# mcpjobd — top-level GNU Makefile.
#
# Objects go under build/; programs are build/mcpjobd and build/mcpjobctl,
# the engine is build/libmcpjob.a (common + daemon engine + platform), which
# mcpjobd, the unit tests and the mobile bridges link.
#
#   make            build everything
#   make demo       install missing packages (when root), build, run the demo
#   make check      install missing packages (when root), build, run all tests
#   SANITIZE=1      build and test under ASan+UBSan (objects in build-san/)
#   V=1             show the commands
#   WERROR=0        warnings stay warnings (packagers: a newer compiler's new
#                   warning must not break a release build; debian/rules sets it)
#
# CPPFLAGS, CFLAGS and LDFLAGS from the command line or the environment are
# used on every compile and link line (Debian's hardening flags, for one).

PREFIX        ?= /usr/local
bindir        ?= $(PREFIX)/bin
sbindir       ?= $(PREFIX)/sbin
mandir        ?= $(PREFIX)/share/man
datadir       ?= $(PREFIX)/share
libexecdir    ?= $(PREFIX)/libexec
docdir        ?= $(datadir)/doc/mcpjobd
sysconfdir    ?= /etc
DESTDIR       ?=
systemdsystemunitdir ?= $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
systemduserunitdir   ?= $(shell pkg-config --variable=systemduserunitdir systemd 2>/dev/null || echo /usr/lib/systemd/user)
sysusersdir   ?= $(shell pkg-config --variable=sysusersdir systemd 2>/dev/null || echo /usr/lib/sysusers.d)
bashcompdir   ?= $(datadir)/bash-completion/completions

VERSION := 0.1.0

ifeq ($(SANITIZE),1)
B := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
B := build
SANFLAGS :=
endif

CC      ?= cc
PKG_CONFIG ?= pkg-config
PKGS    := libevent libevent_pthreads jansson lmdb libsystemd libcrypto libcurl
CFLAGS  ?= -O2 -g
LDFLAGS ?=
WERROR  ?= 1
WARN    := -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) -Wshadow -Wmissing-prototypes \
           -Wstrict-prototypes
override CPPFLAGS += -I. -DMCPJOB_VERSION='"$(VERSION)"' -DMCPJOB_DOCDIR='"$(docdir)"'
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) \
             $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
# libcurl and libcrypto are not linked: common/netlib.c loads them when an
# http server, OAuth or randomized_delay first needs them (35 libraries an
# all-stdio daemon never calls). Tests and benchmarks that call them
# directly link them (NET_LIBS).
# Nor is libsystemd (and the 6 libraries it links): common/sdlib.c loads it
# when the daemon is a systemd service, logs to the journal or talks D-Bus or
# udev; tests that call it directly get it with NET_LIBS.
NET_PKGS := libcrypto libcurl
SD_PKGS   = $(filter libsystemd,$(PKGS))
LIBS    = $(shell $(PKG_CONFIG) --libs $(filter-out $(NET_PKGS) $(SD_PKGS),$(PKGS)) 2>/dev/null) \
          -lpthread -lm
NET_LIBS = $(shell $(PKG_CONFIG) --libs $(NET_PKGS) $(SD_PKGS) 2>/dev/null)
CHECK_LIBS = $(shell $(PKG_CONFIG) --libs check 2>/dev/null)

# --- embedding: build variants (mobile) ------------------------------------
# Each variant builds into its own directory, so they never mix objects:
#   WITH_SYSTEMD=0     no libsystemd: no journal, sd_notify, sd-bus or udev
#                      (rtnetlink, interface names, loadavg, sysfs polling)
#   MCPJOB_NO_SPAWN=1  the iOS shape: nothing forks or execs; exec actions and
#                      stdio MCP servers are configuration errors
#   ARCH=arm64         cross-build with aarch64-linux-gnu-gcc and the :arm64
#                      multiarch packages (make check-arm64 runs the result)
WITH_SYSTEMD    ?= 1
MCPJOB_NO_SPAWN ?= 0
ifeq ($(WITH_SYSTEMD),0)
B        := $(B)-nosystemd
PKGS     := $(filter-out libsystemd,$(PKGS))
override CPPFLAGS += -DMCPJOB_WITH_SYSTEMD=0
endif
ifeq ($(MCPJOB_NO_SPAWN),1)
B        := $(B)-nospawn
override CPPFLAGS += -DMCPJOB_NO_SPAWN=1
endif
ifeq ($(ARCH),arm64)
B        := $(B)-arm64
CC       := aarch64-linux-gnu-gcc
ARM64_SYSROOT := $(CURDIR)/build-arm64/sysroot/usr/lib/aarch64-linux-gnu
export PKG_CONFIG_LIBDIR := $(ARM64_SYSROOT)/pkgconfig:/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
# make 4.3 does not pass exported variables to $(shell): say it on the line.
PKG_CONFIG := PKG_CONFIG_LIBDIR=$(PKG_CONFIG_LIBDIR) pkg-config
LIBS     += -L$(ARM64_SYSROOT)
endif
# --- end of the embedding variants ------------------------------------------

ifeq ($(V),1)
Q :=
else
Q := @
endif

COMMON_SRC   := $(sort $(wildcard common/*.c))
ENGINE_SRC   := $(sort $(filter-out daemon/main.c,$(wildcard daemon/*.c daemon/*/*.c)))
PLATFORM_SRC := $(sort $(wildcard platform/*.c platform/linux/*.c platform/sim/*.c))
CTL_SRC      := $(sort $(wildcard ctl/*.c))
UNIT_SRC     := $(sort $(wildcard tests/unit/test_*.c))
TSERVER_SRC  := $(sort $(wildcard tests/servers/*.c))
DEMO_SRC     := $(sort $(wildcard examples/demo-server/*.c))
BENCH_SRC    := $(sort $(wildcard bench/*.c))
CONFORMANCE_SRC := $(sort $(wildcard tests/conformance/*.c))

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

LIB       := $(B)/libmcpjob.a
DAEMON    := $(B)/mcpjobd
CTL       := $(B)/mcpjobctl
DEMO_SRV  := $(if $(DEMO_SRC),$(B)/mcpjob-demo-server)
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
TSERVERS  := $(patsubst tests/servers/%.c,$(B)/tests/servers/%,$(TSERVER_SRC))
BENCH_BINS := $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRC))
CONFORMANCE_CLIENT := $(if $(CONFORMANCE_SRC),$(B)/tests/mcpjob-conformance-client)

.PHONY: all help deps demo check check-clang unit e2e bench install uninstall format clean lint-man fuzz deb check-system

all: $(DAEMON) $(CTL) $(DEMO_SRV) $(UNIT_BINS) $(TSERVERS) $(CONFORMANCE_CLIENT)

help:
	@echo "targets:"
	@echo "  all         build mcpjobd, mcpjobctl, the demo server and the tests"
	@echo "  demo        install missing packages, build, run mcpjobd with examples/"
	@echo "  check       install missing packages, build, run unit and end-to-end tests"
	@echo "  unit        run the Check unit tests only"
	@echo "  check-clang build the tree and its tests with clang too (part of check)"
	@echo "  e2e         run the end-to-end tests only"
	@echo "  bench       run the benchmarks (figures side by side with baselines)"
	@echo "  fuzz        build and briefly run the libFuzzer targets (clang)"
	@echo "  check-embed the shared library's exports, the JVM test, the no-systemd and"
	@echo "              no-spawn builds' embedding tests (part of check)"
	@echo "  check-arm64 cross-build for ARM64 and run the unit tests under qemu-user"
	@echo "  install     install programs, units, man pages, a config without jobs and the"
	@echo "              examples in docdir (PREFIX, DESTDIR, sysconfdir, systemdsystemunitdir,"
	@echo "              systemduserunitdir, ...); an existing"
	@echo "              \$$(sysconfdir)/mcpjobd/mcpjobd.json is never overwritten"
	@echo "  uninstall   remove what install put there (keeps the configuration in /etc)"
	@echo "  deb         build the Debian package in a copy of the tree (\$$(B)/deb/) and lintian it"
	@echo "  check-system  make deb, then boot a container with systemd as PID 1 (systemd-nspawn"
	@echo "              over a throw-away overlay of /), install, upgrade and purge the package"
	@echo "              there and test the units under the real system and user managers"
	@echo "  format      clang-format the sources"
	@echo "  lint-man    mandoc -Tlint every man page"
	@echo "  clean       remove build/ and build-san/"
	@echo "variables: SANITIZE=1 (ASan+UBSan), V=1 (verbose), WERROR=0 (no -Werror), PREFIX, DESTDIR,"
	@echo "           CPPFLAGS, CFLAGS, LDFLAGS (added to every compile and link line),"
	@echo "           WITH_SYSTEMD=0 (no libsystemd), MCPJOB_NO_SPAWN=1 (no processes: iOS),"
	@echo "           ARCH=arm64 (cross-build); each variant builds in its own build-*/"

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

LIB_SRC  := $(COMMON_SRC) $(ENGINE_SRC) $(PLATFORM_SRC)
LIB_OBJS := $(call obj,$(LIB_SRC))

$(LIB): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(DAEMON): $(call obj,daemon/main.c) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(CTL): $(call obj,$(CTL_SRC)) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/mcpjob-demo-server: $(call obj,$(DEMO_SRC) common/timeutil.c)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(shell $(PKG_CONFIG) --libs jansson)

# The MCP conformance suite's client under test (tests/e2e/test_conformance.py).
$(B)/tests/mcpjob-conformance-client: $(call obj,$(CONFORMANCE_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS) $(NET_LIBS)

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) $(NET_LIBS) $(CHECK_LIBS)

$(B)/tests/servers/%: $(B)/obj/tests/servers/%.o $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) $(NET_LIBS)

$(B)/bench/%: $(B)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) $(NET_LIBS)

.SECONDARY:

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

# --- set-up: Debian packages and the npm reference servers -----------------
deps:
	@tests/bootstrap.sh

# --- demo -----------------------------------------------------------------
# Runs the example configuration with paths rewritten into ./run: the
# bundled demo MCP server from build/, its data in run/demo, the cache the
# cleanup job cleans in run/cache (seeded with a few old files).
DEMO_CONFIG := run/mcpjobd.json

demo: deps
	@$(MAKE) --no-print-directory $(DAEMON) $(CTL) $(B)/mcpjob-demo-server
	@mkdir -p run/state run/demo run/cache/thumbnails
	@for f in old-a.tmp old-b.tmp thumbnails/old-c.png; do \
	  [ -e run/cache/$$f ] || { echo "cached $$f" > run/cache/$$f; touch -d '10 days ago' run/cache/$$f; }; done
	@sed -e 's|"command": "/usr/local/libexec/mcpjob-demo-server",|"command": "$(CURDIR)/$(B)/mcpjob-demo-server", "args": ["--data-dir", "$(CURDIR)/run/demo"],|' \
	     -e 's|/var/cache/example|$(CURDIR)/run/cache|' examples/mcpjobd.json > $(DEMO_CONFIG)
	@$(DAEMON) --user --check-config --config $(DEMO_CONFIG) >/dev/null
# --user: a personal daemon, so the demo's jobs run as whoever runs it; as root a
# system daemon would run them as nobody, who cannot write run/.
	@echo
	@echo "mcpjobd runs in the foreground with examples/mcpjobd.json (paths rewritten"
	@echo "into $(DEMO_CONFIG)). In another terminal, try:"
	@echo "    $(CTL) --socket run/control.sock list"
	@echo "    $(CTL) --socket run/control.sock run fetch-notifications --wait"
	@echo "    $(CTL) --socket run/control.sock history cleanup-cache"
	@echo "    $(CTL) --socket run/control.sock watch"
	@echo "Stop with Ctrl-C."
	@echo
	$(DAEMON) --user --config $(DEMO_CONFIG) --state-dir run/state --socket run/control.sock $(DEMO_FLAGS)

# --- tests ----------------------------------------------------------------
# The fuzz targets run briefly in the plain pass (they carry their own
# sanitizers); FUZZ_SECONDS sets how long each runs.
# The checkout must be as clean after the tests as before (tests/check-clean.sh).
check: deps
	@tests/check-clean.sh before $(B)/check-clean.before
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit e2e
	@$(MAKE) --no-print-directory check-embed
ifneq ($(SANITIZE),1)
	@$(MAKE) --no-print-directory check-clang
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-10} tests/fuzz/run.sh
endif
	@tests/check-clean.sh after $(B)/check-clean.before

# The whole tree, tests included, with clang and the same -Werror flags
# (objects in build-clang/): both compilers must build it.
check-clang:
	@$(MAKE) --no-print-directory B=build-clang CC=clang all $(patsubst $(B)/%,build-clang/%,$(UNIT_BINS) $(TSERVERS))
	@echo "clang: the tree and its tests build clean"

unit: $(UNIT_BINS) $(TSERVERS)
	@tests/run-unit.sh $(UNIT_BINS)

e2e: all
	@MCPJOB_BUILD=$(CURDIR)/$(B) python3 tests/e2e/run.py

bench: all $(BENCH_BINS)
	@MCPJOB_BUILD=$(CURDIR)/$(B) bench/run.sh

fuzz:
	@tests/fuzz/run.sh

lint-man:
	@for m in man/*.[0-9]; do mandoc -Tlint -W warning $$m || exit 1; done; echo "man pages lint clean"

format:
	clang-format -i $(COMMON_SRC) $(ENGINE_SRC) $(PLATFORM_SRC) $(CTL_SRC) daemon/main.c \
	  $(wildcard common/*.h daemon/*.h daemon/*/*.h platform/*.h ctl/*.h) $(UNIT_SRC)

clean:
	rm -rf build build-san build-clang build-fuzz build-*nosystemd* build-*nospawn* build-*arm64*

# --- install --------------------------------------------------------------
# Units and the example configuration get the installed paths. The
# configuration installed in $(sysconfdir) has no jobs (systemd/mcpjobd.json):
# it starts cleanly on any system. The example jobs, which need the demo
# server and a cache directory, go to $(docdir)/examples.
SUBST = sed -e 's|@sbindir@|$(sbindir)|g' \
            -e 's|/usr/local/libexec/mcpjob-demo-server|$(libexecdir)/mcpjobd/mcpjob-demo-server|g'
MAN_PAGES := $(sort $(wildcard man/*.[0-9]))
BASHCOMP  := $(wildcard ctl/mcpjobctl.bash-completion)

install: $(DAEMON) $(CTL) $(B)/mcpjob-demo-server
	install -d $(DESTDIR)$(sbindir) $(DESTDIR)$(bindir) $(DESTDIR)$(libexecdir)/mcpjobd
	install -m 0755 $(DAEMON) $(DESTDIR)$(sbindir)/mcpjobd
	install -m 0755 $(CTL) $(DESTDIR)$(bindir)/mcpjobctl
	install -m 0755 $(B)/mcpjob-demo-server $(DESTDIR)$(libexecdir)/mcpjobd/mcpjob-demo-server
	install -d $(DESTDIR)$(systemdsystemunitdir) $(DESTDIR)$(systemduserunitdir) \
	  $(DESTDIR)$(sysusersdir)
	for u in mcpjobd.service mcpjobd.socket; do \
	  $(SUBST) systemd/$$u > $(DESTDIR)$(systemdsystemunitdir)/$$u && \
	  chmod 0644 $(DESTDIR)$(systemdsystemunitdir)/$$u && \
	  $(SUBST) systemd/user/$$u > $(DESTDIR)$(systemduserunitdir)/$$u && \
	  chmod 0644 $(DESTDIR)$(systemduserunitdir)/$$u || exit 1; \
	done
	install -m 0644 systemd/mcpjobd.sysusers $(DESTDIR)$(sysusersdir)/mcpjobd.conf
	for m in $(MAN_PAGES); do \
	  s=$${m##*.}; install -d $(DESTDIR)$(mandir)/man$$s && \
	  install -m 0644 $$m $(DESTDIR)$(mandir)/man$$s/ || exit 1; \
	done
	install -d $(DESTDIR)$(docdir)/examples $(DESTDIR)$(sysconfdir)/mcpjobd/jobs.d
	$(SUBST) examples/mcpjobd.json > $(DESTDIR)$(docdir)/examples/mcpjobd.json
	chmod 0644 $(DESTDIR)$(docdir)/examples/mcpjobd.json
	install -m 0644 examples/client.py $(DESTDIR)$(docdir)/examples/client.py
	install -m 0644 examples/register.py $(DESTDIR)$(docdir)/examples/register.py
	test -e $(DESTDIR)$(sysconfdir)/mcpjobd/mcpjobd.json || \
	  install -m 0644 systemd/mcpjobd.json $(DESTDIR)$(sysconfdir)/mcpjobd/mcpjobd.json
	$(if $(BASHCOMP),install -d $(DESTDIR)$(bashcompdir) && \
	  install -m 0644 $(BASHCOMP) $(DESTDIR)$(bashcompdir)/mcpjobctl)

uninstall:
	rm -f $(DESTDIR)$(sbindir)/mcpjobd $(DESTDIR)$(bindir)/mcpjobctl \
	  $(DESTDIR)$(libexecdir)/mcpjobd/mcpjob-demo-server \
	  $(DESTDIR)$(systemdsystemunitdir)/mcpjobd.service \
	  $(DESTDIR)$(systemdsystemunitdir)/mcpjobd.socket \
	  $(DESTDIR)$(systemduserunitdir)/mcpjobd.service \
	  $(DESTDIR)$(systemduserunitdir)/mcpjobd.socket \
	  $(DESTDIR)$(sysusersdir)/mcpjobd.conf \
	  $(DESTDIR)$(docdir)/examples/mcpjobd.json $(DESTDIR)$(docdir)/examples/client.py \
	  $(DESTDIR)$(docdir)/examples/register.py \
	  $(DESTDIR)$(bashcompdir)/mcpjobctl
	for m in $(notdir $(MAN_PAGES)); do rm -f $(DESTDIR)$(mandir)/man$${m##*.}/$$m; done
	rmdir $(DESTDIR)$(libexecdir)/mcpjobd $(DESTDIR)$(docdir)/examples $(DESTDIR)$(docdir) \
	  2>/dev/null || true
	@echo "kept the configuration in $(DESTDIR)$(sysconfdir)/mcpjobd"

# --- Debian package -------------------------------------------------------
# Built in a copy of the tree (tracked and new files, not build output), so
# the package build never dirties the checkout; the .deb, .changes and the
# lintian report land in $(B)/deb/. Lintian's warnings fail the target too:
# each one kept is overridden, with the reason, in debian/mcpjobd.lintian-overrides.
DEB_DIR := $(B)/deb
deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/mcpjobd-$(VERSION)
	if git -C $(CURDIR) rev-parse --git-dir >/dev/null 2>&1; then \
	  git -C $(CURDIR) ls-files -z -co --exclude-standard | \
	    tar -C $(CURDIR) --null -T - -cf - | tar -C $(DEB_DIR)/mcpjobd-$(VERSION) -xf -; \
	else \
	  tar -C $(CURDIR) --exclude='./build*' --exclude=./run -cf - . | \
	    tar -C $(DEB_DIR)/mcpjobd-$(VERSION) -xf -; \
	fi
	cd $(DEB_DIR)/mcpjobd-$(VERSION) && dpkg-buildpackage -us -uc -b >../build.log 2>&1 || \
	  { tail -40 ../build.log; echo "dpkg-buildpackage failed; the whole log is $(DEB_DIR)/build.log" >&2; exit 1; }
	lintian --fail-on error,warning --info $(DEB_DIR)/*.changes >$(DEB_DIR)/lintian.log 2>&1; \
	  rc=$$?; grep -E '^[EWIX]:' $(DEB_DIR)/lintian.log; \
	  [ $$rc -eq 0 ] || { echo "lintian found errors or warnings: $(DEB_DIR)/lintian.log" >&2; exit 1; }
	@ls $(DEB_DIR)/*.deb

# A real systemd: tests/system/run.py boots a container (systemd-nspawn -b
# over a tmpfs overlay of /, loopback-only network), installs the package in
# it and tests there; it says SKIPPED loudly where no container can boot.
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
check-system: deps
	@$(MAKE) --no-print-directory deb
	@python3 tests/system/run.py $(DEB_DIR)/mcpjobd_$(VERSION)_$(DEB_ARCH).deb

# --- embedding: the shared library, the JNI bridge, their checks (mobile) ---
# libmcpjob.so exports only the mcpjob_* API of daemon/embed.h (installed as
# mcpjob.h): every library object is built -fPIC with hidden visibility,
# the header marks the API MCPJOB_API, and daemon/mcpjob.map (a version
# script with the MCPJOB_0 node) says the same to the linker. The static
# archive is made of the same objects, so mcpjobd and the tests link what
# apps link.
SO_MAJOR := 0
SONAME   := libmcpjob.so.$(SO_MAJOR)
SOLIB    := $(B)/libmcpjob.so
JNI_LIB  := $(B)/libmcpjob_jni.so
libdir     ?= $(PREFIX)/lib
includedir ?= $(PREFIX)/include
pkgconfigdir ?= $(libdir)/pkgconfig
JNI_H := $(firstword $(wildcard /usr/lib/jvm/default-java/include/jni.h /usr/lib/jvm/*/include/jni.h))
JAVAC := $(firstword $(wildcard /usr/lib/jvm/default-java/bin/javac) $(shell command -v javac 2>/dev/null))
JAVA_BIN := $(dir $(JAVAC))

$(LIB_OBJS): ALL_CFLAGS += -fPIC -fvisibility=hidden

all: $(SOLIB)

$(SOLIB).$(VERSION): $(LIB_OBJS) daemon/mcpjob.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=daemon/mcpjob.map \
	  -Wl,--no-undefined -o $@ $(LIB_OBJS) $(LIBS)

$(B)/$(SONAME): $(SOLIB).$(VERSION)
	$(Q)ln -sf $(notdir $<) $@

$(SOLIB): $(B)/$(SONAME)
	$(Q)ln -sf $(notdir $<) $@

# The bridge an Android app loads (System.loadLibrary("mcpjob_jni")), over
# the shared library as any app would link it.
$(B)/obj/platform/android/mcpjob_jni.o: platform/android/mcpjob_jni.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -I$(dir $(JNI_H)) \
	  -I$(dir $(JNI_H))linux -MMD -MP -c -o $@ $<

$(JNI_LIB): $(B)/obj/platform/android/mcpjob_jni.o $(SOLIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -shared -Wl,--no-undefined -o $@ $< -L$(B) -lmcpjob \
	  -Wl,-rpath,'$$ORIGIN' $(shell $(PKG_CONFIG) --libs jansson)

$(B)/mcpjob.pc: daemon/mcpjob.pc.in FORCE
	@mkdir -p $(B)
	@sed -e 's|@prefix@|$(PREFIX)|' -e 's|@libdir@|$(libdir)|' -e 's|@includedir@|$(includedir)|' \
	  -e 's|@VERSION@|$(VERSION)|' -e 's|@PKGS@|$(PKGS)|' daemon/mcpjob.pc.in > $(B)/mcpjob.pc

install: install-lib
uninstall: uninstall-lib
install-lib: $(SOLIB) $(LIB) $(B)/mcpjob.pc
	install -d $(DESTDIR)$(libdir) $(DESTDIR)$(includedir) $(DESTDIR)$(pkgconfigdir)
	install -m 0755 $(SOLIB).$(VERSION) $(DESTDIR)$(libdir)/libmcpjob.so.$(VERSION)
	ln -sf libmcpjob.so.$(VERSION) $(DESTDIR)$(libdir)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(libdir)/libmcpjob.so
	install -m 0644 $(LIB) $(DESTDIR)$(libdir)/libmcpjob.a
	install -m 0644 daemon/embed.h $(DESTDIR)$(includedir)/mcpjob.h
	install -m 0644 $(B)/mcpjob.pc $(DESTDIR)$(pkgconfigdir)/mcpjob.pc
uninstall-lib:
	rm -f $(DESTDIR)$(libdir)/libmcpjob.so.$(VERSION) $(DESTDIR)$(libdir)/$(SONAME) \
	  $(DESTDIR)$(libdir)/libmcpjob.so $(DESTDIR)$(libdir)/libmcpjob.a \
	  $(DESTDIR)$(includedir)/mcpjob.h $(DESTDIR)$(pkgconfigdir)/mcpjob.pc

# The library's sources, one a line: platform/android/CMakeLists.txt must list the same.
print-lib-src:
	@printf '%s\n' $(LIB_SRC)

# What check runs for the embedding: the export list, the Android source
# list, the JVM test, and the embedding tests in the no-systemd and the
# no-spawn builds (each in its own build directory).
EMBED_TEST := $(B)/tests/test_embed
check-embed: $(SOLIB) $(LIB) $(EMBED_TEST)
	@tests/embed/check-exports.sh $(SOLIB)
	@B=$(B) tests/embed/check-install.sh
	@tests/embed/check-cmake-sources.sh
	@tests/embed/check-modulemap.sh
ifneq ($(JNI_H),)
ifneq ($(SANITIZE),1)
	@$(MAKE) --no-print-directory $(JNI_LIB) $(B)/tests/servers/mcp-fault
	@tests/embed/run-jvm-test.sh $(CURDIR)/$(B) $(JAVA_BIN)
else
	@echo "SKIP jvm test under SANITIZE=1: the JVM cannot load an ASan library without preloading its runtime; it runs in the plain pass"
endif
else
	@echo "SKIP jvm test: no JDK found (install default-jdk-headless)"
endif
	@$(MAKE) --no-print-directory WITH_SYSTEMD=0 check-embed-variant
	@$(MAKE) --no-print-directory WITH_SYSTEMD=0 MCPJOB_NO_SPAWN=1 check-embed-variant

# One variant: build the library, the embedding tests (and mcpjobd) in its
# own $(B), prove what the variant leaves out, run the tests.
VARIANT_BINS := $(SOLIB) $(EMBED_TEST) $(if $(filter 1,$(MCPJOB_NO_SPAWN)),,$(DAEMON) $(B)/tests/servers/mcp-fault)
check-embed-variant: $(VARIANT_BINS)
	@tests/embed/check-exports.sh $(SOLIB)
	@tests/embed/check-variant.sh $(B) $(WITH_SYSTEMD) $(MCPJOB_NO_SPAWN)
	@tests/run-unit.sh $(EMBED_TEST)
	@echo "$(B): the embedding tests pass (WITH_SYSTEMD=$(WITH_SYSTEMD) MCPJOB_NO_SPAWN=$(MCPJOB_NO_SPAWN))"

# ARM64: cross-build the library and the unit tests, run them under qemu-user.
check-arm64:
	@tests/arm64/check.sh

.PHONY: check-embed check-embed-variant check-arm64 install-lib uninstall-lib print-lib-src FORCE
FORCE:
# --- end of the embedding section ---------------------------------------------
