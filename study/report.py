"""Judging the claims and writing the report: every claim of claims.CLAIMS judged on the seeds
of its runs from figures/<run>_s<seed>/findings.json and on their untrained weights
(figures/untrained/; the verdict by claims.AGGREGATE, revision 2's beside it), the analyses
beyond the study's claims (EXTENSIONS), the circuits rebuilt by hand (CIRCUITS), and
figures/findings.json, figures/REPORT.md and STUDY.md written from them."""
import dataclasses
import glob
import re
import json
import os

import numpy as np

import analysis as an
import minigrok as mg
from .claims import (AGGREGATE, AGGREGATE_BEFORE, CLAIMS, LOG_KINDS, POLICY, REVISED, REVISED_WHEN,
                     REVISION_3, REVISION_4, SHOWN, SUBSTITUTE, VERDICTS, NotTestable,
                     claim_verdict, fmt, part_outcome, verdict_before)
from .common import plain


def load_findings(root="figures"):
    """{run: {seed: measured}} from root/<run>_s<seed>/findings.json, and 'width' for each
    seed of the width sweep (root/width/findings.json)."""
    found = {}
    for path in sorted(glob.glob(os.path.join(root, "*_s*", "findings.json"))):
        run, _, seed = os.path.basename(os.path.dirname(path)).rpartition("_s")
        if seed.isdigit():
            with open(path) as f:
                found.setdefault(run, {})[int(seed)] = json.load(f)["measured"]
    width = os.path.join(root, "width", "findings.json")
    if os.path.exists(width):
        with open(width) as f:
            w = json.load(f)["measured"]
        found["width"] = {s: w for s in sorted({s for t in w.values() for s in t["seeds"]})}
    return found


def judge_part(part, F):
    try:
        out = part.measure(F)
    except NotTestable as e:
        return {"label": part.label, "not_testable": str(e)}
    except KeyError as e:                     # findings written by an older study
        return {
            "label": part.label,
            "not_testable": f"the findings have no {e}: re-run python -m study on the checkpoint",
        }
    value, chance = out if isinstance(out, tuple) else (out, None)
    return {
        "label": part.label,
        "value": value,
        "chance": chance,
        "passes": part.rule.check(value, chance),
    }


def per_seed(parts, found, runs):
    """Each seed that all the runs have: its parts judged ({seed: [judge_part]})."""
    seeds = sorted(set.intersection(*(set(found.get(r, {})) for r in runs.values())))
    out = {}
    for s in seeds:
        F = {role: found[run][s] for role, run in runs.items()}
        F["seed"] = s
        out[str(s)] = [judge_part(p, F) for p in parts]
    return out


def outcomes(parts, seeds):
    """Per judged part its outcome over the seeds (claims.part_outcome); None: shown, or not
    testable on any seed."""
    out = []
    for i, p in enumerate(parts):
        cells = [v[i] for v in seeds.values() if "value" in v[i]]
        out.append(None if p.rule.kind == SHOWN else part_outcome(p.rule, cells))
    return out


def verdict_of_seeds(seeds):
    """Revision 2's reading: k of n seeds on which every testable judged part passes."""
    passes = [all(judged) for judged in ([c["passes"] for c in v if c.get("passes") is not None]
                                         for v in seeds.values()) if judged]
    return sum(passes), len(passes)


def judge(claim, found, runs=None, untrained=None, untrained_runs=None):
    """One claim on every seed that all its runs have: per seed its parts' values, per part
    the outcome over seeds and on the untrained weights (vacuous), and the verdict by
    AGGREGATE; beside, k of n seeds and revision 2's verdict on the same findings."""
    runs = runs or claim.runs
    missing = [r for r in runs.values() if r not in found]
    seeds = per_seed(claim.parts, found, runs)
    result = outcomes(claim.parts, seeds)
    quiet, untrained_runs = {}, untrained_runs or runs
    if untrained is not None and all(r in untrained for r in untrained_runs.values()):
        quiet = per_seed(claim.parts, untrained, untrained_runs)
    for p, r, q in zip(
        claim.parts, result, outcomes(claim.parts, quiet) if quiet else [None] * len(result)
    ):
        if r is not None:
            r["role"] = p.role
            r["untrained"] = None if p.data or q is None else q
            r["vacuous"] = bool(r["untrained"] is not None and r["untrained"]["outcome"] == "pass")
    judged = [r for r in result if r is not None]
    k, n = verdict_of_seeds(seeds)
    why = {}                                            # reason -> the seeds it holds on
    for s, v in seeds.items():
        for p in v:
            if "not_testable" in p:
                why.setdefault(p["not_testable"], []).append(f"s{s}")
    reasons = [
        r if len(seen) == len(seeds) else f"{', '.join(seen)}: {r}" for r, seen in why.items()
    ]
    if missing:
        reasons.append("no findings for " + ", ".join(missing))
    return {
        "number": claim.number,
        "study": claim.words,
        "quantity": claim.quantity,
        "runs": runs,
        "rules": [{"part": p.label, "rule": p.rule.describe(), "role": p.role,
                   "kind": p.rule.kind + (":every" if p.rule.every else "")} for p in claim.parts],
        "seeds": {s: {"parts": v} for s, v in seeds.items()},
        "parts": result,
        "k": k,
        "n": n,
        "verdict": claim_verdict(judged) if seeds else VERDICTS[4],
        "verdict_before": verdict_before(k, n),
        "not_testable": reasons,
    }


