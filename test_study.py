"""Tests of the study (the study/ package): the rule policy with planted values just inside and just
outside each kind of rule, k-of-n aggregation, that no verdict is typed into study/, a
whole mini study on tiny runs whose REPORT.md rows must all come from the claims table, and
that the study refuses what it must not analyse (an unfinished run, another task's)."""
import dataclasses
import glob
import io
import json
import os
import re
import shutil
import subprocess
import tokenize

import numpy as np
import pytest

import analysis
import checkpoint
import minigrok as mg
import study.__main__ as cli
from study import claims, report, width
from study.claims import Rule


# ---------------------------------------------------------------- the rule policy: planted values just inside and outside
RULES = [  # rule, just inside, just outside, chance level
    (Rule("about", 10), 12.49, 12.51, None), (Rule("about", 10), 7.51, 7.49, None),
    (Rule("about_points", 0.85), 0.899, 0.901, None), (Rule("about_points", 0.85), 0.801, 0.799, None),
    (Rule("order_of", 1e-5), 3.16e-5, 3.17e-5, None),
    (Rule("range", 0.2, 0.3), 0.3, 0.31, None), (Rule("range", 0.2, 0.3), 0.2, 0.19, None),
    (Rule("few", 5), 6, 7, None), (Rule("few", 5), 1, 0, None),
    (Rule("ratio", 10), 31.6, 31.7, None), (Rule("ratio", 10), 3.163, 3.162, None),
    (Rule("poisson", 10), 4.8, 4.79, None), (Rule("poisson", 10), 18.39, 18.4, None),
    (Rule("at_least", 0.9), 0.9, 0.899, None), (Rule("at_most", 0.05), 0.05, 0.051, None),
    (Rule("above", 0.5), 0.501, 0.5, None), (Rule("below", 0.9), 0.899, 0.9, None),
    (Rule("equals", 32), 32, 64, None),
    (Rule("above_chance"), 0.21, 0.2, 0.2), (Rule("not_above_chance"), 0.2, 0.21, 0.2),
]


@pytest.mark.parametrize("rule,inside,outside,chance", RULES)
def test_each_rule_kind_just_inside_and_just_outside(rule, inside, outside, chance):
    assert rule.check(inside, chance) is True
    assert rule.check(outside, chance) is False
    assert rule.check(None, chance) is False                  # never happened: fails
    assert isinstance(rule.describe(), str) and rule.describe()


def test_every_means_at_least_ninety_percent_of_the_items():
    rule = Rule("at_least", 0.9, every=True)
    assert rule.check([0.95] * 9 + [0.1])
    assert not rule.check([0.95] * 8 + [0.1] * 2)
    assert "every item" in rule.describe()
    assert Rule("shown").check(0.3) is None


@pytest.mark.parametrize("k,n,want", [(3, 3, 0), (2, 3, 0), (1, 3, 1), (0, 3, 2), (0, 0, 3), (1, 1, 0), (1, 2, 1),
                                      (2, 2, 0), (3, 5, 1), (4, 5, 0)])
def test_k_of_n_seeds_gives_revision_2s_verdict(k, n, want):
    assert claims.verdict_before(k, n) == claims.VERDICTS[4 if want == 3 else want]


def test_no_verdict_is_typed_into_the_study_code():
    """Verdict words appear in the study's code (study/*.py) only where VERDICTS is defined:
    every verdict is computed."""
    words = re.compile(r"\b(reproduced|partly|not testable)\b", re.I)
    hits = []
    for path in glob.glob(os.path.join(os.path.dirname(claims.__file__), "*.py")):
        src = open(path).read()
        lines = src.splitlines()
        hits += [(os.path.basename(path), lines[tok.start[0] - 1])
                 for tok in tokenize.generate_tokens(io.StringIO(src).readline)
                 if tok.type == tokenize.STRING and words.search(tok.string)]
    assert hits and all(f == "claims.py" and line.startswith("VERDICTS = ") for f, line in hits), hits
    assert not words.search(open(analysis.__file__).read())


def test_the_claims_table_holds_the_34_claims_in_the_study_order():
    assert [c.number for c in claims.CLAIMS] == list(range(1, 35))
    for c in claims.CLAIMS:
        assert c.words and c.quantity and c.runs and c.parts
        for p in c.parts:
            assert p.rule.describe().strip()            # an unknown kind has no description: KeyError


