VENV ?= .venv
BIN  := $(VENV)/bin

.PHONY: bench-move

# C-MOVE and C-GET of 500 512x512 16-bit images beside DCMTK storescu's ceiling.
bench-move:
	$(BIN)/python bench/move_bench.py
