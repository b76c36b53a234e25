# Benchmarks (bench/, scripts/bench.sh), included by the top-level Makefile.
#
#   make bench        the full run: 1,000 rooms, 1,000,000 reservations, 10,000 users; every
#                     scenario directly, through the gateway and against its ceilings (pgbench on
#                     the same SQL, nginx with a fixed body); about 15 minutes
#   make bench-smoke  the same with tiny sizes, 2 s per run and 8 connections, and a check that
#                     the report has every scenario with no unexpected error (part of make test)
#
#   BENCH_SECONDS=10 BENCH_CONNECTIONS=64 BENCH_SCALE=full   (make bench's settings)
#   Reports: build/bench/latest-<scale>.{json,txt} and one bench-<time>-<scale>.json per run.

BENCH_SECONDS ?= 10
BENCH_CONNECTIONS ?= 64
BENCH_SCALE ?= full

.PHONY: bench bench-smoke

bench: deps
	$(Q)BENCH_SECONDS=$(BENCH_SECONDS) BENCH_CONNECTIONS=$(BENCH_CONNECTIONS) \
	  BENCH_SCALE=$(BENCH_SCALE) scripts/bench.sh

bench-smoke: deps
	$(Q)BENCH_SCALE=smoke BENCH_SECONDS=2 BENCH_CONNECTIONS=8 BENCH_CHECK=1 scripts/bench.sh
