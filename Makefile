# The two commands of the README: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev,embedded]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/inbox run --demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest

# ruff on everything; mypy --strict on the standalone WhatsApp library and the send path.
lint: $(STAMP)
	$(VENV)/bin/ruff check app workers tests bench
	$(VENV)/bin/mypy --strict app/whatsapp app/domains/outbox

bench: $(STAMP)
	for b in bench/*.py; do $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache
