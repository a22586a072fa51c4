# The two commands a newcomer runs: `make demo` and `make test`. Each makes its own virtual
# environment from the pinned, hashed requirements.lock the first time.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint lock browser postgres

demo: $(VENV)/.installed
	$(BIN)/caselens demo

test: $(VENV)/.installed browser postgres
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

# Re-pin after changing dependencies in pyproject.toml: the versions already in requirements.lock are
# kept unless pyproject.toml rules them out (add --upgrade-package NAME to move one on purpose).
lock: $(VENV)/.installed
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --all-extras --generate-hashes --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock" -o requirements.lock

# Everything `make demo` and `make test` use: the runtime, the `server` extra (MLflow's UI) and the
# `test` and `dev` extras, every file checked against its hash. caselens itself: editable, no deps.
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Headless Chromium for the browser tests (tests/serving/test_browser.py), from Debian's packages;
# skipped when it is already there. Needs root (CI and the dev machines run as root). Where
# CASELENS_REQUIRE_BROWSER is set (CI), a failed install fails here instead of skipping the tests.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
		|| { echo "could not install chromium"; [ "$${CASELENS_REQUIRE_BROWSER:-0}" = "0" ]; }; \
	fi

# PostgreSQL for the shared-tracking-server test (tests/deployment/test_mlflow_server.py: MLflow on
# PostgreSQL), from Debian's package; skipped when a server binary is already there. Where
# CASELENS_REQUIRE_POSTGRES is set (CI), a failed install fails here instead of skipping the test.
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) \
		|| { echo "could not install postgresql"; [ "$${CASELENS_REQUIRE_POSTGRES:-0}" = "0" ]; }; \
	fi
