# memrun — the one build. `make deps` installs what the build needs (Debian, as root) and nothing
# else does that for plain `make`; `make` builds build/memrun and the library; `make check` installs
# what the tests need (`check-deps`) and runs every test; `make demo` shows memrun on the bundled
# examples; `make install PREFIX=/usr/local DESTDIR=`. CFLAGS, CPPFLAGS and LDFLAGS from the
# environment reach every compile and link; WERROR=1 (CI) turns warnings into errors.
# The version: NEWS's first heading and git (build-aux/version.sh; VERSION= on the command line wins).
ifndef VERSION
VERSION     := $(shell build-aux/version.sh .)
endif
# The shared library's file name carries the base version only (libmemlimit.so.0.3.0).
LIBVERSION  := $(shell sed -n '1s/^memrun \([0-9][0-9.]*\).*/\1/p' NEWS)
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DESTDIR     ?=
B           := build

CC          ?= cc
WARN        := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wconversion \
               $(if $(filter 1,$(WERROR)),-Werror)
CFLAGS      ?= -O2 -g
LIBDIR      ?= $(PREFIX)/lib
UNITDIR     ?= $(PREFIX)/lib/systemd/system
# One flag set: the normal build adds CFLAGS, the sanitizer build its own optimisation and -fsanitize.
BASE_CFLAGS := -std=gnu11 $(WARN) -iquote runner -iquote . $(CPPFLAGS) -D_GNU_SOURCE \
               -DMEMRUN_LIBDIR='"$(LIBDIR)/memrun"'
ALL_CFLAGS  := $(BASE_CFLAGS) $(CFLAGS)
SAN_FLAGS   := $(BASE_CFLAGS) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

FUZZ_SECONDS ?= 20

# Every .c of runner/ but the two executables' main files, and the config parsers.
RUNNER_SRC  := $(filter-out runner/main.c runner/memrunctl.c,$(wildcard runner/*.c runner/*/*.c)) \
               config/size.c config/policy.c config/sandbox.c limiter/memlimit_law.c
LIBS        := $$(pkg-config --libs inih libseccomp libmicrohttpd) -lm
MAIN_SRC    := runner/main.c
EXAMPLES    := leak cachefill fragment loadgen
LIB_EXAMPLES := cachesrv prefork burst forkgrow holdcache watchlimits
UNIT_TESTS  := test_size test_options test_cg test_registry test_kmsg test_report test_level test_psi \
               test_lsrv test_policy test_preload test_memlimit test_governor test_actions test_sandbox test_sdnotify test_ctl test_supervisor test_backend \
               test_law test_httpd test_hints test_psrv test_jvm
HELPERS     := mlclient sysprobe sdservice ctlraw protogolden pwatch thptails

LIB_SRC     := limiter/memlimit.c limiter/memlimit_client.c limiter/memlimit_actions.c \
               limiter/memlimit_standalone.c limiter/memlimit_size.c limiter/memlimit_govern.c limiter/memlimit_heap.c
LIB_OBJ     := $(LIB_SRC:%.c=$(B)/obj/%.pic.o)
INCLUDEDIR  ?= $(PREFIX)/include
LIBS_OUT    := $(B)/libmemlimit.so $(B)/libmemlimit.a $(B)/memlimit.pc

