# minigrok: see README.md. `make grok` trains modular addition to grokking,
# `make test` runs the tests, `make bench` measures speed. Each first makes .venv.
PY := .venv/bin/python

.PHONY: grok test bench

grok: .venv/ready
	$(PY) minigrok.py --task add

test: .venv/ready .venv/cupy
	$(PY) -m pytest -q test_minigrok.py

bench: .venv/ready
	$(PY) bench.py time

.venv/ready: requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q -r requirements.txt
	touch $@

# CuPy is optional at run time; the tests check the code against its namespace.
.venv/cupy: requirements-gpu.txt .venv/ready
	$(PY) -m pip install -q -r requirements-gpu.txt
	touch $@
