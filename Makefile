# The two commands a newcomer runs: `make demo` and `make test`. Each makes its own virtual
# environment from the pinned requirements.lock the first time.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint lock browser

demo: $(VENV)/.installed
	$(BIN)/caselens demo

test: $(VENV)/.installed browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Re-pin after changing dependencies in pyproject.toml.
lock: $(VENV)/.installed
	$(BIN)/pip freeze --exclude-editable | grep -v '^caselens' > requirements.lock

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Headless Chromium for the browser tests (tests/serving/test_browser.py), from Debian's packages;
# skipped when it is already there. Needs root (CI and the dev machines run as root).
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
		|| echo "could not install chromium: the browser test will be skipped"; \
	fi
