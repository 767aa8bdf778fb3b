# The few commands a newcomer needs. A fresh clone needs only Python >= 3.11 and make:
#   make test    lint, format check and the whole test suite (parallel processes, each with its own broker)
#   make demo    run the demo against an embedded broker
# PYTHON selects the interpreter (PYTHON=python3.12 make test); each Python version gets its own
# virtualenv (.venv-3.11, .venv-3.12, ...), so versions never overwrite each other's install.

PYTHON ?= python3
ARGS ?=
# pytest-xdist processes for `make test`. The integration tests mostly wait on brokers and worker processes,
# so 4 is fastest on a 2-core machine (2: 1.6x slower; 6 and 8: no faster, slower under load). 0: one process.
TEST_WORKERS ?= 4

.DEFAULT_GOAL := help
# Goals that need no interpreter, so `make clean` still works when PYTHON is broken.
NO_PYTHON_GOALS := clean help

ifneq ($(filter-out $(NO_PYTHON_GOALS),$(or $(MAKECMDGOALS),$(.DEFAULT_GOAL))),)
# An absolute path: pyenv shims such as python3.12 need PYENV_VERSION, which scripts/find-python supplies.
PYTHON_BIN := $(shell bash scripts/find-python '$(PYTHON)')
ifeq ($(PYTHON_BIN),)
$(error No working interpreter for PYTHON=$(PYTHON) (see the message above))
endif
PYTHON_VERSION := $(shell '$(PYTHON_BIN)' -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# Checked here: with Python 3.10, pip ran for over ten minutes without an answer.
ifneq ($(shell '$(PYTHON_BIN)' -c 'import sys; print(sys.version_info >= (3, 11))'),True)
$(error kafka_jobs needs Python 3.11 or later, but PYTHON=$(PYTHON) is Python $(PYTHON_VERSION) ($(PYTHON_BIN)). Install Python 3.11 or later, or point PYTHON at one, e.g. PYTHON=python3.12)
endif
endif

VENV := .venv-$(PYTHON_VERSION)
VENV_PY := $(VENV)/bin/python
# Touched after a successful install; pyproject.toml being newer means "install again".
INSTALL_STAMP := $(VENV)/.installed

.PHONY: help venv system-packages test lint format typecheck demo run bench clean

help:
	@echo "make venv       create .venv-X.Y (X.Y: the version of PYTHON=$(PYTHON)), pip install -e .[dev]"
	@echo "make test       scripts/system-packages (PostgreSQL, Chromium), ruff check, ruff format --check, then pytest in TEST_WORKERS=$(TEST_WORKERS) processes (ARGS=... go to pytest)"
	@echo "make lint       ruff check and ruff format --check"
	@echo "make format     ruff format and ruff check --fix"
	@echo "make typecheck  mypy kafka_jobs"
	@echo "make demo       python -m testproject.demo (ARGS=... go to it)"
	@echo "make run        python -m testproject.devserver"
	@echo "make bench      python -m bench"
	@echo "make clean      remove the virtualenvs, caches and build outputs"

# A failed venv (e.g. Debian without python3-venv) is removed, so the next attempt starts afresh.
$(VENV_PY):
	'$(PYTHON_BIN)' -m venv $(VENV) || { rm -rf $(VENV); exit 1; }

$(INSTALL_STAMP): pyproject.toml | $(VENV_PY)
	$(VENV_PY) -m pip install -e '.[dev]'
	touch $@

venv: $(INSTALL_STAMP)

# Debian packages some tests need (PostgreSQL, Chromium); installs them on a fresh machine (as root).
system-packages:
	bash scripts/system-packages

test: lint system-packages
	$(VENV_PY) -m pytest -n $(TEST_WORKERS) --dist worksteal $(ARGS)

lint: venv
	$(VENV_PY) -m ruff check .
	$(VENV_PY) -m ruff format --check .

format: venv
	$(VENV_PY) -m ruff format .
	$(VENV_PY) -m ruff check --fix .

typecheck: venv
	$(VENV_PY) -m mypy kafka_jobs

demo: venv
	$(VENV_PY) -m testproject.demo $(ARGS)

run: venv
	$(VENV_PY) -m testproject.devserver $(ARGS)

bench: venv
	$(VENV_PY) -m bench $(ARGS)

clean:
	rm -rf .venv-*/ build/ dist/ *.egg-info .pytest_cache/ .ruff_cache/ .mypy_cache/
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
