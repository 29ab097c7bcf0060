"""Tests of the study: the analysis helpers on tables worked by hand (analysis.py), the rule
policy with planted values just inside and just outside each kind of rule, k-of-n
aggregation, that no verdict is typed into study.py, and a whole mini study on tiny runs
whose REPORT.md rows must all come from the claims table (study.py)."""
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
import minigrok as mg
import study
import tasks
from study import Rule


# ---------------------------------------------------------------- analysis.py: helpers on hand-worked tables
@pytest.mark.parametrize("p", [7, 12, 113])
def test_fourier_basis_is_orthonormal(p):
    basis, names = analysis.fourier_basis(p)
    np.testing.assert_allclose(basis @ basis.T, np.eye(p), atol=1e-12)
    assert names[0] == "const" and names[1] == "cos 1" and names[2] == "sin 1" and len(names) == p


def test_cos_of_a_plus_b_has_exactly_the_expected_2d_components():
    p, k = 13, 3
    basis, _ = analysis.fourier_basis(p)
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    F = analysis.fourier_2d(np.cos(2 * np.pi * k * (a + b) / p), basis)
    # cos(w(a+b)) = cos(wa)cos(wb) - sin(wa)sin(wb), and each unit row is sqrt(2/p) cos or sin
    want = np.zeros((p, p))
    want[2 * k - 1, 2 * k - 1], want[2 * k, 2 * k] = p / 2, -p / 2
    np.testing.assert_allclose(F, want, atol=1e-10)


def test_key_frequencies_found_when_planted_and_none_in_noise():
    p, d = 59, 64
    rng = np.random.default_rng(0)
    x = np.arange(p)
    W = rng.standard_normal((p, d)) * 0.1
    for k in (4, 17, 23):
        W += np.outer(np.cos(2 * np.pi * k * x / p), rng.standard_normal(d))
        W += np.outer(np.sin(2 * np.pi * k * x / p), rng.standard_normal(d))
    basis, _ = analysis.fourier_basis(p)
    norms = analysis.frequency_norms(analysis.fourier_1d(W, basis))
    assert analysis.key_frequencies(norms).tolist() == [4, 17, 23]
    noise = analysis.frequency_norms(analysis.fourier_1d(rng.standard_normal((p, d)), basis))
    assert analysis.key_frequencies(noise).tolist() == []


def test_restricted_and_excluded_logits_on_a_table_worked_by_hand():
    p = 11
    a, b, c = np.meshgrid(np.arange(p), np.arange(p), np.arange(p), indexing="ij")
    w = lambda k: 2 * np.pi * k / p
    key = 5 * np.cos(w(2) * (a + b - c))                  # lives on cos/sin(w_2 (a+b))
    other = 3 * np.cos(w(4) * (a - b)) * np.cos(w(1) * c)  # depends on a-b: no (a+b) direction
    logits = key + other + 0.5
    restricted, excluded = analysis.restricted_and_excluded(logits, p, [2])
    np.testing.assert_allclose(restricted, key + 0.5, atol=1e-10)
    np.testing.assert_allclose(excluded, other + 0.5, atol=1e-10)
    # the restricted table is 5 cos(w(a+b-c)): its loss is a closed-form sum over c
    z = 5 * np.cos(w(2) * np.arange(p))                   # logits of one input, right answer at index 0
    loss_by_hand = -(z[0] - np.log(np.exp(z).sum()))
    assert analysis.loss_and_accuracy(restricted, p)[0] == pytest.approx(loss_by_hand, rel=1e-10)
    alpha, fitted, explained = analysis.closed_form_logits(key + 0.5, p, [2])
    assert alpha[0] == pytest.approx(5) and explained == pytest.approx(1)


def test_gini_coefficient():
    assert analysis.gini(np.ones(10)) == pytest.approx(0)
    assert analysis.gini(np.r_[np.zeros(99), 1.0]) == pytest.approx(0.99)


