# liverfib: two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   ?= ../shared/data

.PHONY: venv demo test test-fast lint clean viewer viewer-check

$(STAMP): requirements.lock pyproject.toml
	@test -n "$(PYTHON)" || { echo "need python3.11 on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "pip==26.3"
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

DEMO_OUT ?= runs/demo

# Offline, a few minutes on a laptop CPU: ultrasound staging + Grad-CAM + US liver masks, MRE on a
# generated (SYNTHETIC) phantom, 3D liver segmentation of the bundled CT (demo/ct/README.md).
demo: $(STAMP)
	$(VENV)/bin/liverfib predict demo/us --model default --out $(DEMO_OUT)/us_predictions.csv
	$(VENV)/bin/liverfib explain demo/us --out $(DEMO_OUT)/explain
	$(VENV)/bin/liverfib segment demo/us --modality us --out $(DEMO_OUT)/segment
	$(VENV)/bin/liverfib phantom mre --out $(DEMO_OUT)/mre_phantom --n 1 --seed 0
	$(VENV)/bin/liverfib mre $(DEMO_OUT)/mre_phantom/mre_0000_000 --out $(DEMO_OUT)/mre
	mkdir -p $(DEMO_OUT)/ct
	$(VENV)/bin/liverfib segment demo/ct/totalseg_ct.nii.gz --modality ct --out $(DEMO_OUT)/ct/liver_mask.nii.gz --json > $(DEMO_OUT)/ct/segment.json
	$(PY) demo/summary.py $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests

# The 3D volume viewer of the web app: NiiVue (npm, versions pinned in webviewer/package-lock.json)
# bundled with esbuild into src/liverfib/clinical/static/niivue-viewer.js, which is committed and
# served by the app itself (no CDN). Needs node >= 18 and the npm registry; `viewer-check` rebuilds
# into a temporary folder and fails if the committed files differ.
VIEWER_STATIC := src/liverfib/clinical/static
viewer:
	cd webviewer && npm ci --no-audit --no-fund && node build.mjs

viewer-check:
	cd webviewer && npm ci --no-audit --no-fund
	tmp=$$(mktemp -d) && node webviewer/build.mjs $$tmp && \
	  for f in niivue-viewer.js niivue-viewer.manifest.json NIIVUE-LICENSES.txt; do \
	    cmp $$tmp/$$f $(VIEWER_STATIC)/$$f || { echo "$(VIEWER_STATIC)/$$f differs from a rebuild: run make viewer"; rm -rf $$tmp; exit 1; }; \
	  done; rm -rf $$tmp; echo "viewer bundle matches a rebuild"

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
