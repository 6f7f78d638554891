# The README's two commands: `make run` (the main job) and `make test` (the fast tests;
# `make test-slow` runs the tests marked slow, `make lint` runs ruff; .ci/run all three).
# Both create .venv and install exactly what the project needs, once: the stamp file
# is keyed by the content of pyproject.toml, so re-running installs nothing new.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
SUITE  ?= default
ARGS   ?=

.PHONY: run test test-slow lint install perf clean readme
install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	# torch/torchvision pinned: these builds lie on this machine's disk (no download).
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(VENV)/bin/snnxai run $(SUITE) $(ARGS)

# ARGS come last: `make test ARGS="-m slow"` equals `make test-slow`
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow $(ARGS)

# ruff with the configuration in pyproject.toml (.ci/run runs it too)
lint: $(STAMP)
	$(VENV)/bin/ruff check --no-cache bench methods metrics tests scripts

perf: $(STAMP)
	$(VENV)/bin/snnxai perf $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info

readme: $(STAMP)
	$(PY) -m bench.readme README.md
