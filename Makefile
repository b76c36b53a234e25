# Meeting-room reservation suite: one non-recursive Makefile.
#
#   make                      build the services into build/bin/
#   make SANITIZE=address,undefined   the same with sanitizers (into build/san/)
#   make test                 deps, sanitized build, check-headers, lint, then the TEST_TIERS
#   make lint                 clang-format, shellcheck and ruff over the tree (scripts/lint.sh)
#   make run                  the whole stack in the foreground (Ctrl-C stops it)
#   make token EMAIL=… [ROLE=admin]   an access token for the running stack
#   make backup / make restore FILE=backups/<time>   dump / restore make run's databases
#   V=1                       show the commands

SERVICES := user-service room-service reservation-service

CC      ?= cc
SANITIZE ?=
ifeq ($(SANITIZE),)
  BUILD   := build
  OPT     ?= -O2 -g
  SANFLAGS :=
else
  BUILD   := build/san
  OPT     ?= -O1 -g
  SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

PKGS     := libpq jansson libcurl openssl rdkafka
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wconversion -Werror
# `override`: CFLAGS/LDFLAGS given on the command line (make CFLAGS=-DX) add to these.
override CFLAGS  += -std=c17 -D_GNU_SOURCE $(OPT) $(WARN) $(SANFLAGS) -MMD -MP -pthread \
                    -Icommon/include $(PKG_CFLAGS)
override LDFLAGS += $(SANFLAGS) -pthread
LDLIBS  := -lcivetweb $(PKG_LIBS) -lm

ifeq ($(V),1)
  Q :=
else
  Q := @
endif

COMMON_SRC := $(wildcard common/src/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o)
LIBCOMMON  := $(BUILD)/lib/libcommon.a

.PHONY: all clean deps test unit-bins run token check-headers lint FORCE
# Keep intermediate objects (unit-test objects would otherwise be deleted after linking).
.SECONDARY:
all: $(SERVICES:%=$(BUILD)/bin/%)

# Every object and binary of a build tree depends on the tree's .flags file, which holds the
# compiler and its flags and is rewritten only when they change: a different CC, CFLAGS, OPT,
# SANITIZE or LDFLAGS rebuilds the tree, an unchanged one rebuilds nothing.  (A target's
# FLAGS_TEXT says what goes in; mk/fuzz.mk has one for build/fuzz.)
FLAGS := $(BUILD)/.flags
$(FLAGS): FLAGS_TEXT = $(CC) $(CFLAGS) | $(LDFLAGS) $(LDLIBS)
%/.flags: FORCE
	@mkdir -p $(@D)
	@text='$(subst ','\'',$(FLAGS_TEXT))'; \
	  if [ "$$text" != "$$(cat $@ 2>/dev/null)" ]; then printf '%s\n' "$$text" > $@; fi
FORCE:

