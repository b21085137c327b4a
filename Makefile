# bore - build, test, install.
#   make                 release build: build/bore
#   make SAN=1           ASan+UBSan build: build-san/bore
#   make test            unit + end-to-end tests
#   make install         PREFIX=/usr/local DESTDIR= (the binary, bore(1), the systemd
#                        unit, bash completion, an example server.env); make uninstall
CC      ?= cc
PREFIX  ?= /usr/local
WARN    = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla \
          -Wundef -Wwrite-strings -Wimplicit-fallthrough -Wpointer-arith
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Isrc -Isrc/kafka $(WARN) $(EXTRA_CFLAGS)
LIBS    = $(shell pkg-config --libs libuv jansson openssl) -lhttp_parser

ifeq ($(SAN),1)
BUILD   = build-san
CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
BUILD   = build
endif
ifeq ($(WERROR),1)
CFLAGS  += -Werror
endif

KAFKA   = kafka/kframe kafka/kscan kafka/krewrite kafka/kstream
GATE    = kafka/ksasl kafka/kgate
CORE    = log frame uuid msg auth net srcmap splice relay cli resolve state backoff tls tlsca tunnel \
          $(KAFKA) kafka/kmap kafka/kcheck kafka/kports $(GATE) metrics http status tui kafka/kmetrics
SRCS    = $(addprefix src/,$(addsuffix .c,$(CORE) server local kafka/kproxy main))
OBJS    = $(SRCS:src/%.c=$(BUILD)/%.o) $(BUILD)/status_page.o
CORE_OBJS = $(addprefix $(BUILD)/,$(addsuffix .o,$(CORE))) $(BUILD)/status_page.o
UNIT    = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

all: $(BUILD)/bore $(UNIT)

$(BUILD)/bore: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/%.o: src/%.c $(wildcard src/*.h src/kafka/*.h) | $(BUILD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -c -o $@ $<

# The status page (status.h) as a C array: od and sed, no xxd needed.
$(BUILD)/status_page.c: src/status_page.html | $(BUILD)
	{ echo '#include "status.h"'; echo 'const unsigned char status_page[] = {'; \
	  od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; echo 'const unsigned long status_page_len = sizeof status_page;'; } > $@

$(BUILD)/status_page.o: $(BUILD)/status_page.c src/status.h
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(CORE_OBJS) $(wildcard tests/unit/*.h) | $(BUILD)
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) -Isrc -Isrc/kafka $(LDFLAGS) -o $@ $< $(CORE_OBJS) $(LIBS)

$(BUILD):
	@mkdir -p $(BUILD)

test: all
	tests/run

# libFuzzer targets (clang-14): build-fuzz/fuzz_*; `make fuzz-run FUZZ_SECONDS=20`
# runs each for a bounded time from its seed corpus in fuzz/corpus/.
FUZZ_CC   = clang-14
FUZZ_FLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc -Isrc/kafka
FUZZ_KAFKA_SRC = $(addprefix src/,$(addsuffix .c,$(KAFKA)))
FUZZ_SCANS = 0 1 3 10 18 55 60 78 79
FUZZ_TARGETS = build-fuzz/fuzz_control build-fuzz/fuzz_request build-fuzz/fuzz_response \
               build-fuzz/fuzz_interleave build-fuzz/fuzz_gate build-fuzz/fuzz_http \
               $(addprefix build-fuzz/fuzz_scan_,$(FUZZ_SCANS))
FUZZ_SECONDS ?= 20

fuzz: $(FUZZ_TARGETS)

build-fuzz/fuzz_control: fuzz/fuzz_control.c src/frame.c src/msg.c src/uuid.c
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(LIBS)
build-fuzz/fuzz_request: fuzz/fuzz_kafka.c $(FUZZ_KAFKA_SRC)
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -DTARGET_REQUEST -o $@ $^
build-fuzz/fuzz_response: fuzz/fuzz_kafka.c $(FUZZ_KAFKA_SRC)
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -DTARGET_RESPONSE -o $@ $^
build-fuzz/fuzz_interleave: fuzz/fuzz_kafka.c $(FUZZ_KAFKA_SRC)
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -DTARGET_INTERLEAVE -o $@ $^
build-fuzz/fuzz_gate: fuzz/fuzz_gate.c src/kafka/kgate.c src/kafka/ksasl.c src/kafka/kframe.c \
                      src/kafka/kscan.c src/log.c src/metrics.c
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(LIBS)
build-fuzz/fuzz_http: fuzz/fuzz_http.c src/http.c src/net.c src/log.c
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(LIBS)
build-fuzz/fuzz_scan_%: fuzz/fuzz_kafka.c $(FUZZ_KAFKA_SRC)
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -DTARGET_SCAN=$* -o $@ $^

fuzz-run: fuzz
	@for t in $(FUZZ_TARGETS); do \
	  name=$${t#build-fuzz/fuzz_}; mkdir -p build-fuzz/corpus/$$name; \
	  if $$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=0 \
	      -artifact_prefix=build-fuzz/$$name- \
	      build-fuzz/corpus/$$name fuzz/corpus/$$name >build-fuzz/$$name.log 2>&1; \
	  then echo "ok fuzz_$$name"; else echo "FAIL fuzz_$$name"; tail -40 build-fuzz/$$name.log; fi; \
	done

# Regenerates the committed seed corpora from the unit tests' builders.
seeds: $(BUILD)/tests/test_kafka
	@for d in control request response $(addprefix scan_,$(FUZZ_SCANS)); do mkdir -p fuzz/corpus/$$d; done
	$(BUILD)/tests/test_kafka --seeds fuzz/corpus

# Installed paths (FHS; systemd also reads units under /usr/local/lib/systemd/system).
# BIN: the binary to install, $(BUILD)/bore by default (built first if out of date).
BIN            ?= $(BUILD)/bore
BINDIR         ?= $(PREFIX)/bin
MANDIR         ?= $(PREFIX)/share/man
DOCDIR         ?= $(PREFIX)/share/doc/bore
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR    ?= $(PREFIX)/share/bash-completion/completions

install: $(BIN)
	install -D -m 755 $(BIN) $(DESTDIR)$(BINDIR)/bore
	install -D -m 644 docs/bore.1 $(DESTDIR)$(MANDIR)/man1/bore.1
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	sed 's|@BINDIR@|$(BINDIR)|g' dist/bore-server.service.in >$(DESTDIR)$(SYSTEMDUNITDIR)/bore-server.service
	chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/bore-server.service
	install -D -m 644 dist/bore.bash $(DESTDIR)$(BASHCOMPDIR)/bore
	install -D -m 644 dist/server.env $(DESTDIR)$(DOCDIR)/server.env

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/bore $(DESTDIR)$(MANDIR)/man1/bore.1 \
	      $(DESTDIR)$(SYSTEMDUNITDIR)/bore-server.service $(DESTDIR)$(BASHCOMPDIR)/bore \
	      $(DESTDIR)$(DOCDIR)/server.env
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true

clean:
	rm -rf build build-san build-fuzz

.PHONY: all test install uninstall clean fuzz fuzz-run seeds
