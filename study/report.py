"""Judging the claims and writing the report: every claim of claims.CLAIMS judged on every
seed of its runs from figures/<run>_s<seed>/findings.json (k of n seeds, the verdict by
claims.AGGREGATE), the analyses beyond the study's claims (EXTENSIONS), the circuits rebuilt
by hand (CIRCUITS), and figures/findings.json and figures/REPORT.md written from them."""
import glob
import json
import os

import numpy as np

import analysis as an
import minigrok as mg
from .claims import (
    AGGREGATE,
    CLAIMS,
    POLICY,
    REVISED,
    REVISED_WHEN,
    VERDICTS,
    NotTestable,
    fmt,
    verdict,
)
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


def judge(claim, found, runs=None):
    """One claim on every seed that all its runs have: per seed its parts' values and
    verdicts, then k of n and the overall verdict."""
    runs = runs or claim.runs
    missing = [r for r in runs.values() if r not in found]
    seeds = sorted(set.intersection(*(set(found.get(r, {})) for r in runs.values())))
    per_seed = {}
    for s in seeds:
        F = {role: found[run][s] for role, run in runs.items()}
        F["seed"] = s
        parts = [judge_part(p, F) for p in claim.parts]
        judged = [p["passes"] for p in parts if p.get("passes") is not None]
        per_seed[str(s)] = {"parts": parts, "passes": all(judged) if judged else None}
    testable = [v["passes"] for v in per_seed.values() if v["passes"] is not None]
    k, n = sum(testable), len(testable)
    why = {}                                            # reason -> the seeds it holds on
    for s, v in per_seed.items():
        for p in v["parts"]:
            if "not_testable" in p:
                why.setdefault(p["not_testable"], []).append(f"s{s}")
    reasons = [
        r if len(seen) == len(per_seed) else f"{', '.join(seen)}: {r}" for r, seen in why.items()
    ]
    if missing:
        reasons.append("no findings for " + ", ".join(missing))
    return {"number": claim.number, "study": claim.words, "quantity": claim.quantity, "runs": runs,
            "rules": [{"part": p.label, "rule": p.rule.describe()} for p in claim.parts],
            "seeds": per_seed, "k": k, "n": n, "verdict": verdict(k, n), "not_testable": reasons}


def judge_all(found):
    rows = []
    for c in CLAIMS:
        row = judge(c, found)
        if c.beside:
            row["beside"] = judge(c, found, c.beside)
        rows.append(row)
    return rows


def _median(values):
    """The median over seeds of numbers; None for anything else (a head's index means nothing
    across seeds, so per-head lists get none)."""
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return float(np.median(nums)) if nums and len(nums) == len(values) else None


def part_lines(row):
    """One line per part: per-seed values (with a mark for the rule), the median, chance."""
    lines = []
    for i, rule in enumerate(row["rules"]):
        cells, values, chances = [], [], []
        for s, v in row["seeds"].items():
            p = v["parts"][i]
            if "not_testable" in p:
                cells.append(f"s{s} -")
                continue
            mark = {True: " ok", False: " no", None: ""}[p["passes"]]
            cells.append(f"s{s} {fmt(p['value'])}{mark}")
            values.append(p["value"])
            if p["chance"] is not None:
                chances.append(p["chance"])
        med = _median(values)
        extra = (f"; median {fmt(med)}" if med is not None and len(values) > 1 else "") + \
                (f"; chance {fmt(chances[0])}" if chances and len(set(chances)) == 1 else
                 f"; chance {', '.join(fmt(c) for c in chances)} (per seed)" if chances else "")
        lines.append(f"{rule['part']}: {', '.join(cells) or '-'}{extra}")
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
CIRCUITS = [
    (
        "add",
        "add_nanda",
        "logits = sum over the key frequencies k of alpha_k cos(w_k (a + b - c))",
        (
            "the logits' closed form: one alpha per key frequency (4-5 numbers), fitted to the"
            " model's logits"
        ),
        "nothing (the whole forward pass is replaced)",
        (
            lambda f: f["final"]["test_acc"],
            lambda f: f["closed_form_accuracy"],
            lambda f: None,
            lambda f: None,
        ),
    ),
    (
        "max",
        "max",
        (
            "CLS's score is a line in the key number (a softmax that peaks at the maximum); OV"
            " copies it"
        ),
        (
            "the keys of the numbers, replaced by their fitted lines k = m x + c (2 x heads x"
            " d_head numbers)"
        ),
        "W_E and W_pos, CLS's query and key, W_V, W_O, the MLP, W_U",
        (
            lambda f: f["model_test_accuracy"],
            lambda f: f["engineered_test_accuracy"],
            lambda f: None,
            lambda f: None,
        ),
    ),
    (
        "median",
        "median",
        (
            "near-uniform pooling; about a fifth of the MLP's neurons are each a ReLU of one count"
            " #{x_i > t}, switching where it passes between 2 and 3 (silencing them: see the rows"
            " above)"
        ),
        (
            "not the model's circuit, a sufficiency check: uniform attention, a linear read of the"
            " counts fitted on the training tuples ((d_model + 1) x n numbers) and the rule 'median"
            " = number of t with count > 2.5', in place of the attention pattern, the MLP and W_U"
        ),
        "W_E, W_pos, W_V, W_O",
        (
            _mm("test", "model"),
            _mm("test", "engineered"),
            _mm("test", "engineered_on_initial_weights"),
            lambda f: None,
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
            " memory of which copy of a repeated input was used), decoded greedily"
        ),
        "W_E, W_pos, W_V, W_O, the MLP, W_U (W_Q and W_K are not used)",
        (
            lambda f: f["final"]["test_acc"],
            lambda f: f["sort_successor"]["engineered"]["successor"]["token_accuracy"],
            lambda f: f["sort_successor"]["engineered"]["random"]["token_accuracy"],
            lambda f: f["sort_successor"]["engineered"]["successor"]["agreement"],
        ),
    ),
]