ALPHAS = [round(0.05 * i, 2) for i in range(21)]


def robustness_curve(holds):
    """A planted robustness curve: accuracy 1 up to alpha `holds`, then falling."""
    return {"ov_robustness_alpha": ALPHAS, "ov_robustness_accuracy": [1.0 if a <= holds else 0.5 for a in ALPHAS],
            "ov_robustness_items": 5000}


def claim(number):
    return next(c for c in claims.CLAIMS if c.number == number)


def test_seed_interval_is_the_t_interval_of_the_mean():
    mean, lo, hi = claims.seed_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and hi - mean == pytest.approx(4.303 * 1.0 / 3 ** 0.5, rel=1e-4) and mean - lo == hi - mean
    assert claims.seed_interval([0.7]) == (0.7, 0.7, 0.7)


@pytest.mark.parametrize("values,want", [([0.95, 0.96, 0.97], "pass"), ([0.5, 0.6, 0.7], "fail"),
                                         ([0.88, 0.95, 0.99], "inconclusive"), ([0.9, 0.9, 0.9], "pass")])
def test_a_part_passes_fails_or_is_inconclusive_by_its_interval(values, want):
    cells = [{"value": v, "chance": None, "passes": v >= 0.9} for v in values]
    assert claims.part_outcome(Rule("at_least", 0.9), cells)["outcome"] == want


def test_a_rule_without_a_number_reads_the_seeds_and_a_chance_rule_the_margin():
    cells = [{"value": 32, "chance": None, "passes": True}, {"value": 64, "chance": None, "passes": False}]
    assert claims.part_outcome(Rule("equals", 32), cells)["outcome"] == "inconclusive"
    cells = [{"value": v, "chance": c, "passes": v > c} for v, c in ((0.5, 0.1), (0.52, 0.12), (0.49, 0.09))]
    r = claims.part_outcome(Rule("above_chance"), cells)
    assert r["outcome"] == "pass" and r["mean"] == pytest.approx(0.4)


@pytest.mark.parametrize("parts,want", [
    ([("own", "pass", False)], 0), ([("own", "pass", True)], 3), ([("own", "pass", False), ("own", "fail", False)], 1),
    ([("own", "fail", False), ("substitute", "pass", False)], 1), ([("own", "fail", False), ("own", "pass", True)], 2),
    ([("own", "inconclusive", False), ("own", "pass", False)], 3), ([("substitute", "pass", False)], 1), ([], 4)])
def test_the_verdict_follows_the_aggregation(parts, want):
    judged = [{"role": r, "outcome": o, "vacuous": v} for r, o, v in parts]
    assert claims.claim_verdict(judged) == claims.VERDICTS[want]


def test_judge_reads_parts_over_seeds_and_says_why_a_part_cannot_be_tested():
    found = {"max": {s: robustness_curve(0.25) for s in range(3)}}
    row = report.judge(claim(22), found)
    assert (row["k"], row["n"], row["verdict"]) == (3, 3, claims.VERDICTS[0])
    assert row["parts"][0]["outcome"] == "pass" and row["parts"][0]["mean"] == 0.25
    found["max"][1], found["max"][2] = robustness_curve(0.3), robustness_curve(0.35)      # 0.25, 0.3, 0.35
    row = report.judge(claim(22), found)
    assert row["parts"][0]["outcome"] == "inconclusive" and row["verdict"] == claims.VERDICTS[3]
    assert (row["k"], row["verdict_before"]) == (2, claims.VERDICTS[0])   # revision 2: 2 of 3 seeds
    found["max"] = {s: robustness_curve(0.45) for s in range(3)}
    assert report.judge(claim(22), found)["verdict"] == claims.VERDICTS[2]
    tiny = {"W_pos_row_norms": [1e-4, 2e-4], "W_E_row_norm_median": 1.0, "pos_embed_diff_norm": 1e-4,
            "pos_embed_cosine": 0.9, "cosine_chance_pair": 0.3}
    row = report.judge(claim(2), {"add_nanda": {0: tiny}})       # the |difference| is judged, the cosine is not
    assert row["verdict"] == claims.VERDICTS[2] and row["n"] == 1
    assert "noise floor" in row["not_testable"][0] and "0.0001" in row["not_testable"][0]


