# webpoold — see README.md. Plain GNU make; no generated build system.

PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
# systemd's own directories when installing into /usr (Debian 12 says
# /lib/systemd/system); under any other prefix, that prefix's.
SYSTEMD_DIR = $(if $(filter /usr,$(PREFIX)),$(shell pkg-config --variable=$(1) systemd 2>/dev/null))
UNITDIR ?= $(or $(call SYSTEMD_DIR,systemdsystemunitdir),$(PREFIX)/lib/systemd/system)
SYSUSERSDIR ?= $(or $(call SYSTEMD_DIR,sysusersdir),$(PREFIX)/lib/sysusers.d)
DATADIR ?= $(PREFIX)/share
SYSCONFDIR ?= /etc
# The document root conf/webpoold.conf names; install puts the default page
# there only if it does not exist yet (a package does that in its postinst
# instead, and sets INSTALL_DEFAULT_ROOT=no).
WWWDIR ?= /var/www/html
INSTALL_DEFAULT_ROOT ?= yes
DESTDIR ?=

# One source of truth: the Debian changelog's newest entry.
VERSION := ${shell sed -n '1s/^webpoold (\([^)]*\)).*/\1/p' packaging/debian/changelog}
BUILD ?= build
SANFLAGS ?=
CFLAGS ?= -O2 -g
PYTHON ?= /usr/bin/python3

PKGS := libsystemd inih
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))

WARNINGS := -Wall -Wextra -Wshadow -Wpointer-arith -Wcast-qual -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wsign-compare
# CI passes WERROR=-Werror; a clean build prints no warning either way.
WERROR ?=
ALL_CFLAGS = -std=gnu17 $(WARNINGS) $(WERROR) -D_GNU_SOURCE -DWEBPOOLD_VERSION='"$(VERSION)"' \
	-Isrc $(PKG_CFLAGS) $(SANFLAGS) $(CPPFLAGS) $(CFLAGS) -MMD -MP
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)

