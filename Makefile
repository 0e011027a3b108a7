# jaqc developer entry points. `make demo` and `make test` create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# On machines without CUDA the CPU wheel of torch is installed first (a local file on the project's
# machines); an unpinned torch would pull gigabytes of CUDA packages. Override with TORCH_SPEC=...
TORCH_SPEC ?= $(shell if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then echo torch; else echo torch==2.13.0; fi)
PYTEST_ARGS ?=

.PHONY: venv demo test bench lint clean gpu-check

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	bash scripts/demo.sh $(VENV)

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

# The checks that need a GPU (scripts/gpu_check.sh): run on a machine with one; not part of `make test`.
gpu-check:
	bash scripts/gpu_check.sh $(if $(wildcard $(PY)),$(PY),$(PYTHON))

bench: venv
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

LINT_PATHS := jaqc ir passes tests benchmarks

lint: venv
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
