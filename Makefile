# `make demo` runs the main job, `make test` the fast tests (under 10 minutes on 2 cores),
# `make gates` the acceptance gates of the specs and the small versions of the docs' claims
# (pytest -m gate, within 30 minutes on 2 cores), `make slow` what is too long even for that.
# `make notebooks` re-executes notebooks/ in place (committed with their outputs), `make figures`
# writes the README figures under docs/figures/. All set up .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test gates slow notebooks figures docs lint bench gpu-check clean-venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/synapse-sim demo

test: $(STAMP)
	$(PY) -m pytest -m "not slow and not gate" --durations=25

gates: $(STAMP)
	$(PY) -m pytest -m gate --durations=0

slow: $(STAMP)
	$(PY) -m pytest -m "slow and not gate" --durations=0

# Execute every notebook in place with this interpreter's kernel (outputs are committed).
notebooks: $(STAMP)
	MPLBACKEND=Agg $(PY) tests/test_notebooks.py execute notebooks/*.ipynb

# The README figures: the main job's accuracy figure (`synapse-sim demo`) and the device zoo.
figures: $(STAMP)
	MPLBACKEND=Agg $(VENV)/bin/synapse-sim demo --out runs/figures-demo --quiet
	mkdir -p docs/figures
	cp runs/figures-demo/accuracy.png docs/figures/demo_accuracy.png
	MPLBACKEND=Agg $(PY) docs/figures/device_zoo.py docs/figures/device_zoo.png

# The API reference: one HTML page per public module from its docstrings (stdlib pydoc) in
# docs/api/ (not committed); fails when a module does not import or has no docstring.
docs: $(STAMP)
	$(PY) docs/build_api.py docs/api

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) benchmarks/bench_update.py

# On a machine with an NVIDIA GPU and cupy (PYTHON=... picks the interpreter; docs/GPU.md)
gpu-check:
	bash benchmarks/gpu_check.sh

clean-venv:
	rm -rf $(VENV)