def test_fit_linear_recovers_planted_lines():
    x = np.arange(50.0)
    m, c = np.array([[0.5, -2.0], [0.0, 3.0]]), np.array([[1.0, 4.0], [-7.0, 0.25]])
    Y = x[:, None, None] * m + c
    fm, fc, r2 = analysis.fit_linear(x, Y)
    np.testing.assert_allclose(fm, m, atol=1e-10)
    np.testing.assert_allclose(fc, c, atol=1e-9)
    assert np.all(r2[m != 0] > 1 - 1e-12)



def tiny_max_model(tmp_path, epochs=30):
    cfg = mg.Config(task="max", n=20, n_train=2000, n_test=300, d_model=32, n_heads=4, d_head=8, d_mlp=64,
                    epochs=epochs, batch_size=200, lr=3e-3, weight_decay=0.1, eval_every=10)
    out = str(tmp_path / "max.npz")
    mg.train(cfg, out, verbose=False)
    return cfg, out


def test_forcing_the_real_pattern_reproduces_the_model(tmp_path):
    cfg, out = tiny_max_model(tmp_path, epochs=5)
    _, params, _ = mg.load(out)
    tokens = tasks.make_data(cfg).evals["test"][0]
    logits, cache = mg.forward(params, tokens, 1)
    forced, _ = mg.forward(params, tokens, 1, pattern=cache["pattern"][:, :, -1:])   # the CLS query's row
    np.testing.assert_array_equal(forced, logits)


def test_permutation_analysis_is_exactly_one_for_an_order_invariant_model(tmp_path):
    cfg, out = tiny_max_model(tmp_path, epochs=2)
    _, params, _ = mg.load(out)
    params = {k: v.astype(np.float64) for k, v in params.items()}
    params["W_pos"][:5] = params["W_pos"][0]       # all inputs share one position embedding
    sim = analysis.permutation_similarity(params, np.array([1, 4, 9, 12, 17]), cfg.n)
    np.testing.assert_allclose(sim, 1, atol=1e-12)


def test_rank_forcing_with_alpha_zero_copies_by_rank():
    # positions_by_rank and the forced pattern: the rank-2 input of each row is the median
    x = np.array([[5, 1, 9, 3, 7], [2, 2, 8, 0, 4]])
    pos = analysis.positions_by_rank(x)
    assert x[np.arange(2), pos[:, 2]].tolist() == [5, 2]
    assert x[np.arange(2), pos[:, 4]].tolist() == [9, 8]




def test_chance_cosines_and_mean_off_diagonal():
    C = analysis.chance_cosines(64, 5, draws=300)
    assert C.shape == (300, 5, 5)
    np.testing.assert_allclose(np.diagonal(C, axis1=1, axis2=2), 1)
    # random unit vectors in 64 dimensions: cosine ~ N(0, 1/64)
    assert abs(C[:, 0, 1].std() - 1 / 8) < 0.02
    M = np.array([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]])
    assert analysis.mean_off_diagonal(M) == pytest.approx(0.4)


def test_polynomial_fit_tells_a_cubic_from_a_line():
    x = np.arange(30.0)
    Y = np.stack([2 * x + 1, (x - 15) ** 3], 1)
    line, cubic = analysis.fit_polynomial_r2(x, Y, 1), analysis.fit_polynomial_r2(x, Y, 3)
    assert line[0] == pytest.approx(1) and line[1] < 0.9 and cubic[1] == pytest.approx(1)


def test_first_epoch_spectrum_asymmetry_and_convergence():
    h = {"epoch": [0, 10, 20, 30, 40], "test_acc": [0.0, 0.05, 0.5, 0.99, 1.0],
         "test_loss": [5.0, 4.0, 1.0, 0.101, 0.1]}
    assert analysis.first_epoch(h, "test_acc", 0.99) == 30 and analysis.first_epoch(h, "test_acc", 1.01) is None
    S = np.array([[0.0, 1.0], [1.0, 2.0]])
    assert analysis.spectrum_asymmetry(S) == 0
    assert analysis.spectrum_asymmetry(np.array([[0.0, 1.0], [0.0, 0.0]])) == pytest.approx(np.sqrt(2))
    assert study.converged(h)                       # 0.101 -> 0.1 over the last fifth
    assert not study.converged({**h, "test_loss": [5.0, 4.0, 1.0, 0.5, 0.1]})


