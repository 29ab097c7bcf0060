# minigrok: see README.md. `make grok` trains modular addition to grokking, `make tour` runs
# tour.ipynb, `make test` runs the tests, `make bench` measures speed. Each first makes .venv.
PY := .venv/bin/python

.PHONY: grok tour test bench bench-peer interop gpu-check

# `make grok` is a demonstration: it trains again on each call, into its own runs/grok.npz.
grok: .venv/ready
	$(PY) minigrok.py --task add --out runs/grok.npz --overwrite

test: .venv/ready .venv/cupy .venv/tour
	$(PY) -m pytest -q test_minigrok.py test_runs.py test_analysis.py test_study.py test_interop.py test_peer.py test_gpu.py \
	  test_tour.py

bench: .venv/ready
	$(PY) bench.py time

# ---------------------------------------------------------------- the tour
# tour.ipynb walks through the zoo's models with analysis.py's helpers, committed with its
# outputs so that GitHub shows its figures. After a change to analysis.py, minigrok.py or
# zoo/, `make tour` runs it top to bottom (about 30 s) and writes the outputs back: commit the
# notebook. test_tour.py (in `make test`) fails while they are not the ones the code gives.
tour: .venv/ready .venv/tour
	$(PY) tour.py run

# nbclient, nbformat and ipykernel; .venv's python registered as the notebook's kernel 'python3'
.venv/tour: requirements-tour.txt .venv/ready
	$(PY) -m pip install -q -r requirements-tour.txt
	$(PY) -m ipykernel install --sys-prefix > /dev/null
	touch $@

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
	$(PY) minigrok.py --task add --stop-at 0.99 --quiet --finish --out $@

.venv/ready: requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q -r requirements.txt
	touch $@

# CuPy is optional at run time; the tests check the code against its namespace. CUDA picks
# the wheel for the driver: 12 (the default) or 13 (`nvidia-smi` shows the driver's version).
CUDA ?= 12
.venv/cupy: requirements-cuda$(CUDA).txt .venv/ready
	$(PY) -m pip install -q -r requirements-cuda$(CUDA).txt
	touch $@

# ---------------------------------------------------------------- on a GPU
# `make gpu-check` on a machine with a CUDA GPU, with the system's Python and its numpy,
# cupy, matplotlib, pytest (and torch for the peer): nothing is installed. The device tests
# (test_gpu.py: CuPy against NumPy, checkpoints and resume across devices), then addition
# on the GPU to 99% test accuracy, then minigrok on the GPU against PyTorch on CUDA, then
# the Nanda preset's 25,000 epochs, timed (stopped and saved at 200 s). Each step prints what
# BENCH.md records; about 6 minutes in all is the aim.
GPU_PY ?= python3
gpu-check:
	$(GPU_PY) -c "import cupy, sys; ok = cupy.is_available(); print('cupy', cupy.__version__, 'device:', \
	  cupy.cuda.runtime.getDeviceProperties(0)['name'].decode() if ok else 'none'); sys.exit(0 if ok else 1)"
	$(GPU_PY) -m pytest -q -m gpu test_gpu.py
	$(GPU_PY) minigrok.py --task add --device gpu --stop-at 0.99 --quiet --overwrite --out runs/gpu_add.npz
	$(GPU_PY) bench.py time --device gpu --peer auto --epochs 50 --warmup 5
	timeout 200 $(GPU_PY) minigrok.py --preset nanda --device gpu --quiet --overwrite --out runs/gpu_nanda.npz \
	  || test $$? -eq 124      # stopped at 200 s (saved, the epoch reached printed): not a failure

# ---------------------------------------------------------------- the model zoo
# Seed 0 of the study's runs, to look inside without training: weights, config and history,
# no AdamW state (checkpoint.slim); the Nanda run keeps its snapshots every 1,000 epochs, for
# its progress measures. zoo/SHA256SUMS lists each file's sum (test_runs.py checks them).
# Rebuild only when the runs change: every rebuild adds its bytes to the repository's history.
ZOO_RUNS := add add_nanda max median sort
ZOO := $(foreach r,$(ZOO_RUNS),zoo/$(r).npz)
.PHONY: zoo
zoo: zoo/SHA256SUMS
zoo/%.npz: runs/%_s0.npz | .venv/ready
	$(PY) -c 'import sys, checkpoint; checkpoint.slim(sys.argv[1], sys.argv[2], int(sys.argv[3]) or None)' \
	  $< $@ $(if $(filter add_nanda,$*),1000,0)
