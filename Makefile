# The two commands of the README's quick start, and their parts.
VENV := .venv
STAMP := $(VENV)/.affectflow-installed

.PHONY: setup demo test
setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

demo: setup
	$(VENV)/bin/affectflow demo

test: setup
	$(VENV)/bin/python -m pytest