def test_a_part_that_passes_on_untrained_weights_is_vacuous():
    trained = {"max": {s: robustness_curve(0.25) for s in range(3)}}
    untrained = {"max": {s: robustness_curve(0.25) for s in range(3)}}
    row = report.judge(claim(22), trained, untrained=untrained)
    assert row["parts"][0]["vacuous"] and row["verdict"] == claims.VERDICTS[3]
    untrained = {"max": {s: robustness_curve(-1) for s in range(3)}}          # never at 100%
    row = report.judge(claim(22), trained, untrained=untrained)
    assert not row["parts"][0]["vacuous"] and row["verdict"] == claims.VERDICTS[0]


def test_holds_to_reads_the_curve_from_alpha_zero_up_to_the_first_drop():
    curve = robustness_curve(0.2)
    assert claims.robustness_reading(curve) == 0.2
    curve["ov_robustness_accuracy"][6] = 1.0                     # a recovery after the drop does not count
    assert claims.robustness_reading(curve) == 0.2
    curve["ov_robustness_accuracy"][3] = 0.9993                  # below 1 - 3/5000 = 0.9994: ends at 0.1
    assert claims.robustness_reading(curve) == 0.1
    curve["ov_robustness_accuracy"][3] = 0.9995                  # within the sampling error of 100%
    assert claims.robustness_reading(curve) == 0.2
    curve["ov_robustness_accuracy"][3] = 0.991                   # revision 2 read 99% as 100%
    assert claims.robustness_reading(curve) == 0.1 and claims.robustness_reading(curve, claims.HOLDS) == 0.2
    assert claims.robustness_reading({**curve, "ov_robustness_accuracy": [0.999] + [1.0] * 20}) is None


@pytest.mark.parametrize("holds,passes", [(0.2, True), (0.15, False), (None, False)])
def test_claim_25_median_still_robust_can_fail(holds, passes):
    f = robustness_curve(holds if holds is not None else -1)     # -1: below 100% already at alpha 0
    row = report.judge(claim(25), {"median": {0: f}})
    assert row["verdict"] == claims.VERDICTS[0 if passes else 2]


def test_claim_10_count_is_the_samplers_expectation_and_claim_13_reads_the_random_test_set():
    plain = {"n": 100, "small_cut": 20, "train_max_below_n_over_5": 4, "train_tuples": 20000, "balanced_accuracy": 0.7,
             "augmented_test_accuracy": 0.85, "final": {"test_acc": 0.99}}
    assert claims.expected_small_max(plain) == pytest.approx(40000 * 0.2 ** 5)            # 12.8, the same for every seed
    aug = {**plain, "balanced_accuracy": 0.99, "augmented_test_accuracy": 0.95, "final": {"test_acc": 0.995}}
    found = {"max": {0: plain}, "max_augment": {0: aug}}
    ten = report.judge(claim(10), found)["seeds"]["0"]["parts"]
    assert [p["passes"] for p in ten] == [True, None, True, True, True, None] and ten[1]["value"] == 8
    assert report.judge(claim(10), found)["verdict"] == claims.VERDICTS[0]      # the augmented test set decides
    low = {"max": {0: {**plain, "augmented_test_accuracy": 0.98}}, "max_augment": {0: aug}}   # +1.5 points only
    assert report.judge(claim(10), low)["verdict"] == claims.VERDICTS[1]       # the count passes, the gain fails
    assert report.judge(claim(13), found)["verdict"] == claims.VERDICTS[0]      # +0.5 points on the random set
    found["max_augment"][0] = {**aug, "final": {"test_acc": 0.96}}              # 3 points lower: not marginal
    assert report.judge(claim(13), found)["verdict"] == claims.VERDICTS[2]
    same = {"max": {0: plain}, "max_augment": {0: plain}}                       # untrained: the same weights
    row = report.judge(claim(13), {"max": {0: plain}, "max_augment": {0: aug}}, untrained=same)
    assert row["parts"][0]["vacuous"] and row["verdict"] == claims.VERDICTS[3]
    assert report.judge(claim(10), found, untrained=same)["parts"][0]["untrained"] is None   # data: no reading


