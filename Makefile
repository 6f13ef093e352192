# Two commands get you going: `make lab` (learn) and `make test` (check everything).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
INSPECTOR := .tools/node_modules/.bin/mcp-inspector
NBVAL  := $(BIN)/pytest -p no:python -p no:cacheprovider --nbval-current-env -q
export OPENAI_AGENTS_DISABLE_TRACING ?= 1
export PYDEVD_DISABLE_FILE_VALIDATION = 1

.PHONY: install install-dev lab test unit-test notebook-test notebook-test-solutions notebook-test-learner slow-test browser-test lint demo bench learner-copies refresh-notebooks clean

# The oldest Python the pinned packages accept (starlette, ipykernel and filelock need 3.11).
# Checked before .venv is made, so that a too-old python3 is one line, not a failed install.
PYTHON_MIN := 3.11
python_ok = $(shell command -v $(PYTHON) >/dev/null 2>&1 && $(PYTHON) -c 'import sys; print(int(sys.version_info >= (3, 11)))' 2>/dev/null)
python_found = $(or $(shell command -v $(PYTHON) >/dev/null 2>&1 && $(PYTHON) --version 2>&1),not found)

$(STAMP): requirements.txt pyproject.toml
	$(if $(filter 1,$(python_ok)),,$(error The course needs Python $(PYTHON_MIN) or newer, and $(PYTHON) is $(python_found): install a newer Python and run make lab PYTHON=python3.12 (or its path)))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(DEV_STAMP)

install: $(STAMP)  ## create .venv and install the pinned packages a learner needs (lesson_code included)

install-dev: $(DEV_STAMP)  ## add the test, lint and browser tools (requirements-dev.txt)

$(INSPECTOR):  # the official MCP Inspector CLI, an outside client for the end-to-end check
	npm install --silent --no-audit --no-fund --prefix .tools @modelcontextprotocol/inspector@2.12.0

lab: install  ## open the course in JupyterLab (root, as in containers, needs --allow-root)
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

# `make test` runs its independent parts at the same time (a sub-make with -j): most of their time is
# waiting (kernels, servers, a browser, pip), so even on 2 cores they overlap well. Each part's output is
# printed in one piece when it ends (--output-sync). `make test TEST_JOBS=1` runs them one after another.
# Inside each part pytest-xdist spreads the files over workers, so a new file in tests/ (or a new notebook)
# runs in parallel with the rest without touching this Makefile.
TEST_JOBS    ?= $(words $(TEST_PARTS))
# The unit tests mostly wait (servers starting, subprocesses, timeouts): alone on this 2-core machine 4 workers took
# 84 s and 138 s of CPU, 3 workers 121 s and 141 s, 5 workers 81 s.
TEST_WORKERS ?= 4
# The learner copies are not run by nbval here: the fresh-venv test (tests/test_setup_fresh_venv.py) executes
# every one of them in the learner's own venv and asserts no cell raised (stricter than --nbval-lax), that every
# exercise says "not attempted yet" and nothing is solved; `make notebook-test` still runs nbval on both folders.
# On 2 cores the total CPU time is what bounds make test: each notebook run here is one the others need not do.
TEST_PARTS   := lint unit-test slow-test notebook-test-solutions browser-test
# The parts share two cores, so which one finishes last decides the time. The fresh-venv test is a chain (pip, then
# the notebooks) and the unit tests mostly wait on servers and subprocesses; lint, the solution notebooks and the
# browser tests are many processes with work to spare, so they run at a lower priority (BULK): they take what the
# chain leaves and end on both cores, instead of the chain ending alone on one. Alone, a part runs as fast either way.
BULK         := nice -n 5
# Test files that take minutes on their own (a fresh venv and pip) run as a part of their own, so they start
# at once instead of whenever pytest-xdist reaches them in alphabetical order.
SLOW_TESTS   := $(wildcard tests/test_setup_fresh_venv.py)

test: install-dev $(INSPECTOR)  ## everything CI runs, its parts in parallel
	@$(MAKE) --no-print-directory -j $(TEST_JOBS) --output-sync=target $(TEST_PARTS)
	@echo "make test: all checks passed"

lint: install-dev  ## ruff (check and format, code and notebooks), mypy (files listed in pyproject.toml), learner copies
	$(BULK) $(BIN)/ruff check .
	$(BULK) $(BIN)/ruff format --check .
	$(BULK) $(BIN)/mypy
	$(BULK) $(BIN)/python scripts/make_learner_notebooks.py --check

# Tests that run `make` themselves must not inherit this make's jobserver (a child make would warn on stderr).
NO_MAKE_ENV := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL

# The parts that use no nbval do not load its plugin: importing it imports jsonschema, whose IRI format checker
# builds a grammar at import, about 1.5 s of CPU in every pytest process (xdist's controller and each worker).
PYTEST := $(BIN)/pytest -q -p no:cacheprovider -p no:nbval

unit-test: install-dev $(INSPECTOR)
	$(NO_MAKE_ENV) $(PYTEST) -n $(TEST_WORKERS) --dist loadfile tests --ignore=tests/browser \
		$(addprefix --ignore=,$(SLOW_TESTS))

# One slow file runs in the pytest process itself (xdist would add a worker process for nothing); several
# get a worker each.
slow-test: install-dev
	$(if $(SLOW_TESTS),$(NO_MAKE_ENV) $(PYTEST) $(if $(word 2,$(SLOW_TESTS)),-n $(words $(SLOW_TESTS)) --dist loadfile) \
		$(SLOW_TESTS))

notebook-test: notebook-test-solutions notebook-test-learner  ## every notebook, solutions against their stored outputs

# Stored outputs assume the offline model, so OPENAI_API_KEY is unset here.
notebook-test-solutions: install-dev
	env -u OPENAI_API_KEY $(BULK) $(NBVAL) -n 2 --dist loadfile --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg solutions/

notebook-test-learner: install-dev
	env -u OPENAI_API_KEY $(NBVAL) -n 2 --dist loadfile --nbval-lax notebooks/

# One JupyterLab and one Chromium per worker (session fixtures); tests are spread one by one.
browser-test: install-dev
	$(BULK) $(PYTEST) -n 2 --dist load tests/browser

learner-copies: install  ## regenerate notebooks/ from solutions/
	$(BIN)/python scripts/make_learner_notebooks.py

refresh-notebooks: install-dev  ## re-execute solutions/ in place (stored outputs), then regenerate notebooks/
	env -u OPENAI_API_KEY $(BIN)/jupyter nbconvert --log-level WARN --to notebook --execute --inplace --ExecutePreprocessor.record_timing=False solutions/*.ipynb
	$(BIN)/python scripts/make_learner_notebooks.py

demo: install  ## the agent against a fresh secured server, offline unless OPENAI_API_KEY is set
	$(BIN)/python -m lesson_code demo

bench: install-dev  ## print the benchmark tables and write benchmarks/results.md
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .tools .pytest_cache .ruff_cache screenshots .course-data
