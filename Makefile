# The two set-up commands: `make run` starts the system, `make test` runs the tests.
# Both create the virtual environment from the lock file first, on a fresh machine too.
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run test lint bench clean

$(UV):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv

install: $(UV)
	$(UV) sync --frozen --python $(PY)

run: install
	$(VENV)/bin/worksteps up

test: install
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/offers/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