def judge_before(claim, found):
    """The claim under revision 2: its parts and runs then, its aggregation (k of n seeds)."""
    parts = claim.before or claim.parts_3 or claim.parts   # unchanged by revision 3, 4: today's
    runs = claim.runs_before or claim.runs
    if any(r not in found for r in runs.values()):
        return {"verdict": VERDICTS[4], "k": 0, "n": 0}
    k, n = verdict_of_seeds(per_seed(parts, found, runs))
    return {"verdict": verdict_before(k, n), "k": k, "n": n}


def split2_runs(claim, found):
    """The claim's runs on the second data split (<run>_split2), where every run has one."""
    runs = {role: f"{run}_split2" for role, run in claim.runs.items()}
    return runs if all(r in found for r in runs.values()) else None


def judge_all(found, untrained=None):
    rows = []
    for c in CLAIMS:
        row = judge(c, found, untrained=untrained)
        row["before"] = judge_before(c, found)
        split2 = split2_runs(c, found)
        if split2:
            # the same initial weights as the first split's seeds: their untrained reading
            row["split2"] = judge(c, found, split2, untrained, c.runs)
        if c.beside:
            row["beside"] = judge(c, found, c.beside, untrained)
        # revision 3's parts, where revision 4 changed them: the verdict then (its log)
        rev3 = (judge(dataclasses.replace(c, parts=c.parts_3), found, untrained=untrained)
                if c.parts_3 else row)
        row["revision_3"] = {k: rev3[k] for k in ("verdict", "verdict_before", "k", "n")}
        rows.append(row)
    return rows


def interval_text(kind, r, interval=True):
    """The mean over seeds and its 95% interval, on the scale the rule reads them (claims.Rule.
    statistic): a geometric mean for the order-of-magnitude and ratio rules, the margin over
    chance for the chance rules, the share of the items that pass for 'every'."""
    mean, lo, hi = r["mean"], r["lo"], r["hi"]
    label = "mean"
    if kind.endswith(":every"):
        label = "share of items passing, mean"
    elif kind in LOG_KINDS:
        label, mean, lo, hi = "geometric mean", 10 ** mean, 10 ** lo, 10 ** hi
    elif kind in ("above_chance", "not_above_chance"):
        label = "mean margin over chance"
    return f"{label} {fmt(mean)}" + (f" [{fmt(lo)}, {fmt(hi)}]" if interval else "")


def part_lines(row):
    """One line per part: per-seed values (with a mark for the seed's rule), then the mean and
    its 95% interval with the outcome, and the untrained weights' reading."""
    lines = []
    for i, rule in enumerate(row["rules"]):
        cells, chances = [], []
        for s, v in row["seeds"].items():
            p = v["parts"][i]
            if "not_testable" in p:
                cells.append(f"s{s} -")
                continue
            mark = {True: " ok", False: " no", None: ""}[p["passes"]]
            cells.append(f"s{s} {fmt(p['value'])}{mark}")
            if p["chance"] is not None:
                chances.append(p["chance"])
        text = f"{rule['part']}: {', '.join(cells) or '-'}"
        if chances:
            text += f"; chance {fmt(chances[0])}" if len(set(chances)) == 1 else \
                f"; chance {', '.join(fmt(c) for c in chances)} (per seed)"
        r = row["parts"][i] if "parts" in row else None
        if r is not None:
            stat = "" if r["mean"] is None else f"{interval_text(rule['kind'], r)}: "
            text += f"; **{stat}{r['outcome']}**" + (
                " (substitute)" if r["role"] == SUBSTITUTE else ""
            )
            u = r.get("untrained")
            if u is not None:
                ustat = "" if u["mean"] is None else f"{interval_text(rule['kind'], u, False)}, "
                text += f"; untrained: {ustat}{u['outcome']}" + (
                    " = **vacuous**" if r["vacuous"] else ""
                )
        lines.append(text)
    return lines


# The analyses beyond the study's claims (issue #15): not judged, shown per seed from findings.json.
# Each row: what is shown, the run, how its value is read from a seed's findings, the figure.
def _ablation(site, stat, key):
    return lambda f: f[f"ablation_{site}_{'key' if key else 'control'}_test_accuracy_{stat}"]