zoo/SHA256SUMS: $(ZOO)
	$(PY) -c 'import hashlib, os, sys; [print(hashlib.sha256(open(p, "rb").read()).hexdigest(), \
	  os.path.basename(p), sep="  ") for p in sys.argv[1:]]' $(ZOO) > $@

# ---------------------------------------------------------------- make figures
# Checkpoints are the targets: `make figures` trains only what is missing or older than the
# code, and `make -j2 figures` trains independent runs side by side. Each run is one
# process with its own seed and output file, so the same rules map onto a job array.
# The cheap families (default addition, max, max_augment, median) are trained on the init
# seeds in SEEDS and, on a second data split (DATA_SEED2), on SPLIT2_SEEDS; the long ones (the
# Nanda runs, sort's three) on FEW_SEEDS. The study (python -m study) judges each claim on
# every seed its runs have, and analyses each run's untrained initial weights too
# (figures/untrained/): a rule that passes there is vacuous.
CODE := minigrok.py fast.py tasks.py config.py arrays.py checkpoint.py
STUDY := $(wildcard study/*.py) analysis.py $(CODE)
# A run that is interrupted (Ctrl-C, kill, a reboot) is never taken for a finished one:
# `minigrok.py --finish` trains into runs/NAME.unfinished.npz, saving every SAVE_EVERY
# epochs and when stopped, and renames it onto the target runs/NAME.npz only once finished.
# The next `make` continues it where it stopped (bit-identical to an uninterrupted run).
# When the code has changed, --finish trains a run again (a checkpoint records the digest of
# the code that trained it), and the old checkpoint stays until the new one is finished.
# `exec` hands make's signals (SIGTERM, and SIGINT from Ctrl-C) straight to minigrok.
# One BLAS thread per run: `make -j2` then keeps both cores busy with two runs, where two
# runs of two threads each on two cores would spend their time waiting on each other.
SAVE_EVERY := 1000
TRAIN := exec env OPENBLAS_NUM_THREADS=1 $(PY) minigrok.py --quiet --device cpu --save-every $(SAVE_EVERY) --finish
SEEDS := 0 1 2 3 4
FEW_SEEDS := 0 1 2
SPLIT2_SEEDS := 0 1 2
DATA_SEED2 := 599
# Nanda et al.'s setting, trained to completion: their clean-up ends near epoch 13k and the
# study's grokking near 15k, so 20k epochs see the end of the study's window (18,750).
NANDA_EPOCHS := 20000
# Sort's epochs; median keeps its weights at this epoch too, to compare the two at equal epochs.
SORT_EPOCHS := 150
SORT_SMALL_EPOCHS = $(shell echo $$(( $(SORT_EPOCHS) * 10 )))
WIDTHS := 16 32 64 128 256 512
WIDTH_SEEDS := $(FEW_SEEDS)
# The budget (README, "The study"), on this 2-core machine: the 77 runs recorded 17,408
# run-seconds trained beside other work (at most 145 minutes under `make -j2 runs`, about 120
# on a quiet machine by the 60 older runs' quiet times of 2026-12-05). Recorded per run, beside
# other work: add_nanda 1,322-1,469 s, add_nanda5k 105-184, add 93-358, max 36-162, median
# 106-478, the sort family 262-436. From nothing in a clean clone beside other work, 58 of the 77
# runs were trained after 98 minutes (13,025 of the recorded run-seconds; ~140 minutes in all by
# the rest's recorded times). With every checkpoint present, re-running
# every analysis and the report (`make -j2 figures` after a change to study/) took 171 s.
# Fewer runs: e.g. `make -j2 figures WIDTHS="16 32 128 512"`.
seeded = $(foreach s,$(2),runs/$(1)_s$(s).npz)
NANDA_RUNS := $(call seeded,add_nanda,$(FEW_SEEDS))
NANDA5K_RUNS := $(call seeded,add_nanda5k,$(FEW_SEEDS))
ADD_RUNS := $(call seeded,add,$(SEEDS)) $(call seeded,add_split2,$(SPLIT2_SEEDS))
MAX_RUNS := $(call seeded,max,$(SEEDS)) $(call seeded,max_split2,$(SPLIT2_SEEDS))
MAX_AUGMENT_RUNS := $(call seeded,max_augment,$(SEEDS)) $(call seeded,max_augment_split2,$(SPLIT2_SEEDS))
MEDIAN_RUNS := $(call seeded,median,$(SEEDS)) $(call seeded,median_split2,$(SPLIT2_SEEDS))
SORT_RUNS := $(call seeded,sort,$(FEW_SEEDS))
SORT_SMALL_RUNS := $(call seeded,sort_small,$(FEW_SEEDS))
SORT_1HEAD_RUNS := $(call seeded,sort_1head,$(FEW_SEEDS))
# width 128 is the default width: the sweep reads those runs (add_sN, median_sN), trained once
WIDTH_RUNS := $(foreach t,add median,$(foreach d,$(WIDTHS),$(foreach s,$(WIDTH_SEEDS),\
                $(if $(filter 128,$(d)),runs/$(t)_s$(s).npz,runs/width/$(t)_d$(d)_s$(s).npz))))
RUNS := $(NANDA_RUNS) $(NANDA5K_RUNS) $(ADD_RUNS) $(MAX_RUNS) $(MAX_AUGMENT_RUNS) $(MEDIAN_RUNS) $(SORT_RUNS) \
        $(SORT_SMALL_RUNS) $(SORT_1HEAD_RUNS) $(filter runs/width/%,$(WIDTH_RUNS))
findings_of = $(patsubst runs/%.npz,figures/%/findings.json,$(1))
untrained_of = $(patsubst runs/%.npz,figures/untrained/%/findings.json,$(filter-out %split2_s0.npz \
                 %split2_s1.npz %split2_s2.npz %split2_s3.npz %split2_s4.npz,$(1)))
ADD_FINDINGS := $(call findings_of,$(NANDA_RUNS) $(NANDA5K_RUNS) $(ADD_RUNS))
MAX_FINDINGS := $(call findings_of,$(MAX_RUNS) $(MAX_AUGMENT_RUNS))
MEDIAN_FINDINGS := $(call findings_of,$(MEDIAN_RUNS))
SORT_FINDINGS := $(call findings_of,$(SORT_RUNS) $(SORT_SMALL_RUNS) $(SORT_1HEAD_RUNS))
ADD_UNTRAINED := $(call untrained_of,$(NANDA_RUNS) $(NANDA5K_RUNS) $(ADD_RUNS))
MAX_UNTRAINED := $(call untrained_of,$(MAX_RUNS) $(MAX_AUGMENT_RUNS))
MEDIAN_UNTRAINED := $(call untrained_of,$(MEDIAN_RUNS))
SORT_UNTRAINED := $(call untrained_of,$(SORT_RUNS) $(SORT_SMALL_RUNS) $(SORT_1HEAD_RUNS))
# the longest analyses first (sort's), so that `make -j2` does not end on one of them alone
FINDINGS := $(SORT_FINDINGS) $(ADD_FINDINGS) $(MEDIAN_FINDINGS) $(MAX_FINDINGS) figures/width/findings.json \
            $(SORT_UNTRAINED) $(ADD_UNTRAINED) $(MEDIAN_UNTRAINED) $(MAX_UNTRAINED)

.PHONY: figures runs list-runs
figures: runs figures/REPORT.md   # every run first, in RUNS' order: the longest trainings start first
runs: $(RUNS)
# A checkpoint only ever appears finished, so make must not delete one when interrupted.
.PRECIOUS: $(RUNS)

# The training commands, one per line, for other machines sharing runs/ (a job array, GNU
# parallel: see README). Each is safe to repeat: it finishes an unfinished run and does
# nothing to a finished one. Then `make figures` here analyses.
list-runs:
	@$(MAKE) -s -n -B runs | sed -n 's/^exec //p'

$(NANDA_RUNS): runs/add_nanda_s%.npz: $(CODE) | .venv/ready
	$(TRAIN) --preset nanda --epochs $(NANDA_EPOCHS) --snapshot-every 250 --seed $* --out $@
# claim 1 on the study's 5,000 training pairs, stopped where grokking ends (test accuracy 99%)
$(NANDA5K_RUNS): runs/add_nanda5k_s%.npz: $(CODE) | .venv/ready
	$(TRAIN) --preset nanda --n-train 5000 --epochs $(NANDA_EPOCHS) --stop-at 0.99 --snapshot-every 0 --seed $* --out $@
split2 = $(if $(findstring split2,$(1)),--data-seed $(DATA_SEED2) )
$(ADD_RUNS): runs/add%.npz: $(CODE) | .venv/ready
	$(TRAIN) --task add $(call split2,$*)--seed $(lastword $(subst _s, ,$*)) --out $@
$(MAX_RUNS): runs/max%.npz: $(CODE) | .venv/ready
	$(TRAIN) --task max $(call split2,$*)--seed $(lastword $(subst _s, ,$*)) --out $@
$(MAX_AUGMENT_RUNS): runs/max_augment%.npz: $(CODE) | .venv/ready
	$(TRAIN) --task max --augment $(call split2,$*)--seed $(lastword $(subst _s, ,$*)) --out $@
$(MEDIAN_RUNS): runs/median%.npz: $(CODE) | .venv/ready
	$(TRAIN) --task median $(call split2,$*)--snapshot-every $(SORT_EPOCHS) --seed $(lastword $(subst _s, ,$*)) --out $@
$(SORT_RUNS): runs/sort_s%.npz: $(CODE) | .venv/ready
	$(TRAIN) --task sort --epochs $(SORT_EPOCHS) --seed $* --out $@
# the study's sort 'at the original data size': a tenth of the training set, the same optimiser steps
$(SORT_SMALL_RUNS): runs/sort_small_s%.npz: $(CODE) | .venv/ready
	$(TRAIN) --task sort --n-train 2000 --epochs $(SORT_SMALL_EPOCHS) --eval-every 50 --seed $* --out $@
$(SORT_1HEAD_RUNS): runs/sort_1head_s%.npz: $(CODE) | .venv/ready
	$(TRAIN) --task sort --n-heads 1 --epochs $(SORT_EPOCHS) --seed $* --out $@
# width sweep: d_model varies (4 heads, d_mlp 512 kept); each task's default epochs for every width
runs/width/add_d%.npz: $(CODE) | .venv/ready
	$(TRAIN) --task add --snapshot-every 0 --d-model $(word 1,$(subst _s, ,$*)) --seed $(word 2,$(subst _s, ,$*)) --out $@
runs/width/median_d%.npz: $(CODE) | .venv/ready
	$(TRAIN) --task median --d-model $(word 1,$(subst _s, ,$*)) --seed $(word 2,$(subst _s, ,$*)) --out $@

# Figures are drawn for the seeds in FIGURE_SEEDS (seed 0's are the ones kept in git); the
# other seeds' runs give their findings.json only, which is all the report reads. Drawing
# is about half of a re-render: `make figures FIGURE_SEEDS="0 1 2"` draws every seed's.
FIGURE_SEEDS := 0
figure_flag = $(if $(or $(findstring split2,$(1)),$(filter-out $(FIGURE_SEEDS),$(lastword $(subst _s, ,$(1))))),\
                --findings-only)
# the analyses beyond the study's claims (mechanisms, circuits, progress measures) on FEW_SEEDS of
# the first split only: the extra seeds and the second split are there for the claims' statistics;
# and none for sort_small and sort_1head, which no section beyond the claims reads
claims_flag = $(if $(or $(findstring split2,$(1)),$(filter sort_small_% sort_1head_%,$(1)),\
                $(filter-out $(FEW_SEEDS),$(lastword $(subst _s, ,$(1))))),--claims-only)
# one BLAS thread per analysis too, for the same reason as TRAIN's
STUDY_PY := OPENBLAS_NUM_THREADS=1 $(PY) -m study
$(ADD_FINDINGS): figures/%/findings.json: runs/%.npz $(STUDY)
	$(STUDY_PY) add $< figures/$* $(call figure_flag,$*) $(call claims_flag,$*)
$(MAX_FINDINGS): figures/%/findings.json: runs/%.npz $(STUDY)
	$(STUDY_PY) max $< figures/$* $(call figure_flag,$*) $(call claims_flag,$*)
$(MEDIAN_FINDINGS): figures/%/findings.json: runs/%.npz $(STUDY)
	$(STUDY_PY) median $< figures/$* $(call figure_flag,$*) $(call claims_flag,$*)
$(SORT_FINDINGS): figures/%/findings.json: runs/%.npz $(STUDY)
	$(STUDY_PY) sort $< figures/$* $(call figure_flag,$*) $(call claims_flag,$*)
# the same measures on each run's untrained initial weights (no figures)
$(ADD_UNTRAINED): figures/untrained/%/findings.json: runs/%.npz $(STUDY)
	$(STUDY_PY) add $< figures/untrained/$* --untrained --findings-only
$(MAX_UNTRAINED): figures/untrained/%/findings.json: runs/%.npz $(STUDY)
	$(STUDY_PY) max $< figures/untrained/$* --untrained --findings-only
$(MEDIAN_UNTRAINED): figures/untrained/%/findings.json: runs/%.npz $(STUDY)
	$(STUDY_PY) median $< figures/untrained/$* --untrained --findings-only
$(SORT_UNTRAINED): figures/untrained/%/findings.json: runs/%.npz $(STUDY)
	$(STUDY_PY) sort $< figures/untrained/$* --untrained --findings-only
figures/width/findings.json: $(WIDTH_RUNS) $(STUDY)
	$(STUDY_PY) width $(WIDTH_RUNS)
figures/REPORT.md: $(FINDINGS) $(STUDY)
	$(STUDY_PY) report
