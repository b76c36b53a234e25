# Fuzzing with libFuzzer (clang, AddressSanitizer + UndefinedBehaviorSanitizer), included by the
# top-level Makefile.  One target per fuzz/fuzz_<name>.c, its seeds in fuzz/corpus/<name>/ and
# an optional dictionary fuzz/<name>.dict.
#
#   make fuzz [FUZZ_SECONDS=60]   every target for FUZZ_SECONDS; new inputs go to
#                                 build/fuzz/corpus/<name>/, crashes to build/fuzz/crashes/
#   make fuzz-smoke               every target for FUZZ_SMOKE_SECONDS (10) on its seeds (make test)
#   make fuzz-bins                only build them (build/fuzz/bin/)
#   FUZZ_JOBS=N                   targets run N at a time (default 2, the machine's cores)
#
# The common library and the services' pure code are compiled again with clang and the
# fuzzer's coverage instrumentation (build/fuzz/lib/libcommon.a is not the gcc-built one).

FUZZ_CC      ?= clang
FUZZ_DIR     := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_JOBS    ?= 2
FUZZ_NAMES   := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_DIR)/bin/fuzz_%)

# The project's warnings as gcc reads them: clang's -Wconversion also implies
# -Wsign-conversion, its -Wpedantic flags librdkafka's RD_KAFKA_V_* macros (statement
# expressions) and its -Wformat-nonliteral a va_list formatter (req_verror).
FUZZ_WARN     = $(WARN) -Wno-sign-conversion -Wno-gnu-statement-expression -Wno-format-nonliteral
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS   = -std=c17 -D_GNU_SOURCE -g -O1 $(FUZZ_WARN) $(FUZZ_SAN) -fsanitize=fuzzer-no-link \
                -MMD -MP -pthread -Icommon/include $(PKG_CFLAGS)
FUZZ_LDFLAGS := $(FUZZ_SAN) -fsanitize=fuzzer -pthread

FUZZ_LIBCOMMON := $(FUZZ_DIR)/lib/libcommon.a
FUZZ_SUPPORT   := $(FUZZ_DIR)/lib/libfuzzsupport.a

# The services' pure files (no civetweb, SQL or librdkafka code, every public name prefixed
# with its service's), linked into every target as they are.
FUZZ_SVC_SRC := room-service/src/validate.c \
                reservation-service/src/validate.c \
                reservation-service/src/event_decode.c user-service/src/validate.c
FUZZ_SVC_OBJ := $(FUZZ_SVC_SRC:%.c=$(FUZZ_DIR)/obj/%.o)

.PHONY: fuzz fuzz-smoke fuzz-bins

$(FUZZ_DIR)/.flags: FLAGS_TEXT = $(FUZZ_CC) $(FUZZ_CFLAGS) | $(FUZZ_LDFLAGS) $(LDLIBS)
$(FUZZ_DIR)/obj/%.o: %.c $(FUZZ_DIR)/.flags
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC    $< (fuzz)")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_LIBCOMMON): $(COMMON_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
	@mkdir -p $(@D)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(FUZZ_SUPPORT): $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(wildcard fuzz/support/*.c))
	@mkdir -p $(@D)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# The link depends on the tree's .flags too, so that a change of FUZZ_LDFLAGS (or of the
# libraries) relinks.
$(FUZZ_DIR)/bin/fuzz_%: $(FUZZ_DIR)/obj/fuzz/fuzz_%.o $(FUZZ_SUPPORT) $(FUZZ_SVC_OBJ) \
                        $(FUZZ_LIBCOMMON) $(FUZZ_DIR)/.flags
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LINK  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $< $(FUZZ_SUPPORT) $(FUZZ_SVC_OBJ) $(FUZZ_LIBCOMMON) \
	    $(LDLIBS)

fuzz-bins: $(FUZZ_BINS)

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)

fuzz: fuzz-bins
	$(Q)scripts/fuzz.sh run $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_NAMES)

fuzz-smoke: fuzz-bins
	$(Q)scripts/fuzz.sh smoke $(FUZZ_SMOKE_SECONDS) $(FUZZ_JOBS) $(FUZZ_NAMES)
