# creditguard: `make demo` and `make test` are all a fresh machine needs.
.DEFAULT_GOAL := help
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: help setup browser demo serve test test-fast lint format bench clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen
	touch $@

setup: $(VENV)/.synced ## Install uv and the locked environment into .venv

browser: ## Debian's chromium for the page tests (apt; sudo when not root)
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@chromium --version

DEMO := data/demo
demo: setup ## Run the main job end to end on the embedded default data: what a user runs on theirs
	$(BIN)/creditguard generate --out $(DEMO)/ledger
	$(BIN)/creditguard validate $(DEMO)/ledger --limit 0
	$(BIN)/creditguard profile $(DEMO)/ledger
	$(BIN)/creditguard retrain --ledger $(DEMO)/ledger --work $(DEMO)/retrain || test $$? -eq 3
	@# last month's run (the generated ledger is extracted on 2025-12-31), then tonight's, which
	@# continues it; exit 3 (retraining recommended) is an answer, not a failure; --force: a
	@# second `make demo` scores the same days again
	$(BIN)/creditguard nightly --ledger $(DEMO)/ledger --runs $(DEMO)/runs --as-of 2025-11-30 --force || test $$? -eq 3
	$(BIN)/creditguard nightly --ledger $(DEMO)/ledger --runs $(DEMO)/runs --force || test $$? -eq 3

serve: setup ## Serve the champions over HTTP on port 3000 (creates a development key)
	@mkdir -p models/keys
	@test -f models/keys/dev.key || (umask 077; $(BIN)/python -c "import secrets; print('admin:' + secrets.token_urlsafe(24))" > models/keys/dev.key)
	@echo "development API key (role admin): $$(cut -d: -f2 models/keys/dev.key)"
	@echo "officer page: http://localhost:3000/ui/ (sign in with the key above)"
	@echo "try: curl -X POST localhost:3000/score -H 'authorization: Bearer $$(cut -d: -f2 models/keys/dev.key)' -H 'content-type: application/json' -d '{\"client_id\": \"C0000042\", \"requested_limit\": 50000}'"
	CREDITGUARD_API_KEYS_FILE=models/keys/dev.key $(BIN)/creditguard serve --port 3000 --workers 2

lint: setup ## ruff (lint and format check), mypy and the import-layer contract
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: setup ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint browser ## Lint, then the whole test suite (browser tests included)
	CREDITGUARD_REQUIRE_BROWSER=1 $(BIN)/pytest

test-fast: setup ## The unit tests only (no trained model, no server, no Spark; about a minute)
	$(BIN)/pytest tests/unit

bench: setup ## Every benchmark (minutes; needs ../shared/data for the real-data ones)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean: ## Remove the environment and generated data (keeps the MLflow store)
	rm -rf .tools $(VENV) data/demo