# a reader of the median's mechanism findings (median_mechanism)
_mm = lambda name, key: lambda f: f["median_mechanism"][name][key]


EXTENSIONS = [
    (
        (
            "phase boundaries from the progress measures (memorisation ends, clean-up begins,"
            " clean-up ends; Nanda et al.: 1,400 / 9,400 / 13,000)"
        ),
        "add_nanda",
        lambda f: list(f["phase_boundaries"].values()),
        "progress_measures",
    ),
    (
        "key frequencies of W_E",
        "add_nanda",
        lambda f: f["key_frequencies_embedding"],
        "embedding_fourier",
    ),
    (
        (
            "number of key frequencies at threshold factor 1 / 2 / 3 / 5 / 10 (the rule:"
            f" {an.KEY_FACTOR:g})"
        ),
        "add_nanda",
        lambda f: [f["key_frequency_count_by_factor"][k] for k in ("1", "2", "3", "5", "10")],
        "key_frequency_selection",
    ),
    (
        "test accuracy with one key frequency removed from W_E: lowest / mean",
        "add_nanda",
        lambda f: [_ablation("embedding", "min", True)(f), _ablation("embedding", "mean", True)(f)],
        "ablations",
    ),
    (
        "the same, removed from the logits: lowest / mean",
        "add_nanda",
        lambda f: [_ablation("logits", "min", True)(f), _ablation("logits", "mean", True)(f)],
        "ablations",
    ),
    (
        (
            "test accuracy with a control (non-key) frequency removed from W_E / from the logits:"
            " lowest"
        ),
        "add_nanda",
        lambda f: [_ablation("embedding", "min", False)(f), _ablation("logits", "min", False)(f)],
        "ablations",
    ),
    (
        (
            "live neurons in a key-frequency cluster (post-ReLU, > 50% of variance in one key"
            " frequency)"
        ),
        "add_nanda",
        lambda f: f["neurons_in_key_frequency_clusters_share"],
        "neuron_terms",
    ),
    (
        (
            "clustered neurons: median variance share in product terms (k, k) / in linear terms (k,"
            " 0), (0, k)"
        ),
        "add_nanda",
        lambda f: [f["neuron_product_share_median"], f["neuron_linear_share_median"]],
        "neuron_terms",
    ),
    (
        "W_L = W_out W_U: share of its squared norm in W_E's key frequencies",
        "add_nanda",
        lambda f: f["W_L_share_in_W_E_key_frequencies"],
        "W_L_fourier",
    ),
    (
        "logits: share of variance along cos(w_k (a + b - c)) of the key frequencies",
        "add_nanda",
        lambda f: f["logit_sum_share_key_total"],
        "logits_fourier",
    ),
    (
        "embedding circles: largest radius coefficient of variation over the key frequencies",
        "add_nanda",
        lambda f: max(f["embedding_circle_radius_cv"].values()),
        "embedding_circles",
    ),
    (
        (
            "max: full OV matrix (every input holding x), share of x whose top logit is x / mean"
            " probability on x"
        ),
        "max",
        lambda f: [f["ov_matrix_copy_share"], f["ov_matrix_copy_probability_mean"]],
        "ov_matrix",
    ),
    (
        (
            "sort: the same share and probability, attention forced onto one input of each real"
            " test sequence (not the all-equal tuples of max), averaged over the five steps"
        ),
        "sort",
        lambda f: [f["ov_matrix_copy_share"], f["ov_matrix_copy_probability_mean"]],
        "ov_matrix",
    ),
    (
        (
            "median: CLS score against the number, median R^2 of a parabola / of a line (per head"
            " and position)"
        ),
        "median",
        lambda f: [f["cls_score_quadratic_r2_median"], f["cls_score_line_r2_median"]],
        "qk_by_position",
    ),
    (
        "median: CLS score, fraction of fits concave (a bell) / with the vertex inside 0..n-1",
        "median",
        lambda f: [f["cls_score_concave_fraction"], f["cls_score_vertex_inside_fraction"]],
        "qk_by_position",
    ),
    (
        "median: attention weight by rank, parabola's peak rank per head (2 = the median)",
        "median",
        lambda f: f["attention_rank_quadratic_peak_per_head"],
        "attention_rank",
    ),
    (
        (
            "median: test accuracy with CLS's attention pure pooling (uniform over the inputs) /"
            " learned / all on the median / all on one fixed position (best)"
        ),
        "median",
        lambda f: [
            _mm("test", k)(f)
            for k in ("uniform", "model", "all_on_median", "all_on_one_position_best")
        ],
        "mechanism",
    ),
    (
        (
            "median: the thermometer code from CLS's residual, median held-out R^2 over t: trained"
            " / untrained weights / shuffled labels (largest)"
        ),
        "median",
        lambda f: [
            _mm("probe_trained_learned", "r2_median")(f),
            _mm("probe_initial_learned", "r2_median")(f),
            _mm("probe_trained_learned", "shuffled_r2_max")(f),
        ],
        "mechanism",
    ),
    (
        (
            "median: live MLP neurons that one count #{x_i > t} explains (R^2 > 0.8), trained /"
            " untrained; the count where the trained ones switch on or off (median)"
        ),
        "median",
        lambda f: [
            _mm("neurons_trained", "share_of_live")(f),
            _mm("neurons_initial", "share_of_live")(f),
            _mm("neurons_trained", "crossing_median")(f),
        ],
        "mechanism",
    ),
    (
        (
            "median: test accuracy with the neurons that read one count silenced / with as many"
            " other live neurons silenced (mean of 3 draws): the intervention behind the neurons'"
            " reading"
        ),
        "median",
        lambda f: [
            _mm("ablation", "without_one_count_neurons")(f),
            _mm("ablation", "without_as_many_other_neurons")(f),
        ],
        "mechanism",
    ),
    (
        (
            "median: the built circuit on the untrained weights (test accuracy): what it needs of"
            " learning"
        ),
        "median",
        _mm("test", "engineered_on_initial_weights"),
        "mechanism",
    ),
    (
        (
            "sort: share of the real query's score that is a function of key - previous output / of"
            " the key alone, per step y2..y5 (best head; over every (t, x), most of which the model"
            " never meets: the two are confounded on the pairs it does meet)"
        ),
        "sort",
        lambda f: [
            *f["sort_successor"]["eta2_key_minus_previous_best_head"],
            *f["sort_successor"]["eta2_key_best_head"],
        ],
        "successor",
    ),
    (
        (
            "sort: previous output replaced by a number not among the inputs, between y_{s+1} and"
            " y_{s+2}: answers the successor of it, per step y2..y4 / answers by rank"
        ),
        "sort",
        lambda f: [
            f["sort_successor"]["counterfactual_previous_output"][k][a]
            for a in ("answers_successor_of_t", "answers_rank")
            for k in ("y2", "y3", "y4")
        ],
        "successor",
    ),
    (
        (
            "sort: attention set by a rule, whole sequences right: the successor (no memory) / the"
            " successor with a memory of the copies used / the input of rank s / the same successor"
            " rule on the untrained weights, tokens"
        ),
        "sort",
        lambda f: [
            f["sort_successor"]["engineered"][r]["sequence_accuracy"]
            for r in ("successor", "successor_with_memory", "rank")
        ]
        + [f["sort_successor"]["engineered"]["successor_on_initial_weights"]["token_accuracy"]],
        "successor",
    ),
    (
        (
            "sort: the counterfactual previous output through the attention pattern only / through"
            " everything but it: answers the successor of it, per step y2..y4"
        ),
        "sort",
        lambda f: [
            f["sort_successor"]["counterfactual_paths"][p][k]["answers_successor_of_t"]
            for p in ("attention_only", "all_but_attention")
            for k in ("y2", "y3", "y4")
        ],
        "successor",
    ),
]


