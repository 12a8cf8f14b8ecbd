# PGXS build of pg_privacy (C++17). Targets: all, install, installcheck (pg_regress + isolation),
# prove_installcheck (Perl TAP, test/t). The whole test run is test/run-all.
EXTENSION  = pg_privacy
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" pg_privacy.control)

MODULE_big = pg_privacy
CORE_SRCS  = $(sort $(wildcard src/core/*.cpp))
PG_SRCS    = $(sort $(wildcard src/*.cpp $(filter-out src/core/%,$(wildcard src/*/*.cpp))))
OBJS       = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

# The install script is concatenated from src/sql/ in file-name order.
SQL_PIECES = $(sort $(wildcard src/sql/*.sql))
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
# Earlier versions' install scripts (frozen as released) and one update script per version
# step: ALTER EXTENSION pg_privacy UPDATE walks them (docs/upgrading.md; test/t/097_upgrade.pl).
DATA       = $(sort $(wildcard src/sql/versions/*.sql))

PG_CONFIG ?= pg_config

PG_CPPFLAGS = -I$(srcdir)/src
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Wno-unused-parameter \
              -Wno-missing-field-initializers -Wno-cast-function-type -Wno-register -Werror
SHLIB_LINK  = -lssl -lcrypto -lcurl -lstdc++

# pg_regress suites: test/sql/*.sql with test/expected/*.out. test/sql/boundary.sql and
# test/sql/notify_events.sql (and test/pgtap/notify.sql, test/t/050_notify_smtp.pl) need the
# test-only extension privacy_test installed first: make -C test/modules/privacy_test install.
REGRESS      = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=$(srcdir)/test --load-extension=pgtap
# isolationtester specs: test/isolation/specs/*.spec with test/isolation/expected/*.out.
ISOLATION      = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=$(srcdir)/test/isolation
# Perl TAP tests.
TAP_TESTS   = 1
PROVE_TESTS = test/t/*.pl

# PGXS would also emit LLVM bitcode for JIT inlining with clang, which neither helps here (no
# function of ours is worth inlining into JIT-compiled expressions) nor copes with C++17 flags on
# every toolchain. Turn it off deliberately instead of depending on which clang is installed.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# test/perl holds PrivacyTest.pm, the cluster setup the Perl TAP tests share (appended even when
# PROVE_FLAGS is given on the command line, as for the Citus suite).
override PROVE_FLAGS += -I test/perl

# The databases the suites run in (PGXS's defaults, contrib_regression and isolation_regression,
# are set by the include above, hence after it).
CONTRIB_TESTDB   = privacy_regress
ISOLATION_TESTDB = privacy_isolation

# PGXS puts CFLAGS (gcc C options such as -Wmissing-prototypes) into C++ compiles too: use
# only what is meant for C++.
override CXXFLAGS := $(filter-out -Wmissing-prototypes -Wdeclaration-after-statement \
                       -Werror=vla -Wimplicit-fallthrough=3 -Wno-format-truncation \
                       -Wno-stringop-truncation -Wmissing-variable-declarations -Wcast-function-type \
                       -std=gnu99 -std=c99,$(CXXFLAGS))

# src/core is compiled WITHOUT PostgreSQL's include path: a core file that includes postgres.h
# does not compile. That is the rule of docs/architecture.md ("src/core never sees PostgreSQL"), enforced by the build.
$(CORE_SRCS:.cpp=.o): override CPPFLAGS := -I$(srcdir)/src $(filter-out -I%,$(CPPFLAGS))

# Header dependencies: every object records the headers it includes (src/foo.d), so editing a
# header rebuilds what uses it (PGXS's own autodepend is off in Debian's build).
override CXXFLAGS += -MMD -MP
-include $(OBJS:.o=.d)
EXTRA_CLEAN = $(OBJS:.o=.d) META.json

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PIECES)
	cat $^ > $@

.PHONY: unit
unit:
	cmake -S $(srcdir) -B build-unit -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build-unit -j2
	cd build-unit && ctest --output-on-failure

# docs/architecture.md names this target; PGXS only runs TAP tests inside installcheck.
.PHONY: prove_installcheck
prove_installcheck:
	$(prove_installcheck)

# PGXN: META.json is made from META.json.in with the version of pg_privacy.control (the one
# place it is written), and `make dist` packs the tree as PGXN expects.
META.json: META.json.in pg_privacy.control
	sed 's/@VERSION@/$(EXTVERSION)/g' $< > $@

.PHONY: dist
dist: META.json
	git archive --format zip --prefix=$(EXTENSION)-$(EXTVERSION)/ \
	  --add-file=META.json -o $(EXTENSION)-$(EXTVERSION).zip HEAD

# compile_commands.json for clangd and clang-tidy, from a dry run of this build (nothing is
# compiled; scripts/compile-commands.py). scripts/check-style.sh uses it.
.PHONY: compile_commands.json
compile_commands.json:
	$(MAKE) --no-print-directory -n -B all PG_CONFIG=$(PG_CONFIG) | python3 $(srcdir)/scripts/compile-commands.py > $@
