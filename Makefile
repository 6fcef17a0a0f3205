# liverfib: two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   ?= ../shared/data

.PHONY: venv demo test test-fast lint clean

$(STAMP): requirements.lock pyproject.toml
	@test -n "$(PYTHON)" || { echo "need python3.11 on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "pip==26.3"
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

DEMO_OUT ?= runs/demo

demo: $(STAMP)
	$(VENV)/bin/liverfib predict demo/us --model default --out $(DEMO_OUT)/us_predictions.csv
	$(VENV)/bin/liverfib explain demo/us --out $(DEMO_OUT)/explain
	$(VENV)/bin/liverfib segment demo/us --modality us --out $(DEMO_OUT)/segment
	@echo "demo outputs (CSV, CAM heatmaps/overlays, liver masks/overlays) in $(DEMO_OUT)/"

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
