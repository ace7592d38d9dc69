# Two entry points (see README): `make run` (set up, short training, scoring, report path) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export GANEVAL_DATA_DIR ?= $(abspath ../shared/data/mnist)

.PHONY: setup run test lint constraints
$(BIN)/ganeval: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

setup: $(BIN)/ganeval

run: setup
	rm -rf runs/quickstart
	$(BIN)/ganeval train --model mlp --iterations 3000 --checkpoint-every 500 --out runs/quickstart --seed 0
	$(BIN)/ganeval score runs/quickstart --num-samples 1000 --inception-top-k 1 --bootstrap 50

test: setup
	GANEVAL_OFFLINE=1 $(BIN)/python -m pytest -q tests

lint: setup
	$(BIN)/ruff check ganeval tests benchmarks

# After a deliberate, tested upgrade in .venv: record its exact versions for CI.
constraints: setup
	{ sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^ganeval'; } > constraints.txt.tmp && mv constraints.txt.tmp constraints.txt
