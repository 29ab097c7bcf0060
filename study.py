"""study.py: the reproduction study, from checkpoints to figures/REPORT.md.

    python study.py add runs/add_nanda_s0.npz     # figures/add_nanda_s0/*.png and findings.json
    python study.py max runs/max_s0.npz           # likewise max, median, sort (any run of those tasks)
    python study.py width runs/width/*.npz        # the width sweep: figures/width/
    python study.py report                        # figures/findings.json and figures/REPORT.md

The study under test is Kumar, Srinivas and Garg, "Circuit engineering": one-layer
transformers grokking modular addition, and max, median and sort of five numbers. Its 34
claims (in its order) form CLAIMS below: for each, the study's words, the quantity we
measure, the runs it is measured on, and the rule, written from the study's words by the
one POLICY at the top of the claims section. A Rule both describes itself (the report's
text) and checks a value (the verdict), so findings.json and REPORT.md cannot disagree.
Every claim is judged on each seed of its runs, and the verdict follows from how many
seeds reproduce it (AGGREGATE). Nothing judged is typed in: a part that cannot be tested
says why, from the run.

Layout: per-run drivers (analyse_add, analyse_max, analyse_median_or_sort, width_sweep)
read one checkpoint each and write measured values to figures/<run>/findings.json; the
plot_* functions only draw; the helpers that compute arrays live in analysis.py.
"""
import dataclasses
import glob
import json
import math
import os
import sys
from dataclasses import dataclass

import numpy as np

import analysis as an
import minigrok as mg
import tasks

FIVE, SORT = an.FIVE, an.SORT


