# The two commands of the README. Each one sets up what it needs (a virtualenv from pyproject).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lpm demo

test: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	mkdir -p test-artifacts && rm -f test-artifacts/alembic.db
	LPM_WAREHOUSE_URL=sqlite:///test-artifacts/alembic.db $(VENV)/bin/alembic upgrade head
	LPM_WAREHOUSE_URL=sqlite:///test-artifacts/alembic.db $(VENV)/bin/alembic check
	$(VENV)/bin/python -m pytest --junitxml=test-artifacts/junit.xml
	$(VENV)/bin/python .ci/require_tests.py test-artifacts/junit.xml

lint: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
