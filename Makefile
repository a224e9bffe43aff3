# pg-tls-proxy - GNU make. Objects go under $(BUILD).
#
#   make            build build/pg-tls-proxy
#   make check      install missing Debian packages, build with -Werror,
#                   run unit tests, the docs check and the integration tests
#   make asan       the same suite built with ASan + UBSan (build/asan/)
#   make valgrind   unit tests and the integration suite with the proxy under
#                   memcheck (VALGRIND_SECTIONS=protocol for CI's short pass)
#   make demo       throw-away PostgreSQL + private CA + proxy; prints a psql line
#   make fuzz       build and briefly run the libFuzzer targets (clang)
#   make install    binary, man page, CA bundles, systemd units under PREFIX
#   make deb        build/pg-tls-proxy_<version>_<arch>.deb (check-deb: install it, CI)

# The version comes from git describe (scripts/version.sh: the scheme, and the
# VERSION file and git archive fallbacks). `make VERSION=x.y.z` overrides it.
VERSION := $(shell scripts/version.sh)
ifeq ($(VERSION),)
$(error scripts/version.sh printed no version)
endif
BUILD ?= build
CC ?= cc
# inih (Debian libinih-dev) reads the --config file: a packaged, well-kept
# parser of the INI dialect PgBouncer users already write, rather than one
# of our own. libsystemd (Debian libsystemd-dev) for sd_notify(3): readiness
# and reload/stop state for the unit's Type=notify (src/sdnotify.c says why).
PKGS := libuv openssl libidn inih libsystemd

CSTD := -std=c17 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
WARN := -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wvla -Wundef -Wcast-align -Wwrite-strings -Wnull-dereference
ifeq ($(WERROR),1)
WARN += -Werror
endif
OPT ?= -O2 -g
CFLAGS_ALL = $(CSTD) $(OPT) $(WARN) -Iinclude -DPGTP_VERSION='"$(VERSION)"' \
             $(shell pkg-config --cflags $(PKGS)) $(SANFLAGS) $(CFLAGS)
LDLIBS_ALL = $(shell pkg-config --libs $(PKGS)) -pthread $(SANFLAGS) $(LDFLAGS)

LIB_SRCS := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJS := $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o)
BIN := $(BUILD)/pg-tls-proxy

UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%.o)
UNIT_BIN := $(BUILD)/unit-tests
PGCLIENT_BIN := $(BUILD)/pgclient

.PHONY: all test check check-unit check-docs check-integration check-bundles check-dockerfile check-observability check-k8s check-version check-certbot-hook image check-image asan fuzz bench certs \
        demo format format-check lint install uninstall deps clean valgrind deb check-deb

all: $(BIN)

$(BUILD)/obj/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

