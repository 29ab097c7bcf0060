"""The reproduction study, from checkpoints to figures/REPORT.md.

    python -m study add runs/add_nanda_s0.npz     # figures/add_nanda_s0/*.png and findings.json
    python -m study max runs/max_s0.npz           # likewise median, sort (any run of those tasks)
    python -m study width runs/width/*.npz        # the width sweep: figures/width/
    python -m study report                        # figures/findings.json and figures/REPORT.md

The study under test is Kumar, Srinivas and Garg, "Circuit engineering": one-layer
transformers grokking modular addition, and max, median and sort of five numbers. Read it in
this order:

    claims.py       the rule policy and the 34 claims, one document: the study's words, the
                    quantity measured, the runs, a rule per part
    addition.py     the per-run drivers: each reads one checkpoint, measures with analysis.py's
    maximum.py      helpers, draws (plots.py) and writes figures/<run>/findings.json, measured
    median_sort.py  values only
    width.py
    common.py       what the drivers share
    plots.py        figures: they only draw what they are given
    report.py       every claim judged on every seed, REPORT.md
    __main__.py     the command line

Nothing judged is typed in: a part that cannot be tested says why, from the run.
"""