def extension_rows(found):
    """[(what, run, per-seed cells, figure)]: each seed's value, or '-' where it is missing."""
    rows = []
    for what, run, read, fig in EXTENSIONS:
        cells = []
        for s, f in sorted(found.get(run, {}).items()):
            if f.get("claims_only"):            # a run analysed for the claims only (--claims-only)
                continue
            try:
                cells.append(f"s{s} {fmt(read(f), none='n/a')}")
            except (KeyError, TypeError, AttributeError, ValueError):
                cells.append(f"s{s} -")
        rows.append((what, run, cells, fig))
    return rows


# The circuits rebuilt by hand (issue #24): for each task, what the built circuit is, which
# parts are built and which stay learned, and per seed the accuracy of the learned model, of
# the model with the built parts spliced in, of a control, and their agreement. A reader
# returns None where the run has not measured it (yet): the cell says so.
_c = lambda *keys: lambda f: _dig(f, keys)  # a reader of the circuit's numbers in a findings.json


def _dig(f, keys):
    for k in keys:
        f = f[k]
    return f


CIRCUITS = [
    (
        "add",
        "add_nanda",
        "logits = sum over the key frequencies k of alpha_k cos(w_k (a + b - c))",
        (
            "the logits' closed form: one alpha per key frequency (4-5 numbers), fitted to the"
            " model's logits; control: the same fit on as many random non-key frequencies (5"
            " draws); baseline: the most common answer. Test pairs, accuracy"
        ),
        "nothing (the whole forward pass is replaced)",
        (
            _c("circuit", "learned"),
            _c("circuit", "engineered"),
            _c("circuit", "control"),
            _c("circuit", "baseline"),
            _c("circuit", "agreement"),
        ),
    ),
    (
        "add",
        "add_nanda",
        "the same, as test loss (chance: log p)",
        "as above; loss of the learned model / the closed form / the control / uniform logits",
        "nothing",
        (
            _c("circuit", "learned_loss"),
            _c("circuit", "engineered_loss"),
            _c("circuit", "control_loss"),
            _c("circuit", "uniform_loss"),
            lambda f: None,
        ),
    ),
    (
        "max",
        "max",
        (
            "CLS's score is a line in the key number (a softmax that peaks at the maximum); OV "
            "copies the attended input"
        ),
        (
            "the numbers' keys, replaced by their fitted lines k = m x + c (2 x heads x d_head"
            " numbers); control: the lines shuffled across heads and dimensions (5 draws);"
            " baseline: attention on the best fixed position. Test set"
        ),
        "W_E, W_pos, CLS's query and key, W_V, W_O, the MLP, W_U",
        (
            _c("circuit", "test", "learned"),
            _c("circuit", "test", "engineered"),
            _c("circuit", "test", "control"),
            _c("circuit", "test", "baseline"),
            _c("circuit", "test", "engineered_agreement"),
        ),
    ),
    (
        "max",
        "max",
        "the same on the balanced test set (every answer equally often)",
        "as above",
        "as above",
        (
            _c("circuit", "balanced", "learned"),
            _c("circuit", "balanced", "engineered"),
            _c("circuit", "balanced", "control"),
            _c("circuit", "balanced", "baseline"),
            _c("circuit", "balanced", "engineered_agreement"),
        ),
    ),
    (
        "max",
        "max",
        (
            "the key lines, and a built copy in place of the whole OV path: the answer is the input"
            " with the most attention summed over heads"
        ),
        (
            "the key lines as above, and the copy map (0 numbers) in place of W_V, W_O, the MLP and"
            " W_U; control: shuffled lines with the copy map. Balanced test set (the test set:"
            " right by construction when every head's slope rises)"
        ),
        "CLS's query and own key only",
        (
            _c("circuit", "balanced", "learned"),
            _c("circuit", "balanced", "engineered_copy"),
            _c("circuit", "balanced", "control_copy"),
            _c("circuit", "balanced", "baseline"),
            _c("circuit", "balanced", "engineered_copy_agreement"),
        ),
    ),
    (
        "median",
        "median",
        (
            "near-uniform pooling; about a fifth of the MLP's neurons are each a ReLU of one "
            "count #{x_i > t}, switching where it passes between 2 and 3"
        ),
        (
            "those neurons rebuilt as ReLU(slope (count_t - crossing)), 3 numbers each, fitted on"
            " the training tuples; control: their thresholds t permuted (5 draws); baseline: the"
            " input at the best fixed position. Test set"
        ),
        "everything else: W_E, W_pos, the attention, W_V, W_O, the other neurons, W_out, W_U",
        (
            _mm("built_neurons", "learned"),
            _mm("built_neurons", "engineered"),
            _mm("built_neurons", "control"),
            _mm("built_neurons", "baseline"),
            _mm("built_neurons", "engineered_agreement"),
        ),
    ),
    (
        "median",
        "median",
        (
            "a sufficiency check, not the model's circuit: the counts are readable after "
            "uniform pooling"
        ),
        (
            "uniform attention, a linear read of the counts fitted on the training tuples ((d_model"
            " + 1) x n numbers) and 'median = number of t with count > 2.5', in place of the"
            " attention pattern, the MLP and W_U; control: the same on the run's untrained weights"
            " (it does as well); test set"
        ),
        "W_E, W_pos, W_V, W_O",
        (
            _mm("test", "model"),
            _mm("test", "engineered"),
            _mm("test", "engineered_on_initial_weights"),
            _mm("test", "all_on_one_position_best"),
            _mm("test", "engineered_agreement"),
        ),
    ),
    (
        "sort",
        "sort",
        (
            "attention at each step onto the next input in order, the OV circuit copying it;"
            " whether the query finds it as the successor of the token just written or by rank,"
            " this splice cannot tell"
        ),
        (
            "every head's attention: the smallest input above the token just written (0 numbers, no"
            " memory of which copy of a repeated input was used), decoded greedily; control:"
            " attention on a random input; baseline: on the input at the step's position. Test set,"
            " tokens"
        ),
        "W_E, W_pos, W_V, W_O, the MLP, W_U (W_Q and W_K are not used)",
        (
            lambda f: f["final"]["test_acc"],
            _c("sort_successor", "engineered", "successor", "token_accuracy"),
            _c("sort_successor", "engineered", "random", "token_accuracy"),
            _c("sort_successor", "engineered", "position", "token_accuracy"),
            _c("sort_successor", "engineered", "successor", "agreement"),
        ),
    ),
]


