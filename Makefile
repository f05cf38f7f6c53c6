# Entry points for a fresh Debian 12 machine with Python 3.11 (see README.md):
#   make demo   converts the bundled example model, evaluates every variant on SST-2 dev, runs it
#   make test   runs the whole test suite (slow tests included), as CI does
#   make wheel  builds dist/edge_albert-<version>-py3-none-any.whl to copy to a Raspberry Pi
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE := examples/sst2-albert
EVAL_DATA := data/glue-sst2/dev.tsv
DEMO_OUT := out/sst2-albert.edgealbert
# Workstation extras plus the LiteRT interpreter; the constraints pin every version CI tests.
EXTRAS := litert,convert,bench,dev,serve,cluster

# export-mediapipe's MediaPipe interpreter: mediapipe 0.10.21 needs numpy < 2 and protobuf 4, so its own venv.
MP_VENV := .venv-mediapipe
MP_STAMP := $(MP_VENV)/.installed
# The MediaPipe web page's npm package (@mediapipe/tasks-text, its wasm served from node_modules).
WEB_MP := web/mediapipe
WEB_STAMP := $(WEB_MP)/node_modules/.installed

.PHONY: demo test system-deps install mediapipe-venv web-deps wheel clean

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

$(MP_STAMP): requirements/mediapipe.txt
	$(PYTHON) -m venv $(MP_VENV)
	$(MP_VENV)/bin/python -m pip install --quiet -r requirements/mediapipe.txt
	touch $(MP_STAMP)

mediapipe-venv: $(MP_STAMP)

# npm ci: exactly package-lock.json's versions, from the npm registry; nothing is fetched at page load.
$(WEB_STAMP): $(WEB_MP)/package.json $(WEB_MP)/package-lock.json
	cd $(WEB_MP) && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_STAMP)

web-deps: $(WEB_STAMP)

# Needs root for apt-get: run as root (no sudo needed), or with sudo as a normal user.
system-deps:
	bash scripts/ci_system_deps.sh
	bash scripts/ci_java_deps.sh
	bash scripts/ci_browser_deps.sh

demo: $(STAMP)
	$(BIN)/edge-albert convert $(EXAMPLE) -o $(DEMO_OUT) --quantize fp32,fp16,dynamic-int8 --overwrite \
		--eval-data $(EVAL_DATA)
	$(BIN)/edge-albert inspect out/sst2-albert-dynamic-int8.edgealbert
	$(BIN)/edge-albert predict out/sst2-albert-dynamic-int8.edgealbert \
		"a gorgeous, witty, seductive movie" "a dull, lifeless and tedious mess"
	@echo
	@echo "The bundles are in out/. edge-albert is installed in $(VENV)/bin; to use it from your shell:"
	@echo "    . $(VENV)/bin/activate        (or run $(BIN)/edge-albert directly)"

test: $(STAMP) $(MP_STAMP) system-deps $(WEB_STAMP)
	EDGE_ALBERT_MEDIAPIPE_PYTHON=$(abspath $(MP_VENV))/bin/python $(BIN)/python -m pytest -q

# The device package: pure Python, one wheel for every platform; the interpreter comes by extra.
wheel: $(STAMP)
	rm -rf build
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w dist .
	rm -rf build
	@ls dist/edge_albert-*-py3-none-any.whl

clean:
	rm -rf $(VENV) $(MP_VENV) $(WEB_MP)/node_modules out build dist