def uniform_attention(params):
    """W_Q = 0: every score is 0, so each query spreads its attention evenly over the positions it sees."""
    return {**params, "W_Q": np.zeros_like(params["W_Q"])}


def test_attention_weights_of_a_uniform_model_are_worked_by_hand(tmp_path):
    cfg, out = tiny_max_model(tmp_path, epochs=1)
    _, params, _ = mg.load(out)
    x = np.array([[1, 7, 3, 9, 2], [9, 9, 0, 4, 8], [5, 6, 7, 8, 9]])
    tokens, _ = tasks.sequences("max", x, cfg.n)
    on_max, close = analysis.attention_on_max(uniform_attention(params), tokens)
    np.testing.assert_allclose(on_max, (1 + 2 + 1) / 3 / 6, atol=1e-6)   # CLS sees 6 positions; row 2 has the max twice
    np.testing.assert_allclose(close, (2 + 1) / 2 / 6, atol=1e-6)         # rows 2 and 3 have runner-up 8 = 9 - 1
    by_rank = analysis.attention_weight_by_rank(uniform_attention(params), tokens, 1)
    np.testing.assert_allclose(by_rank, 1 / 6, atol=1e-6)


def test_weight_on_max_of_a_pattern_worked_by_hand():
    tokens = np.array([[1, 9, 3, 9, 2, 20], [5, 6, 7, 8, 4, 20]])
    pattern = np.zeros((2, 1, 1, 6))
    pattern[0, 0, 0] = [0.1, 0.3, 0.0, 0.2, 0.0, 0.4]     # the max (9) sits at positions 1 and 3: 0.5
    pattern[1, 0, 0] = [0.0, 0.0, 0.0, 0.7, 0.3, 0.0]     # the max (8) at position 3: 0.7
    np.testing.assert_allclose(analysis.weight_on_max(pattern, tokens), [0.6])


def test_sort_attention_by_rank_and_decoding_queries_of_a_uniform_model(tmp_path):
    cfg = mg.Config(task="sort", n=20, n_train=500, n_test=100, d_model=16, n_heads=2, d_head=8, d_mlp=32,
                    epochs=1, batch_size=250, eval_every=1)
    out = str(tmp_path / "sort.npz")
    mg.train(cfg, out, verbose=False)
    _, params, _ = mg.load(out)
    tokens, _ = tasks.sequences("sort", np.array([[4, 1, 3, 0, 2]]), cfg.n)
    by_rank = analysis.attention_weight_by_rank(uniform_attention(params), tokens, 5)     # [step, head, rank]
    for s in range(5):                                           # the query at SEP + s sees 6 + s positions
        np.testing.assert_allclose(by_rank[s], 1 / (6 + s), atol=1e-6)
    scores = analysis.decoding_query_scores(params, cfg.n)
    assert scores.shape == (4, cfg.n, 2, 5, cfg.n)
    q = analysis.project(params, "W_Q", 7, 5 + 2)                 # token 7 as y2, at position 7
    k = analysis.project(params, "W_K", 11, 3)                    # number 11 at x4
    assert scores[1, 7, 0, 3, 11] == pytest.approx((q[0] @ k[0]) / np.sqrt(8), rel=1e-6)


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
def test_k_of_n_seeds_gives_the_verdict_by_the_stated_policy(k, n, want):
    assert study.verdict(k, n) == study.VERDICTS[want]


def test_no_verdict_is_typed_into_the_study_code():
    """Verdict words appear in study.py only where VERDICTS is defined: every verdict is computed."""
    words = re.compile(r"\b(reproduced|partly|not testable)\b", re.I)
    src = open(study.__file__).read()
    hits = [tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(src).readline)
            if tok.type == tokenize.STRING and words.search(tok.string)]
    lines = src.splitlines()
    assert hits and all(lines[i - 1].startswith("VERDICTS = ") for i in hits), [lines[i - 1] for i in hits]
    assert not words.search(open(analysis.__file__).read())


def test_the_claims_table_holds_the_34_claims_in_the_study_order():
    assert [c.number for c in study.CLAIMS] == list(range(1, 35))
    for c in study.CLAIMS:
        assert c.words and c.quantity and c.runs and c.parts
        for p in c.parts:
            assert p.rule.kind in ("about", "about_points", "order_of", "range", "few", "ratio", "poisson", "at_least",
                                   "at_most", "above", "below", "equals", "above_chance", "not_above_chance", "shown")
            p.rule.describe()


