# Every target makes its own virtualenv from pyproject.toml, so a fresh clone needs only python3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test demo bench bench-failover lint sim clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/flowbot demo

sim: $(STAMP)
	$(BIN)/flowbot sim

bench: $(STAMP)
	$(BIN)/python bench/run.py

# 20 kill -9 of the leader at random moments, two replicas on a PostgreSQL started here
# (Debian's postgresql package): failover time, duplicate and lost alerts.
bench-failover: $(STAMP)
	$(BIN)/python bench/failover.py --runs 20

lint: $(STAMP)
	$(BIN)/ruff check bot tests bench
	$(BIN)/ruff format --check bot tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
