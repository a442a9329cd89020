# `make demo` and `make test` work on a fresh clone: both create .venv if missing.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
TORCH   ?= torch==2.14.1 torchvision==0.29.1
DEMO_OUT ?= runs/demo

.PHONY: venv test demo bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest

demo: venv
	$(VENV)/bin/nas flops efficientnet-b0
	$(VENV)/bin/nas show efficientnet-b0-cifar

bench: venv
	$(PY) benchmarks/counting.py

clean:
	rm -rf $(VENV) runs .pytest_cache
