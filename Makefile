# bore - build, test, install.
#   make                 release build: build/bore
#   make SAN=1           ASan+UBSan build: build-san/bore
#   make test            unit + end-to-end tests
#   make install PREFIX=/usr/local
CC      ?= cc
PREFIX  ?= /usr/local
WARN    = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla \
          -Wundef -Wwrite-strings -Wimplicit-fallthrough -Wpointer-arith
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) $(EXTRA_CFLAGS)
LIBS    = $(shell pkg-config --libs libuv jansson openssl)

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
CORE    = log frame uuid msg auth net relay cli $(KAFKA)
SRCS    = $(addprefix src/,$(addsuffix .c,$(CORE) server client main))
OBJS    = $(SRCS:src/%.c=$(BUILD)/%.o)
CORE_OBJS = $(addprefix $(BUILD)/,$(addsuffix .o,$(CORE)))
UNIT    = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

all: $(BUILD)/bore $(UNIT)

$(BUILD)/bore: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/%.o: src/%.c $(wildcard src/*.h src/kafka/*.h) | $(BUILD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(CORE_OBJS) $(wildcard tests/unit/*.h) | $(BUILD)
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) -Isrc -Isrc/kafka $(LDFLAGS) -o $@ $< $(CORE_OBJS) $(LIBS)

$(BUILD):
	@mkdir -p $(BUILD)

test: all
	tests/run

install: $(BUILD)/bore
	install -D -m 755 $(BUILD)/bore $(DESTDIR)$(PREFIX)/bin/bore

clean:
	rm -rf build build-san

.PHONY: all test install clean
