# Two commands for a newcomer: `make run` and `make test`. Both set up what they need first.
PY := .venv/bin/python
PIP := .venv/bin/pip
STAMP := .venv/.installed

.PHONY: run test setup system venv lint format bench prompts clean messages

run: setup
	$(PY) -m callcenter.cli init
	CALLCENTER_CONFIG=$${CALLCENTER_CONFIG:-var/callcenter.toml} PY=$(PY) scripts/kannel.sh start || echo "SMS gateway not started (above); the hotline runs without it"
	$(PY) -m callcenter.cli run

test: setup
	CALLCENTER_NEED_POSTGRES=1 scripts/setup-system.sh
	$(PY) -m pytest -n 2 --dist loadgroup

setup: system venv

system:
	scripts/setup-system.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)

lint: venv
	.venv/bin/ruff check callcenter tests bench
	.venv/bin/mypy callcenter

format: venv
	.venv/bin/ruff format callcenter tests bench
	.venv/bin/ruff check --fix callcenter tests bench

bench: setup
	$(PY) bench/answer_latency.py
	$(PY) bench/routing.py
	$(PY) bench/ami_ingest.py
	$(PY) bench/reports.py
	$(PY) bench/transcription.py
	$(PY) bench/reports.py
	$(PY) bench/transcription.py
	$(PY) bench/peaks.py

# The pages' words: extract them from the templates and update the Chinese catalogue (then translate
# the new entries in callcenter/pages/locale/zh_CN/LC_MESSAGES/messages.po; it is compiled at start-up).
messages: venv
	cd callcenter/pages && ../../.venv/bin/pybabel extract -F babel.cfg -k N_ -k ngettext:1,2 --no-location -o /tmp/callcenter-pages.pot . \
	  && ../../.venv/bin/pybabel update -i /tmp/callcenter-pages.pot -d locale -l zh_CN --no-fuzzy-matching

clean:
	scripts/asterisk-root.sh stop || true
	PY=$(PY) scripts/kannel.sh stop || true
	rm -rf var .pytest_cache