$(BUILD)/obj/%.o: %.c $(FLAGS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(LIBCOMMON): $(COMMON_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  AR    $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# Each service: its sources plus its migrations and OpenAPI document embedded as C strings, so a
# binary is self-contained.  Their symbols are declared once for every service, in
# common/include/embedded.h, which the generated files include: main.c needs nothing generated
# before it compiles, so a clean parallel build has no ordering to get wrong.
define service_rules
$(1)_SRC := $$(wildcard $(1)/src/*.c)
$(1)_OBJ := $$($(1)_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/$(1)/migrations.o \
            $(BUILD)/obj/gen/$(1)/openapi.o
$(BUILD)/gen/$(1)/migrations.c: $$(sort $$(wildcard $(1)/migrations/*.sql)) tools/embed-migrations.sh
	@mkdir -p $$(@D)
	$(Q)sh tools/embed-migrations.sh $(1)/migrations > $$@
$(BUILD)/gen/$(1)/openapi.c: $(1)/openapi.json tools/embed-file.sh
	@mkdir -p $$(@D)
	$(Q)sh tools/embed-file.sh service_openapi $(1)/openapi.json embedded.h > $$@
$(BUILD)/obj/gen/$(1)/%.o: $(BUILD)/gen/$(1)/%.c $(FLAGS)
	@mkdir -p $$(@D)
	$(Q)$(CC) $(CFLAGS) -c -o $$@ $$<
$(BUILD)/bin/$(1): $$($(1)_OBJ) $(LIBCOMMON) $(FLAGS)
	@mkdir -p $$(@D)
	@$$(if $(Q),echo "  LINK  $$@")
	$(Q)$(CC) $(LDFLAGS) -o $$@ $$($(1)_OBJ) $(LIBCOMMON) $(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rules,$(s))))

# Unit tests: one cmocka binary per file in tests/unit/.
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIBCOMMON) $(FLAGS)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBCOMMON) $(LDLIBS) -lcmocka
# The tests of a service's pure code link that code too (and nothing with civetweb, SQL or
# librdkafka in it).
$(BUILD)/tests/test_room_validate: $(BUILD)/obj/room-service/src/validate.o
$(BUILD)/tests/test_res_validate: $(BUILD)/obj/reservation-service/src/validate.o
$(BUILD)/tests/test_res_event_decode: $(BUILD)/obj/reservation-service/src/event_decode.o
$(BUILD)/tests/test_res_webhook_send: $(BUILD)/obj/reservation-service/src/webhook_send.o \
    $(BUILD)/obj/reservation-service/src/repo_webhooks.o
$(BUILD)/tests/test_res_mailer: $(BUILD)/obj/reservation-service/src/mailer.o \
    $(BUILD)/obj/reservation-service/src/series_ics.o
$(BUILD)/tests/test_user_validate: $(BUILD)/obj/user-service/src/validate.o
$(BUILD)/tests/test_user_tokens: $(BUILD)/obj/user-service/src/tokens.o
$(BUILD)/tests/test_user_cookies: $(BUILD)/obj/user-service/src/cookies.o
$(BUILD)/tests/test_ical $(BUILD)/tests/series_ics_dump: \
    $(BUILD)/obj/reservation-service/src/series_ics.o
$(addprefix $(BUILD)/tests/test_,room_validate res_validate user_validate): \
    $(BUILD)/obj/tests/unit/body_check.o
# The RS256 signer of the JWT and OIDC tests (the identity provider's side of an id_token).
$(BUILD)/tests/test_jwt $(BUILD)/tests/test_oidc: $(BUILD)/obj/tests/unit/jws_sign.o
# The .ics writer of tests/offline/test_ical_roundtrip.py and the mail sender of
# tests/integration/test_mail_send.py (not tests themselves: tests/run.sh runs only test_*).
unit-bins: $(UNIT_BINS) $(BUILD)/tests/series_ics_dump $(BUILD)/tests/mail_send_dump

# Every header compiles on its own: the shared library's, and each service's (its directory on
# the include path, as for its sources).
check-headers:
	$(Q)for h in common/include/*.h $(foreach s,$(SERVICES),$(s)/src/*.h); do \
	  echo "#include \"$$(basename $$h)\"" | \
	    $(CC) $(filter-out -MMD -MP,$(CFLAGS)) -I$$(dirname $$h) -x c -fsyntax-only - || \
	    { echo "check-headers: $$h does not compile on its own" >&2; exit 1; }; done

deps:
	$(Q)scripts/deps.sh

# C formatting (.clang-format), every shell script (shellcheck), the Python code (ruff.toml).
lint: deps
	$(Q)scripts/lint.sh

# make test, in this order: what the suite needs (deps), the sanitized build, every header on
# its own, lint, then the test tiers (tests/run.sh), which end with the summary line.
TEST_TIERS := unit webapp fuzz-smoke bench-smoke integration scaleout offline
test: deps
	$(Q)$(MAKE) --no-print-directory SANITIZE=address,undefined all unit-bins
	$(Q)$(MAKE) --no-print-directory check-headers
	$(Q)$(MAKE) --no-print-directory lint
	$(Q)tests/run.sh build/san $(TEST_TIERS)

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/run.sh

token:
	$(Q)scripts/token.sh "$(EMAIL)" "$(ROLE)" "$(NAME)"

clean:
	rm -rf build

# The dependency files of this build tree's objects only (build/san and build/fuzz have theirs).
-include $(patsubst %.o,%.d,$(COMMON_OBJ) $(foreach s,$(SERVICES),$($(s)_OBJ)) \
                            $(patsubst tests/unit/%.c,$(BUILD)/obj/tests/unit/%.o, \
                                       $(wildcard tests/unit/*.c)))

include mk/fuzz.mk
include mk/bench.mk
include mk/soak.mk
include mk/backup.mk
