# C-FIND benchmark: STUDIES=10000 make bench-find for a quick run.
STUDIES ?= 100000
bench-find:
	.venv/bin/python bench/find_bench.py --studies $(STUDIES) --patients $$(( $(STUDIES) / 5 ))

.PHONY: bench-find
