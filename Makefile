# The README's two commands are `make main` and `make test`; both set up .venv/ when it is missing.
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= all

.PHONY: install main test lint bench clean

$(VENV)/.installed: pyproject.toml constraints.txt scripts/install.sh
	scripts/install.sh $(EXTRAS)
	touch $@

install: $(VENV)/.installed

main: install
	$(BIN)/hiper-bench sweep harness/configs/sweeps/quick.yaml --db runs/results.sqlite
	$(BIN)/hiper-bench leaderboard --db runs/results.sqlite --out runs/leaderboard

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs
