# `make demo` and `make test` work on a fresh clone: both create .venv if missing.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
TORCH   ?= torch==2.14.1 torchvision==0.29.1
DEMO_OUT ?= runs/demo
# sized for about 3 minutes on 2 CPU cores: one phi, a 4-epoch final recipe, 3 seeds (intervals)
DEMO_ARGS ?= --space tiny --dataset digits --target-macs 1.5M --trials 10 --recipe demo --grid-closest 2 --phi 1 \
             --seeds 0,1,2 --final-recipe demo-final --study-targets 2x --fidelity-top 2 --fidelity-random 2

.PHONY: venv test demo clean-demo bench evidence clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# the tests in TEST_JOBS processes (pytest-xdist; `auto`: one per core), a file per process at a
# time so a module's fixtures are built once, the files with the most slow tests first (tests/conftest.py);
# `make test TEST_JOBS=0` runs them in one process
TEST_JOBS ?= auto
test: venv
	$(PY) -m pytest -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder

# The main job on the built-in digits data: search -> grid -> emission -> training -> report.
# Re-running resumes (finished steps are skipped); `make clean-demo` starts over.
demo: venv
	$(VENV)/bin/nas pipeline $(DEMO_ARGS) --out $(DEMO_OUT)
	@echo "demo outputs in $(DEMO_OUT): report.md, scaling.png, search/, grid/, scaled/, train/, study/, fidelity/"

clean-demo:
	rm -rf $(DEMO_OUT)

evidence: venv
	bash benchmarks/evidence_cpu.sh

bench: venv
	$(PY) benchmarks/counting.py
	$(PY) benchmarks/trainer.py
	$(PY) benchmarks/cpu_trainer.py

clean:
	rm -rf $(VENV) runs .pytest_cache
