# The README's two commands are `make main` and `make test`; both set up .venv/ when it is missing
# (`make test` also .venv-verl/, the verl environment: verl pins transformers<5.11).
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= all
VERL_VENV := .venv-verl

.PHONY: install verl-env main test lint bench clean image image-test image-train

$(VENV)/.installed: pyproject.toml constraints.txt scripts/install.sh
	scripts/install.sh $(EXTRAS)
	touch $@

install: $(VENV)/.installed

$(VERL_VENV)/.installed: pyproject.toml constraints-verl.txt scripts/install.sh
	VENV=$(VERL_VENV) CONSTRAINTS=constraints-verl.txt scripts/install.sh alfworld,webshop,verl,dev
	touch $@

verl-env: $(VERL_VENV)/.installed

# Optional: AGENT=react AGENT_KWARGS='{"backend": "openai", "backend_kwargs": {...}}' adds an LLM agent.
AGENT ?=
AGENT_KWARGS ?=
main: install
	$(BIN)/hiper-bench sweep harness/configs/sweeps/quick.yaml --db runs/results.sqlite \
		$(if $(AGENT),--agent '$(AGENT)') $(if $(AGENT_KWARGS),--agent-kwargs '$(AGENT_KWARGS)')
	$(BIN)/hiper-bench leaderboard --db runs/results.sqlite --out runs/leaderboard
	@echo "report: runs/leaderboard/report/report.html  leaderboard: runs/leaderboard/index.html"

test: install verl-env
	$(BIN)/python -m pytest -q
	$(VERL_VENV)/bin/python -m pytest -q tests/on_verl

lint: install
	$(BIN)/ruff check .

# Docker images (docker/README.md): built from the package registries alone, with a base made here by
# debootstrap when Docker Hub cannot be reached; `image-test` runs the main job, verify and a browser
# episode inside the eval image.
image:
	docker/build.sh eval

image-test:
	docker/test-image.sh

image-train:
	docker/build.sh train

clean:
	rm -rf $(VENV) $(VERL_VENV) runs
