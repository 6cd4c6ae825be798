# iceservers: build the C core for one Lua ABI per build folder, run the tests.
# Every variable has a default and LuaRocks' names (LUA_INCDIR, LIBFLAG, ...)
# are accepted, so nothing here needs editing by hand.

LUA_VERSION ?= 5.4
ROCKSPEC    := rockspec/iceservers-scm-1.rockspec
VERSION     := $(shell sed -n 's/^local release = "\(.*\)"/\1/p' $(ROCKSPEC))

ifeq ($(LUA_VERSION),5.1)
  # The 5.1 ABI is built for LuaJIT 2.1 (OpenResty); it loads in lua5.1 too.
  LUA        ?= luajit
  LUA_INCDIR ?= /usr/include/luajit-2.1
else
  LUA        ?= lua$(LUA_VERSION)
  LUA_INCDIR ?= /usr/include/lua$(LUA_VERSION)
endif

PREFIX      ?= /usr/local
LIBDIR      ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUADIR      ?= $(PREFIX)/share/lua/$(LUA_VERSION)
BINDIR      ?= $(PREFIX)/bin
CC          ?= cc
CFLAGS      ?= -O2 -g
LIBFLAG     ?= -shared
PKG_CONFIG  ?= pkg-config
OPENSSL_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags libcrypto 2>/dev/null)
OPENSSL_LIBS   ?= $(shell $(PKG_CONFIG) --libs libcrypto 2>/dev/null || echo -lcrypto)
CURL_CFLAGS    ?= $(shell $(PKG_CONFIG) --cflags libcurl 2>/dev/null)
CURL_LIBS      ?= $(shell $(PKG_CONFIG) --libs libcurl 2>/dev/null || echo -lcurl)

WARNINGS  := -Wall -Wextra -Werror
ALL_CFLAGS = $(CFLAGS) $(WARNINGS) -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC \
             -fvisibility=hidden -DICESERVERS_VERSION=$(VERSION) \
             -I$(LUA_INCDIR) $(OPENSSL_CFLAGS) $(CURL_CFLAGS)
LIBS      := $(OPENSSL_LIBS) $(CURL_LIBS)

