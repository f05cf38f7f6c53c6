# Two entry points for a fresh Debian 12 machine with Python 3.11 (see README.md):
#   make demo   converts the bundled example model and runs it
#   make test   runs the whole test suite (slow tests included), as CI does
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE := examples/sst2-albert
DEMO_OUT := out/sst2-albert.edgealbert

.PHONY: demo test system-deps install clean

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# constraints pin torch to the CPU wheel; an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[convert,bench,dev,serve,cluster]"
	touch $(STAMP)

install: $(STAMP)

system-deps:
	bash scripts/ci_system_deps.sh
	bash scripts/ci_java_deps.sh
	bash scripts/ci_browser_deps.sh

demo: $(STAMP)
	$(BIN)/edge-albert convert $(EXAMPLE) -o $(DEMO_OUT) --quantize fp32,fp16,dynamic-int8 --overwrite \
		$$(test -f data/glue-sst2/dev.tsv && echo --eval-data data/glue-sst2/dev.tsv)
	$(BIN)/edge-albert inspect out/sst2-albert-dynamic-int8.edgealbert
	$(BIN)/edge-albert predict out/sst2-albert-dynamic-int8.edgealbert \
		"a gorgeous, witty, seductive movie" "a dull, lifeless and tedious mess"

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out