def circuit_rows(found):
    """[(task, mechanism, built, learned, per-seed cells)], each cell 'sN learned / built /
    control / agreement' with n/a where a value is not measured."""
    rows = []
    for task, run, mechanism, built, learned, readers in CIRCUITS:
        cells = []
        for s, f in sorted(found.get(run, {}).items()):
            values = []
            for read in readers:
                try:
                    values.append(fmt(read(f), none="n/a"))
                except (KeyError, TypeError):
                    values.append("n/a")
            cells.append(f"s{s} " + " / ".join(values))
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
]


def write_report(root="figures"):
    """figures/findings.json (the judged claims table) and figures/REPORT.md, both from
    judge_all."""
    found = load_findings(root)
    if not found:
        raise mg.UsageError(
            f"no {root}/<run>_s<seed>/findings.json found; run make figures (it builds them first)"
        )
    rows = judge_all(found)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    with open(os.path.join(root, "findings.json"), "w") as f:
        json.dump(
            plain(
                {
                    "policy": POLICY,
                    "revised": [REVISED_WHEN, *REVISED],
                    "aggregate": AGGREGATE,
                    "counts": counts,
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
        (
            "Generated by `python -m study report` (run by `make figures`) from the claims table in"
            " study/claims.py and the"
        ),
        (
            "findings.json of every run under figures/. Each row's values and verdict are computed;"
            " only the study's"
        ),
        "words and the rules written from them are typed in.",
        "",
        "## Policy",
        "",
        (
            "Rules are written from the study's words by these readings, before any run of this"
            " study was made; the previous single-seed pipeline's numbers (commit 937c2f6) were on"
            " record when they were written."
        ),
        "",
    ]
    lines += [f"- {p}" for p in POLICY]
    lines += ["", REVISED_WHEN, ""] + [
        f"- claim{'s' * (',' in r.split(':')[0])} {r}" for r in REVISED
    ]
    lines += [
        "",
        AGGREGATE,
        "",
        (
            "Seeds are weight-init seeds (the data split is fixed); `sN` marks a seed's value,"
            " `ok`/`no` whether it passes the part's rule, `-` a part that cannot be tested there."
        ),
        "",
        "## Verdicts",
        "",
        ", ".join(f"{n} {k}" for k, n in counts.items()) + f" (of {len(rows)} claims).",
        "",
        "| # | the study | measured (runs) | rule | per seed | k of n | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        runs = ", ".join(sorted(set(r["runs"].values())))
        rules = "<br>".join(f"{x['part']}: {x['rule']}" for x in r["rules"])
        seeds = "<br>".join(part_lines(r) + [f"cannot test: {x}" for x in r["not_testable"]])
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
                    f"{r['k']} of {r['n']}",
                    r["verdict"],
                )
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
                "The addition claims are judged on the study's own setting (Nanda et al.'s preset,"
                " trained to completion). The same measures on the project's fast default run"
                " (`--task add`):"
            ),
            "",
            "| # | per seed | k of n | would be |",
            "|---|---|---|---|",
        ]
        for r in beside:
            b = r["beside"]
            seeds = "<br>".join(part_lines(b) + [f"cannot test: {x}" for x in b["not_testable"]])
            lines.append(
                "| "
                + " | ".join(
                    esc(c) for c in (r["number"], seeds, f"{b['k']} of {b['n']}", b["verdict"])
                )
                + " |"
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
            " model in place of the learned parts. Per seed: test accuracy of the learned model /"
            " of the model with the built parts / of a control / agreement of the built circuit"
            " with the learned model's predictions; n/a: not measured yet (for the median, trivial:"
            " the check is always right). The control: for sort, attention on a random input; for"
            " the median, the same check on the run's untrained initial weights, where it does as"
            " well: it shows the information suffices, not what training learned; addition and max:"
            " not measured yet."
        ),
        "",
        (
            "| task | mechanism | built by hand | kept learned | per seed: learned / built /"
            " control / agreement |"
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