# The files that print PGTP_VERSION are rebuilt when the version changes, and
# only then: version.stamp is rewritten only when its content differs, so a
# new commit rebuilds these few objects and a plain `make` stays a no-op.
VERSION_USERS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(shell grep -l PGTP_VERSION src/*.c)) \
                 $(patsubst tests/unit/%.c,$(BUILD)/unit/%.o,$(shell grep -l PGTP_VERSION tests/unit/*.c))
$(VERSION_USERS): $(BUILD)/version.stamp
$(BUILD)/version.stamp: FORCE | $(BUILD)
	@if [ "$$(cat $@ 2>/dev/null)" != '$(VERSION)' ]; then echo '$(VERSION)' >$@; fi
.PHONY: FORCE
FORCE:

# make print-version: the version this tree builds (tests/check-version.sh).
.PHONY: print-version
print-version:
	@echo '$(VERSION)'

# Made afresh: ar would keep the members of source files since removed
# (upstream.o next to dial.o and back.o: duplicate symbols).
$(BUILD)/libpgtp.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/obj/main.o $(BUILD)/libpgtp.a
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/unit/%.o: tests/unit/%.c $(wildcard include/*.h tests/unit/*.h) | $(BUILD)/unit
	$(CC) $(CFLAGS_ALL) $(shell pkg-config --cflags check) -Itests/unit -c -o $@ $<

$(UNIT_BIN): $(UNIT_OBJS) $(BUILD)/libpgtp.a
	$(CC) -o $@ $^ $(shell pkg-config --libs check) $(LDLIBS_ALL)

# libpq test client used by the integration tests (libpq in tests only).
$(PGCLIENT_BIN): tests/integration/pgclient.c | $(BUILD)
	$(CC) $(CSTD) $(OPT) $(WARN) $(SANFLAGS) -I$(shell pg_config --includedir) -o $@ $< -lpq $(SANFLAGS)

# The libpq 17/18 client (pgversions.sh): Debian's libpq 15 headers; the
# newer functions are found with dlsym when it runs on libpq 18.
PGCLIENT18_BIN := $(BUILD)/pgclient18
$(PGCLIENT18_BIN): tests/integration/pgclient18.c | $(BUILD)
	$(CC) $(CSTD) $(OPT) $(WARN) $(SANFLAGS) -I$(shell pg_config --includedir) -o $@ $< -lpq -ldl $(SANFLAGS)

# Raw protocol client (OpenSSL only): reads ErrorResponse fields, injects bytes.
RAWCLIENT_BIN := $(BUILD)/rawclient
$(RAWCLIENT_BIN): tests/integration/rawclient.c | $(BUILD)
	$(CC) $(CSTD) $(OPT) $(WARN) $(SANFLAGS) -o $@ $< $(shell pkg-config --libs openssl) $(SANFLAGS)

# The TLS floor of one proxied session (make bench reads the proxy's figures
# as ratios to it): OpenSSL only.
TLSFLOOR_BIN := $(BUILD)/tlsfloor
$(TLSFLOOR_BIN): tests/bench/tlsfloor.c | $(BUILD)
	$(CC) $(CSTD) $(OPT) $(WARN) $(SANFLAGS) -o $@ $< $(shell pkg-config --libs openssl) $(SANFLAGS)

# make bench's instrumented proxy: the same objects, tlsio.c built with
# PGTP_HANDSHAKE_CPU (the CPU of each side's TLS handshakes, printed at exit),
# linked ahead of the library so that its tlsio functions are the ones used.
HSCPU_BIN := $(BUILD)/pg-tls-proxy-hscpu
$(BUILD)/hscpu/tlsio.o: src/tlsio.c $(wildcard include/*.h) | $(BUILD)
	mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -DPGTP_HANDSHAKE_CPU -c -o $@ $<
$(HSCPU_BIN): $(BUILD)/obj/main.o $(BUILD)/hscpu/tlsio.o $(BUILD)/libpgtp.a
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD) $(BUILD)/obj $(BUILD)/unit:
	mkdir -p $@

deps:
	@scripts/install-deps.sh

test: check-unit

check-unit: $(UNIT_BIN)
	$(UNIT_BIN)

check-docs: $(BIN)
	tests/check-docs.sh $(BIN)

check-bundles:
	tests/check-bundles.sh

check-dockerfile:
	tests/check-dockerfile.sh

# The Grafana dashboard and Prometheus alert rules of deploy/ (promtool from
# scripts/fetch-promtool.sh): rules and their unit tests, PromQL of every
# panel, and every metric they name present in a real /metrics scrape. ~2 s.
check-observability: $(BIN)
	tests/check-observability.sh $(BIN)

# The Kubernetes manifests of deploy/kubernetes/ against --help, the
# Dockerfile's USER and each other (python3 + PyYAML, no cluster), and its
# ConfigMap's values starting the real binary. ~1 s.
check-k8s: $(BIN)
	tests/check-k8s.sh $(BIN)

check-version: $(BIN)
	tests/check-version.sh $(BIN)

# contrib/certbot-deploy-hook.sh against a fake certbot lineage and a real
# proxy (about 1 s).
check-certbot-hook: $(BIN)
	tests/check-certbot-hook.sh $(BIN)

# The container image, built with buildah on a debootstrap base (root; no
# Docker engine or registry), as build/image/pg-tls-proxy.tar (docker load).
image:
	scripts/build-image.sh

# Builds the image, then runs its entrypoint in its root file system as its
# user, with the README's docker run variables (root).
check-image:
	tests/check-image.sh

check-integration: $(BIN) $(PGCLIENT_BIN) $(PGCLIENT18_BIN) $(RAWCLIENT_BIN)
	PGTP_BIN=$(abspath $(BIN)) PGCLIENT=$(abspath $(PGCLIENT_BIN)) PGCLIENT18=$(abspath $(PGCLIENT18_BIN)) RAWCLIENT=$(abspath $(RAWCLIENT_BIN)) tests/integration/run.sh

# Builds use every core (BUILD_JOBS); the tests then run one suite at a time.
BUILD_JOBS ?= $(shell nproc 2>/dev/null || echo 2)

check: deps
	$(MAKE) -j$(BUILD_JOBS) WERROR=1 all $(UNIT_BIN) $(PGCLIENT_BIN) $(PGCLIENT18_BIN) $(RAWCLIENT_BIN)
	$(MAKE) WERROR=1 check-unit check-docs check-version check-certbot-hook check-bundles check-observability check-k8s check-integration

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan: deps
	$(MAKE) -j$(BUILD_JOBS) BUILD=build/asan OPT="-O1 -g" SANFLAGS="$(ASAN_FLAGS)" WERROR=1 \
	    all $(UNIT_BIN:$(BUILD)/%=build/asan/%) $(PGCLIENT_BIN:$(BUILD)/%=build/asan/%) \
	    $(PGCLIENT18_BIN:$(BUILD)/%=build/asan/%) $(RAWCLIENT_BIN:$(BUILD)/%=build/asan/%)
	$(MAKE) BUILD=build/asan OPT="-O1 -g" SANFLAGS="$(ASAN_FLAGS)" WERROR=1 \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    IT_LOAD_SESSIONS=2000 IT_LOAD_HOLD=30 IT_LOAD_PENDING=200 IT_LOAD_KB_MAX=1024 \
	    check-unit check-integration

# The unit tests and the integration suite under valgrind's memcheck, with the
# $(BUILD) binaries as shipped (-O2 -g): what ASan cannot see, such as
# uninitialised reads, on the binary users run. The unit tests run with
# CK_FORK=no so that memcheck follows every test in one process; every proxy
# of the suite runs behind PGTP_WRAP (tests/integration/lib.sh), its waits
# scaled by IT_TIME_SCALE (10 unless set). A memcheck error or a definite or
# indirect leak makes the unit run, or that proxy on SIGTERM, exit 99, which
# fails the run (run.sh: "every proxy exits 0 on SIGTERM"); then
# tests/check-valgrind-logs.sh reads every report (also those of proxies that
# never exited), prints the ones with findings and fails on any. Reports:
# $(BUILD)/valgrind-unit.log and $(BUILD)/valgrind-logs/*.wrap-<pid>.log.
# VALGRIND_SECTIONS picks integration sections (run.sh's IT_ONLY; empty: all).
# The abuse and load sections run scaled down unless their own variables are
# set: a tenth of the abuse connections, 1,000 sessions held 10 s (memcheck
# spends ~40 ms of CPU on each session's two handshakes, and the proxy's own
# 10 s handshake timeouts would end a longer queue), and 200 KB per session
# allowed for memcheck's redzones and shadow memory (76 KB measured at 10,000).
# Measured on 2 cores: unit tests 13 s; VALGRIND_SECTIONS=protocol (CI's short
# pass) 42 s quiet, up to 2.7 min when busy; all sections about 5 min quiet.
VALGRIND ?= valgrind
VALGRIND_SECTIONS ?=
VALGRIND_FLAGS := --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --num-callers=30
VALGRIND_LOGS = $(abspath $(BUILD))/valgrind-logs
valgrind: deps
	$(MAKE) -j$(BUILD_JOBS) WERROR=1 all $(UNIT_BIN) $(PGCLIENT_BIN) $(PGCLIENT18_BIN) $(RAWCLIENT_BIN)
	@echo "valgrind: unit tests (CK_FORK=no) under memcheck"
	@CK_FORK=no $(VALGRIND) $(VALGRIND_FLAGS) --log-file=$(BUILD)/valgrind-unit.log \
	    $(UNIT_BIN) >$(BUILD)/valgrind-unit.out 2>&1; rc=$$?; \
	    grep -E '^[0-9]+%: Checks' $(BUILD)/valgrind-unit.out || tail -n 20 $(BUILD)/valgrind-unit.out; \
	    tests/check-valgrind-logs.sh $(BUILD)/valgrind-unit.log || rc=1; \
	    [ $$rc = 0 ] || { echo "valgrind: unit tests failed (exit $$rc): $(BUILD)/valgrind-unit.out"; exit 1; }
	@echo "valgrind: integration suite ($(or $(VALGRIND_SECTIONS),all sections)), proxy under memcheck"
	@rc=0; PGTP_WRAP="$(VALGRIND) $(VALGRIND_FLAGS) --log-file=%q{PGTP_WRAP_LOG}-%p.log" \
	    ABUSE_SCALE=$${ABUSE_SCALE:-10} IT_LOAD_SESSIONS=$${IT_LOAD_SESSIONS:-1000} \
	    IT_LOAD_HOLD=$${IT_LOAD_HOLD:-10} IT_LOAD_FULL=$${IT_LOAD_FULL:-20} \
	    IT_LOAD_PENDING=$${IT_LOAD_PENDING:-100} IT_LOAD_KB_MAX=$${IT_LOAD_KB_MAX:-200} \
	    IT_ONLY="$(VALGRIND_SECTIONS)" IT_LOGDIR=$(VALGRIND_LOGS) PGTP_BIN=$(abspath $(BIN)) \
	    PGCLIENT=$(abspath $(PGCLIENT_BIN)) PGCLIENT18=$(abspath $(PGCLIENT18_BIN)) \
	    RAWCLIENT=$(abspath $(RAWCLIENT_BIN)) \
	    tests/integration/run.sh || rc=1; \
	    tests/check-valgrind-logs.sh $(VALGRIND_LOGS) || rc=1; \
	    exit $$rc

FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TIME ?= 30
FUZZ_LIB_SRCS := src/pgproto.c src/pgmsg.c src/log.c src/config.c src/options.c src/tlsio.c src/cidr.c src/proxyproto.c \
                 src/pemfile.c src/pgtrack.c src/httpreq.c src/scram.c src/scram_server.c src/scram_client.c \
                 src/authfile.c src/pgauth.c src/conffile.c src/confroute.c src/peermsg.c src/bridgeproto.c
# the connector's --allow list
FUZZ_LIB_SRCS += src/connector_allow.c
# The library sources are compiled once for all targets (sanitizers and
# coverage, not the fuzzer's main), then each target links its own file.
FUZZ_CFLAGS := $(CSTD) -g -O1 -Iinclude -Itests/unit $(shell pkg-config --cflags openssl libidn inih)
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:src/%.c=$(BUILD)/fuzz/obj/%.o)
.SECONDARY: $(FUZZ_LIB_OBJS)
$(BUILD)/fuzz/obj/%.o: src/%.c $(wildcard include/*.h)
	@mkdir -p $(BUILD)/fuzz/obj
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_OBJS) $(wildcard include/*.h tests/unit/*.h)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_LIB_OBJS) \
	    $(shell pkg-config --libs openssl libidn inih)
# FUZZ_JOBS targets run at once (each for FUZZ_TIME seconds), each with its
# output in $(BUILD)/fuzz/<target>.log, shown when it fails.
FUZZ_JOBS ?= 2
fuzz: $(FUZZ_TARGETS)
	@tests/fuzz/run-all.sh $(FUZZ_TIME) $(FUZZ_JOBS) $(FUZZ_TARGETS)

certs:
	certs/gen-test-certs.sh $(BUILD)/certs

demo: deps $(BIN)
	scripts/demo.sh $(abspath $(BIN))

bench: $(BIN) $(TLSFLOOR_BIN) $(HSCPU_BIN)
	scripts/bench.sh $(abspath $(BIN))
	scripts/bench-bridge.sh $(abspath $(BIN))

# make bench-bridge: bridge mode (issue 15) against a direct route, side by
# side: session set-up latency, COPY throughput, memory per idle session.
.PHONY: bench-bridge
bench-bridge: $(BIN)
	scripts/bench-bridge.sh $(abspath $(BIN))

# make bench-conns N=10000 [HOLD=20]: proxy RSS per concurrent session.
.PHONY: bench-conns
bench-conns: $(BIN)
	scripts/bench-conns.sh $(abspath $(BIN)) $(or $(N),1000)

# make soak [SOAK_SECONDS=600]: pgbench through the proxy, select-only and
# connect-per-transaction alternating; reports errors and RSS drift.
.PHONY: soak
soak: $(BIN)
	scripts/soak.sh $(abspath $(BIN))

format:
	clang-format -i src/*.c include/*.h tests/unit/*.c tests/integration/*.c tests/fuzz/*.c tests/bench/*.c
format-check:
	clang-format --dry-run --Werror src/*.c include/*.h tests/unit/*.c tests/integration/*.c tests/fuzz/*.c tests/bench/*.c

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --inline-suppr -Iinclude --suppress=missingIncludeSystem src
	clang-tidy --quiet src/*.c -- $(CSTD) -Iinclude -DPGTP_VERSION='"$(VERSION)"' $(shell pkg-config --cflags $(PKGS))

PREFIX ?= /usr/local
BINDIR = $(PREFIX)/bin
DATADIR = $(PREFIX)/share/pg-tls-proxy
# For a system prefix (/usr, /usr/local) the units go where systemd looks
# for them (Debian: /lib/systemd/system) and their settings to /etc; for
# any other (PREFIX=$$HOME/.local, no root) under PREFIX as well.
SYSTEM_PREFIX = $(filter /usr /usr/local,$(PREFIX))
SYSCONFDIR ?= $(if $(SYSTEM_PREFIX),/etc,$(PREFIX)/etc)
SYSTEMDUNITDIR ?= $(if $(SYSTEM_PREFIX),$(or $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system),$(PREFIX)/lib/systemd/system)
SYSTEM_CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
UNITS := pg-tls-proxy pg-tls-proxy-connector
# The operator's own files: CA bundles in custom/ and the environment files
# of the units. install creates them only where they are missing; uninstall
# removes an environment file only while it is the one shipped, custom/ only
# while it is empty.
ETCDIR = $(SYSCONFDIR)/pg-tls-proxy
CUSTOM_CA_DIR = $(ETCDIR)/ca-bundles/custom
# The binary, the man page, the CA bundles: aws-rds (committed), mozilla
# (the system's ca-certificates roots, copied at install time, not
# committed) and an empty custom/ for per-instance CAs such as Cloud SQL's;
# the systemd units with ExecStart in BINDIR and EnvironmentFile in
# SYSCONFDIR, and their environment files.
install: $(BIN)
	install -D -m 755 $(BIN) $(DESTDIR)$(BINDIR)/pg-tls-proxy
	install -D -m 644 man/pg-tls-proxy.1 $(DESTDIR)$(PREFIX)/share/man/man1/pg-tls-proxy.1
	install -d $(DESTDIR)$(DATADIR)/ca-bundles/aws-rds $(DESTDIR)$(DATADIR)/ca-bundles/mozilla \
	    $(DESTDIR)$(CUSTOM_CA_DIR)
	install -m 644 ca-bundles/aws-rds/global-bundle.pem ca-bundles/aws-rds/PROVENANCE.md \
	    $(DESTDIR)$(DATADIR)/ca-bundles/aws-rds/
	install -m 644 ca-bundles/README.md $(DESTDIR)$(DATADIR)/ca-bundles/
	if [ -f $(SYSTEM_CA_BUNDLE) ]; then \
	    install -m 644 $(SYSTEM_CA_BUNDLE) $(DESTDIR)$(DATADIR)/ca-bundles/mozilla/ca-certificates.pem; \
	else echo "install: no $(SYSTEM_CA_BUNDLE) (ca-certificates package): mozilla bundle left empty"; fi
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	for u in $(UNITS); do \
	    sed -e 's|/usr/bin/pg-tls-proxy|$(BINDIR)/pg-tls-proxy|' \
	        -e 's|/etc/default/|$(SYSCONFDIR)/default/|' packaging/systemd/$$u.service \
	        >$(DESTDIR)$(SYSTEMDUNITDIR)/$$u.service && chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.service; \
	done
	@# 0600 for the connector's: an operator may put PG_TLS_PROXY_BRIDGE_SECRET
	@# there (systemd reads it as root).
	@install -d $(DESTDIR)$(SYSCONFDIR)/default
	@for u in $(UNITS); do f=$(DESTDIR)$(SYSCONFDIR)/default/$$u; \
	    mode=644; [ $$u = pg-tls-proxy ] || mode=600; \
	    if [ -e $$f ]; then echo "install: kept $$f (yours; the template is packaging/default/$$u)"; \
	    else install -m $$mode packaging/default/$$u $$f; fi; done

# Removes what install put there and nobody changed since. Kept: the
# files in custom/ (your own CAs, such as Cloud SQL's server-ca.pem) and
# an environment file in $(SYSCONFDIR)/default that differs from the one
# shipped; empty directories of ours go.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pg-tls-proxy $(DESTDIR)$(PREFIX)/share/man/man1/pg-tls-proxy.1
	rm -f $(DESTDIR)$(DATADIR)/ca-bundles/aws-rds/global-bundle.pem \
	    $(DESTDIR)$(DATADIR)/ca-bundles/aws-rds/PROVENANCE.md \
	    $(DESTDIR)$(DATADIR)/ca-bundles/mozilla/ca-certificates.pem \
	    $(DESTDIR)$(DATADIR)/ca-bundles/README.md
	-rmdir $(DESTDIR)$(DATADIR)/ca-bundles/aws-rds $(DESTDIR)$(DATADIR)/ca-bundles/mozilla \
	    $(DESTDIR)$(DATADIR)/ca-bundles $(DESTDIR)$(DATADIR) 2>/dev/null || true
	for u in $(UNITS); do rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.service; done
	@for u in $(UNITS); do f=$(DESTDIR)$(SYSCONFDIR)/default/$$u; \
	    if cmp -s $$f packaging/default/$$u; then rm -f $$f; \
	    elif [ -e $$f ]; then echo "uninstall: kept $$f (changed since install)"; fi; done
	-@rmdir $(DESTDIR)$(CUSTOM_CA_DIR) $(DESTDIR)$(ETCDIR)/ca-bundles $(DESTDIR)$(ETCDIR) 2>/dev/null || true
	@if [ -d $(DESTDIR)$(CUSTOM_CA_DIR) ]; then \
	    echo "uninstall: kept $(DESTDIR)$(CUSTOM_CA_DIR)/ (your own CA files)"; fi

# The Debian package: build/pg-tls-proxy_<version>_<arch>.deb from a staged
# make install (PREFIX=/usr), with the units, the pgtp user and conffiles.
# check-deb installs it into this machine, removes and purges it: it runs
# only with CI=true or PGTP_DEB_INSTALL=1 (tests/check-deb.sh).
deb: $(BIN)
	scripts/make-deb.sh $(BUILD) $(VERSION)

check-deb: $(BIN)
	tests/check-deb.sh $(BUILD) $(VERSION)

clean:
	rm -rf build
