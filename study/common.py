"""What the per-run drivers (addition.py, maximum.py, median_sort.py, width.py) share:
writing findings.json, the facts read off a run's history, and the analyses that max,
median and sort have in common (invariance to the order of the inputs, the line fits of q
and k, the robustness of copying)."""
import dataclasses
import json
import os

import numpy as np

import analysis as an
import arrays
import checkpoint
import minigrok as mg
import tasks
from .claims import HOLDS, holds_level

FIVE, SORT = an.FIVE, an.SORT
ALPHAS = np.round(np.linspace(0, 1, 21), 2)     # the mixing weights of the robustness curves


def open_run(path, out_dir, tasks_read, draw, untrained):
    """What each driver does first: the run at `path` (load_run), refused unless its task is
    one of tasks_read; out_dir made; and where figures go (None: none drawn)."""
    cfg, params, history, snapshots = load_run(path, untrained)
    if cfg.task not in tasks_read:
        raise mg.UsageError(f"{path} is a checkpoint of task {cfg.task}, but this analysis needs "
                            f"one of task {' or '.join(tasks_read)}")
    os.makedirs(out_dir, exist_ok=True)
    return cfg, params, history, snapshots, (out_dir if draw else None)


def load_run(path, untrained=False):
    """cfg, params, history and weight snapshots of a finished run; with untrained, the run's
    initial weights instead (init_params of its config and seed, the weights of its epoch 0),
    its history cut to the epoch-0 evaluation and no snapshots: every measure of the study
    taken again on them says what a rule gives for weights that learned nothing."""
    cfg, params, history = mg.load(path)
    if untrained:
        params = {k: arrays.to_numpy(v) for k, v in mg.init_params(cfg).items()}
        return cfg, params, {k: v[:1] for k, v in history.items()}, []
    return cfg, params, history, checkpoint.load_checkpoint(path)["snapshots"]


# Each driver reads one checkpoint, draws its figures and writes figures/<run>/findings.json:
# measured values only. Verdicts are made once, by the claims table (claims.py), from these files.
def save(out_dir, path, cfg, found):
    found = plain(found)
    with open(f"{out_dir}/findings.json", "w") as f:
        json.dump(
            {"checkpoint": path, "config": dataclasses.asdict(cfg), "measured": found}, f, indent=1
        )
    return found