SRCS    := $(wildcard src/*.c)
HDRS    := $(wildcard src/*.h)
BUILD   ?= build/$(LUA_VERSION)
OBJS     = $(SRCS:src/%.c=$(BUILD)/obj/%.o)
CORE     = $(BUILD)/iceservers/core.so

.PHONY: bench-hmac all deps test test-unit lint valgrind asan install clean run cli compat-check

all: $(CORE)

$(BUILD)/obj/%.o: src/%.c $(HDRS) $(ROCKSPEC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# Modules resolve Lua's symbols from the host (lua5.4, luajit, nginx): no -llua.
$(CORE): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) $(LDFLAGS) -o $@ $(OBJS) $(LIBS)

# Installs the Debian packages the project needs; idempotent, as root.
deps:
	sh scripts/deps.sh

# Every suite: Lua 5.4 and LuaJIT specs, the rockspec install, the core specs
# under valgrind and under ASan+UBSan.  Ends with one "N passed, N failed" line.
test:
	sh scripts/test.sh all

test-unit:
	sh scripts/test.sh unit

valgrind:
	sh scripts/test.sh valgrind

asan:
	sh scripts/test.sh asan

lint:
	luacheck .
	$(MAKE) --no-print-directory compat-check

# Compile (without linking) against each set of Lua headers we promise.
compat-check:
	@for inc in /usr/include/lua5.4 /usr/include/lua5.3 /usr/include/lua5.1 /usr/include/luajit-2.1; do \
	  echo "headers: $$inc"; \
	  for f in $(SRCS); do \
	    $(CC) $(CFLAGS) $(WARNINGS) -std=c99 -D_POSIX_C_SOURCE=200809L -fsyntax-only \
	      -DICESERVERS_VERSION=$(VERSION) -I$$inc $(OPENSSL_CFLAGS) $(CURL_CFLAGS) $$f || exit 1; \
	  done; \
	done

# The main job: nginx in the foreground with examples/nginx/nginx.conf on
# 127.0.0.1:$(PORT): the endpoint and the demo page, STUN only by default.
PORT ?= 8080
# Both cores: nginx loads the 5.1 one, the checkout's bin/iceservers the 5.4 one.
run:
	@$(MAKE) --no-print-directory -s LUA_VERSION=5.1 all
	@$(MAKE) --no-print-directory -s LUA_VERSION=5.4 all
	@PORT=$(PORT) sh scripts/run-nginx.sh

# The command-line tool of this checkout, on the same configuration.
cli: all
	@$(LUA) bin/iceservers --pretty $(ARGS)

install: $(CORE)
	install -d $(DESTDIR)$(LIBDIR)/iceservers $(DESTDIR)$(LUADIR)/iceservers
	install -m 0755 $(CORE) $(DESTDIR)$(LIBDIR)/iceservers/core.so
	cd lua && find iceservers -name '*.lua' -exec install -D -m 0644 {} $(DESTDIR)$(LUADIR)/{} \;
	install -D -m 0755 bin/iceservers $(DESTDIR)$(BINDIR)/iceservers

clean:
	rm -rf build

# Why the signer copies low-level SHA states (see src/ice_crypto.c).
bench-hmac:
	@mkdir -p build
	$(CC) -O2 -o build/hmac_variants bench/hmac_variants.c $(OPENSSL_LIBS)
	./build/hmac_variants

# ---- benchmarks -----------------------------------------------------------------
# make bench [BENCH_ARGS="--runs 7 --only B1,B3"]: installs what the benchmarks
# compare against (scripts/bench-deps.sh: not needed by make deps or make test),
# builds both cores and the C ceiling, then bench/run.lua (about 6 minutes) prints
# the table and writes bench/RESULTS.md.  See bench/README.md.
BENCH_ARGS ?=
.PHONY: bench
bench:
	sh scripts/bench-deps.sh
	@$(MAKE) --no-print-directory -s LUA_VERSION=5.4 all
	@$(MAKE) --no-print-directory -s LUA_VERSION=5.1 all
	@mkdir -p build/bench
	$(CC) -O2 -Wall -Wextra -o build/bench/ceiling bench/ceiling.c $(OPENSSL_LIBS)
	lua5.4 bench/run.lua $(BENCH_ARGS)

# ---- fuzzing ------------------------------------------------------------------
# make fuzz [FUZZ_SECONDS=60]: each fuzz/fuzz_*.c, a libFuzzer harness, built with
# clang-14 and ASan+UBSan against src/*.c and Lua 5.4, then run for FUZZ_SECONDS
# from a temporary copy of fuzz/corpus/<target>/ (fuzz/run.sh).  Fails on any
# crash, leak or sanitizer report; ends with "fuzz: N passed, N failed".
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_BUILD   ?= build/fuzz
FUZZ_TARGETS := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_CFLAGS  := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g -O1 \
                -fno-omit-frame-pointer $(WARNINGS) -std=c99 -D_POSIX_C_SOURCE=200809L \
                -DICESERVERS_VERSION=$(VERSION) -Isrc -I/usr/include/lua5.4 \
                $(OPENSSL_CFLAGS) $(CURL_CFLAGS)
FUZZ_LIBS    := -llua5.4 -lcrypto -lcurl

.PHONY: fuzz fuzz-build
fuzz: fuzz-build
	@sh fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_lua.h $(SRCS) $(HDRS) $(ROCKSPEC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(SRCS) $(FUZZ_LIBS)

# ---- soak ---------------------------------------------------------------------
# make soak [SOAK_SECONDS=60]: wrk for SOAK_SECONDS against the example nginx.conf
# (2 workers) serving coturn and a cached REST provider whose mock fails one
# call in five (scripts/soak.sh, soak/soak.lua): 0 non-2xx, no descriptor growth,
# no unexpected [error] line, no secret in the logs, worker RSS growth under
# 5 % (after a 30 s warm-up).  Ends with "N successes / N failures / N errors";
# the report, error logs and wrk output in build/soak/.
SOAK_SECONDS ?= 60

.PHONY: soak
soak:
	@SOAK_SECONDS=$(SOAK_SECONDS) sh scripts/soak.sh