ALPHAS = [round(0.05 * i, 2) for i in range(21)]


def robustness_curve(holds):
    """A planted robustness curve: accuracy 1 up to alpha `holds`, then falling."""
    return {"ov_robustness_alpha": ALPHAS, "ov_robustness_accuracy": [1.0 if a <= holds else 0.5 for a in ALPHAS]}


def claim(number):
    return next(c for c in study.CLAIMS if c.number == number)


def test_judge_counts_seeds_and_says_why_a_part_cannot_be_tested():
    found = {"max": {0: robustness_curve(0.25), 1: robustness_curve(0.3), 2: robustness_curve(0.35)}}
    row = study.judge(claim(22), found)
    assert (row["k"], row["n"], row["verdict"]) == (2, 3, study.VERDICTS[0])
    found["max"][1] = robustness_curve(0.4)
    assert study.judge(claim(22), found)["verdict"] == study.VERDICTS[1]
    tiny = {"W_pos_row_norms": [1e-4, 2e-4], "W_E_row_norm_median": 1.0, "pos_embed_diff_norm": 1e-4,
            "pos_embed_cosine": 0.9, "cosine_chance_pair": 0.3}
    row = study.judge(claim(2), {"add_nanda": {0: tiny}})       # the |difference| is judged, the cosine is not
    assert row["verdict"] == study.VERDICTS[2] and row["n"] == 1
    assert "noise floor" in row["not_testable"][0] and "0.0001" in row["not_testable"][0]


def test_holds_to_reads_the_curve_from_alpha_zero_up_to_the_first_drop():
    curve = robustness_curve(0.2)
    assert study.holds_to(curve) == 0.2
    curve["ov_robustness_accuracy"][6] = 1.0                     # a recovery after the drop does not count
    assert study.holds_to(curve) == 0.2
    curve["ov_robustness_accuracy"][3] = 0.9899                  # just below 99%: ends the run at 0.1
    assert study.holds_to(curve) == 0.1
    curve["ov_robustness_accuracy"][3] = 0.99                    # 100% read with a 1-point allowance
    assert study.holds_to(curve) == 0.2
    assert study.holds_to({**curve, "ov_robustness_accuracy": [0.98] + [1.0] * 20}) is None   # never at 100%


@pytest.mark.parametrize("holds,passes", [(0.2, True), (0.15, False), (None, False)])
def test_claim_25_median_still_robust_can_fail(holds, passes):
    f = robustness_curve(holds if holds is not None else -1)     # -1: below 99% already at alpha 0
    row = study.judge(claim(25), {"median": {0: f}})
    assert row["verdict"] == study.VERDICTS[0 if passes else 2]


def test_claim_10_count_is_the_samplers_expectation_and_claim_13_reads_the_same_gain():
    plain = {"n": 100, "small_cut": 20, "train_max_below_n_over_5": 4, "train_tuples": 20000, "balanced_accuracy": 0.85,
             "final": {"test_acc": 0.99}}
    assert study.expected_small_max(plain) == pytest.approx(40000 * 0.2 ** 5)            # 12.8, the same for every seed
    aug = {**plain, "balanced_accuracy": 0.95, "final": {"test_acc": 0.995}}
    found = {"max": {0: plain}, "max_augment": {0: aug}}
    ten = study.judge(claim(10), found)["seeds"]["0"]["parts"]
    assert [p["passes"] for p in ten] == [True, None, True, True, True] and ten[1]["value"] == 8
    assert study.judge(claim(13), found)["verdict"] == study.VERDICTS[2]     # +10 points is not marginal
    found["max_augment"][0] = {**aug, "balanced_accuracy": 0.86}
    assert study.judge(claim(13), found)["verdict"] == study.VERDICTS[0]
    assert study.judge(claim(10), found)["verdict"] == study.VERDICTS[2]     # at most one of the two
    assert "contradict" in claim(13).quantity or "at most one" in claim(13).quantity