# ============================================================================ plots (they only draw)
COMPONENT = "frequency of {} (0: constant)"


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _grid(plt, tables, titles, suptitle, path, xlabel="b", ylabel="a", cmap="RdBu_r"):
    n = len(tables)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n + 0.6, 3.6), squeeze=False)
    for ax, t, title in zip(axes[0], tables, titles):
        from matplotlib.colors import PowerNorm
        im = ax.imshow(t, cmap=cmap, origin="lower", norm=PowerNorm(0.5) if cmap == "magma" else None)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(suptitle)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(history, bounds, path):
    plt = _plt()
    e = np.maximum(np.array(history["epoch"]), 1)
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(11, 4))
    for name in ("train", "test"):
        ax_l.plot(e, history[f"{name}_loss"], label=name)
        ax_a.plot(e, history[f"{name}_acc"], label=name)
    edges = [1, *bounds, e[-1]]
    for ax in (ax_l, ax_a):
        for (lo, hi), color, label in zip(zip(edges, edges[1:]), ("#f4d6a0", "#b9d7ea", "#c8e6c0"),
                                          ("memorisation", "circuit formation", "clean-up")):
            ax.axvspan(max(lo, 1), hi, color=color, alpha=0.5, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    ax_l.set(yscale="log", ylabel="cross-entropy loss", title="loss")
    ax_a.set(ylabel="accuracy", title="accuracy", ylim=(-0.02, 1.02))
    ax_l.legend(fontsize=8)
    fig.suptitle("Modular addition: train and test curves, phases from the progress measures")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_position_symmetry(params, sym, path):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(params["W_pos"][0], label="W_pos[0] (a)")
    ax.plot(params["W_pos"][1], label="W_pos[1] (b)")
    ax.set(xlabel="residual dimension", ylabel="value",
           title=f"Position embeddings of a and b: |difference| {sym['pos_embed_diff_norm']:.3f}, "
                 f"cosine {sym['pos_embed_cosine']:.3f}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_embedding_fourier(W_E, basis, names, freqs, path):
    """Norm of each Fourier component of W_E (one bar per basis row), key frequencies in red."""
    plt = _plt()
    norms = np.linalg.norm(an.fourier_1d(W_E.astype(np.float64), basis), axis=1)
    key = {f"{f} {k}" for k in freqs for f in ("cos", "sin")}
    fig, ax = plt.subplots(figsize=(10, 3.8))
    ax.bar(np.arange(len(norms)), norms, color=["C3" if n in key else "C0" for n in names])
    ticks = [i for i, n in enumerate(names) if n in key]
    ax.set_xticks(ticks, [names[i] for i in ticks], rotation=90, fontsize=8)
    ax.set(xlabel="Fourier component of the token (key ones labelled)", ylabel="norm of W_E component",
           title=f"W_E in the Fourier basis: norm of each component; key frequencies (red) {', '.join(map(str, freqs))}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_progress(history, measures, bounds, path):
    plt = _plt()
    e = np.maximum(measures["epoch"], 1)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    he = np.maximum(np.array(history["epoch"]), 1)
    ax = axes[0]
    ax.plot(he, history["test_loss"], label="test loss", color="k")
    ax.plot(he, history["train_loss"], label="train loss", color="grey")
    ax.plot(e, measures["restricted_loss"], label="restricted loss", color="C2")
    ax.plot(e, measures["excluded_loss"], label="excluded loss (train)", color="C3")
    ax.set(xscale="log", yscale="log", xlabel="epoch", ylabel="loss", title="restricted and excluded loss")
    ax.legend(fontsize=8)
    axes[1].plot(e, measures["gini_W_E"], label="W_E")
    axes[1].plot(e, measures["gini_W_out_U"], label="W_out @ W_U")
    axes[1].set(xscale="log", xlabel="epoch", ylabel="Gini coefficient", title="Gini of Fourier-component norms")
    axes[1].legend(fontsize=8)
    axes[2].plot(e, measures["weight_norm"])
    axes[2].set(xscale="log", xlabel="epoch", ylabel="sum of squared weights", title="total weight norm")
    for ax in axes:
        for b in bounds:
            ax.axvline(max(b, 1), color="k", ls=":", lw=1)
        ax.grid(alpha=0.3)
    fig.suptitle("Progress measures over training (dotted: phase boundaries)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_matrix(M, title, path, labels=None, xlabel="", ylabel="", annotate=False, vmin=None, vmax=None):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    im = ax.imshow(M, cmap="viridis", vmin=vmin, vmax=vmax)
    if labels is not None:
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
    if annotate:
        for i in range(M.shape[0]):
            for j in range(M.shape[1]):
                ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="w" if M[i, j] < (np.nanmax(M) + np.nanmin(M)) / 2 else "k")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_qk_lines(x, q, k, qm, km, found, path):
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(x, q[:, 0])
    axes[0].set(xlabel="number", ylabel="q dimension value", title="q of head 0, every dimension")
    axes[1].plot(x, k[:, 0])
    axes[1].set(xlabel="number", ylabel="k dimension value", title="k of head 0, every dimension")
    axes[2].scatter(qm.ravel(), km.ravel(), s=8)
    axes[2].axhline(0, color="k", lw=0.5)
    axes[2].axvline(0, color="k", lw=0.5)
    axes[2].set(xlabel="slope of q dimension", ylabel="slope of k dimension", title="fitted slopes, every head and dimension")
    fig.suptitle(f"q and k against the number: line fits (median R^2 {found['q_fit_r2_median']:.2f} for q, "
                 f"{found['k_fit_r2_median']:.2f} for k); the lines give attention = softmax({found['attention_beta']:.3f} "
                 f"(x - {found['attention_x0']:.1f}))")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_scores_by_position(scores, title, path):
    plt = _plt()
    H = scores.shape[0]
    fig, axes = plt.subplots(1, H, figsize=(3.6 * H + 0.5, 3.6), squeeze=False)
    for h, ax in enumerate(axes[0]):
        for p in range(scores.shape[1]):
            ax.plot(scores[h, p], label=f"x{p + 1}")
        ax.set(title=f"head {h}", xlabel="key number", ylabel="score" if h == 0 else "")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, title="key at", title_fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_robustness(alphas, curves, title, path):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        ax.plot(alphas, curve, "o-", label=label)
    ax.set(xlabel="fraction alpha of a competing value vector mixed in", ylabel="test accuracy",
           ylim=(-0.02, 1.02), title=title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

# ============================================================================ per-run drivers
# Each driver reads one checkpoint, draws its figures and writes figures/<run>/findings.json:
# measured values only. Verdicts are made once, by the claims table below, from these files.
def _save(out_dir, path, cfg, found):
    found = _plain(found)
    with open(f"{out_dir}/findings.json", "w") as f:
        json.dump({"checkpoint": path, "config": dataclasses.asdict(cfg), "measured": found}, f, indent=1)
    return found


def _plain(x):
    """JSON-ready: NumPy scalars and arrays to Python, nan to None."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else float(x)
    return x


def _history_facts(history, found):
    found["epochs_trained"] = int(history["epoch"][-1])
    for key, thr in (("train_acc", 0.99), ("train_acc", 1.0), ("test_acc", 0.1), ("test_acc", 0.5), ("test_acc", 0.99)):
        found[f"epoch_{key}_{round(100 * thr)}"] = an.first_epoch(history, key, thr)
    found["final"] = {k: v[-1] for k, v in history.items() if k not in ("epoch", "wall_s")}


def analyse_add(path, out_dir):
    mg.check_task(path, "add", "study.py add")
    cfg, params, history = mg.load(path)
    snapshots = mg.load_checkpoint(path)["snapshots"]
    os.makedirs(out_dir, exist_ok=True)
    p = cfg.p
    basis, names = an.fourier_basis(p)
    K = (p - 1) // 2
    plt = _plt()
    found = {"K": K, "d_model": cfg.d_model}
    _history_facts(history, found)

    logits, attn, acts = an.run_all_pairs(params, p)
    freqs = an.key_frequencies(an.frequency_norms(an.fourier_1d(params["W_E"][:p].astype(np.float64), basis)))
    fractions = an.neuron_frequency_fractions(acts.astype(np.float64), basis)
    neuron_freqs, counts = an.neuron_key_frequencies(fractions)
    found["key_frequencies_embedding"], found["n_key_frequencies_embedding"] = freqs.tolist(), len(freqs)
    found["key_frequencies_neurons"], found["n_key_frequencies_neurons"] = neuron_freqs.tolist(), len(neuron_freqs)
    found.update(an.position_symmetry(params, p))
    found["W_pos_row_norms"] = np.linalg.norm(params["W_pos"][:2].astype(np.float64), axis=1)
    found["W_E_row_norm_median"] = float(np.median(np.linalg.norm(params["W_E"][:p].astype(np.float64), axis=1)))
    found["cosine_chance_pair"] = float(np.quantile(np.abs(an.chance_cosines(cfg.d_model, 2)[:, 0, 1]), 0.99))
    found["attention_to_pos0_mean_per_head"] = attn[..., 0].mean((0, 1))
    spectra = [an.spectrum(attn[:, :, h, 0], basis) ** 2 for h in range(attn.shape[2])]
    cells = np.zeros_like(spectra[0], bool)
    for k in freqs:
        cells[k, 0] = cells[0, k] = cells[k, k] = True
    found["attention_energy_in_key_frequencies"] = float(np.mean([S[cells].sum() / S.sum() for S in spectra]))
    found["attention_energy_chance"] = float(cells.sum() / (cells.size - 1))      # energy spread evenly over the cells
    found["attention_spectrum_asymmetry"] = float(np.mean([an.spectrum_asymmetry(S) for S in spectra]))
    found["neuron_variance_in_best_frequency_median"] = float(np.median(fractions.max(0)))
    noise = np.random.default_rng(0).standard_normal((p, p, 64))
    found["neuron_best_frequency_chance"] = float(np.median(an.neuron_frequency_fractions(noise, basis).max(0)))
    live = np.flatnonzero(acts.reshape(p * p, -1).std(0) > 0)
    found["neuron_spectrum_asymmetry_median"] = float(np.median(
        [an.spectrum_asymmetry(an.spectrum(acts[:, :, i], basis) ** 2) for i in live])) if len(live) else None

    mask = an.train_mask(cfg, p)
    restricted, _ = an.restricted_and_excluded(logits.astype(np.float64), p, freqs)
    proj_logits, _, _ = an.run_all_pairs(an.embedding_on_key_frequencies(params, p, freqs), p)
    alpha, fitted, explained = an.closed_form_logits(logits.astype(np.float64), p, freqs)
    for name, lg in (("full_model", logits), ("restricted_logits", restricted),
                     ("embedding_on_key_frequencies", proj_logits), ("closed_form", fitted)):
        found[f"{name}_loss"], found[f"{name}_accuracy"] = an.loss_and_accuracy(lg, p)
    found["closed_form_alpha"] = dict(zip(map(int, freqs), map(float, alpha)))
    found["closed_form_variance_explained"] = explained
    found["full_model_test_accuracy"] = an.loss_and_accuracy(logits, p, ~mask)[1]

    bounds = (history["epoch"][-1],) * 3
    if snapshots:
        measures = an.progress_measures(snapshots, cfg, freqs)
        bounds = an.phases(history, measures)
        found["phase_boundaries"] = dict(zip(("memorisation_ends", "cleanup_begins", "cleanup_ends"), bounds))
        found["progress_measures"] = {k: v.tolist() for k, v in measures.items()}
        plot_progress(history, measures, bounds, f"{out_dir}/progress_measures.png")
    plot_curves(history, bounds, f"{out_dir}/curves.png")
    plot_position_symmetry(params, found, f"{out_dir}/position_symmetry.png")
    heads = range(attn.shape[2])
    _grid(plt, [attn[:, :, h, 0] for h in heads], [f"head {h}: mean {attn[:, :, h, 0].mean():.3f}" for h in heads],
          "Attention from '=' to position 0 (a), for every input (a, b)", f"{out_dir}/attention.png", cmap="viridis")
    _grid(plt, [an.spectrum(attn[:, :, h, 0], basis) for h in heads], [f"head {h}" for h in heads],
          "Attention to a in the 2-D Fourier basis: norm per (frequency of a, frequency of b)",
          f"{out_dir}/attention_fourier.png", xlabel=COMPONENT.format("b"), ylabel=COMPONENT.format("a"), cmap="magma")
    _grid(plt, [acts[:, :, i] for i in range(3)], [f"neuron {i}" for i in range(3)],
          "Pre-ReLU activation of the first three MLP neurons, for every input (a, b)", f"{out_dir}/neurons.png")
    _grid(plt, [an.spectrum(acts[:, :, i], basis) for i in range(3)], [f"neuron {i}" for i in range(3)],
          "First three neurons in the 2-D Fourier basis: norm per (frequency of a, frequency of b)",
          f"{out_dir}/neurons_fourier.png", xlabel=COMPONENT.format("b"), ylabel=COMPONENT.format("a"), cmap="magma")
    plot_embedding_fourier(params["W_E"][:p], basis, names, freqs, f"{out_dir}/embedding_fourier.png")
    return _save(out_dir, path, cfg, found)


def invariance(params, cfg, found):
    """Position-embedding cosines and the activations of the 120 orderings of five numbers,
    each beside its chance baseline: numbers into `found`; returns what the plots draw."""
    n, d = cfg.n, cfg.d_model
    pos_cos = an.cosine_matrix(params["W_pos"])
    chance = an.chance_cosines(d, FIVE.n_inputs + 1)
    found["pos_cosine_inputs_mean"] = float(an.mean_off_diagonal(pos_cos[FIVE.inputs, FIVE.inputs]))
    found["pos_cosine_inputs_chance"] = float(np.quantile(an.mean_off_diagonal(chance[:, :FIVE.n_inputs, :FIVE.n_inputs]), 0.99))
    found["pos_cosine_cls_inputs_mean_abs"] = float(np.abs(pos_cos[FIVE.sep, FIVE.inputs]).mean())
    found["pos_cosine_cls_chance"] = float(np.quantile(np.abs(chance[:, -1, :FIVE.n_inputs]).mean(-1), 0.99))
    rng = np.random.default_rng(0)
    example = np.sort(rng.choice(n, FIVE.n_inputs, replace=False))
    sim = an.permutation_similarity(params, example, n, cfg.task)
    found["permutation_example"], found["permutation_cosine_min"] = example.tolist(), float(sim.min())
    # the baseline: activations of 120 random tuples, pairs with different answers: as alike as two
    # orderings would be if order mattered as much as the answer. Raw activations share a large mean,
    # so the same is done centred on it.
    n_read = tasks.LAYOUTS[cfg.task].n_read
    def acts(tokens):
        return mg.forward(params, tokens, n_read)[1]["mlp_pre"][:, -n_read:].reshape(len(tokens), -1).astype(np.float64)
    tokens, answers = tasks.sequences(cfg.task, rng.integers(0, n, (120, FIVE.n_inputs)), n)
    others = acts(tokens)
    off = (answers[:, None, :] != answers[None, :, :]).any(-1)             # pairs with different answers
    found["permutation_cosine_chance"] = float(np.quantile(an.cosine_matrix(others)[off], 0.99))
    mean = others.mean(0)
    found["permutation_cosine_centred_min"] = float(an.cosine_matrix(acts(an.orderings(example, n, cfg.task)) - mean).min())
    found["permutation_cosine_centred_chance"] = float(np.quantile(an.cosine_matrix(others - mean)[off], 0.99))
    return pos_cos, example, sim


def plot_invariance(params, cfg, pos_cos, example, sim, out_dir, steps=(0,)):
    plt = _plt()
    labels = ["x1", "x2", "x3", "x4", "x5", "SEP" if cfg.task == "sort" else "CLS", "y1", "y2", "y3", "y4"]
    plot_matrix(pos_cos, "Cosine similarity of the position embeddings", f"{out_dir}/position_cosine.png",
                labels=labels[:len(pos_cos)], annotate=True, vmin=-1, vmax=1)
    plot_matrix(sim, f"Cosine similarity of pre-ReLU activations\nfor every pair of the 120 orderings of {example.tolist()}",
                f"{out_dir}/permutation_similarity.png", xlabel="ordering", ylabel="ordering")
    n_read, H = tasks.LAYOUTS[cfg.task].n_read, params["W_Q"].shape[0]
    patterns = mg.forward(params, an.orderings(example, cfg.n, cfg.task), n_read)[1]["pattern"]
    for step in steps:
        pattern = patterns[:, :, step - n_read, FIVE.inputs]
        fig, axes = plt.subplots(1, H, figsize=(3 * H + 1, 4.2), squeeze=False)
        for h, ax in enumerate(axes[0]):
            im = ax.imshow(pattern[:, h], aspect="auto", cmap="viridis", vmin=0, vmax=1)
            ax.set(title=f"head {h}", xlabel="input position", ylabel="ordering" if h == 0 else "")
        fig.colorbar(im, ax=axes[0][-1])
        where = f"the prediction of y{step + 1} (position {FIVE.sep + step})" if cfg.task == "sort" else "CLS"
        fig.suptitle(f"Attention from {where} to each input, for the 120 orderings of {example.tolist()}")
        fig.tight_layout()
        fig.savefig(f"{out_dir}/attention_orderings{'_step' + str(step + 1) if cfg.task == 'sort' else ''}.png", dpi=100)
        plt.close(fig)


def qk_line_analysis(params, n, found):
    """q and k of every number and their per-dimension line fits (the study's analysis; a
    number's q is never formed at the readout, where the query is CLS), and the law the key
    lines give the real CLS query: numbers into `found`."""
    q, k = an.qk_vectors(params, n)
    x = np.arange(n)
    qm, qc, qr2 = an.fit_linear(x, q)
    km, kc, kr2 = an.fit_linear(x, k)
    found["q_fit_r2_median"], found["k_fit_r2_median"] = float(np.median(qr2)), float(np.median(kr2))
    found["q_k_slopes_opposite_sign_fraction"] = float((np.sign(qm) != np.sign(km)).mean())
    small = n // 5                                            # 0-19 for n = 100: the under-represented numbers
    km_low, _, _ = an.fit_linear(x[:small], k[:small])
    km_high, _, _ = an.fit_linear(x[small:], k[small:])
    found["k_flatter_below_n_over_5_fraction"] = float((np.abs(km_low) < np.abs(km_high)).mean())
    fitted_table = an.qk_table(x[:, None, None] * qm + qc, x[:, None, None] * km + kc)
    found["number_query_table_fit_correlation"] = float(np.corrcoef(an.qk_table(q, k).ravel(), fitted_table.ravel())[0, 1])
    q_cls = an.project(params, "W_Q", n, FIVE.sep)                                  # [head, d_head]: the real query
    learned = np.einsum("he,xhe->hx", q_cls, k)
    on_lines = np.einsum("he,xhe->hx", q_cls, x[:, None, None] * km + kc)
    found["cls_score_fit_correlation"] = float(np.corrcoef(learned.ravel(), on_lines.ravel())[0, 1])
    beta, x0 = an.attention_law(params, n, km, kc)
    found["attention_beta_per_head"], found["attention_x0_per_head"] = beta, x0
    found["attention_beta"], found["attention_x0"] = float(beta.mean()), float(np.median(x0))
    return x, q, k, qm, km, kc, fitted_table


def ov_robustness(alphas, accuracy_at):
    curve = [accuracy_at(a) for a in alphas]
    return curve, an.holds_to(alphas, curve)


def analyse_max(path, out_dir):
    mg.check_task(path, "max", "study.py max")
    cfg, params, history = mg.load(path)
    os.makedirs(out_dir, exist_ok=True)
    plt = _plt()
    n, H = cfg.n, params["W_Q"].shape[0]
    data = tasks.make_data(cfg)
    test_tokens, test_targets = data.evals["test"]
    found = {"augmented": cfg.augment}
    _history_facts(history, found)
    found["balanced_accuracy"] = history["balanced_acc"][-1]
    plain = data.train[0][:cfg.n_train, FIVE.inputs]                   # the random tuples (augmentation comes after them)
    found["train_tuples"], found["train_max_below_n_over_5"] = len(plain), int((plain.max(1) < n // 5).sum())
    pos_cos, example, sim = invariance(params, cfg, found)
    plot_invariance(params, cfg, pos_cos, example, sim, out_dir)
    found["head_top_attention_on_max_fraction"] = an.head_picks_max(params, test_tokens)
    found["head_mean_attention_on_max"], found["head_mean_attention_on_max_runner_up_close"] = an.attention_on_max(params, test_tokens)
    cls_scores = an.scores_by_position(params, n, n, FIVE.sep)                     # [head, pos, number]: the real query
    x = np.arange(n)
    found["cls_score_key_correlation_per_head"] = np.array(
        [np.mean([np.corrcoef(cls_scores[h, j], x)[0, 1] for j in range(FIVE.n_inputs)]) for h in range(H)])

    x, q, k, qm, km, kc, fitted_table = qk_line_analysis(params, n, found)
    table = an.qk_table(q, k)
    _grid(plt, [table[h] for h in range(H)], [f"head {h}" for h in range(H)],
          "QK table of the study: a number as query (row; never formed by the model) against a key number (column)",
          f"{out_dir}/qk_table.png", xlabel="key number", ylabel="query number", cmap="viridis")
    _grid(plt, [table[0], fitted_table[0]], ["learned q, k", "q, k on their fitted lines"],
          f"Head 0's QK table, learned and recomputed from the lines", f"{out_dir}/qk_table_fitted.png",
          xlabel="key number", ylabel="query number", cmap="viridis")
    plot_qk_lines(x, q, k, qm, km, found, f"{out_dir}/qk_lines.png")
    plot_scores_by_position(cls_scores, "Max: score of the CLS query against each number at each input position",
                            f"{out_dir}/qk_by_position.png")

    acc, _ = an.ov_copy_accuracy(params, test_tokens, test_targets, n)
    bal_tokens, bal_targets = data.evals["balanced"]
    _, bal_per_value = an.ov_copy_accuracy(params, bal_tokens, bal_targets, n)
    found["ov_forced_accuracy_test"] = acc
    found["ov_forced_accuracy_balanced_per_output"] = bal_per_value
    small = n // 5
    found["ov_forced_accuracy_balanced_large_outputs"] = float(np.nanmean(bal_per_value[small:]))
    found["ov_forced_accuracy_balanced_small_outputs"] = float(np.nanmean(bal_per_value[:small]))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(np.arange(n), bal_per_value, ".-")
    ax.set(xlabel="output value (the maximum)", ylabel="accuracy", ylim=(-0.02, 1.02),
           title="OV circuit: accuracy with attention forced onto the maximum (balanced test set)")
    fig.tight_layout()
    fig.savefig(f"{out_dir}/ov_forced.png", dpi=100)
    plt.close(fig)
    curve, found["ov_copy_holds_to_alpha"] = ov_robustness(
        ALPHAS, lambda a: an.ov_copy_accuracy(params, test_tokens, test_targets, n, a)[0])
    found["ov_robustness_alpha"], found["ov_robustness_accuracy"] = ALPHAS, curve
    plot_robustness(ALPHAS, {"": curve}, "Max: robustness of copying\n(attention forced onto the maximum, the runner-up mixed in)",
                    f"{out_dir}/ov_robustness.png")
    found["model_test_accuracy"] = float((mg.forward(params, test_tokens, 1)[0][:, 0].argmax(-1) == test_targets[:, 0]).mean())
    found["engineered_test_accuracy"] = an.engineered_max_accuracy(params, test_tokens, test_targets, n, km, kc)
    found["line_law_weight_on_max"] = an.weight_on_max(an.line_attention(params, test_tokens, n, km, kc), test_tokens)
    mg.plot_history(history, f"{out_dir}/curves.png", "Max of five numbers: loss and accuracy")
    return _save(out_dir, path, cfg, found)


ALPHAS = np.round(np.linspace(0, 1, 21), 2)


def analyse_median_or_sort(path, out_dir):
    """Median and sort: invariance, attention weight by rank, QK scores of the real queries,
    line fits, OV copying and its robustness; for median the test set at each weight
    snapshot; for sort the middle output y3 alone and the previous-token intervention."""
    cfg, params, history = mg.load(path)
    if cfg.task not in ("median", "sort"):
        raise mg.UsageError(f"{path} is a {cfg.task} checkpoint; this analysis needs median or sort")
    os.makedirs(out_dir, exist_ok=True)
    plt = _plt()
    n, H = cfg.n, params["W_Q"].shape[0]
    sort = cfg.task == "sort"
    n_read = tasks.LAYOUTS[cfg.task].n_read
    tokens, targets = tasks.make_data(cfg).evals["test"]
    found = {"heads": H}
    _history_facts(history, found)
    mg.plot_history(history, f"{out_dir}/curves.png",
                    f"{cfg.task.capitalize()} of five numbers ({H} head{'s' * (H > 1)}): loss and accuracy")
    pos_cos, example, sim = invariance(params, cfg, found)
    plot_invariance(params, cfg, pos_cos, example, sim, out_dir, range(SORT.n_read) if sort else (0,))

    weights = an.attention_weight_by_rank(params, tokens, n_read)               # [step, head, rank]
    found["attention_weight_by_rank"] = weights
    found["attention_rank_fractions"] = an.attention_rank(params, tokens, n_read)
    x, q, k, qm, km, kc, _ = qk_line_analysis(params, n, found)
    plot_qk_lines(x, q, k, qm, km, found, f"{out_dir}/qk_lines.png")
    scores = an.scores_by_position(params, n, n, FIVE.sep)                      # [head, pos, number]: the SEP / CLS query
    found["sep_score_line_r2_median"] = float(np.median(an.fit_linear(x, scores.transpose(2, 0, 1))[2]))
    if sort:
        own = np.array([weights[s, :, s].max() for s in range(SORT.n_read)])    # best head, the step's own rank
        best_head = [int(weights[s, :, s].argmax()) for s in range(SORT.n_read)]
        other = np.array([np.delete(weights[s, best_head[s]], s).max() for s in range(SORT.n_read)])
        found["own_rank_weight_per_step"], found["other_rank_weight_max_per_step"] = own, other
        found["steps_own_rank_attended_most_fraction"] = float((own > other).mean())
        found["own_rank_weight_mean"] = float(own.mean())
        _, cache = mg.forward(params, tokens, SORT.n_read)
        pat = cache["pattern"][:, :, -SORT.n_read:].astype(np.float64)         # [batch, head, step, pos]
        previous = [pat[:, :, s, FIVE.sep + 1:FIVE.sep + s].sum(-1).mean() for s in range(2, SORT.n_read)]
        found["attention_on_previous_outputs_per_step"] = previous               # steps y3..y5: the outputs before the current one
        found["attention_on_previous_outputs_mean"] = float(np.mean(previous))
        found["attention_on_inputs_mean"] = float(pat[:, :, 1:, FIVE.inputs].sum(-1).mean())
        pt = an.previous_token_intervention(params, tokens, targets)
        found["previous_token_intervention"] = pt
        found["intervention_position_answer"] = float(np.mean([v["predicts_position_target"] for v in pt.values()]))
        found["intervention_successor_answer"] = float(np.mean([v["predicts_successor"] for v in pt.values()]))
        dq = an.decoding_query_scores(params, n)                                 # [step, t, head, pos, x]
        cols = dq.transpose(4, 0, 1, 2, 3)                                      # [x, ...]: one score curve per column
        found["decoding_score_line_r2_median"] = float(np.median(an.fit_polynomial_r2(x, cols, 1)))
        found["decoding_score_cubic_r2_median"] = float(np.median(an.fit_polynomial_r2(x, cols, 3)))
        logits, _ = mg.forward(params, tokens, SORT.n_read)
        y3 = logits[:, 2:3].astype(np.float64)                                   # y3, teacher-forced: the median of the five
        found["y3_test_loss"] = mg.cross_entropy(y3, targets[:, 2:3])[0]
        found["y3_test_accuracy"] = float((y3[:, 0].argmax(-1) == targets[:, 2]).mean())
        fig, axes = plt.subplots(1, H, figsize=(max(3.4 * H + 0.8, 6), 3.8), squeeze=False, layout="constrained")
        for h, ax in enumerate(axes[0]):
            im = ax.imshow(weights[:, h], cmap="viridis", vmin=0, vmax=1)
            ax.set(title=f"head {h}", xlabel="rank (0 = smallest)", ylabel="predicting y1..y5" if h == 0 else "",
                   yticks=range(SORT.n_read), yticklabels=[f"y{i}" for i in range(1, SORT.n_read + 1)])
        fig.colorbar(im, ax=axes[0].tolist(), label="mean attention weight (test set)")
        fig.suptitle("Sort: mean attention weight on the input of each rank, at each prediction step")
        fig.savefig(f"{out_dir}/attention_rank.png", dpi=100)
        plt.close(fig)
        title = "Sort: score of the SEP query (predicting y1) against each number at each input position"
    else:
        found["median_weight_best_head"] = float(weights[0, :, FIVE.n_inputs // 2].max())
        found["largest_rank_weight_best_head"] = float(weights[0].max())
        ck = mg.load_checkpoint(path)
        found["snapshot_test"] = {}
        for epoch, snap in ck["snapshots"]:
            lg, _ = mg.forward(snap, tokens, 1)
            found["snapshot_test"][str(epoch)] = {"test_loss": mg.cross_entropy(lg.astype(np.float64), targets)[0],
                                                  "test_acc": float((lg[:, 0].argmax(-1) == targets[:, 0]).mean())}
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for h in range(H):
            ax.plot(range(FIVE.n_inputs), weights[0, h], "o-", label=f"head {h}")
        ax.set_xticks(range(FIVE.n_inputs))
        ax.set(xlabel="rank of the input (0 = smallest, 2 = median)", ylabel="mean attention weight",
               title="Median: mean attention weight from CLS on each rank", ylim=(0, 1))
        ax.legend()
        fig.tight_layout()
        fig.savefig(f"{out_dir}/attention_rank.png", dpi=100)
        plt.close(fig)
        title = "Median: score of the CLS query against each number at each input position"
    plot_scores_by_position(scores, title, f"{out_dir}/qk_by_position.png")
    table = an.qk_table(q, k)
    _grid(plt, [table[h] for h in range(H)], [f"head {h}" for h in range(H)],
          "QK table of the study: a number as query (row; never formed at CLS/SEP) against a key number (column)",
          f"{out_dir}/qk_table.png", xlabel="key number", ylabel="query number", cmap="viridis")

    target_rank = list(range(FIVE.n_inputs)) if sort else [FIVE.n_inputs // 2]
    other_rank = [r + 1 if r < 4 else r - 1 for r in target_rank]
    curve, found["ov_copy_holds_to_alpha"] = ov_robustness(
        ALPHAS, lambda a: an.rank_copy_accuracy(params, tokens, targets, target_rank, other_rank, a))
    found["ov_forced_accuracy"] = curve[0]
    found["ov_robustness_alpha"], found["ov_robustness_accuracy"] = ALPHAS, curve
    plot_robustness(ALPHAS, {"": curve}, f"{cfg.task.capitalize()}: robustness of copying\n"
                    f"(attention forced onto the answer's input, a neighbour in rank mixed in)", f"{out_dir}/ov_robustness.png")
    return _save(out_dir, path, cfg, found)


# ============================================================================ width sweep
GROKKED = {"add": 0.99, "median": 0.9}   # test accuracy that counts as generalised, for time-to-grok


def converged(history, last=0.2, change=0.25):
    """Has the test loss settled? It changed by at most `change` (relative) over the last
    `last` fraction of the run's evaluations."""
    loss = np.array(history["test_loss"])
    i = max(0, min(int(len(loss) * (1 - last)), len(loss) - 2))     # the evaluation where the last fifth starts
    return bool(abs(np.log(loss[-1]) - np.log(loss[i])) <= np.log(1 + change))


def width_sweep(paths, out_dir):
    """Per task, width and seed: final test loss, whether it converged, and the epoch it
    generalised (time-to-grok); per seed the width with the lowest converged loss."""
    plt = _plt()
    os.makedirs(out_dir, exist_ok=True)
    runs = {}
    for path in paths:
        cfg, _, history = mg.load(path)
        runs.setdefault(cfg.task, {})[(cfg.d_model, cfg.seed)] = {
            "final_test_loss": history["test_loss"][-1], "converged": converged(history),
            "time_to_grok": an.first_epoch(history, "test_acc", GROKKED[cfg.task]), "epochs": history["epoch"][-1]}
    found = {}
    fig, axes = plt.subplots(2, len(runs), figsize=(5.5 * len(runs), 7.5), squeeze=False)
    for col, (task, by) in enumerate(sorted(runs.items())):
        widths, seeds = sorted({w for w, _ in by}), sorted({s for _, s in by})
        best = {}
        for s in seeds:
            ok = {w: by[(w, s)]["final_test_loss"] for w in widths if (w, s) in by and by[(w, s)]["converged"]}
            best[str(s)] = min(ok, key=ok.get) if ok else None
        found[task] = {"widths": widths, "seeds": seeds, "grokked_at_test_acc": GROKKED[task],
                       "runs": {f"d{w}_s{s}": v for (w, s), v in sorted(by.items())}, "best_width_per_seed": best}
        for row, key, label in ((0, "final_test_loss", "final test loss"), (1, "time_to_grok", f"epoch test acc >= {GROKKED[task]}")):
            ax = axes[row][col]
            for s in seeds:
                pts = [(w, by[(w, s)][key], by[(w, s)]["converged"]) for w in widths if (w, s) in by and by[(w, s)][key] is not None]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"seed {s}", alpha=0.8)
                ax.scatter([p[0] for p in pts if not p[2]], [p[1] for p in pts if not p[2]], marker="x", color="k", zorder=3)
            ax.set(xscale="log", yscale="log" if row == 0 else "linear", xlabel="d_model", ylabel=label, title=f"{task}: {label}")
            ax.set_xticks(widths, [str(w) for w in widths])
            ax.set_xticks([], minor=True)
            ax.grid(alpha=0.3)
        axes[0][col].legend(fontsize=8, title="x: not converged", title_fontsize=7)
    fig.suptitle("Width sweep (4 heads, d_mlp 512; the same epochs for every width of a task)")
    fig.tight_layout()
    fig.savefig(f"{out_dir}/width_sweep.png", dpi=100)
    plt.close(fig)
    found = _plain(found)
    with open(f"{out_dir}/findings.json", "w") as f:
        json.dump({"runs": list(paths), "measured": found}, f, indent=1)
    return found
# ============================================================================ the rule policy
# Written from the study's words, without this study's runs (none had been made); the previous,
# single-seed pipeline's numbers (figures/REPORT.md at commit 937c2f6) were on record and in
# view, which REPORT.md says. Every rule below is
# one of these kinds; its text in REPORT.md comes from Rule.describe(), its verdict from
# Rule.check(), so the report and findings.json cannot disagree.
POLICY = [
    "'about X' (a number): within +-25% of X.",
    "'about X%' (an accuracy): within +-5 percentage points of X.",
    "'~1eK' (an order of magnitude): at most sqrt(10) x 1eK (that order of magnitude, or smaller).",
    "a range 'A-B': A <= value <= B, as the study states it.",
    "'close', 'similar', 'invariant' (cosines): above the chance level, the 99th percentile of the same statistic "
    "for random Gaussian vectors of the same dimension and count (for activations: of random inputs with different answers).",
    "'nearly perpendicular': not above that chance level (random vectors are already nearly perpendicular, so this "
    "test cannot tell learned orthogonality from chance; the level is shown).",
    "'(almost) exclusively' / 'never': a mean attention weight of at least 90% / at most 5%.",
    "'every', 'each': the rule holds for at least 90% of the items (heads, dimensions, steps); 'most': for more than half.",
    "'near perfect': accuracy at least 95%; 'trains', 'generalises': test accuracy at least 90% (whole sequences for sort).",
    "'periodic', 'sparse', 'a few frequencies': more than half of the non-constant Fourier energy (or variance) in "
    "one or a few frequencies, a few being more than none and at most a tenth of the (p-1)/2.",
    "'symmetric': relative asymmetry ||S - S^T|| / ||S|| at most 10%.",
    "'a (roughly) straight line': median R^2 of the line fits at least 0.8; 'not linear': median line R^2 below 0.9; "
    "'polynomial': median R^2 of a cubic at least 0.8.",
    "'grows with': correlation with the number above 0.5; 'close' (a table recomputed from fits): correlation at least 0.9.",
    "'better', 'worse', 'rather than': the direction of the comparison.",
    "'marginally': a change of at most 2 percentage points either way.",
    "'no interpretation', 'hard to interpret': the simple reading tested here fails (no head puts a mean attention "
    "weight of 0.5 on one input rank; lines fit with R^2 below 0.8).",
]
VERDICTS = ("reproduced", "partly", "not reproduced", "not testable")   # the only place verdict words are written
AGGREGATE = ("Each claim is judged on every seed: a seed reproduces it when every part that can be tested there "
             "passes its rule. With k of n testable seeds: {0} if k >= ceil(2n/3), {1} if k >= 1, {2} if k = 0; "
             "{3} if no seed can be tested (the reason is computed and shown).").format(*VERDICTS)


def verdict(k, n):
    """k of n seeds reproduce a claim -> the overall verdict, by AGGREGATE."""
    if n == 0:
        return VERDICTS[3]
    return VERDICTS[0] if k >= math.ceil(2 * n / 3) else VERDICTS[1] if k >= 1 else VERDICTS[2]


@dataclass(frozen=True)
class Rule:
    """One rule of the policy: kind and its parameters. every: the value is a list (per
    head, step, ...) and the rule must hold for at least EVERY of its items."""
    kind: str
    a: float = None
    b: float = None
    every: bool = False

    def describe(self):
        a, b = _fmt(self.a), _fmt(self.b)
        text = {"about": lambda: f"within +-25% of {a} ({_fmt(0.75 * self.a)} to {_fmt(1.25 * self.a)})",
                "about_points": lambda: f"within +-5 points of {_fmt(100 * self.a)}%",
                "order_of": lambda: f"at most sqrt(10) x {a} = {_fmt(math.sqrt(10) * self.a)}",
                "range": lambda: f"between {a} and {b}",
                "few": lambda: "more than 0 and at most 10% of the frequencies",
                "at_least": lambda: f">= {a}", "at_most": lambda: f"<= {a}", "above": lambda: f"> {a}",
                "below": lambda: f"< {a}", "equals": lambda: f"= {a}",
                "above_chance": lambda: "above the chance level", "not_above_chance": lambda: "not above the chance level",
                "shown": lambda: "shown, not judged"}[self.kind]()
        return text + (f", for every item (at least {EVERY:.0%})" if self.every else "")

    def check(self, value, chance=None):
        """True if value passes (every: the items that pass are at least EVERY of them); None for 'shown'."""
        if self.kind == "shown":
            return None
        if self.every:
            items = [self.check_one(v, chance) for v in value]
            return bool(np.mean(items) >= EVERY)
        return self.check_one(value, chance)

    def check_one(self, v, chance):
        if v is None:                          # never happened (e.g. never reached 99%): fails
            return False
        a, b = self.a, self.b
        return bool({"about": lambda: abs(v - a) <= 0.25 * abs(a), "about_points": lambda: abs(v - a) <= 0.05,
                     "order_of": lambda: v <= math.sqrt(10) * a, "range": lambda: a <= v <= b, "few": lambda: 0 < v <= 0.1,
                     "at_least": lambda: v >= a, "at_most": lambda: v <= a, "above": lambda: v > a, "below": lambda: v < a,
                     "equals": lambda: v == a, "above_chance": lambda: v > chance,
                     "not_above_chance": lambda: v <= chance}[self.kind]())


EVERY = 0.9


class NotTestable(Exception):
    """A part of a claim that cannot be measured on this run; the message is its computed reason."""


def need(ok, reason):
    if not ok:
        raise NotTestable(reason)


@dataclass(frozen=True)
class Part:
    label: str          # what is measured
    measure: object     # F -> value, or (value, chance level); F maps a role to that run's findings
    rule: Rule


@dataclass(frozen=True)
class Claim:
    number: int
    words: str          # the study's words (its claim list, in its order)
    quantity: str       # how it is measured, in words
    runs: dict          # role -> run name: figures/<run>_s<seed>/findings.json ('width': figures/width)
    parts: tuple
    beside: dict = None # another run shown beside, not judged (the fast default addition run)


ABOUT, PTS, ORDER, RANGE, FEW = "about", "about_points", "order_of", "range", "few"
AT_LEAST, AT_MOST, ABOVE, BELOW, EQUALS, CHANCE, NOT_CHANCE, SHOWN = (
    "at_least", "at_most", "above", "below", "equals", "above_chance", "not_above_chance", "shown")
STUDY_CUT = 20 / 100          # the study's 'below 20' of numbers 0..99, as a fraction of n


def _reached(f, key, window_end):
    """The epoch f[key] records; a run too short to have reached the window's end cannot tell 'never'."""
    need(f[key] is not None or f["epochs_trained"] >= window_end,
         f"not reached in {f['epochs_trained']} epochs, fewer than the {window_end:,.0f} the window reaches")
    return f[key]


def _w_pos_testable(f):
    a, b = f["W_pos_row_norms"]
    need(min(a, b) >= f["W_E_row_norm_median"] / 10,
         f"W_pos rows at the weight-decay noise floor: norms {_fmt(a)}, {_fmt(b)} against W_E's median row norm "
         f"{_fmt(f['W_E_row_norm_median'])} (under a tenth of it)")


def _no_number_query(task):
    lay = tasks.LAYOUTS[task]
    raise NotTestable(f"the model never forms this query: it reads queries only at position(s) "
                      f"{list(range(lay.first_read, lay.n_ctx))} (tasks.LAYOUTS; CLS/SEP and the outputs), so a number "
                      f"at x1 is only ever a key")


def _median_at_sort_epochs(F):
    e = F["sort"]["epochs_trained"]
    snap = F["median"].get("snapshot_test", {}).get(str(e))
    need(snap is not None, f"the median run has no weights at epoch {e} (the sort run's length)")
    return snap


def _width_best(F, task):
    best = F["width"].get(task, {}).get("best_width_per_seed", {}).get(str(F["seed"]))
    need(best is not None, f"no {task} width run of this seed converged")
    return best


def _width_column(F, task, key):
    """One value per width of the sweep (in the order of its widths) for this seed."""
    w = F["width"].get(task)
    need(w is not None, f"no {task} width runs")
    return [w["runs"].get(f"d{d}_s{F['seed']}", {}).get(key) for d in w["widths"]]


CLAIMS = [
    Claim(1, "Loss curves show grokking: it begins around epoch 10k and ends around 15k (their setup).",
          "first epoch with test accuracy >= 10% (begins) and >= 99% (ends)", {"add": "add_nanda"},
          (Part("begins", lambda F: _reached(F["add"], "epoch_test_acc_10", 1.25 * 10000), Rule(ABOUT, 10000)),
           Part("ends", lambda F: _reached(F["add"], "epoch_test_acc_99", 1.25 * 15000), Rule(ABOUT, 15000))),
          beside={"add": "add"}),
    Claim(2, "Position embeddings 0 and 1 are close but not equal: norm of the difference 0.766, cosine similarity 0.617.",
          "|W_pos[0] - W_pos[1]| and their cosine (chance: 99th percentile |cosine| of two random vectors)", {"add": "add_nanda"},
          (Part("|difference|", lambda F: (_w_pos_testable(F["add"]), F["add"]["pos_embed_diff_norm"])[1], Rule(ABOUT, 0.7655)),
           Part("cosine", lambda F: (_w_pos_testable(F["add"]), (F["add"]["pos_embed_cosine"], F["add"]["cosine_chance_pair"]))[1],
                Rule(ABOUT, 0.6173))), beside={"add": "add"}),
    Claim(3, "The model is commutative: largest difference of neuron activations between (x, y) and (y, x) is about 1e-5.",
          "max |pre-ReLU activation(a, b) - activation(b, a)| over all p^2 inputs", {"add": "add_nanda"},
          (Part("max difference", lambda F: F["add"]["swap_max_abs_diff"], Rule(ORDER, 1e-5)),
           Part("relative to the largest activation", lambda F: F["add"]["swap_max_abs_diff_relative"], Rule(SHOWN))),
          beside={"add": "add"}),
    Claim(4, "The = token pays about equal attention (~0.5) to positions 0 and 1, in every head.",
          "mean attention from '=' to position 0, per head, over all p^2 inputs", {"add": "add_nanda"},
          (Part("per head", lambda F: F["add"]["attention_to_pos0_mean_per_head"], Rule(ABOUT, 0.5, every=True)),),
          beside={"add": "add"}),
    Claim(5, "Attention to position 0, as a function of (x, y), is periodic.",
          "share of the attention table's non-constant 2-D Fourier energy in the cells (k,0), (0,k), (k,k) of W_E's key "
          "frequencies k, mean over heads (chance: the share of those cells)", {"add": "add_nanda"},
          (Part("energy share", lambda F: (F["add"]["attention_energy_in_key_frequencies"], F["add"]["attention_energy_chance"]),
                Rule(ABOVE, 0.5)),), beside={"add": "add"}),
    Claim(6, "Neuron activations after the MLP's up-projection are periodic in (x, y).",
          "median over neurons of the variance share in the neuron's best frequency (chance: the same for random tables)",
          {"add": "add_nanda"},
          (Part("median share", lambda F: (F["add"]["neuron_variance_in_best_frequency_median"], F["add"]["neuron_best_frequency_chance"]),
                Rule(ABOVE, 0.5)),), beside={"add": "add"}),
    Claim(7, "In the 2-D Fourier basis, attention and neuron activations are sparse: a few frequencies, symmetric in (x, y).",
          "the neurons' key frequencies as a share of the (p-1)/2; asymmetry of the attention spectra (mean over heads) and of "
          "the neurons' (median)", {"add": "add_nanda"},
          (Part("neuron key frequencies / (p-1)/2", lambda F: F["add"]["n_key_frequencies_neurons"] / F["add"]["K"], Rule(FEW)),
           Part("attention asymmetry", lambda F: F["add"]["attention_spectrum_asymmetry"], Rule(AT_MOST, 0.1)),
           Part("neuron asymmetry", lambda F: F["add"]["neuron_spectrum_asymmetry_median"], Rule(AT_MOST, 0.1))),
          beside={"add": "add"}),
    Claim(8, "W_E in the Fourier basis: only about 5 frequencies are important.",
          "key frequencies of W_E: share of its Fourier norm above 5x the uniform share", {"add": "add_nanda"},
          (Part("key frequencies", lambda F: F["add"]["n_key_frequencies_embedding"], Rule(ABOUT, 5)),),
          beside={"add": "add"}),
    Claim(9, "Max generalises without first overfitting (no grokking); sort does not generalise at the original data size; "
             "a 10x larger training set fixes sort.",
          "max: epoch of test accuracy >= 99% minus epoch of train accuracy >= 99%; sort's test sequence accuracy with a "
          "tenth of the training set (the same optimiser steps) and with all of it",
          {"max": "max", "small": "sort_small", "sort": "sort"},
          (Part("max: test 99% minus train 99% (epochs)", lambda F: None if None in (F["max"]["epoch_test_acc_99"], F["max"]["epoch_train_acc_99"])
                else F["max"]["epoch_test_acc_99"] - F["max"]["epoch_train_acc_99"], Rule(AT_MOST, 0)),
           Part("sort, 1/10 data: sequence accuracy", lambda F: F["small"]["final"]["test_seq_acc"], Rule(BELOW, 0.9)),
           Part("sort, all data: sequence accuracy", lambda F: F["sort"]["final"]["test_seq_acc"], Rule(AT_LEAST, 0.9)))),
    Claim(10, "Random 5-tuples rarely have small maxima (about 10 of 40k below 20); augmenting training with small-number "
              "tuples raises accuracy on the augmented test set from ~85% to ~95%.",
          "training tuples with max below n/5, per 40k; final accuracy on the test set balanced over answers, without and "
          "with --augment", {"max": "max", "aug": "max_augment"},
          (Part("per 40k below n/5", lambda F: 40000 * F["max"]["train_max_below_n_over_5"] / F["max"]["train_tuples"], Rule(ABOUT, 10)),
           Part("balanced accuracy, plain", lambda F: F["max"]["balanced_accuracy"], Rule(PTS, 0.85)),
           Part("balanced accuracy, augmented", lambda F: F["aug"]["balanced_accuracy"], Rule(PTS, 0.95)))),
    Claim(11, "Sort is learned better than median on the same data: ~10x lower loss and ~+5 points accuracy.",
          "sort's middle output y3 (the median; teacher-forced) against the median run at the same epoch, same data: "
          "median loss / y3 loss, and y3 accuracy minus median accuracy", {"sort": "sort", "median": "median"},
          (Part("loss ratio", lambda F: _median_at_sort_epochs(F)["test_loss"] / F["sort"]["y3_test_loss"], Rule(ABOUT, 10)),
           Part("accuracy gain", lambda F: F["sort"]["y3_test_accuracy"] - _median_at_sort_epochs(F)["test_acc"], Rule(ABOUT, 0.05)))),
    Claim(12, "Width sweep: final test loss is best at d_model = 32 for addition (bias-variance U shape), and at d_model = 512 "
              "for median.",
          "per seed, the width with the lowest final test loss among the runs that converged (test loss changed <= 25% over "
          "the last fifth), the same epochs for every width; time-to-grok and convergence shown per width (widths in "
          "figures/width)", {"width": "width"},
          (Part("addition: best width", lambda F: _width_best(F, "add"), Rule(EQUALS, 32)),
           Part("median: best width", lambda F: _width_best(F, "median"), Rule(EQUALS, 512)),
           Part("widths", lambda F: F["width"]["add"]["widths"], Rule(SHOWN)),
           Part(f"addition: epoch of test accuracy >= {GROKKED['add']:.0%}, by width", lambda F: _width_column(F, "add", "time_to_grok"),
                Rule(SHOWN)),
           Part(f"median: epoch of test accuracy >= {GROKKED['median']:.0%}, by width",
                lambda F: _width_column(F, "median", "time_to_grok"), Rule(SHOWN)),
           Part("addition: converged, by width", lambda F: _width_column(F, "add", "converged"), Rule(SHOWN)),
           Part("median: converged, by width", lambda F: _width_column(F, "median", "converged"), Rule(SHOWN)))),
    Claim(13, "A special data set of edge cases improves performance only marginally.",
          "max: final accuracy on the random test set with --augment minus without", {"max": "max", "aug": "max_augment"},
          (Part("change", lambda F: F["aug"]["final"]["test_acc"] - F["max"]["final"]["test_acc"], Rule(RANGE, -0.02, 0.02)),)),
    Claim(14, "Max: position embeddings of the 5 inputs are close to each other and nearly perpendicular to CLS.",
          "mean cosine of the inputs' W_pos rows; mean |cosine| of CLS's with them (chance: random vectors)", {"max": "max"},
          (Part("inputs mean cosine", lambda F: (F["max"]["pos_cosine_inputs_mean"], F["max"]["pos_cosine_inputs_chance"]), Rule(CHANCE)),
           Part("CLS mean |cosine|", lambda F: (F["max"]["pos_cosine_cls_inputs_mean_abs"], F["max"]["pos_cosine_cls_chance"]),
                Rule(NOT_CHANCE)))),
    Claim(15, "Max: pre-ReLU activations for all 120 orderings of 5 numbers have cosine similarity close to 1: order does not matter.",
          "smallest cosine of CLS's pre-ReLU activations over pairs of orderings (also centred on the mean activation of "
          "120 random tuples); chance: 99th percentile over pairs of those tuples with different answers (pairs with the "
          "same answer have cosines near 1 whatever the order)", {"max": "max"},
          (Part("min cosine", lambda F: (F["max"]["permutation_cosine_min"], F["max"]["permutation_cosine_chance"]), Rule(CHANCE)),
           Part("min cosine, centred", lambda F: (F["max"]["permutation_cosine_centred_min"],
                                                  F["max"]["permutation_cosine_centred_chance"]), Rule(SHOWN)))),
    Claim(16, "Max: every head at CLS attends (almost) exclusively to the position holding the largest number.",
          "mean attention weight from CLS on the maximum's position(s), per head, test set", {"max": "max"},
          (Part("mean weight per head", lambda F: F["max"]["head_mean_attention_on_max"], Rule(AT_LEAST, 0.9, every=True)),
           Part("when the runner-up is max-1", lambda F: F["max"]["head_mean_attention_on_max_runner_up_close"], Rule(SHOWN)),
           Part("argmax on the maximum", lambda F: F["max"]["head_top_attention_on_max_fraction"], Rule(SHOWN)))),
    Claim(17, "QK: the un-normalised score for (query number, key number) grows with the key; near the diagonal the difference is small.",
          "the real query (CLS) against every number at each input position: correlation of the score with the number, per head",
          {"max": "max"},
          (Part("CLS score vs key number, per head", lambda F: F["max"]["cls_score_key_correlation_per_head"], Rule(ABOVE, 0.5, every=True)),
           Part("near the diagonal (a number as query)", lambda F: _no_number_query("max"), Rule(SHOWN)))),
    Claim(18, "Each dimension of q and of k is roughly a straight line in the input number; a dimension increasing in q is "
              "decreasing in k; numbers 0-20 are under-represented and flat.",
          "per-dimension line fits of k (numbers at the inputs) and of q (a number at CLS's position: never formed by the "
          "model, the study's analysis); sign of the slopes; k slope on 0..n/5 against n/5..n", {"max": "max"},
          (Part("k median R^2", lambda F: F["max"]["k_fit_r2_median"], Rule(AT_LEAST, 0.8)),
           Part("q median R^2", lambda F: F["max"]["q_fit_r2_median"], Rule(AT_LEAST, 0.8)),
           Part("q, k slopes of opposite sign", lambda F: F["max"]["q_k_slopes_opposite_sign_fraction"], Rule(AT_LEAST, 0.9)),
           Part("k flatter below n/5", lambda F: F["max"]["k_flatter_below_n_over_5_fraction"], Rule(ABOVE, 0.5)))),
    Claim(19, "Fitting y = m x + c per dimension gives attention = softmax(0.15 (x - 59.53)): 0.15 acts as an inverse "
              "temperature, 59.5 is the centre of the effective data (20-100).",
          "the CLS query against the fitted key lines: beta (mean over heads) and x0 (median). x0 cancels in the softmax over "
          "the five inputs, softmax(beta (x - x0)) = softmax(beta x); it sets only the weight against CLS's own key",
          {"max": "max"},
          (Part("beta", lambda F: F["max"]["attention_beta"], Rule(ABOUT, 0.15)),
           Part("x0", lambda F: F["max"]["attention_x0"], Rule(ABOUT, 59.53)),
           Part("mean weight on the max: the lines' law, per head", lambda F: F["max"]["line_law_weight_on_max"], Rule(SHOWN)),
           Part("mean weight on the max: the model, per head", lambda F: F["max"]["head_mean_attention_on_max"], Rule(SHOWN)))),
    Claim(20, "The score table recomputed from the fitted lines is close to the original.",
          "correlation of the CLS query's scores against learned keys and against keys on the fitted lines (all heads)",
          {"max": "max"},
          (Part("CLS scores, correlation", lambda F: F["max"]["cls_score_fit_correlation"], Rule(AT_LEAST, 0.9)),
           Part("number-query table (study's), correlation", lambda F: F["max"]["number_query_table_fit_correlation"], Rule(SHOWN)),
           Part("engineered model, test accuracy", lambda F: F["max"]["engineered_test_accuracy"], Rule(SHOWN)))),
    Claim(21, "The OV circuit copies: with attention on the right position, accuracy is near perfect except for 0-20.",
          "accuracy with every head's attention forced onto the maximum, balanced test set, outputs >= n/5 and below", {"max": "max"},
          (Part("outputs >= n/5", lambda F: F["max"]["ov_forced_accuracy_balanced_large_outputs"], Rule(AT_LEAST, 0.95)),
           Part("outputs < n/5", lambda F: F["max"]["ov_forced_accuracy_balanced_small_outputs"], Rule(BELOW, 0.95)))),
    Claim(22, "Copying is robust: 20-30% of a competing value vector can be mixed in before accuracy drops from 100%.",
          "largest alpha (steps of 0.05) of the runner-up mixed into the forced attention with test accuracy >= 99%", {"max": "max"},
          (Part("holds to alpha", lambda F: F["max"]["ov_copy_holds_to_alpha"], Rule(RANGE, 0.2, 0.3)),)),
    Claim(23, "Median: loss curves (it trains, with worse loss than sort).",
          "median's final test accuracy; its test loss over sort's y3 loss at the same epoch", {"median": "median", "sort": "sort"},
          (Part("test accuracy", lambda F: F["median"]["final"]["test_acc"], Rule(AT_LEAST, 0.9)),
           Part("loss / sort's", lambda F: _median_at_sort_epochs(F)["test_loss"] / F["sort"]["y3_test_loss"], Rule(ABOVE, 1)))),
    Claim(24, "Median: no interpretation found for the attention pattern.",
          "the simple readings: the largest mean attention weight any head puts on one input rank; the key lines' median R^2",
          {"median": "median"},
          (Part("largest weight on one rank", lambda F: F["median"]["largest_rank_weight_best_head"], Rule(BELOW, 0.5)),
           Part("k line R^2", lambda F: F["median"]["k_fit_r2_median"], Rule(BELOW, 0.8)))),
    Claim(25, "Median: the OV circuit is still robust.",
          "largest alpha of the next-ranked input mixed into attention forced onto the median with accuracy >= 99% "
          "('still': at least the max claim's lower end, 0.2)", {"median": "median"},
          (Part("holds to alpha", lambda F: F["median"]["ov_copy_holds_to_alpha"], Rule(AT_LEAST, 0.2)),)),
    Claim(26, "Sort: loss and accuracy curves (it trains).", "sort's final test sequence accuracy (greedy decoding)", {"sort": "sort"},
          (Part("sequence accuracy", lambda F: F["sort"]["final"]["test_seq_acc"], Rule(AT_LEAST, 0.9)),)),
    Claim(27, "Sort: position embeddings of the first five positions are very similar (positional invariance).",
          "mean cosine of the inputs' W_pos rows (chance: random vectors)", {"sort": "sort"},
          (Part("inputs mean cosine", lambda F: (F["sort"]["pos_cosine_inputs_mean"], F["sort"]["pos_cosine_inputs_chance"]), Rule(CHANCE)),)),
    Claim(28, "Sort: neuron activations are invariant to the ordering of the input.",
          "smallest cosine of the pre-ReLU activations at the five readouts over the 120 orderings (also centred, as in "
          "claim 15); chance: pairs of random tuples with different answers", {"sort": "sort"},
          (Part("min cosine", lambda F: (F["sort"]["permutation_cosine_min"], F["sort"]["permutation_cosine_chance"]), Rule(CHANCE)),
           Part("min cosine, centred", lambda F: (F["sort"]["permutation_cosine_centred_min"],
                                                  F["sort"]["permutation_cosine_centred_chance"]), Rule(SHOWN)))),
    Claim(29, "Sort: when predicting the last output, heads attend most to the position holding the maximum; the step before "
              "attends to the second largest, and so on.",
          "at each step, does the best head's largest mean attention weight fall on the input of the step's rank", {"sort": "sort"},
          (Part("steps attending their rank most", lambda F: F["sort"]["steps_own_rank_attended_most_fraction"], Rule(AT_LEAST, EVERY)),
           Part("that weight, per step", lambda F: F["sort"]["own_rank_weight_per_step"], Rule(SHOWN)))),
    Claim(30, "Sort: the current token attends only to the inputs (and one other position, per head), never to previously "
              "predicted tokens.",
          "attention weight on the outputs before the current one, mean over heads and test inputs, steps predicting y3..y5",
          {"sort": "sort"},
          (Part("on previous outputs", lambda F: F["sort"]["attention_on_previous_outputs_mean"], Rule(AT_MOST, 0.05)),
           Part("on the inputs", lambda F: F["sort"]["attention_on_inputs_mean"], Rule(SHOWN)))),
    Claim(31, "Sort: the prediction depends on the position being predicted rather than on 'the smallest number larger than "
              "the current one'.",
          "replace y_s by y_(s+1) at its position: share of answers y_(s+1) (positional) minus y_(s+2) (successor)", {"sort": "sort"},
          (Part("positional minus successor", lambda F: F["sort"]["intervention_position_answer"] - F["sort"]["intervention_successor_answer"],
                Rule(ABOVE, 0)),)),
    Claim(32, "Sort: a one-head model is still hard to interpret.",
          "the one-head model's mean attention weight on the step's own rank (mean over steps); its SEP score line R^2",
          {"one": "sort_1head"},
          (Part("weight on own rank", lambda F: F["one"]["own_rank_weight_mean"], Rule(BELOW, 0.5)),
           Part("SEP score line R^2", lambda F: F["one"]["sep_score_line_r2_median"], Rule(BELOW, 0.8)))),
    Claim(33, "Sort: QK scores against input values look polynomial rather than linear; no pattern when the second number "
              "moves to other positions.",
          "the real queries (the previous output at each decoding position) against every number at each input: median R^2 "
          "of a line and of a cubic in the key number", {"sort": "sort"},
          (Part("line R^2", lambda F: F["sort"]["decoding_score_line_r2_median"], Rule(BELOW, 0.9)),
           Part("cubic R^2", lambda F: F["sort"]["decoding_score_cubic_r2_median"], Rule(AT_LEAST, 0.8)),
           Part("second number moved (x1 as query)", lambda F: _no_number_query("sort"), Rule(SHOWN)))),
    Claim(34, "Sort: OV copying is robust to 30-40% of a competing value vector.",
          "largest alpha of the next-ranked input mixed into attention forced onto each answer's input with accuracy >= 99%",
          {"sort": "sort"},
          (Part("holds to alpha", lambda F: F["sort"]["ov_copy_holds_to_alpha"], Rule(RANGE, 0.3, 0.4)),)),
]


# ============================================================================ judging the claims
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
    except KeyError as e:                     # findings written by an older study.py
        return {"label": part.label, "not_testable": f"the findings have no {e}: re-run study.py on the checkpoint"}
    value, chance = out if isinstance(out, tuple) else (out, None)
    return {"label": part.label, "value": value, "chance": chance, "passes": part.rule.check(value, chance)}


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
    reasons = sorted({p["not_testable"] for v in per_seed.values() for p in v["parts"] if "not_testable" in p})
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


def _fmt(x):
    if x is None:
        return "never"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, float) and abs(x) >= 1000 and x == int(x):
        return f"{int(x):,}"
    if isinstance(x, float):
        return f"{x:.3g}"
    if isinstance(x, int) and abs(x) >= 10000:
        return f"{x:,}"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    return str(x)


def _median(values):
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
            cells.append(f"s{s} {_fmt(p['value'])}{mark}")
            values.append(p["value"])
            if p["chance"] is not None:
                chances.append(p["chance"])
        med = _median(values)
        extra = (f"; median {_fmt(med)}" if med is not None and len(values) > 1 else "") + \
                (f"; chance {_fmt(max(chances))}" if chances else "")
        lines.append(f"{rule['part']}: {', '.join(cells) or '-'}{extra}")
    return lines


GALLERY = [("add_nanda", ["curves", "attention", "attention_fourier", "neurons", "neurons_fourier", "embedding_fourier",
                          "position_symmetry", "progress_measures"]),
           ("add", ["curves", "embedding_fourier", "progress_measures"]),
           ("max", ["curves", "position_cosine", "permutation_similarity", "attention_orderings", "qk_by_position", "qk_table",
                    "qk_lines", "qk_table_fitted", "ov_forced", "ov_robustness"]),
           ("median", ["curves", "attention_rank", "qk_lines", "qk_by_position", "ov_robustness"]),
           ("sort", ["curves", "position_cosine", "permutation_similarity", "attention_orderings_step5", "attention_rank",
                     "qk_by_position", "ov_robustness"]),
           ("sort_1head", ["attention_rank", "qk_by_position"]),
           ("sort_small", ["curves"])]


def write_report(root="figures"):
    """figures/findings.json (the judged claims table) and figures/REPORT.md, both from judge_all."""
    found = load_findings(root)
    if not found:
        raise mg.UsageError(f"no {root}/<run>_s<seed>/findings.json found; run make figures (it builds them first)")
    rows = judge_all(found)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    with open(os.path.join(root, "findings.json"), "w") as f:
        json.dump(_plain({"policy": POLICY, "aggregate": AGGREGATE, "counts": counts, "claims": rows}), f, indent=1)
    esc = lambda s: str(s).replace("|", "\\|")          # a bare | would end the cell
    lines = ["# Reproduction report", "",
             "Generated by `python study.py report` (run by `make figures`) from the claims table in study.py and the",
             "findings.json of every run under figures/. Each row's values and verdict are computed; only the study's",
             "words and the rules written from them are typed in.", "",
             "## Policy", "", "Rules are written from the study's words by these readings, before any run of this study "
             "was made; the previous single-seed pipeline's numbers (commit 937c2f6) were on record when they were "
             "written.", ""]
    lines += [f"- {p}" for p in POLICY]
    lines += ["", AGGREGATE, "", "Seeds are weight-init seeds (the data split is fixed); `sN` marks a seed's value, `ok`/`no` "
              "whether it passes the part's rule, `-` a part that cannot be tested there.", "",
              "## Verdicts", "", ", ".join(f"{n} {k}" for k, n in counts.items()) + f" (of {len(rows)} claims).", "",
              "| # | the study | measured (runs) | rule | per seed | k of n | verdict |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        runs = ", ".join(sorted(set(r["runs"].values())))
        rules = "<br>".join(f"{x['part']}: {x['rule']}" for x in r["rules"])
        seeds = "<br>".join(part_lines(r) + [f"cannot test: {x}" for x in r["not_testable"]])
        lines.append("| " + " | ".join(esc(c) for c in (r["number"], r["study"], f"{r['quantity']} ({runs})", rules, seeds,
                                                         f"{r['k']} of {r['n']}", r["verdict"])) + " |")
    beside = [r for r in rows if "beside" in r]
    if beside:
        lines += ["", "## The fast default addition run, beside (not judged)", "",
                  "The addition claims are judged on the study's own setting (Nanda et al.'s preset, trained to completion). "
                  "The same measures on the project's fast default run (`--task add`):", "",
                  "| # | per seed | k of n | would be |", "|---|---|---|---|"]
        for r in beside:
            b = r["beside"]
            seeds = "<br>".join(part_lines(b) + [f"cannot test: {x}" for x in b["not_testable"]])
            lines.append("| " + " | ".join(esc(c) for c in (r["number"], seeds, f"{b['k']} of {b['n']}", b["verdict"])) + " |")
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


# ============================================================================ command line
DRIVERS = {"add": analyse_add, "max": analyse_max, "median": analyse_median_or_sort, "sort": analyse_median_or_sort}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    usage = ("study: usage: python study.py {add,max,median,sort} CHECKPOINT.npz [OUT_DIR] | width RUN.npz ... | report "
             "(OUT_DIR defaults to figures/<checkpoint name>)")
    try:
        if argv[:1] == ["width"] and len(argv) > 1:
            width_sweep(argv[1:], "figures/width")
            print("figures/width/width_sweep.png and findings.json")
            return 0
        if argv == ["report"]:
            print(f"figures/REPORT.md and figures/findings.json: {write_report()}")
            return 0
        if len(argv) not in (2, 3) or argv[0] not in DRIVERS:
            print(usage, file=sys.stderr)
            return 2
        out_dir = argv[2] if len(argv) == 3 else os.path.join("figures", os.path.splitext(os.path.basename(argv[1]))[0])
        mg.check_task(argv[1], argv[0], f"study.py {argv[0]}")
        DRIVERS[argv[0]](argv[1], out_dir)
    except mg.UsageError as e:
        print(f"study: error: {e}", file=sys.stderr)
        return 2
    print(f"figures and findings.json in {out_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
