# The two commands of the README.  Each creates .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/fedotl demo

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m fedotl.benchmarks.data --json
	$(PY) -m fedotl.benchmarks.online --json
	$(PY) -m fedotl.benchmarks.simulation --json
	$(PY) -m fedotl.benchmarks.devices --json
	$(PY) -m fedotl.benchmarks.deployment --json

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