def test_every_number_as_query_part_is_not_testable_with_the_construction_shown():
    for number in (17, 18, 33):
        c = claim(number)
        needs = [p for p in c.parts if "as query" in p.label]
        shown = [p for p in c.parts if p.label.startswith("study's construction")]
        assert needs and shown and all(p.rule.kind == "shown" for p in shown)
        for p in needs:
            row = study.judge_part(p, {r: {} for r in c.runs})
            assert "never forms this query" in row["not_testable"], (number, p.label)


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
        runs = {"add_nanda": add(s), "add": add(s, epochs=30), "max": five("max", s), "max_augment": five("max", s, augment=True),
                "median": five("median", s, snapshot_every=4), "sort": five("sort", s), "sort_small": five("sort", s, n_train=300),
                "sort_1head": five("sort", s, n_heads=1, d_head=32)}
        for name, cfg in runs.items():
            out = str(root / "runs" / f"{name}_s{s}.npz")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            mg.train(cfg, out, verbose=False)
            study.DRIVERS[cfg.task](out, str(root / "figures" / f"{name}_s{s}"))
        for d in (8, 16):
            mg.train(add(s, d_model=d, d_head=d // 2, epochs=20, snapshot_every=0), str(root / "runs" / f"wa{d}_{s}.npz"), verbose=False)
            mg.train(five("median", s, d_model=d, d_head=d // 2), str(root / "runs" / f"wm{d}_{s}.npz"), verbose=False)
    study.width_sweep(sorted(glob.glob(str(root / "runs" / "w*.npz"))), str(root / "figures" / "width"))
    counts = study.write_report(str(root / "figures"))
    return root / "figures", counts


def report_rows(text, header):
    start = text.index(header)
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("| "):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_mini_study_every_report_row_comes_from_the_claims_table(mini_study):
    figures, counts = mini_study
    text = (figures / "REPORT.md").read_text()
    table = json.loads((figures / "findings.json").read_text())
    judged = study.judge_all(study.load_findings(str(figures)))
    rows = report_rows(text, "| # | the study |")
    assert [int(r[0]) for r in rows] == list(range(1, 35))
    for row, claim, j, saved in zip(rows, study.CLAIMS, judged, table["claims"]):
        assert row[1] == claim.words.replace("|", "\\|")
        assert row[-1] == j["verdict"] == saved["verdict"] and row[-1] in study.VERDICTS
        assert row[-2] == f"{j['k']} of {j['n']}"
        for p in claim.parts:                                   # every part's rule and its values per seed
            assert f"{p.label}: {p.rule.describe()}".replace("|", "\\|") in row[3]
            assert f"{p.label}: ".replace("|", "\\|") in row[4]
        if j["n"]:
            assert "s0 " in row[4] and "s1 " in row[4]
    assert counts == table["counts"] and sum(counts.values()) == 34
    assert ", ".join(f"{n} {k}" for k, n in counts.items()) in text
    for line in study.POLICY:
        assert line in text
    assert study.REVISED_WHEN in text and all(r in text for r in study.REVISED)
    assert table["revised"] == [study.REVISED_WHEN, *study.REVISED]
    assert study.AGGREGATE in text
    beside = report_rows(text, "| # | per seed |")
    assert [int(r[0]) for r in beside] == list(range(1, 9))
    extensions = report_rows(text, "| analysis | run |")       # #15's analyses, one row each, every seed shown
    assert [r[:2] for r in extensions] == [[e[0].replace("|", "\\|"), e[1]] for e in study.EXTENSIONS]
    assert all(r[2].startswith("s0 ") and "<br>s1 " in r[2] for r in extensions)


def test_mini_study_drew_every_figure(mini_study):
    figures, _ = mini_study
    for run, names in study.GALLERY:
        for name in names:
            assert (figures / f"{run}_s0" / f"{name}.png").stat().st_size > 5000, (run, name)
    assert (figures / "width" / "width_sweep.png").stat().st_size > 5000


def test_findings_only_gives_the_same_findings_without_figures(mini_study, tmp_path, monkeypatch):
    """`study.py TASK CKPT OUT --findings-only` (make figures for seeds outside FIGURE_SEEDS):
    findings.json byte for byte as with the figures drawn, no PNG, and none left from before."""
    figures, _ = mini_study
    monkeypatch.setattr(study, "DRAW", True)                    # main sets it; restored after the test
    for name, task in (("add_nanda", "add"), ("max", "max"), ("median", "median"), ("sort", "sort")):
        out = tmp_path / name
        out.mkdir()
        (out / "stale.png").write_bytes(b"an old figure")
        run = figures.parent / "runs" / f"{name}_s1.npz"
        assert study.main([task, str(run), str(out), "--findings-only"]) == 0
        assert sorted(p.name for p in out.iterdir()) == ["findings.json"], name
        assert (out / "findings.json").read_bytes() == (figures / f"{name}_s1" / "findings.json").read_bytes(), name


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_figures_trains_first_and_draws_only_the_figure_seeds():
    """The Makefile's plan for `make -j2 figures` (printed, not run): every training command
    before the first analysis; each analysis on one BLAS thread; --findings-only exactly for
    the seeds outside FIGURE_SEEDS."""
    here = os.path.dirname(os.path.abspath(__file__))
    plan = subprocess.run(["make", "-n", "-B", "figures", "FIGURE_SEEDS=0 2"], cwd=here, capture_output=True,
                          text=True, check=True).stdout.splitlines()
    train = [i for i, line in enumerate(plan) if " minigrok.py " in line and "--out runs/" in line]
    analyse = [i for i, line in enumerate(plan) if " study.py " in line]
    assert len(train) == 60 and len(analyse) == 8 * 3 + 2 and max(train) < min(analyse)
    assert all(plan[i].startswith("exec env OPENBLAS_NUM_THREADS=1 ") for i in train)
    assert all(plan[i].startswith("OPENBLAS_NUM_THREADS=1 ") for i in analyse)
    for i in analyse:
        seed = re.search(r"_s(\d+)\.npz", plan[i])
        if seed:
            assert plan[i].endswith("--findings-only") == (seed.group(1) == "1"), plan[i]


def test_a_planted_finding_changes_the_row_and_its_verdict(mini_study, tmp_path):
    figures, _ = mini_study
    copy = tmp_path / "figures"
    shutil.copytree(figures, copy)
    for s in (0, 1):
        path = copy / f"max_s{s}" / "findings.json"
        saved = json.loads(path.read_text())
        saved["measured"].update(robustness_curve(0.25))
        path.write_text(json.dumps(saved))
    study.write_report(str(copy))
    row = next(r for r in report_rows((copy / "REPORT.md").read_text(), "| # | the study |") if r[0] == "22")
    assert "s0 0.25 ok" in row[4] and "s1 0.25 ok" in row[4] and row[-1] == study.VERDICTS[0]


def test_report_without_findings_is_a_clear_error(tmp_path):
    with pytest.raises(mg.UsageError, match="findings.json found"):
        study.write_report(str(tmp_path))


def test_study_refuses_a_checkpoint_of_the_wrong_task(tmp_path, capsys):
    paths = {}
    for task in ("median", "sort"):
        paths[task] = str(tmp_path / f"{task}.npz")
        mg.train(mg.Config(task=task, n=12, n_train=300, n_test=60, d_model=8, n_heads=2, d_head=4, d_mlp=16,
                           epochs=1, batch_size=100), paths[task], verbose=False)
    cases = [(["median", paths["sort"]], "task sort, but study.py median needs one of task median"),
             (["sort", paths["median"]], "task median, but study.py sort needs one of task sort"),
             (["max", paths["median"]], "needs one of task max"),
             (["add", paths["sort"]], "needs one of task add")]
    for argv, message in cases:
        assert study.main(argv) == 2, argv
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines
    assert study.main(["nonsense"]) == 2
    assert "usage" in capsys.readouterr().err


def test_readme_quotes_the_committed_reports_verdict_counts():
    """README's summary counts are the ones figures/REPORT.md computed, word for word."""
    root = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(root, "figures", "REPORT.md")) as f:
        counts = next(line for line in f if line.endswith("claims).\n"))
    with open(os.path.join(root, "README.md")) as f:
        assert counts.strip() in " ".join(f.read().split())