SRCS := $(wildcard src/*.c)
OBJS := $(SRCS:src/%.c=$(BUILD)/%.o)
UNIT_TESTS := $(patsubst tests/unit/test_%.c,%,$(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_TESTS:%=$(BUILD)/tests/test_%)

# Each unit test links its own module plus the pure modules it names here.
UNIT_EXTRA_config := $(BUILD)/log.o
UNIT_EXTRA_range := $(BUILD)/http.o
UNIT_EXTRA_precondition := $(BUILD)/http.o
UNIT_EXTRA_file := $(BUILD)/util.o
UNIT_EXTRA_serve := $(BUILD)/conn.o $(BUILD)/http.o $(BUILD)/file.o $(BUILD)/mime.o $(BUILD)/range.o \
	$(BUILD)/precondition.o $(BUILD)/site.o $(BUILD)/config.o $(BUILD)/log.o $(BUILD)/util.o $(BUILD)/accesslog.o

BUILD_DEPS := gcc make pkg-config libsystemd-dev libinih-dev media-types
TEST_DEPS := $(BUILD_DEPS) libcmocka-dev python3 python3-pytest systemd slowhttptest mandoc

.PHONY: all run check deps test-deps unit-tests check-unit check-integration \
	check-asan check-tsan install uninstall clean

all: $(BUILD)/webpoold

$(BUILD)/webpoold: $(OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

$(BUILD)/%.o: src/%.c | $(BUILD)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD) $(BUILD)/tests:
	mkdir -p $@

unit-tests: $(UNIT_BINS)

.SECONDEXPANSION:
$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/%.o $$(UNIT_EXTRA_$$*) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/$*.o $(UNIT_EXTRA_$*) \
		-lcmocka $(PKG_LIBS) -lpthread

# Debian package names; nothing else is fetched. Missing ones are installed
# (as root, or through sudo) so a fresh machine needs no manual step. An
# optional second argument is a command that apt-get install runs under.
define install_missing
	@if command -v dpkg-query >/dev/null 2>&1; then \
		missing=$$(for p in $(1); do \
			dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
		done); \
		if [ -n "$$missing" ]; then \
			echo "Installing missing packages:" $$missing; \
			sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
			$$sudo apt-get update -q && \
			DEBIAN_FRONTEND=noninteractive $$sudo $(2) apt-get install -y -q --no-install-recommends $$missing; \
		fi; \
	else \
		echo "Not a Debian system: make sure these are installed: $(1)"; \
	fi
endef

deps:
	$(call install_missing,$(BUILD_DEPS))

test-deps:
	$(call install_missing,$(TEST_DEPS))

run: deps
	$(MAKE) all
	exec $(BUILD)/webpoold -c conf/demo.conf

check: test-deps
	$(MAKE) check-unit check-integration
	$(MAKE) check-asan
	$(MAKE) check-tsan
	@echo "make check: all suites passed"

check-unit: unit-tests
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $(SANRUN) $$t; done

# The serving and resolution suites run a second time under a seccomp
# filter that answers openat2() with ENOSYS (as systemd's RestrictSUIDSGID=
# does), so the daemon's own path walk is held to the same cases.
RESOLVER_SUITES := tests/integration/test_serving.py tests/integration/test_resolve.py
RESOLVER_PASS ?= yes

check-integration: all
	WEBPOOLD_BIN=$(abspath $(BUILD)/webpoold) $(SANRUN) $(PYTHON) -m pytest -q $(PYTEST_ARGS) tests/integration
ifeq ($(RESOLVER_PASS),yes)
	WEBPOOLD_BIN=$(abspath $(BUILD)/webpoold) WEBPOOLD_TEST_NO_OPENAT2=1 $(SANRUN) \
		$(PYTHON) -m pytest -q $(PYTEST_ARGS) $(RESOLVER_SUITES)
endif

ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer

# Sanitizer reports make the process exit non-zero (and the integration
# tests check every daemon's exit status and stderr), so a report fails the run.
check-asan:
	$(MAKE) BUILD=build/asan SANFLAGS="$(ASAN_FLAGS)" CFLAGS="-O1 -g" \
		SANRUN="env ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1" \
		check-unit check-integration

check-tsan:
	$(MAKE) BUILD=build/tsan SANFLAGS="$(TSAN_FLAGS)" CFLAGS="-O1 -g" \
		SANRUN="env TSAN_OPTIONS=halt_on_error=1:exitcode=66" \
		UNIT_BINS="build/tsan/tests/test_pool build/tsan/tests/test_accesslog" PYTEST_ARGS="-m concurrency" \
		RESOLVER_PASS=no \
		check-unit check-integration

# The units name /usr/sbin/webpoold; point them at where we really install.
# Installing straight onto this system (no DESTDIR) also creates the
# service's user, as a package's postinst would.
install: all
	install -D -m 0755 $(BUILD)/webpoold $(DESTDIR)$(SBINDIR)/webpoold
	install -D -m 0644 man/webpoold.8 $(DESTDIR)$(MANDIR)/man8/webpoold.8
	install -D -m 0644 man/webpoold.conf.5 $(DESTDIR)$(MANDIR)/man5/webpoold.conf.5
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/sbin/webpoold|$(SBINDIR)/webpoold|g; s|/etc/webpoold.conf|$(SYSCONFDIR)/webpoold.conf|g' \
		systemd/webpoold.service > $(DESTDIR)$(UNITDIR)/webpoold.service
	install -m 0644 systemd/webpoold.socket $(DESTDIR)$(UNITDIR)/webpoold.socket
	install -D -m 0644 systemd/webpoold.sysusers $(DESTDIR)$(SYSUSERSDIR)/webpoold.conf
	install -D -m 0644 conf/default-site/index.html $(DESTDIR)$(DATADIR)/webpoold/html/index.html
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/webpoold.conf ]; then \
		echo "Keeping existing $(DESTDIR)$(SYSCONFDIR)/webpoold.conf"; \
	else \
		install -D -m 0644 conf/webpoold.conf $(DESTDIR)$(SYSCONFDIR)/webpoold.conf; \
	fi
	@if [ "$(INSTALL_DEFAULT_ROOT)" != yes ]; then :; \
	elif [ -e $(DESTDIR)$(WWWDIR) ]; then \
		echo "Keeping existing $(DESTDIR)$(WWWDIR)"; \
	else \
		install -D -m 0644 conf/default-site/index.html $(DESTDIR)$(WWWDIR)/index.html; \
	fi
	@if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then \
		systemd-sysusers $(SYSUSERSDIR)/webpoold.conf; \
	fi

# Leaves what the administrator may have made their own: the configuration,
# the document root and the log directory, and the user (files may be
# owned by it).
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/webpoold $(DESTDIR)$(MANDIR)/man8/webpoold.8 \
		$(DESTDIR)$(MANDIR)/man5/webpoold.conf.5 $(DESTDIR)$(UNITDIR)/webpoold.service \
		$(DESTDIR)$(UNITDIR)/webpoold.socket $(DESTDIR)$(SYSUSERSDIR)/webpoold.conf \
		$(DESTDIR)$(DATADIR)/webpoold/html/index.html
	-rmdir $(DESTDIR)$(DATADIR)/webpoold/html $(DESTDIR)$(DATADIR)/webpoold 2>/dev/null

clean:
	rm -rf build $(DIST_FILE)

-include $(OBJS:.o=.d) $(UNIT_BINS:=.d)

# ---- packages ----------------------------------------------------------------
# `make deb` builds webpoold_VERSION_ARCH.deb with dpkg-buildpackage from a
# copy of the tree (the debian/ directory comes from packaging/debian, the
# sysusers entry from systemd/), so the checkout stays clean. `make
# check-deb` also runs lintian, which must report no error or warning, and
# checks what the package holds.

DEB_DEPS := $(BUILD_DEPS) debhelper dpkg-dev lintian libcmocka-dev systemd
DEB_BUILD ?= $(BUILD)/deb
DEB_TREE = $(DEB_BUILD)/webpoold-$(VERSION)
DEB_ARCH = $(shell dpkg --print-architecture)
DEB_FILE = $(DEB_BUILD)/webpoold_$(VERSION)_$(DEB_ARCH).deb

.PHONY: deb deb-deps deb-build check-deb dist check-dist rpm rpm-deps rpm-build check-rpm

# `make dist`: webpoold-VERSION.tar.gz of the files git tracks (or, in an
# unpacked tarball, of everything but build/), which builds and tests on
# its own; `make check-dist` unpacks it elsewhere and proves that.
DIST_NAME = webpoold-$(VERSION)
DIST_FILE = $(DIST_NAME).tar.gz
DIST_BUILD ?= $(BUILD)/dist

dist:
	rm -rf $(DIST_BUILD)
	mkdir -p $(DIST_BUILD)/$(DIST_NAME)
	if [ -d .git ] && command -v git >/dev/null; then \
		git ls-files -z | tar --null -T - -cf - | tar -x -C $(DIST_BUILD)/$(DIST_NAME); \
	else \
		tar -c --exclude=./build --exclude='./webpoold-*.tar.gz' . | tar -x -C $(DIST_BUILD)/$(DIST_NAME); \
	fi
	tar -C $(DIST_BUILD) --sort=name --owner=0 --group=0 --numeric-owner -czf $(DIST_FILE) $(DIST_NAME)
	@echo "Made $(DIST_FILE)"

check-dist: dist
	$(PYTHON) tests/package/check_dist.py $(DIST_FILE) $(VERSION)

deb-deps:
	$(call install_missing,$(DEB_DEPS))

deb: deb-deps
	$(MAKE) deb-build

# Built from the dist tarball, so the package holds exactly what is released.
deb-build: dist
	rm -rf $(DEB_BUILD)
	mkdir -p $(DEB_BUILD)
	tar -C $(DEB_BUILD) -xzf $(DIST_FILE)
	cp -r packaging/debian $(DEB_TREE)/debian
	cp systemd/webpoold.sysusers $(DEB_TREE)/debian/webpoold.sysusers
	cd $(DEB_TREE) && dpkg-buildpackage -us -uc -b
	@echo "Built $(DEB_FILE)"

check-deb: deb
	$(PYTHON) tests/package/check_deb.py $(DEB_FILE)

# `make rpm` builds the RPM with rpmbuild (Debian's package rpm). Its
# BuildRequires name RPM packages, which dpkg cannot answer for, hence
# --nodeps; make deb-deps has installed the same things under Debian names.
RPM_BUILD ?= $(BUILD)/rpm

rpm-deps:
	$(call install_missing,$(BUILD_DEPS) rpm rpmlint)

rpm: rpm-deps
	$(MAKE) rpm-build

rpm-build: dist
	rm -rf $(RPM_BUILD)
	mkdir -p $(RPM_BUILD)/SOURCES $(RPM_BUILD)/SPECS
	cp $(DIST_FILE) $(RPM_BUILD)/SOURCES/
	sed 's/@VERSION@/$(VERSION)/g' packaging/rpm/webpoold.spec.in > $(RPM_BUILD)/SPECS/webpoold.spec
	rpmbuild -bb --nodeps --define "_topdir $(abspath $(RPM_BUILD))" $(RPM_BUILD)/SPECS/webpoold.spec
	@ls $(RPM_BUILD)/RPMS/*/webpoold-$(VERSION)-*.rpm

check-rpm: rpm
	$(PYTHON) tests/package/check_rpm.py $(wildcard $(RPM_BUILD)/RPMS/*/webpoold-$(VERSION)-*.rpm) $(VERSION)
# ---- end of packages ---------------------------------------------------------

# ---- fuzz ------------------------------------------------------------------
# libFuzzer harnesses (tests/fuzz/README.md). `make fuzz` installs clang and
# its fuzzer runtime, then runs each harness for FUZZ_SECONDS on a copy of its
# corpus under build/fuzz/; a crash, leak, sanitizer report or timeout fails
# it. With FUZZ_RUNS, each runs that many executions instead, FUZZ_SECONDS
# being only a bound, and reaching fewer fails too. Each harness links only
# the modules it tests. `make fuzz-merge` minimises tests/fuzz/corpus/ again,
# taking in what the last runs found.

FUZZ_SECONDS ?= 10
FUZZ_RUNS ?=
FUZZ_CC ?= clang
FUZZ_BUILD ?= build/fuzz
FUZZ_TARGETS := request path range config chunked
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_DEPS := make pkg-config libinih-dev clang libclang-rt-14-dev

FUZZ_MODULES_request := src/http.c
FUZZ_MODULES_path := src/http.c
FUZZ_MODULES_chunked := src/http.c
FUZZ_MODULES_range := src/range.c src/http.c
FUZZ_MODULES_config := src/config.c src/log.c
FUZZ_LIBS_config = $(shell pkg-config --libs inih)

FUZZ_CFLAGS = -std=gnu17 $(WARNINGS) $(WERROR) -D_GNU_SOURCE -Isrc $(shell pkg-config --cflags inih) \
	-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

.PHONY: fuzz fuzz-deps fuzz-build fuzz-run fuzz-merge

fuzz-deps:
	$(call install_missing,$(FUZZ_DEPS))

# A second make, so clang and pkg-config are only looked for once installed.
fuzz: fuzz-deps
	$(MAKE) fuzz-run

fuzz-build: $(FUZZ_BINS)

# Every harness runs even when one fails; the summary lists them all.
fuzz-run: $(FUZZ_BINS)
	@rm -f $(FUZZ_BUILD)/summary; status=0; \
	for t in $(FUZZ_TARGETS); do \
		sh tests/fuzz/run.sh $$t $(FUZZ_BUILD)/fuzz_$$t $(FUZZ_SECONDS) $(FUZZ_BUILD) $(FUZZ_RUNS) || status=1; \
	done; \
	echo "== fuzz summary ($(if $(FUZZ_RUNS),$(FUZZ_RUNS) runs within $(FUZZ_SECONDS) s,$(FUZZ_SECONDS) s) per target)"; \
	cat $(FUZZ_BUILD)/summary; \
	exit $$status

# Keeps the smallest set of inputs that covers everything the repository's
# corpus, the seeds and the last runs' corpora under build/fuzz/ cover
# (libFuzzer -merge=1 into a fresh directory), and makes it the corpus.
fuzz-merge: $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
		rm -rf $(FUZZ_BUILD)/merged/$$t; \
		mkdir -p $(FUZZ_BUILD)/merged/$$t $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t; \
		$(FUZZ_BUILD)/fuzz_$$t -merge=1 $(FUZZ_BUILD)/merged/$$t tests/fuzz/seeds/$$t \
			tests/fuzz/corpus/$$t $(FUZZ_BUILD)/corpus/$$t >$(FUZZ_BUILD)/merge-$$t.log 2>&1 \
			|| { cat $(FUZZ_BUILD)/merge-$$t.log; exit 1; }; \
		rm -rf tests/fuzz/corpus/$$t; cp -R $(FUZZ_BUILD)/merged/$$t tests/fuzz/corpus/$$t; \
		echo "fuzz_$$t: corpus of $$(ls tests/fuzz/corpus/$$t | wc -l) inputs"; \
	done

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $$(FUZZ_MODULES_$$*) tests/fuzz/fuzz.h $(wildcard src/*.h) \
		| $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_MODULES_$*) $(FUZZ_LIBS_$*)

$(FUZZ_BUILD):
	mkdir -p $@
# ---- end of fuzz -----------------------------------------------------------

# ---- e2e -------------------------------------------------------------------
# webpoold under a real systemd (tests/e2e/README.md): a Debian bookworm
# guest booted with systemd-nspawn (systemd as PID 1), webpoold installed
# into it from its .deb and driven with systemctl, journalctl and HTTP.
# Needs root. The guest's root file system is built once with debootstrap
# from this machine's apt mirror and cached in /var/cache/webpoold-e2e/.

E2E_DEPS := debootstrap debian-archive-keyring systemd-container zstd python3 systemd

.PHONY: check-e2e e2e-deps

e2e-deps:
	$(call install_missing,$(BUILD_DEPS) $(E2E_DEPS))

# The guest installs the .deb `make deb` builds, with dpkg, as an
# administrator would (its maintainer scripts create the user and start the
# socket).
check-e2e: e2e-deps deb
	$(PYTHON) tests/e2e/run.py --deb $(DEB_FILE) --binary $(DEB_TREE)/build/webpoold \
		$(if $(E2E_ONLY),--only $(E2E_ONLY))
# ---- end of e2e ------------------------------------------------------------

# ---- bench -----------------------------------------------------------------
# `make bench` (tests/bench/README.md): webpoold side by side with nginx,
# lighttpd, H2O, Apache httpd and Caddy, and a fixed-response responder as
# the limit line, over loopback; it prints a Markdown table and writes it
# with a chart to $(BENCH_BUILD)/. Figures only: it fails when a server
# cannot start or serves wrong bytes, never on speed. Needs root (it
# installs the servers, without letting them start as services). Not part
# of `make check`. BENCH_QUICK=1 is a smoke run of about a minute.

BENCH_DEPS := $(BUILD_DEPS) python3 curl wrk nginx-light lighttpd h2o apache2 caddy gnuplot-nox
BENCH_BUILD ?= $(BUILD)/bench

.PHONY: bench bench-deps bench-run

bench-deps:
	$(call install_missing,$(BENCH_DEPS),sh tests/bench/no-autostart.sh)

# A second make, so pkg-config and the libraries are only looked for once installed.
bench: bench-deps
	$(MAKE) bench-run

bench-run: all $(BENCH_BUILD)/responder
	$(PYTHON) tests/bench/bench.py --webpoold $(BUILD)/webpoold --responder $(BENCH_BUILD)/responder \
		--out $(BENCH_BUILD)

$(BENCH_BUILD)/responder: tests/bench/responder.c | $(BENCH_BUILD)
	$(CC) -std=gnu17 $(WARNINGS) $(WERROR) -D_GNU_SOURCE -O2 $(LDFLAGS) -o $@ $< -lpthread

$(BENCH_BUILD):
	mkdir -p $@
# ---- end of bench ----------------------------------------------------------