def circuit_rows(found):
    """[(task, mechanism, built, learned, per-seed cells)], each cell 'sN learned / built /
    control / baseline / agreement' with n/a where a value is not measured; then the mean."""
    rows = []
    for task, run, mechanism, built, learned, readers in CIRCUITS:
        cells, table = [], []
        for s, f in sorted(found.get(run, {}).items()):
            if f.get("claims_only"):
                continue
            values = []
            for read in readers:
                try:
                    values.append(read(f))
                except (KeyError, TypeError):
                    values.append(None)
            table.append(values)
            cells.append(f"s{s} " + " / ".join(fmt(v, none="n/a") for v in values))
        if len(table) > 1:
            means = [
                None if any(v is None for v in col) else float(np.mean(col)) for col in zip(*table)
            ]
            cells.append("mean " + " / ".join(fmt(v, none="n/a") for v in means))
        rows.append((task, mechanism, built, learned, cells))
    return rows


GALLERY = [
    (
        "add_nanda",
        [
            "curves",
            "progress_measures",
            "attention",
            "attention_fourier",
            "neurons",
            "neurons_fourier",
            "embedding_fourier",
            "key_frequency_selection",
            "embedding_circles",
            "ablations",
            "neuron_terms",
            "W_L_fourier",
            "logits_fourier",
            "position_symmetry",
        ],
    ),
    ("add", ["curves", "embedding_fourier", "progress_measures"]),
    (
        "max",
        [
            "curves",
            "position_cosine",
            "permutation_similarity",
            "attention_orderings",
            "qk_by_position",
            "qk_table",
            "qk_lines",
            "qk_table_fitted",
            "ov_matrix",
            "ov_forced",
            "ov_robustness",
        ],
    ),
    (
        "median",
        [
            "curves",
            "mechanism",
            "attention_rank",
            "qk_lines",
            "qk_by_position",
            "ov_matrix",
            "ov_robustness",
        ],
    ),
    (
        "sort",
        [
            "curves",
            "successor",
            "position_cosine",
            "permutation_similarity",
            "attention_orderings_step5",
            "attention_rank",
            "qk_by_position",
            "qk_decoding",
            "ov_matrix",
            "ov_robustness",
        ],
    ),
    ("sort_1head", ["attention_rank", "qk_by_position"]),
    ("sort_small", ["curves"]),
    ("add_nanda5k", ["curves"]),
]