def test_the_number_as_query_parts_judge_the_study_construction_off_distribution():
    for number, key in ((17, "number_query_score_key_correlation"), (18, "q_fit_r2"),
                        (33, "x1_query_score_cubic_r2_median")):
        off = [p for p in claim(number).parts if "off-distribution" in p.label]
        assert off and all(p.role == claims.OWN and p.rule.kind != "shown" for p in off)
        assert any(_reads(p, key) for p in off), (number, key)
    subs = [p for p in claim(17).parts if p.role == claims.SUBSTITUTE]
    assert subs and "CLS" in subs[0].label and _reads(subs[0], "cls_score_key_correlation_per_head")


def _reads(part, key):
    """Does the part's measure read `key` from a findings dict?"""
    class Probe(dict):
        def __getitem__(self, k):
            if k == key:
                raise LookupError(k)
            return Probe()
    try:
        part.measure({"max": Probe(), "sort": Probe(), "one": Probe(), "seed": 0})
    except LookupError:
        return True
    except Exception:
        return False
    return False


# ---------------------------------------------------------------- a whole mini study on tiny runs
def five(task, seed, **kw):
    return mg.Config(**{**dict(task=task, n=20, n_train=1500, n_test=200, d_model=32, n_heads=2, d_head=16, d_mlp=64,
                               epochs=4, batch_size=300, lr=3e-3, weight_decay=0.1, eval_every=2, seed=seed), **kw})


def add(seed, **kw):
    return mg.Config(**{**dict(task="add", p=23, d_model=32, n_heads=2, d_head=16, d_mlp=64, epochs=60, lr=5e-3,
                               weight_decay=1.0, frac_train=0.4, eval_every=10, snapshot_every=20, seed=seed), **kw})