def plain(x):
    """JSON-ready: NumPy scalars and arrays to Python, nan to None."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [plain(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else float(x)
    return x


def history_facts(history, found):
    found["epochs_trained"] = int(history["epoch"][-1])
    for key, thr in (
        ("train_acc", 0.99),
        ("train_acc", 1.0),
        ("test_acc", 0.1),
        ("test_acc", 0.5),
        ("test_acc", 0.99),
    ):
        found[f"epoch_{key}_{round(100 * thr)}"] = an.first_epoch(history, key, thr)
    at = found["epoch_train_acc_99"]  # test accuracy when train first reaches 99% (overfit first?)
    found["test_acc_at_train_99"] = (
        None if at is None else history["test_acc"][list(history["epoch"]).index(at)]
    )
    found["final"] = {k: v[-1] for k, v in history.items() if k not in ("epoch", "wall_s")}


def invariance(params, cfg, found):
    """Position-embedding cosines and the activations of the 120 orderings of five numbers,
    each beside its chance baseline: numbers into `found`; returns what the plots draw."""
    n, d = cfg.n, cfg.d_model
    pos_cos = an.cosine_matrix(params["W_pos"])
    chance = an.chance_cosines(d, FIVE.n_inputs + 1)
    found["pos_cosine_inputs_mean"] = float(an.mean_off_diagonal(pos_cos[FIVE.inputs, FIVE.inputs]))
    found["pos_cosine_inputs_chance"] = float(
        np.quantile(an.mean_off_diagonal(chance[:, : FIVE.n_inputs, : FIVE.n_inputs]), 0.99)
    )
    found["pos_cosine_cls_inputs_mean_abs"] = float(np.abs(pos_cos[FIVE.sep, FIVE.inputs]).mean())
    # how far the rows are from the weight-decay noise floor (a cosine of near-zero rows is noise)
    found["W_pos_row_norms"] = np.linalg.norm(params["W_pos"].astype(np.float64), axis=1)
    found["W_E_row_norm_median"] = float(
        np.median(np.linalg.norm(params["W_E"][:n].astype(np.float64), axis=1))
    )
    found["pos_cosine_cls_chance"] = float(
        np.quantile(np.abs(chance[:, -1, : FIVE.n_inputs]).mean(-1), 0.99)
    )
    rng = np.random.default_rng(0)
    example = np.sort(rng.choice(n, FIVE.n_inputs, replace=False))
    sim = an.permutation_similarity(params, example, n, cfg.task)
    found["permutation_cosine_p10"] = float(
        np.quantile(sim[~np.eye(len(sim), dtype=bool)], 0.1)
    )  # 90% of pairs at least this
    found["permutation_example"], found["permutation_cosine_min"] = example.tolist(), float(
        sim.min()
    )
    # the baseline: activations of 120 random tuples, pairs with different answers: as alike as two
    # orderings would be if order mattered as much as the answer. Raw activations share a
    # large mean,
    # so the same is done centred on it.
    n_read = tasks.LAYOUTS[cfg.task].n_read
    def acts(tokens):
        return (
            an.readout_forward(params, tokens, n_read)[1]["mlp_pre"]
            .reshape(len(tokens), -1)
            .astype(np.float64)
        )
    tokens, answers = tasks.sequences(cfg.task, rng.integers(0, n, (120, FIVE.n_inputs)), n)
    others = acts(tokens)
    off = (answers[:, None, :] != answers[None, :, :]).any(-1)  # pairs with different answers
    found["permutation_cosine_chance"] = float(np.quantile(an.cosine_matrix(others)[off], 0.99))
    mean = others.mean(0)
    found["permutation_cosine_centred_min"] = float(
        an.cosine_matrix(acts(an.orderings(example, n, cfg.task)) - mean).min()
    )
    found["permutation_cosine_centred_chance"] = float(
        np.quantile(an.cosine_matrix(others - mean)[off], 0.99)
    )
    return pos_cos, example, sim


def qk_line_analysis(params, n, found):
    """q and k of every number and their per-dimension line fits (the study's analysis; a
    number's q is never formed at the readout, where the query is CLS), and the law the key
    lines give the real CLS query: numbers into `found`."""
    q, k = an.qk_vectors(params, n)
    x = np.arange(n)
    qm, qc, qr2 = an.fit_linear(x, q)
    km, kc, kr2 = an.fit_linear(x, k)
    found["q_fit_r2_median"], found["k_fit_r2_median"] = float(np.median(qr2)), float(
        np.median(kr2)
    )
    found["q_fit_r2"], found["k_fit_r2"] = qr2.ravel(), kr2.ravel()   # per dimension (head, d_head)
    found["q_k_slopes_opposite_sign_fraction"] = float((np.sign(qm) != np.sign(km)).mean())
    small = n // 5  # 0-19 for n = 100: the under-represented numbers
    km_low, _, _ = an.fit_linear(x[:small], k[:small])
    km_high, _, _ = an.fit_linear(x[small:], k[small:])
    found["k_flatter_below_n_over_5_fraction"] = float((np.abs(km_low) < np.abs(km_high)).mean())
    fitted_table = an.qk_table(x[:, None, None] * qm + qc, x[:, None, None] * km + kc)
    found["number_query_table_fit_correlation"] = float(
        np.corrcoef(an.qk_table(q, k).ravel(), fitted_table.ravel())[0, 1]
    )
    distance = np.abs(x[:, None] - x[None, :]).ravel()  # |query number - key number|
    found["number_query_score_distance_correlation"] = float(
        np.mean([np.corrcoef(t.ravel(), distance)[0, 1] for t in an.qk_table(q, k)])
    )  # the study's table: small near the diagonal?
    # the study's table, does the score grow with the key? Per head and query number, the
    # correlation of the row with the key number; the mean (0 for a constant row)
    rows = an.qk_table(q, k).reshape(-1, n)                            # [head * query number, key]
    rc = rows - rows.mean(1, keepdims=True)
    xc = x - x.mean()
    corr = (rc @ xc) / np.maximum(np.linalg.norm(rc, axis=1) * np.linalg.norm(xc), 1e-30)
    found["number_query_score_key_correlation"] = float(corr.mean())
    q_cls = an.project(params, "W_Q", n, FIVE.sep)  # [head, d_head]: the real query
    learned = np.einsum("he,xhe->hx", q_cls, k)
    on_lines = np.einsum("he,xhe->hx", q_cls, x[:, None, None] * km + kc)
    found["cls_score_fit_correlation"] = float(np.corrcoef(learned.ravel(), on_lines.ravel())[0, 1])
    beta, x0 = an.attention_law(params, n, km, kc)
    found["attention_beta_per_head"], found["attention_x0_per_head"] = beta, x0
    found["attention_beta"], found["attention_x0"] = float(beta.mean()), float(np.median(x0))
    return x, q, k, qm, km, kc, fitted_table


def ov_robustness(alphas, accuracy_at, n_items, whole=True):
    """The alphas read, the accuracy curve over them, and where it holds at '100%' on n_items
    (holds_level). whole False (no figure to draw): the curve stops at its first value below
    both that level and revision 2's HOLDS, all that either reading needs."""
    low, curve = min(holds_level(n_items), HOLDS), []
    for a in alphas:
        curve.append(accuracy_at(a))
        if not whole and curve[-1] < low:
            break
    alphas = list(alphas[:len(curve)])
    return alphas, curve, an.holds_to(alphas, curve, holds_level(n_items))


def ordering_patterns(params, cfg, example):
    """The attention pattern over the 120 orderings of `example` and of two more random tuples
    (what plots.plot_invariance draws): [(tuple, positions by rank [120, 5], pattern)]."""
    rng = np.random.default_rng(1)  # two more tuples beside invariance's
    examples = [example] + [
        np.sort(rng.choice(cfg.n, FIVE.n_inputs, replace=False)) for _ in range(2)
    ]
    runs = []
    for ex in examples:
        tokens = an.orderings(ex, cfg.n, cfg.task)
        runs.append((ex, an.positions_by_rank(tokens[:, FIVE.inputs]),
                     an.attention_pattern(params, tokens)))
    return runs