HDRS        := $(wildcard examples/*.h runner/*.h runner/*/*.h config/*.h limiter/*.h tests/unit/*.h)
OBJ         := $(RUNNER_SRC:%.c=$(B)/obj/%.o)
SAN_OBJ     := $(RUNNER_SRC:%.c=$(B)/asan/obj/%.o)

.PHONY: FORCE deb soak repeat systemd-vm all deps check-deps bench-deps fresh demo check lint unit clients host vm asan fuzz bench install uninstall clean
all: $(B)/memrun $(B)/memrunctl $(LIBS_OUT) $(B)/libmemlimit-preload.so $(EXAMPLES:%=$(B)/examples/%) \
     $(LIB_EXAMPLES:%=$(B)/examples/%) $(HELPERS:%=$(B)/tests/helpers/%) $(B)/examples/pycache.py

# Install what the build (deps), the tests (check-deps) or the benchmarks need: as root on Debian,
# checked again on every call (a failed install is not remembered as done).
deps check-deps bench-deps:
	@build-aux/deps.sh $(if $(filter deps,$@),build,$(@:-deps=))

# Plain make installs nothing: before the first compile it checks that a program using libc's and
# every library's headers builds, and says what to install when it does not.
$(B)/.build-ok: build-aux/probe.sh
	@CC="$(CC)" CPPFLAGS="$(CPPFLAGS)" CFLAGS="$(CFLAGS)" LDFLAGS="$(LDFLAGS)" build-aux/probe.sh $(B)/probe
	@touch $@

$(B)/obj/%.o: %.c $(HDRS) | $(B)/.build-ok
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/asan/obj/%.o: %.c $(HDRS) | $(B)/.build-ok
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) -c -o $@ $<

# The version, in one header rewritten only when it changes (a commit, a dirty tree): main.c and
# memrunctl.c include it, nothing else is rebuilt for it.
$(B)/version.h: FORCE
	@mkdir -p $(dir $@)
	@v='#define MEMRUN_VERSION "$(VERSION)"'; [ "$$(cat $@ 2>/dev/null)" = "$$v" ] || echo "$$v" >$@
FORCE:
$(B)/obj/runner/main.o $(B)/obj/runner/memrunctl.o $(B)/asan/obj/runner/main.o $(B)/asan/obj/runner/memrunctl.o: $(B)/version.h
$(B)/obj/runner/main.o $(B)/obj/runner/memrunctl.o $(B)/asan/obj/runner/main.o $(B)/asan/obj/runner/memrunctl.o: \
	ALL_CFLAGS += -include $(B)/version.h
$(B)/asan/obj/runner/main.o $(B)/asan/obj/runner/memrunctl.o: SAN_FLAGS += -include $(B)/version.h

$(B)/memrun: $(OBJ) $(B)/obj/runner/main.o
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/memrunctl: $(OBJ) $(B)/obj/runner/memrunctl.o
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/asan/memrun: $(SAN_OBJ) $(B)/asan/obj/runner/main.o
	$(CC) $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/asan/memrunctl: $(SAN_OBJ) $(B)/asan/obj/runner/memrunctl.o
	$(CC) $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# --- libmemlimit: only memlimit_* exported (hidden visibility + version script) ---
$(B)/obj/limiter/%.pic.o: limiter/%.c $(HDRS) | $(B)/.build-ok
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -pthread -fvisibility=hidden -c -o $@ $<
# The library's size parser is config/size.c under private names (limiter/memlimit_size.c).
$(B)/obj/limiter/memlimit_size.pic.o: config/size.c
$(B)/obj/limiter/memlimit_govern.pic.o: limiter/memlimit_law.c

$(B)/libmemlimit.so: $(LIB_OBJ) limiter/memlimit.map
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -pthread -Wl,-soname,libmemlimit.so.0 -Wl,--version-script=limiter/memlimit.map \
		-Wl,-z,defs -o $@ $(LIB_OBJ)
	ln -sf libmemlimit.so $(B)/libmemlimit.so.0

$(B)/libmemlimit.a: $(LIB_OBJ)
	rm -f $@ && $(AR) rcs $@ $^

$(B)/memlimit.pc: limiter/memlimit.pc.in
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
		-e 's|@VERSION@|$(LIBVERSION)|' $< > $@

$(B)/tests/test_memlimit: tests/unit/test_memlimit.c $(B)/libmemlimit.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libmemlimit.a $$(pkg-config --cflags --libs cmocka) -pthread

$(B)/asan/tests/test_memlimit: tests/unit/test_memlimit.c $(LIB_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) $(LDFLAGS) -pthread -fvisibility=hidden -o $@ $< $(LIB_SRC) \
		$$(pkg-config --cflags --libs cmocka)

# test_law drives memrun's governor and the library's standalone mode side by side: both builds of the law.
$(B)/tests/test_law: tests/unit/test_law.c $(OBJ) $(B)/libmemlimit.a $(HDRS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(OBJ) $(B)/libmemlimit.a $$(pkg-config --cflags --libs cmocka) $(LIBS) -pthread

$(B)/asan/tests/test_law: tests/unit/test_law.c $(SAN_OBJ) $(LIB_SRC) $(HDRS)
	$(CC) $(SAN_FLAGS) $(LDFLAGS) -pthread -o $@ $< $(SAN_OBJ) $(LIB_SRC) $$(pkg-config --cflags --libs cmocka) $(LIBS)

# --preload's library: the whole of libmemlimit plus a malloc_trim handler, in one .so
$(B)/libmemlimit-preload.so: limiter/preload.c $(HDRS) limiter/memlimit.map $(B)/libmemlimit.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -fPIC -shared -fvisibility=hidden -Ilimiter -o $@ $< \
		-Wl,--whole-archive $(B)/libmemlimit.a -Wl,--no-whole-archive -Wl,--version-script=limiter/memlimit.map -pthread

$(LIB_EXAMPLES:%=$(B)/examples/%): $(B)/examples/%: examples/%.c $(HDRS) $(B)/libmemlimit.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Ilimiter -o $@ $< $(B)/libmemlimit.a -pthread

$(B)/examples/%: examples/%.c | $(B)/.build-ok
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

# --- tests ---
$(B)/tests/helpers/%: tests/helpers/%.c $(HDRS) | $(B)/.build-ok
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

$(B)/tests/%: tests/unit/%.c $(OBJ) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(OBJ) $$(pkg-config --cflags --libs cmocka) $(LIBS)

$(B)/asan/tests/%: tests/unit/%.c $(SAN_OBJ) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) $(LDFLAGS) -o $@ $< $(SAN_OBJ) $$(pkg-config --cflags --libs cmocka) $(LIBS)

unit: $(UNIT_TESTS:%=$(B)/tests/%)
	@tests/unit/run.sh $^

# One owner per kernel interface: no cgroupfs, /proc or /sys file opened by name outside its module.
lint:
	@sh tests/lint/owners.sh

# The Go and Python clients of the limiter protocol (limiter/go, limiter/python): their codecs against
# the golden messages the C definition prints, their client logic against a fake memrun. Debian's go
# and python3, nothing fetched.
PYTHON      ?= /usr/bin/python3
GOENV       := CGO_ENABLED=0 GOCACHE=$(CURDIR)/$(B)/gocache GOPATH=$(CURDIR)/$(B)/gopath GOFLAGS=-mod=mod GOPROXY=off
clients: $(B)/tests/helpers/protogolden check-deps
	@$(B)/tests/helpers/protogolden >$(B)/golden.txt
	cd limiter/go && $(GOENV) go vet ./... && MEMLIMIT_GOLDEN=$(CURDIR)/$(B)/golden.txt $(GOENV) go test -count=1 ./...
	cd limiter/python && MEMLIMIT_GOLDEN=$(CURDIR)/$(B)/golden.txt PYTHONPATH=. PYTHONDONTWRITEBYTECODE=1 \
		$(PYTHON) -m unittest discover -s tests -v

# The Python example beside the others (the VM suites take build/examples with them).
$(B)/examples/pycache.py: examples/pycache.py
	@mkdir -p $(dir $@)
	install -m 0755 $< $@

# The Go example and test program (static: it runs in the VM too).
$(B)/examples/gocache: $(wildcard examples/gocache/*.go limiter/go/*.go) examples/gocache/go.mod limiter/go/go.mod
	@mkdir -p $(dir $@)
	cd examples/gocache && $(GOENV) go build -o $(CURDIR)/$@ .

# The sd-event client of the pressure-watch tests, linked against bookworm-backports' libsystemd
# (>= 254), which build-aux/libsystemd-bpo.sh fetches and unpacks into $(B)/libsystemd-bpo (nothing
# is installed; the rpath names it). When the fetch fails no sdwatch is made, and the tests that need
# it print SKIP with $(B)/libsystemd-bpo.log's reason. Only the suites need it, not make all.
# (SDLIB is expanded only by this recipe: no gcc call on every make.)
SDWATCH     := $(B)/tests/helpers/sdwatch
SDLIB        = $(CURDIR)/$(B)/libsystemd-bpo/root/usr/lib/$(shell gcc -print-multiarch 2>/dev/null)
$(SDWATCH): tests/helpers/sdwatch.c build-aux/libsystemd-bpo.sh | $(B)/.build-ok
	@mkdir -p $(dir $@)
	@if v=$$(build-aux/libsystemd-bpo.sh $(B) 2>$(B)/libsystemd-bpo.log); then \
	  echo "$(CC) ... -o $@ $< -lsystemd (libsystemd $$v from bookworm-backports)"; \
	  $(CC) $(ALL_CFLAGS) -I$(B)/libsystemd-bpo/root/usr/include -DLIBSYSTEMD_VERSION="\"$$v\"" -o $@ $< \
	    -L$(SDLIB) -Wl,-rpath,$(SDLIB) -lsystemd -ldl; \
	else rm -f $@; echo "sdwatch not built: $$(tail -1 $(B)/libsystemd-bpo.log) (the tests that need it will SKIP)"; fi

host: all check-deps $(B)/examples/gocache $(SDWATCH)
	@MEMRUN=$(CURDIR)/$(B)/memrun EXAMPLES=$(CURDIR)/$(B)/examples HELPERS=$(CURDIR)/$(B)/tests/helpers \
		CONFIGS=$(CURDIR)/config PYTHON=$(PYTHON) sh tests/host/run.sh
	@MEMRUN=$(CURDIR)/$(B)/memrun EXAMPLES=$(CURDIR)/$(B)/examples sh tests/scenarios/run.sh

asan: $(B)/asan/memrun $(B)/asan/memrunctl $(UNIT_TESTS:%=$(B)/asan/tests/%) all $(B)/examples/gocache $(SDWATCH)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		tests/unit/run.sh $(UNIT_TESTS:%=$(B)/asan/tests/%)
	@ASAN_OPTIONS=detect_leaks=1 MEMRUN=$(CURDIR)/$(B)/asan/memrun EXAMPLES=$(CURDIR)/$(B)/examples \
		HELPERS=$(CURDIR)/$(B)/tests/helpers CONFIGS=$(CURDIR)/config MEMRUN_TEST_SANITIZER=1 \
		MEMRUN_PRELOAD_LIB=$(CURDIR)/$(B)/libmemlimit-preload.so sh tests/host/run.sh

# Fuzz targets (libFuzzer via clang; a sanitized standalone driver without it), bounded in time.
fuzz: check-deps
	@B=$(B) FUZZ_REQUIRE=libfuzzer FUZZ_SECONDS=$(FUZZ_SECONDS) WARN="$(WARN)" CPPFLAGS="$(CPPFLAGS)" LDFLAGS="$(LDFLAGS)" sh tests/fuzz/run.sh

# The host suite and the scenarios in a real cgroup v2 kernel under qemu (tests/vm/suite.sh).
vm: all check-deps $(B)/examples/gocache $(SDWATCH)
	@B=$(B) tests/vm/suite.sh

check: check-deps
	@for t in lint unit clients host asan fuzz vm systemd-vm fresh; do $(MAKE) --no-print-directory $$t || exit 1; done
	@echo "make check: all suites passed"

# README's first command, verbatim, on a minimal Debian 12 with the clone in /root/memrun
# (tests/fresh/run.sh); FRESH_ARGS=--check runs README's second command there as well.
fresh: check-deps
	@B=$(B) tests/fresh/run.sh $(FRESH_ARGS)

# systemd 252 as PID 1 (cgroup v2) in qemu; its root filesystem is built once by mmdebstrap and
# cached under $(B)/systemd-vm/ (tests/systemd/suite-run.sh, rootfs.sh).
systemd-vm: all check-deps deb $(B)/examples/gocache
	@B=$(B) tests/systemd/suite-run.sh

demo: all
	@sh examples/demo.sh $(B)

# The Debian packages (debian/): from a copy of the tracked files (the working tree as it is) in
# $(B)/deb/, the version from git written into the copy (VERSION, and a changelog entry), built with
# dpkg-buildpackage -b; then lintian, which must find no error. The .debs land in $(B)/deb/.
deb: check-deps
	@rm -rf $(B)/deb && mkdir -p $(B)/deb/memrun-$(VERSION)
	@git ls-files -z --cached --others --exclude-standard | \
	  xargs -0 sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; done; true' sh | \
	  xargs -0 cp --parents -t $(B)/deb/memrun-$(VERSION)
	@echo "$(VERSION)" >$(B)/deb/memrun-$(VERSION)/VERSION
	@{ printf 'memrun (%s) unstable; urgency=medium\n\n  * Built from %s (NEWS says what changed).\n\n -- %s  %s\n\n' \
		"$(VERSION)" "$$(git describe --always --dirty)" "memrun developers <memrun@example.org>" "$$(date -R)"; \
	  cat debian/changelog; } >$(B)/deb/memrun-$(VERSION)/debian/changelog
	cd $(B)/deb/memrun-$(VERSION) && dpkg-buildpackage -us -uc -b >../build.log 2>&1 || { tail -40 ../build.log; exit 1; }
	@ls $(B)/deb/*.deb
	@lintian --fail-on error $(B)/deb/*.changes >$(B)/deb/lintian.txt 2>&1; rc=$$?; cat $(B)/deb/lintian.txt; \
	  [ $$rc = 0 ] && echo "lintian: no errors ($$(grep -c '^W:' $(B)/deb/lintian.txt) warnings)" || \
	  { echo "lintian found errors (exit $$rc)"; exit 1; }

# Outside make check: 30 minutes of memrun under everything that could make it grow (tests/soak/run.sh;
# SOAK_MINUTES), its figures into bench/soak.md and bench/results.md; and the suites run back to back
# to find flaky tests (tests/repeat.sh: the host suite REPEAT_HOST=5 times, the VM suites REPEAT_VM=3).
soak: all bench-deps
	@SOAK_MINUTES=$(SOAK_MINUTES) sh tests/soak/run.sh $(B)
SOAK_MINUTES ?= 30
repeat: all check-deps $(B)/examples/gocache $(SDWATCH)
	@MAKE="$(MAKE)" REPEAT_HOST=$(REPEAT_HOST) REPEAT_VM=$(REPEAT_VM) sh tests/repeat.sh $(B)
REPEAT_HOST ?= 5
REPEAT_VM ?= 3

bench: all bench-deps $(B)/gohold $(B)/lru $(B)/examples/gocache
	@sh bench/report.sh $(B)

# The workload of the "use the budget" benchmark (bench/lru.sh): an LRU cache linking libmemlimit.
$(B)/lru: bench/lru.c $(HDRS) $(B)/libmemlimit.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Ilimiter -o $@ $< $(B)/libmemlimit.a -pthread -lm

# The Go side of the "soft limit holds" benchmark: Debian's golang, static (it runs in the VM too).
$(B)/gohold: bench/gohold/main.go bench/gohold/go.mod | bench-deps
	cd bench/gohold && $(GOENV) \
		go build -o $(CURDIR)/$(B)/gohold .

# What goes where: build-aux/install.sh, one list for both directions.
INSTALL_VARS := B=$(B) DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) BINDIR=$(BINDIR) LIBDIR=$(LIBDIR) \
                INCLUDEDIR=$(INCLUDEDIR) MANDIR=$(MANDIR) UNITDIR=$(UNITDIR) VERSION=$(LIBVERSION)
install: all
	@$(INSTALL_VARS) build-aux/install.sh install
uninstall:
	@$(INSTALL_VARS) build-aux/install.sh uninstall

clean:
	rm -rf $(B)/obj $(B)/asan $(B)/tests $(B)/examples $(B)/memrun $(B)/memrunctl $(B)/vm-root $(B)/systemd-root $(B)/vm.log $(B)/fuzz \
		$(LIBS_OUT) $(B)/libmemlimit.so.0 $(B)/libmemlimit-preload.so $(B)/gohold $(B)/lru $(B)/golden.txt $(B)/.build-ok
