# `make soak`: the release build under mixed load for SOAK_SECONDS (default 300) on loopback,
# with RSS sampling and end-of-run consistency checks (scripts/soak.sh, tests/soak/soak.py).
# Not part of `make test`. Figures: build/reliability/soak.json.
.PHONY: soak

soak: deps
	$(Q)scripts/soak.sh