def write_report(root="figures"):
    """figures/findings.json (the judged claims table) and figures/REPORT.md, both from
    judge_all (untrained weights' findings from root/untrained/)."""
    found = load_findings(root)
    if not found:
        raise mg.UsageError(
            f"no {root}/<run>_s<seed>/findings.json found; run make figures (it builds them first)"
        )
    untrained = load_findings(os.path.join(root, "untrained"))
    rows = judge_all(found, untrained)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    before = {v: sum(r["before"]["verdict"] == v for r in rows) for v in VERDICTS}
    rev3 = {v: sum(r["revision_3"]["verdict"] == v for r in rows) for v in VERDICTS}
    with open(os.path.join(root, "findings.json"), "w") as f:
        json.dump(
            plain(
                {
                    "policy": POLICY,
                    "revised": [REVISED_WHEN, *REVISED],
                    "revision_3": REVISION_3,
                    "revision_4": REVISION_4,
                    "aggregate": AGGREGATE,
                    "aggregate_before": AGGREGATE_BEFORE,
                    "counts": counts,
                    "counts_before": before,
                    "counts_revision_3": rev3,
                    "claims": rows,
                }
            ),
            f,
            indent=1,
        )
    esc = lambda s: str(s).replace("|", "\\|")          # a bare | would end the cell
    lines = [
        "# Reproduction report",
        "",
        "Generated by `python -m study report` (run by `make figures`) from the claims table in",
        "study/claims.py and the findings.json of every run under figures/. Each row's values and",
        (
            "verdict are computed; only the study's words and the rules written from them are"
            " typed in."
        ),
        "",
        "## Policy",
        "",
        (
            "The first rules were written from the study's words before any run of this study"
            " existed, but not blind: the previous single-seed pipeline's numbers for the same"
            " measures (commit 937c2f6) were on record. They were then revised three times with"
            " results in view (revisions 2, 3 and 4), each after an outside referee's read; all"
            " three are listed below, revisions 3 and 4 with each claim's verdict before and after"
            " them (revision 3 also with the aggregation's share of the change apart from the"
            " rules')."
        ),
        "",
    ]
    lines += [f"- {p}" for p in POLICY]
    lines += ["", REVISED_WHEN, ""] + [
        f"- claim{'s' * (',' in r.split(':')[0])} {r}" for r in REVISED
    ]
    lines += [
        "",
        "## Revision 3: the log",
        "",
        REVISION_3,
        "",
        AGGREGATE_BEFORE,
        "",
        "Before: "
        + ", ".join(f"{n} {k}" for k, n in before.items() if n)
        + "; after: "
        + ", ".join(f"{n} {k}" for k, n in rev3.items() if n)
        + ".",
        "",
        (
            "| # | what revision 3 changed in the claim's parts or runs | revision 2: its parts,"
            " its aggregation (k of n seeds) | revision 3's parts, revision 2's aggregation |"
            " revision 3 |"
        ),
        "|---|---|---|---|---|",
    ]
    for r, c in zip(rows, CLAIMS):
        b, r3 = r["before"], r["revision_3"]
        change = c.revised or "its parts and runs unchanged"
        lines.append(
            "| "
            + " | ".join(
                esc(x)
                for x in (
                    r["number"],
                    change,
                    f"{b['verdict']} ({b['k']} of {b['n']})",
                    f"{r3['verdict_before']} ({r3['k']} of {r3['n']})",
                    r3["verdict"],
                )
            )
            + " |"
        )
    lines += [
        "",
        "## Revision 4: the log",
        "",
        REVISION_4,
        "",
        "Before: "
        + ", ".join(f"{n} {k}" for k, n in rev3.items() if n)
        + "; after: "
        + ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        + ".",
        "",
        "| # | what revision 4 changed in the claim's parts | revision 3 | revision 4 |",
        "|---|---|---|---|",
    ]
    for r, c in zip(rows, CLAIMS):
        if c.revised_4:
            lines.append(
                "| "
                + " | ".join(esc(x) for x in (r["number"], c.revised_4,
                                                r["revision_3"]["verdict"], r["verdict"]))
                + " |"
            )
    lines += [
        "",
        "## Verdicts",
        "",
        AGGREGATE,
        "",
        (
            "Seeds are weight-init seeds on the first data split; `sN` marks a seed's value and"
            " `ok`/`no` whether that seed passes the part's rule; then the mean over seeds with its"
            " 95% interval and the part's outcome (bold), and the same rule on the runs' untrained"
            " initial weights (a pass there: vacuous); `-` a part that cannot be tested on that"
            " seed."
        ),
        "",
        ", ".join(f"{n} {k}" for k, n in counts.items()) + f" (of {len(rows)} claims).",
        "",
        (
            "| # | the study | measured (runs) | rule | per part: per seed; mean [95% interval]:"
            " outcome; untrained | verdict | second data split |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        runs = ", ".join(sorted(set(r["runs"].values())))
        rules = "<br>".join(f"{x['part']}" + (" (substitute)" if x["role"] == SUBSTITUTE else "")
                            + f": {x['rule']}" for x in r["rules"])
        seeds = "<br>".join(part_lines(r) + [f"cannot test: {x}" for x in r["not_testable"]])
        split2 = r.get("split2")
        second = "-" if split2 is None else f"{split2['verdict']} ({len(split2['seeds'])} seeds)"
        lines.append(
            "| "
            + " | ".join(
                esc(c)
                for c in (
                    r["number"],
                    r["study"],
                    f"{r['quantity']} ({runs})",
                    rules,
                    seeds,
                    r["verdict"],
                    second,
                )
            )
            + " |"
        )
    lines += [
        "",
        "## The second data split",
        "",
        (
            "The claims whose runs are all cheap (default addition, max, max_augment, median)"
            " judged again on a second split of the data (`--data-seed 599`, seeds 0-2; the"
            " untrained reading is the first split's, the same initial weights):"
        ),
        "",
        "| # | per part | verdict | first split |",
        "|---|---|---|---|",
    ]
    for r in rows:
        if "split2" in r:
            b = r["split2"]
            lines.append(
                "| "
                + " | ".join(
                    esc(c)
                    for c in (r["number"], "<br>".join(part_lines(b)), b["verdict"], r["verdict"])
                )
                + " |"
            )
    beside = [r for r in rows if "beside" in r]
    if beside:
        lines += [
            "",
            "## The fast default addition run, beside (not judged)",
            "",
            (
                "The addition claims are judged on Nanda et al.'s preset, the work the study"
                " reproduces (it states no setting of its own), trained to completion. The same"
                " measures on the project's fast default run (`--task add`):"
            ),
            "",
            "| # | per part | would be |",
            "|---|---|---|",
        ]
        for r in beside:
            b = r["beside"]
            seeds = "<br>".join(part_lines(b) + [f"cannot test: {x}" for x in b["not_testable"]])
            lines.append(
                "| " + " | ".join(esc(c) for c in (r["number"], seeds, b["verdict"])) + " |"
            )
    lines += [
        "",
        "## Beyond the study's claims (not judged)",
        "",
        (
            "The analyses an interpretability write-up on grokking shows, per seed, read from each"
            " run's findings.json."
        ),
        "",
        "| analysis | run | per seed | figure (seed 0) |",
        "|---|---|---|---|",
    ]
    for what, run, cells, fig in extension_rows(found):
        link = (
            f"[{fig}]({run}_s0/{fig}.png)"
            if os.path.exists(os.path.join(root, f"{run}_s0", f"{fig}.png"))
            else "-"
        )
        lines.append(
            "| " + " | ".join(esc(c) for c in (what, run, "<br>".join(cells) or "-", link)) + " |"
        )
    lines += [
        "",
        "## Circuits rebuilt by hand (not judged)",
        "",
        (
            "Each task's circuit as far as it has been found, built by hand and spliced into the"
            " model in place of the learned parts. Per seed, then the mean: the learned model / the"
            " model with the built parts / the control (the built part's parameters shuffled or"
            " random) / the best simple baseline / agreement of the built circuit with the learned"
            " model's own predictions; accuracy unless the row says otherwise."
        ),
        "",
        (
            "| task | mechanism | built by hand | kept learned | learned / built / control /"
            " baseline / agreement |"
        ),
        "|---|---|---|---|---|",
    ]
    for row in circuit_rows(found):
        lines.append(
            "| " + " | ".join(esc(c) for c in (*row[:4], "<br>".join(row[4]) or "-")) + " |"
        )
    lines += ["", "## Gallery (seed 0)", ""]
    for run, names in GALLERY:
        have = [n for n in names if os.path.exists(os.path.join(root, f"{run}_s0", f"{n}.png"))]
        if have:
            lines.append(f"### {run}")
            lines += [f"![{run} {n}]({run}_s0/{n}.png)" for n in have]
            lines.append("")
    if os.path.exists(os.path.join(root, "width", "width_sweep.png")):
        lines += ["### width", "![width sweep](width/width_sweep.png)", ""]
    with open(os.path.join(root, "REPORT.md"), "w") as f:
        f.write("\n".join(lines))
    return counts


# ============================================================================ STUDY.md
# STUDY.md is written from study/STUDY.template.md: every number in it that a run measured is a
# placeholder {{RUN KEY FORMAT [MODE]}}, filled from the findings (RUN: a run, e.g. median or
# add_nanda; KEY: a dotted path into its findings.json's measured values, list items by index;
# MODE: range (default; lowest-highest over the run's seeds), seeds (each, 's0 / s1 / ...'), s0,
# mean). `python -m study report` writes it; a test checks it is current.
PLACEHOLDER = re.compile(r"\{\{\s*(\S+)\s+(\S+)\s+(\S+)(?:\s+(\S+))?\s*\}\}")     # may span lines
FORMATS = {"pct0": lambda v: f"{100 * v:.0f}", "pct1": lambda v: f"{100 * v:.1f}",
           "pct2": lambda v: f"{100 * v:.2f}", "f1": "{:.1f}".format, "f2": "{:.2f}".format,
           "f3": "{:.3f}".format, "g2": "{:.2g}".format, "g3": fmt, "int": lambda v: f"{v:,.0f}"}


def _value(found, run, key, seed):
    """The value at the dotted path `key` in the run's findings of `seed`; a suffix :mean,
    :min or :max reduces a list (per head, per step) to one number."""
    key, _, reduce = key.partition(":")
    v = found[run][seed]
    for k in key.split("."):
        v = v[int(k)] if isinstance(v, list) else v[k]
    return getattr(np, reduce)(v) if reduce else v


def render_text(text, found):
    """text with every placeholder filled from the findings (see above)."""
    def fill(m):
        run, key, form, mode = m.group(1), m.group(2), FORMATS[m.group(3)], m.group(4) or "range"
        seeds = sorted(found[run]) if mode != "s0" else [0]
        values = []
        for s in seeds:
            try:
                values.append(_value(found, run, key, s))
            except KeyError:                   # an analysis beyond the claims, not run on this seed
                if not found[run][s].get("claims_only"):
                    raise
        if any(v is None for v in values):
            return " / ".join("never" if v is None else form(v) for v in values)
        if mode == "mean":
            return form(float(np.mean(values)))
        if mode in ("seeds", "s0"):
            return " / ".join(form(v) for v in values)
        lo, hi = form(min(values)), form(max(values))
        return lo if lo == hi else f"{lo}-{hi}"
    return PLACEHOLDER.sub(fill, text)


def write_study_md(root="figures", template=None, out="STUDY.md"):
    """STUDY.md from its template and the findings under root."""
    here = os.path.dirname(os.path.abspath(__file__))
    template = template or os.path.join(here, "STUDY.template.md")
    with open(template) as f:
        text = render_text(f.read(), load_findings(root))
    with open(out, "w") as f:
        f.write(text)
