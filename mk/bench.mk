# Benchmarks (bench/, scripts/bench.sh), included by the top-level Makefile.
#
#   make bench        the full run: 1,000 rooms, 1,000,000 reservations, 10,000 users; every
#                     scenario directly and through the gateway with the services' defaults,
#                     against its ceilings (pgbench: the cheapest SQL and the endpoint's own SQL,
#                     best client count; nginx with a fixed body), round trips, backends,
#                     starvation, idle/slowloris, the issue-18 targets, and last bookings with
#                     attendees with mail off, then on (Mailpit, started by the bench, and
#                     reservation-service restarted with SMTP_URL); about 13 minutes
#   make bench BASELINE=<commit>
#                     first measures <commit> with its own bench (temporary git worktree, its
#                     release build, same scale/seconds/connections) and rewrites
#                     bench/baseline.json, then the current tree; about 25 minutes
#   make bench-smoke  the same with tiny sizes, 2 s per run and 8 connections, and a check that
#                     every part ran with no unexpected error (part of make test)
#   make bench REPLICAS=N
#                     N replicas of each service (1-9), the gateway over all of them; a
#                     scenario's direct figure is the sum over the replicas (one wrk per replica,
#                     the connections split); reports latest-<scale>-replicas<N>.{txt,json}
#   make bench REPLICAS=N BENCH_ONLY=replicas
#                     the short version for comparing replica counts (about 5 minutes at full
#                     scale, the seed included): room by id, availability, own reservations and
#                     bookings, directly and through the gateway, nothing else
#
#   BENCH_SECONDS=5 BENCH_CONNECTIONS=64 BENCH_SCALE=full   (make bench's settings)
#   Reports: build/bench/latest-<scale>.{json,txt} and one bench-<time>-<scale>.json per run.

BENCH_SECONDS ?= 5
BENCH_CONNECTIONS ?= 64
BENCH_SCALE ?= full
BASELINE ?= $(BENCH_BASELINE)
BENCH_REPLICAS ?= $(or $(REPLICAS),1)
BENCH_ONLY ?=

.PHONY: bench bench-smoke

bench: deps
	$(Q)BENCH_SECONDS=$(BENCH_SECONDS) BENCH_CONNECTIONS=$(BENCH_CONNECTIONS) \
	  BENCH_SCALE=$(BENCH_SCALE) BENCH_BASELINE=$(BASELINE) BENCH_REPLICAS=$(BENCH_REPLICAS) \
	  BENCH_ONLY=$(BENCH_ONLY) scripts/bench.sh

bench-smoke: deps
	$(Q)BENCH_SCALE=smoke BENCH_SECONDS=2 BENCH_CONNECTIONS=8 BENCH_CHECK=1 BENCH_BASELINE= \
	  scripts/bench.sh
