# The two commands: `make demo` runs the platform, `make test` runs every test.
# Both install what they need first (see devenv/setup.sh).

PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)

.PHONY: setup demo test test-unit test-integration test-browser test-jupyterhub5 lint cluster cluster-stop cluster-status cluster-reset bench mutation clean

setup:
	@bash devenv/setup.sh

demo: setup
	$(PY) -m devenv.demo

test: setup lint
	PATH=$(CURDIR)/.venv/bin:$$PATH .venv/bin/jlpm test
	$(PY) -m pytest --durations=30

test-unit: setup
	$(PY) -m pytest -m unit

test-integration: setup
	$(PY) -m pytest -m integration

test-browser: setup
	$(PY) -m pytest -m browser

# the hub-side tests again with JupyterHub 5.5, where spawn refusals take another path
test-jupyterhub5: setup
	@bash devenv/setup_jupyterhub5.sh
	.venv-jh5/bin/python -c 'import jupyterhub; print("JupyterHub", jupyterhub.__version__)'
	.venv-jh5/bin/python -m pytest tests/unit tests/integration/test_team_spawner.py

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/lint-imports
	PATH=$(CURDIR)/.venv/bin:$$PATH .venv/bin/jlpm lint:check

cluster: setup
	$(PY) -m devenv.cluster up

cluster-stop:
	@if [ -x $(PY) ]; then $(PY) -m devenv.cluster down; fi

cluster-status:
	$(PY) -m devenv.cluster status

cluster-reset: cluster-stop
	rm -rf .local/cluster .local/demo

# Mutation testing of the policy (hub_ext/policy), not part of `make test`: mutmut mutates it in
# mutants/ and runs tests/unit/policy against each mutant, then the score per module is printed.
# Results are kept in mutants/, so a second run checks only what changed; MUTANTS narrows the run
# to some mutants, e.g. make mutation MUTANTS='hub_ext.policy.admission*'.
MUTANTS ?=
mutation: setup
	MLTEAMS_PROPERTY_SCALE=0.1 .venv/bin/mutmut run --max-children 2 $(MUTANTS)
	$(PY) -m devenv.mutation_score

clean: cluster-stop
	rm -rf .local .venv .venv-jh5 test-results