@pytest.fixture(scope="module")
def mini_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    for s in (0, 1):
        runs = {"add_nanda": add(s), "add_nanda5k": add(s, n_train=250), "add": add(s, epochs=30), "max": five("max", s), "max_augment": five("max", s, augment=True),
                "median": five("median", s, snapshot_every=4), "sort": five("sort", s), "sort_small": five("sort", s, n_train=300),
                "sort_1head": five("sort", s, n_heads=1, d_head=32)}
        for name, cfg in runs.items():
            out = str(root / "runs" / f"{name}_s{s}.npz")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            mg.train(cfg, out, verbose=False)
            cli.DRIVERS[cfg.task](out, str(root / "figures" / f"{name}_s{s}"))
            cli.DRIVERS[cfg.task](out, str(root / "figures" / "untrained" / f"{name}_s{s}"), False, True)
        for d in (8, 16):
            mg.train(add(s, d_model=d, d_head=d // 2, epochs=20, snapshot_every=0), str(root / "runs" / f"wa{d}_{s}.npz"), verbose=False)
            mg.train(five("median", s, d_model=d, d_head=d // 2), str(root / "runs" / f"wm{d}_{s}.npz"), verbose=False)
    width.width_sweep(sorted(glob.glob(str(root / "runs" / "w*.npz"))), str(root / "figures" / "width"))
    counts = report.write_report(str(root / "figures"))
    return root / "figures", counts


def report_rows(text, header):
    start = text.index(header)
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("| "):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


@pytest.mark.slow
def test_mini_study_every_report_row_comes_from_the_claims_table(mini_study):
    figures, counts = mini_study
    text = (figures / "REPORT.md").read_text()
    table = json.loads((figures / "findings.json").read_text())
    judged = report.judge_all(report.load_findings(str(figures)), report.load_findings(str(figures / "untrained")))
    rows = report_rows(text, "| # | the study |")
    assert [int(r[0]) for r in rows] == list(range(1, 35))
    read_untrained = 0
    for row, claim, j, saved in zip(rows, claims.CLAIMS, judged, table["claims"]):
        assert row[1] == claim.words.replace("|", "\\|")
        assert row[-2] == j["verdict"] == saved["verdict"] and row[-2] in claims.VERDICTS
        for p, r in zip(claim.parts, j["parts"]):              # every part's rule, values per seed, outcome
            sub = " (substitute)" if p.role == claims.SUBSTITUTE else ""
            assert f"{p.label}{sub}: {p.rule.describe()}".replace("|", "\\|") in row[3]
            assert f"{p.label}: ".replace("|", "\\|") in row[4]
            if r is not None:
                assert f"{r['outcome']}**" in row[4]
                assert not (p.data and r["untrained"] is not None), claim.number   # data: no reading
                read_untrained += r["untrained"] is not None
        if j["n"]:
            assert "s0 " in row[4] and "s1 " in row[4]
    assert read_untrained >= 30                                  # the untrained weights' findings were read
    log = report_rows(text, "| # | what revision 3 changed")      # every claim, before and after revision 3
    assert [int(r[0]) for r in log] == list(range(1, 35))
    assert [r[-1] for r in log] == [j["revision_3"]["verdict"] for j in judged]
    found = report.load_findings(str(figures))
    assert [r[-3].split(" (")[0] for r in log] == [report.judge_before(c, found)["verdict"] for c in claims.CLAIMS]
    r3 = [j["revision_3"] for j in judged]
    assert [r[-2] for r in log] == [f"{j['verdict_before']} ({j['k']} of {j['n']})" for j in r3]
    # revision 4's log: the claims it changed, under revision 3's parts (judged again) and its own
    log4 = report_rows(text, "| # | what revision 4 changed")
    changed = [c for c in claims.CLAIMS if c.revised_4]
    assert [int(r[0]) for r in log4] == [c.number for c in changed] and changed and claims.REVISION_4 in text
    for row, c in zip(log4, changed):
        old = report.judge(dataclasses.replace(c, parts=c.parts_3), found, untrained=report.load_findings(
            str(figures / "untrained")))
        assert row[1:] == [c.revised_4, old["verdict"], judged[c.number - 1]["verdict"]]
    assert all(j["revision_3"] == {k: j[k] for k in j["revision_3"]} for c, j in zip(claims.CLAIMS, judged)
               if not c.parts_3)                                 # unchanged by revision 4: the same
    assert counts == table["counts"] and sum(counts.values()) == 34
    assert ", ".join(f"{n} {k}" for k, n in counts.items()) in text
    for line in claims.POLICY:
        assert line in text
    assert claims.REVISED_WHEN in text and all(r in text for r in claims.REVISED)
    assert table["revised"] == [claims.REVISED_WHEN, *claims.REVISED]
    assert claims.AGGREGATE in text
    beside = report_rows(text, "| # | per part | would be |")
    assert [int(r[0]) for r in beside] == list(range(1, 9))
    extensions = report_rows(text, "| analysis | run |")       # #15's analyses, one row each, every seed shown
    assert [r[:2] for r in extensions] == [[e[0].replace("|", "\\|"), e[1]] for e in report.EXTENSIONS]
    assert all(r[2].startswith("s0 ") and "<br>s1 " in r[2] for r in extensions)


def drawn(path):
    """What a PNG shows: (its size in pixels / 3, its share of pixels that are not white, its
    number of distinct colours): a figure with data has many colours and some ink."""
    import matplotlib.image
    img = matplotlib.image.imread(path)[::3, ::3, :3]              # every third pixel is enough
    colours = len(np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    return img.shape[:2], float((img.min(-1) < 0.95).mean()), colours


@pytest.mark.slow
def test_mini_study_drew_every_figure(mini_study):
    """Every figure of the gallery, and the width sweep's, is a picture with data drawn on
    it: at least 400 x 300 pixels, ink on at least 2% of them, at least 20 colours."""
    figures, _ = mini_study
    paths = [figures / f"{run}_s0" / f"{name}.png" for run, names in report.GALLERY for name in names]
    for path in paths + [figures / "width" / "width_sweep.png"]:
        (h, w), ink, colours = drawn(path)
        assert 3 * h >= 300 and 3 * w >= 400 and ink > 0.02 and colours >= 20, (path.name, h, w, ink, colours)


@pytest.mark.slow
def test_findings_only_gives_the_same_findings_without_figures(mini_study, tmp_path):
    """`python -m study TASK CKPT OUT --findings-only` (make figures for seeds outside FIGURE_SEEDS):
    findings.json byte for byte as with the figures drawn, no PNG, and none left from before."""
    figures, _ = mini_study
    for name, task in (("add_nanda", "add"), ("max", "max"), ("median", "median"), ("sort", "sort")):
        out = tmp_path / name
        out.mkdir()
        (out / "stale.png").write_bytes(b"an old figure")
        run = figures.parent / "runs" / f"{name}_s1.npz"
        assert cli.main([task, str(run), str(out), "--findings-only"]) == 0
        assert sorted(p.name for p in out.iterdir()) == ["findings.json"], name
        assert (out / "findings.json").read_bytes() == (figures / f"{name}_s1" / "findings.json").read_bytes(), name


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_figures_trains_first_and_draws_only_the_figure_seeds():
    """The Makefile's plan for `make -j2 figures` (printed, not run): every training command
    before the first analysis; each analysis on one BLAS thread; --findings-only exactly for
    the seeds outside FIGURE_SEEDS."""
    here = os.path.dirname(os.path.abspath(__file__))
    plan = subprocess.run(["make", "-n", "-B", "figures", "FIGURE_SEEDS=0 2"], cwd=here, capture_output=True,
                          text=True, check=True).stdout.splitlines()
    train = [i for i, line in enumerate(plan) if " minigrok.py " in line and "--out runs/" in line]
    analyse = [i for i, line in enumerate(plan) if " -m study " in line]
    untrained = [i for i in analyse if "--untrained" in plan[i]]
    # 47 runs of the claims (5 seeds of the cheap ones, 3 of the rest, 12 on the second split) and
    # 30 of the width sweep (its width 128 is the default runs); each claim run analysed, the 35
    # on the first split on their untrained weights too, then the width sweep and the report
    assert len(train) == 77 and len(analyse) == 47 + 35 + 2 and len(untrained) == 35
    assert max(train) < min(analyse)
    assert all(plan[i].startswith("exec env OPENBLAS_NUM_THREADS=1 ") for i in train)
    assert all(plan[i].startswith("OPENBLAS_NUM_THREADS=1 ") for i in analyse)
    for i in analyse:
        seed = re.search(r"_s(\d+)\.npz", plan[i])
        if seed:
            draws = seed.group(1) in ("0", "2") and "split2" not in plan[i] and i not in untrained
            assert ("--findings-only" in plan[i]) != draws, plan[i]
            extra = seed.group(1) in ("3", "4") or "split2" in plan[i] or "sort_small" in plan[i] \
                or "sort_1head" in plan[i]
            assert ("--claims-only" in plan[i]) == (extra and i not in untrained), plan[i]


@pytest.mark.slow
def test_a_planted_finding_changes_the_row_and_its_verdict(mini_study, tmp_path):
    figures, _ = mini_study
    copy = tmp_path / "figures"
    shutil.copytree(figures, copy)
    for s in (0, 1):
        path = copy / f"max_s{s}" / "findings.json"
        saved = json.loads(path.read_text())
        saved["measured"].update(robustness_curve(0.25))
        path.write_text(json.dumps(saved))
    report.write_report(str(copy))
    row = next(r for r in report_rows((copy / "REPORT.md").read_text(), "| # | the study |") if r[0] == "22")
    assert "s0 0.25 ok" in row[4] and "s1 0.25 ok" in row[4] and row[-2] == claims.VERDICTS[0]


def test_report_without_findings_is_a_clear_error(tmp_path):
    with pytest.raises(mg.UsageError, match="findings.json found"):
        report.write_report(str(tmp_path))


def test_study_refuses_a_checkpoint_of_the_wrong_task(tmp_path, capsys):
    paths = {}
    for task in ("median", "sort"):
        paths[task] = str(tmp_path / f"{task}.npz")
        mg.train(mg.Config(task=task, n=12, n_train=300, n_test=60, d_model=8, n_heads=2, d_head=4, d_mlp=16,
                           epochs=1, batch_size=100), paths[task], verbose=False)
    cases = [(["median", paths["sort"]], "task sort, but python -m study median needs one of task median"),
             (["sort", paths["median"]], "task median, but python -m study sort needs one of task sort"),
             (["max", paths["median"]], "needs one of task max"),
             (["add", paths["sort"]], "needs one of task add")]
    for argv, message in cases:
        assert cli.main(argv) == 2, argv
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines
    assert cli.main(["nonsense"]) == 2
    assert "usage" in capsys.readouterr().err


def test_readme_quotes_the_committed_reports_verdict_counts():
    """README's summary counts are the ones figures/REPORT.md computed, word for word."""
    root = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(root, "figures", "REPORT.md")) as f:
        counts = next(line for line in f if line.endswith("claims).\n"))
    with open(os.path.join(root, "README.md")) as f:
        assert counts.strip() in " ".join(f.read().split())


def test_readme_task_table_is_what_the_committed_findings_say():
    """README's task table quotes seed 0's findings.json of each task's default run."""
    root = os.path.dirname(os.path.abspath(__file__))
    readme = " ".join(open(os.path.join(root, "README.md")).read().split())
    pct = lambda x: f"{100 * x:.2f}%"
    F = {t: json.load(open(os.path.join(root, "figures", f"{t}_s0", "findings.json")))["measured"]
         for t in ("add", "max", "median", "sort")}
    final = {t: f["final"] for t, f in F.items()}
    for quoted in (f"test 99% at epoch {F['add']['epoch_test_acc_99']}", f"test {pct(final['max']['test_acc'])}",
                   f"balanced {pct(final['max']['balanced_acc'])}", f"test {pct(final['median']['test_acc'])}",
                   f"(loss {final['median']['test_loss']:.3f})", f"test {pct(final['sort']['test_acc'])} per token",
                   f"{pct(final['sort']['test_seq_acc'])} of sequences", f"(loss {final['sort']['test_loss']:.4f})"):
        assert quoted in readme, quoted


def test_converged_reads_the_last_fifth_of_the_test_loss():
    h = {"epoch": [0, 10, 20, 30, 40], "test_loss": [5.0, 4.0, 1.0, 0.101, 0.1]}
    assert width.converged(h)                       # 0.101 -> 0.1 over the last fifth
    assert not width.converged({**h, "test_loss": [5.0, 4.0, 1.0, 0.5, 0.1]})


def test_study_refuses_an_unfinished_checkpoint(tmp_path, capsys):
    out = str(tmp_path / "a.npz")
    tiny = ["--task", "add", "--p", "23", "--d-model", "16", "--n-heads", "2", "--d-mlp", "32", "--device", "cpu",
            "--quiet"]
    assert mg.main([*tiny, "--epochs", "10", "--out", out]) == 0
    ck = checkpoint.load_checkpoint(out)
    checkpoint.save_checkpoint(out, ck["config"], ck["params"], ck["opt"], ck["history"], [], 10, 0.0, False)
    capsys.readouterr()
    for argv in (["add", out, str(tmp_path / "fig")], ["width", out]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "study: error:" in err[0] and "unfinished run" in err[0], err
        assert f"--out {out} --resume" in err[0], err
    assert not os.path.exists(tmp_path / "fig")


def test_study_md_is_its_template_filled_from_the_committed_findings():
    """Every number STUDY.md quotes from a run is a placeholder of study/STUDY.template.md filled
    from figures/: the committed STUDY.md is what the committed findings give."""
    root = os.path.dirname(os.path.abspath(__file__))
    template = open(os.path.join(root, "study", "STUDY.template.md")).read()
    assert len(report.PLACEHOLDER.findall(template)) >= 80
    want = report.render_text(template, report.load_findings(os.path.join(root, "figures")))
    assert "{{" not in want and open(os.path.join(root, "STUDY.md")).read() == want


def test_placeholders_give_ranges_seeds_and_reductions():
    found = {"r": {0: {"a": {"b": 0.951}, "h": [0.5, 0.7]}, 1: {"a": {"b": 0.955}, "h": [0.1, 0.3]}}}
    assert report.render_text("{{r a.b pct1}}%", found) == "95.1-95.5%"
    assert report.render_text("{{r a.b pct1 seeds}}", found) == "95.1 / 95.5"
    assert report.render_text("{{r a.b pct1 s0}} and {{r h:mean f2}}", found) == "95.1 and 0.20-0.60"
    assert report.render_text("{{r h.1 f1 mean}}", found) == "0.5"
    with pytest.raises(KeyError):
        report.render_text("{{r a.c pct1}}", found)
