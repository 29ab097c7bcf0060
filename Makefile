# minigrok: see README.md. `make grok` trains modular addition to grokking,
# `make test` runs the tests, `make bench` measures speed. Each first makes .venv.
PY := .venv/bin/python

.PHONY: grok test bench bench-peer interop

# `make grok` is a demonstration: it trains again on each call, into its own runs/grok.npz.
grok: .venv/ready
	$(PY) minigrok.py --task add --out runs/grok.npz --overwrite

test: .venv/ready .venv/cupy
	$(PY) -m pytest -q test_minigrok.py test_interop.py test_peer.py

bench: .venv/ready
	$(PY) bench.py time

# ---------------------------------------------------------------- optional: PyTorch peer
bench-peer: .venv/ready .venv/torch
	$(PY) bench.py time --peer on

# PyTorch is optional: only the peer (peer_torch.py, test_peer.py) uses it.
.venv/torch: requirements-peer.txt .venv/ready
	$(PY) -m pip install -q -r requirements-peer.txt
	touch $@

# ---------------------------------------------------------------- optional: TransformerLens
# A large install (torch and transformer_lens, about 1.7 GB) in a virtualenv of its own, so
# not part of `make test`. `make interop TL_VERSION=3.9.0` checks 3.x in another one;
# INTEROP_CKPT=runs/add.npz checks that checkpoint instead of a short run trained here.
TL_VERSION ?= 4.3.0
TL_VENV := .venv-tl$(TL_VERSION)
INTEROP_CKPT ?= runs/interop_add.npz
interop: $(TL_VENV)/ready | $(filter runs/interop_add.npz,$(INTEROP_CKPT))
	$(TL_VENV)/bin/python interop.py check $(INTEROP_CKPT)
	$(TL_VENV)/bin/python -m pytest -q test_interop.py
$(TL_VENV)/ready: requirements.txt
	test -x $(TL_VENV)/bin/python || python3 -m venv $(TL_VENV)
	$(TL_VENV)/bin/python -m pip install -q -r requirements.txt torch==2.13.0 transformer_lens==$(TL_VERSION)
	touch $@
runs/interop_add.npz: | .venv/ready
	$(PY) minigrok.py --task add --stop-at 0.99 --quiet --out $@

.venv/ready: requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q -r requirements.txt
	touch $@

# CuPy is optional at run time; the tests check the code against its namespace.
.venv/cupy: requirements-gpu.txt .venv/ready
	$(PY) -m pip install -q -r requirements-gpu.txt
	touch $@

# ---------------------------------------------------------------- make figures
# Checkpoints are the targets: `make figures` trains only what is missing or older than the
# code, and `make -j2 figures` trains independent runs side by side. Each run is one
# process with its own seed and output file, so the same rules map onto a job array.
CODE := minigrok.py tasks.py
# One BLAS thread per run: `make -j2` then keeps both cores busy with two runs, where two
# runs of two threads each on two cores would spend their time waiting on each other.
TRAIN := OPENBLAS_NUM_THREADS=1 $(PY) minigrok.py --quiet --device cpu --overwrite
WIDTHS := 16 32 64 128 256 512
SEEDS := 0 1
WIDTH_RUNS := $(foreach t,add median,$(foreach d,$(WIDTHS),$(foreach s,$(SEEDS),runs/width/$(t)_d$(d)_s$(s).npz)))
RUNS := runs/add.npz runs/add_nanda.npz runs/max.npz runs/max_augment.npz runs/median.npz \
        runs/sort.npz runs/sort_1head.npz $(WIDTH_RUNS)
FINDINGS := figures/add/findings.json figures/add_nanda/findings.json figures/max/findings.json \
            figures/median/findings.json figures/sort/findings.json figures/sort_1head/findings.json \
            figures/width/findings.json

.PHONY: figures runs
figures: figures/REPORT.md
runs: $(RUNS)

runs/add.npz: $(CODE) | .venv/ready
	$(TRAIN) --task add --out $@
runs/add_nanda.npz: $(CODE) | .venv/ready
	$(TRAIN) --preset nanda --stop-at 0.99 --out $@
runs/max.npz: $(CODE) | .venv/ready
	$(TRAIN) --task max --out $@
runs/max_augment.npz: $(CODE) | .venv/ready
	$(TRAIN) --task max --augment --out $@
runs/median.npz: $(CODE) | .venv/ready
	$(TRAIN) --task median --out $@
runs/sort.npz: $(CODE) | .venv/ready
	$(TRAIN) --task sort --out $@
runs/sort_1head.npz: $(CODE) | .venv/ready
	$(TRAIN) --task sort --n-heads 1 --out $@
# width sweep: d_model varies (4 heads, d_mlp 512 kept), two init seeds; shorter runs than the defaults
runs/width/add_d%.npz: $(CODE) | .venv/ready
	$(TRAIN) --task add --epochs 1000 --snapshot-every 0 --d-model $(word 1,$(subst _s, ,$*)) --seed $(word 2,$(subst _s, ,$*)) --out $@
runs/width/median_d%.npz: $(CODE) | .venv/ready
	$(TRAIN) --task median --epochs 100 --d-model $(word 1,$(subst _s, ,$*)) --seed $(word 2,$(subst _s, ,$*)) --out $@

figures/add/findings.json: runs/add.npz analysis.py
	$(PY) analysis.py add runs/add.npz
	cp runs/add.png figures/add_default_curve.png
figures/add_nanda/findings.json: runs/add_nanda.npz analysis.py
	$(PY) analysis.py add runs/add_nanda.npz
figures/max/findings.json: runs/max.npz runs/max_augment.npz analysis.py
	$(PY) analysis.py max runs/max.npz runs/max_augment.npz
figures/median/findings.json: runs/median.npz runs/sort.npz analysis.py
	$(PY) analysis.py median runs/median.npz runs/sort.npz
figures/sort/findings.json: runs/sort.npz runs/median.npz analysis.py
	$(PY) analysis.py sort runs/sort.npz runs/median.npz
figures/sort_1head/findings.json: runs/sort_1head.npz analysis.py
	$(PY) analysis.py sort runs/sort_1head.npz
figures/width/findings.json: $(WIDTH_RUNS) analysis.py
	$(PY) analysis.py width $(WIDTH_RUNS)
figures/REPORT.md: $(FINDINGS) analysis.py
	$(PY) analysis.py report
