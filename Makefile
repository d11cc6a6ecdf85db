# The two commands of the README's quick start, and their parts.
VENV := .venv
STAMP := $(VENV)/.affectflow-installed

.PHONY: setup demo test lint test-unit test-models test-integration
setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

demo: setup
	$(VENV)/bin/affectflow demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# pytest exits 5 when it collected no test: a suite that tests nothing is a failure here.
PYTEST = $(VENV)/bin/python -m pytest $(1); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Everything (what CI runs): lint and types, then every tier.
test: lint
	$(call PYTEST)

# One tier each (README "Tests"); no lint, for the inner loop.
test-unit: setup
	$(call PYTEST,-m unit -n auto)

test-models: setup
	$(call PYTEST,-m models)

test-integration: setup
	$(call PYTEST,-m integration)
