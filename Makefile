# Set-up and the main jobs. Every target creates .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch; a bare `torch` would pull a multi-GB CUDA build on a machine without a GPU.
TORCH_SPEC ?= torch==2.13.0
DEMO_DIR ?= runs/demo

.PHONY: install browser demo card test test-all test-labelstudio lint clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

demo: install
	PYTHONUNBUFFERED=1 $(BIN)/aranews demo --out $(DEMO_DIR)

# Regenerate model_card.md from the demo run and any quality benchmark results (no hand-typed figures).
card: install
	test -f $(DEMO_DIR)/run/metrics.json || $(MAKE) demo
	$(BIN)/aranews -q model-card --config configs/default.yaml --run $(DEMO_DIR)/run --out model_card.md \
		$(foreach f,$(wildcard benchmarks/results/quality-*.json),--benchmark $(f))

# Headless Chromium for the report's browser tests, from Debian's packages where it is missing and can be
# installed (root and apt-get); elsewhere it says why and those tests skip with their reason.
browser:
	bash scripts/install_browser.sh

test: install browser
	$(BIN)/python -m pytest

test-all: install
	$(BIN)/python -m pytest -m "slow or not slow"

# The Label Studio round trip against a real server. Label Studio pins many packages of its own, so it
# gets a virtual environment of its own; the test starts it on 127.0.0.1 and stops it.
LS_VENV ?= .venv-labelstudio
test-labelstudio: install
	test -x $(LS_VENV)/bin/label-studio || ($(PYTHON) -m venv $(LS_VENV) && $(LS_VENV)/bin/python -m pip install --quiet label-studio)
	ARANEWS_LABEL_STUDIO=$(LS_VENV)/bin/label-studio $(BIN)/python -m pytest -m slow tests/test_labelstudio_live.py

lint: install
	$(BIN)/ruff check src training inference tests scripts benchmarks configs

clean:
	rm -rf $(VENV) $(LS_VENV) runs .pytest_cache
