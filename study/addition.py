"""The driver for modular addition: every measurement of the study's claims 1-8 and of the
analyses beyond them (Nanda et al.'s Fourier circuit, its progress measures and phases, the
frequency ablations, the closed form of the logits), from one checkpoint."""

import numpy as np

import analysis as an
import minigrok as mg
from .common import history_facts, open_run, save
from .plots import (
    COMPONENT,
    plot_ablations,
    plot_curves,
    plot_embedding_circles,
    plot_embedding_fourier,
    plot_grid,
    plot_key_frequency_selection,
    plot_logit_map_fourier,
    plot_logits_fourier,
    plot_neuron_terms,
    plot_position_symmetry,
    plot_progress,
    png,
)

NANDA_PHASES = {
    "memorisation ends": 1400,
    "clean-up begins": 9400,
    "clean-up ends": 13000,
}  # their Fig. 7
KEY_FACTORS = (
    1,
    2,
    3,
    4,
    5,
    6,
    8,
    10,
    15,
)  # threshold factors at which the key-frequency count is reported


def history_pairs(cfg):
    """How many of the p^2 pairs the run trained on, written with a thousands comma."""
    return f"{cfg.n_train or int(cfg.frac_train * cfg.p ** 2):,}"


def setting(cfg):
    return "Nanda et al.'s preset" if nanda_preset(cfg) else "the default run"


def nanda_preset(cfg):
    """Is the run Nanda et al.'s setting (their preset, any length or bookkeeping)?"""
    return all(getattr(cfg, k) == v for k, v in mg.PRESETS["nanda"].items()
               if k not in ("epochs", "eval_every", "snapshot_every"))


def analyse_add(path, out_dir, draw=True, untrained=False, extensions=True):
    """figures/<run>/findings.json, and with draw the figures beside it (untrained: the
    measures on the run's initial weights, common.load_run)."""
    cfg, params, history, snapshots, figs = open_run(path, out_dir, ("add",), draw, untrained)
    p = cfg.p
    basis, names = an.fourier_basis(p)
    K = (p - 1) // 2
    found = {"K": K, "d_model": cfg.d_model}
    history_facts(history, found)
    found["claims_only"] = not extensions or untrained

    logits, attn, acts = an.run_all_pairs(params, p)
    W_E = params["W_E"][:p].astype(np.float64)
    E_norms = an.frequency_norms(an.fourier_1d(W_E, basis))  # squared norm per frequency [K]
    freqs = an.key_frequencies(E_norms)
    fractions = an.neuron_frequency_fractions(acts.astype(np.float64), basis)
    neuron_freqs, counts = an.neuron_key_frequencies(fractions)
    found["key_frequencies_embedding"], found["n_key_frequencies_embedding"] = freqs.tolist(), len(
        freqs
    )
    found["key_frequencies_neurons"], found["n_key_frequencies_neurons"] = (
        neuron_freqs.tolist(),
        len(neuron_freqs),
    )
    found.update(an.position_symmetry(params, p))
    # claim 3's 'difference' as the study most likely printed it: the signed mean over all pairs,
    # zero whatever the weights (each pair's difference cancels its swap's)
    found["swap_signed_mean_diff"] = float(
        (acts - acts.transpose(1, 0, 2)).astype(np.float64).mean())
    found["swap_mean_abs_diff"] = float(
        np.abs(acts - acts.transpose(1, 0, 2)).mean()
    )  # claim 3: the study names no statistic
    post_swap = np.abs(
        np.maximum(acts, 0) - np.maximum(acts, 0).transpose(1, 0, 2)
    )  # after the ReLU (mlp_post)
    found["swap_post_relu_max_abs_diff"], found["swap_post_relu_mean_abs_diff"] = float(
        post_swap.max()
    ), float(post_swap.mean())
    found["W_pos_row_norms"] = np.linalg.norm(params["W_pos"][:2].astype(np.float64), axis=1)
    found["W_E_row_norm_median"] = float(
        np.median(np.linalg.norm(params["W_E"][:p].astype(np.float64), axis=1))
    )
    found["cosine_chance_pair"] = float(
        np.quantile(np.abs(an.chance_cosines(cfg.d_model, 2)[:, 0, 1]), 0.99)
    )
    found["attention_to_pos0_mean_per_head"] = attn[..., 0].mean((0, 1))
    spectra = [an.spectrum(attn[:, :, h, 0], basis) ** 2 for h in range(attn.shape[2])]
    cells = np.zeros_like(spectra[0], bool)
    for k in freqs:
        cells[k, 0] = cells[0, k] = cells[k, k] = True
    found["attention_energy_in_key_frequencies"] = float(
        np.mean([S[cells].sum() / S.sum() for S in spectra])
    )
    found["attention_energy_chance"] = float(
        cells.sum() / (cells.size - 1)
    )  # energy spread evenly over the cells
    found["attention_spectrum_asymmetry"] = float(
        np.mean([an.spectrum_asymmetry(S) for S in spectra])
    )
    found["neuron_variance_in_best_frequency_median"] = float(np.median(fractions.max(0)))
    noise = np.random.default_rng(0).standard_normal((p, p, 64))
    found["neuron_best_frequency_chance"] = float(
        np.median(an.neuron_frequency_fractions(noise, basis).max(0))
    )
    live = np.flatnonzero(acts.reshape(p * p, -1).std(0) > 0)
    found["neuron_spectrum_asymmetry_median"] = (
        float(
            np.median([an.spectrum_asymmetry(an.spectrum(acts[:, :, i], basis) ** 2) for i in live])
        )
        if len(live)
        else None
    )

    mask = an.train_mask(cfg, p)
    restricted, _ = an.restricted_and_excluded(logits.astype(np.float64), p, freqs)
    proj_logits = an.all_pair_logits(an.embedding_on_key_frequencies(params, p, freqs), p)
    alpha, fitted, explained = an.closed_form_logits(logits.astype(np.float64), p, freqs)
    for name, lg in (("full_model", logits), ("restricted_logits", restricted),
                     ("embedding_on_key_frequencies", proj_logits), ("closed_form", fitted)):
        found[f"{name}_loss"], found[f"{name}_accuracy"] = an.loss_and_accuracy(lg, p)
    found["closed_form_alpha"] = dict(zip(map(int, freqs), map(float, alpha)))
    found["closed_form_variance_explained"] = explained
    found["full_model_test_accuracy"] = an.loss_and_accuracy(logits, p, ~mask)[1]
    if extensions and not untrained:       # the closed form in place of the model, and its control
        found["circuit"] = an.add_circuit(logits.astype(np.float64), p, freqs, ~mask)

    bounds = None
    if snapshots and extensions:
        measures = an.progress_measures(snapshots, cfg, freqs)
        bounds = an.phases(measures)
        found["phase_boundaries"] = dict(
            zip(("memorisation_ends", "cleanup_begins", "cleanup_ends"), bounds)
        )
        found["phase_rule"] = (
            "memorisation ends at the snapshot with the lowest excluded loss (train inputs);"
            " circuit formation ends (clean-up begins) at the first later snapshot where the"
            f" restricted loss is <= {an.CIRCUIT_FORMED:g} of its value then; clean-up ends when"
            f" the Gini of W_E and the total weight norm both stay within {an.SETTLED:g} of their"
            " range (from clean-up's start) of their final values"
        )
        found["phase_cleanup_settled_before_the_end"] = bool(bounds[2] < measures["epoch"][-1])
        found["phase_settle_epochs"] = {
            k: an.settle_epoch(measures["epoch"], measures[k], bounds[1])
            for k in ("gini_W_E", "weight_norm")
        }
        found["snapshot_epochs_step"] = (
            int(np.diff(measures["epoch"]).min()) if len(measures["epoch"]) > 1 else None
        )
        found["phase_boundaries_nanda_paper"] = NANDA_PHASES if nanda_preset(cfg) else None
        found["progress_measures"] = {k: v.tolist() for k, v in measures.items()}
        plot_progress(history, measures, bounds, png(figs, "progress_measures"),
                      reference=NANDA_PHASES if nanda_preset(cfg) else None)
    plot_curves(
        history,
        bounds,
        png(figs, "curves"),
        f"Modular addition ({setting(cfg)}, p {p}, {history_pairs(cfg)} training pairs, seed"
        f" {cfg.seed}):\ntrain and test curves"
        + (
            ", phases from the progress measures (shaded)"
            if bounds is not None
            else " (no snapshots: no phases)"
        ),
    )
    plot_position_symmetry(params, found, png(figs, "position_symmetry"))
    heads = range(attn.shape[2])
    plot_grid(
        [attn[:, :, h, 0] for h in heads],
        [f"head {h}: mean {attn[:, :, h, 0].mean():.3f}" for h in heads],
        "Attention from '=' to position 0 (a), for every input (a, b)",
        png(figs, "attention"),
        cmap="viridis",
        cbar_label="attention weight on a",
        shared=True,
    )
    plot_grid(
        [an.spectrum(attn[:, :, h, 0], basis) for h in heads],
        [f"head {h}" for h in heads],
        "Attention to a in the 2-D Fourier basis: norm per (frequency of a, frequency of b)",
        png(figs, "attention_fourier"),
        xlabel=COMPONENT.format("b"),
        ylabel=COMPONENT.format("a"),
        cmap="magma",
        cbar_label="norm of the components (mean removed)",
        shared=True,
    )
    plot_grid(
        [acts[:, :, i] for i in range(3)],
        [f"neuron {i}" for i in range(3)],
        "Pre-ReLU activation of the first three MLP neurons, for every input (a, b)",
        png(figs, "neurons"),
        cbar_label="pre-ReLU activation",
        shared=True,
    )
    plot_grid(
        [an.spectrum(acts[:, :, i], basis) for i in range(3)],
        [f"neuron {i}" for i in range(3)],
        "First three neurons (pre-ReLU) in the 2-D Fourier basis: norm per (frequency of a,"
        " frequency of b)",
        png(figs, "neurons_fourier"),
        xlabel=COMPONENT.format("b"),
        ylabel=COMPONENT.format("a"),
        cmap="magma",
        cbar_label="norm of the components (mean removed)",
        shared=True,
    )
    plot_embedding_fourier(
        np.linalg.norm(an.fourier_1d(W_E, basis), axis=1),
        names,
        freqs,
        png(figs, "embedding_fourier"),
    )

    if not extensions or untrained:    # the rest is beyond the study's claims
        return save(out_dir, path, cfg, found)

    # key-frequency selection: the share of W_E's squared norm per frequency, and the count at
    # other thresholds
    found["key_frequency_rule"] = f"share of W_E's squared norm > {an.KEY_FACTOR:g} / K (K = {K})"
    found["W_E_frequency_share"] = E_norms / E_norms.sum()
    counts_by_factor = an.key_frequency_counts(E_norms, KEY_FACTORS)
    found["key_frequency_count_by_factor"] = {
        f"{f:g}": int(c) for f, c in zip(KEY_FACTORS, counts_by_factor)
    }
    plot_key_frequency_selection(
        E_norms / E_norms.sum(),
        freqs,
        an.KEY_FACTOR,
        KEY_FACTORS,
        counts_by_factor,
        png(figs, "key_frequency_selection"),
    )

    # necessity: each key frequency removed from W_E, and from the logits, beside control
    # frequencies
    controls = an.control_frequencies(E_norms, freqs)
    ablated = np.r_[freqs, controls].astype(int)
    is_key = np.isin(ablated, freqs)
    ab = an.frequency_ablations(params, p, ablated, ~mask)
    full = an.loss_and_accuracy(logits, p), an.loss_and_accuracy(logits, p, ~mask)
    unablated = {
        "loss": full[0][0],
        "accuracy": full[0][1],
        "test_loss": full[1][0],
        "test_accuracy": full[1][1],
    }
    found["ablation"] = {
        "frequencies": ablated,
        "is_key": is_key.tolist(),
        "unablated": unablated,
        **ab,
        "control_rule": (
            "the non-key frequency with the largest W_E norm, then 2 other non-key "
            "frequencies drawn at random (seed 0)"
        ),
    }
    for site in ab:
        acc = ab[site]["test_accuracy"]
        for stat in ("min", "mean", "max"):
            found[f"ablation_{site}_key_test_accuracy_{stat}"] = (
                float(getattr(acc[is_key], stat)()) if is_key.any() else None
            )
        found[f"ablation_{site}_control_test_accuracy_min"] = (
            float(acc[~is_key].min()) if (~is_key).any() else None
        )
    plot_ablations(ablated, is_key, ab, unablated, png(figs, "ablations"))

    # the multiplication step: post-ReLU neurons, product terms (k, k) against linear terms
    # (k, 0), (0, k)
    post = np.maximum(acts.astype(np.float64), 0)  # mlp_post = ReLU(mlp_pre)
    neuron_freq, product, linear = an.neuron_term_shares(post, basis)
    post_fractions = an.neuron_frequency_fractions(post, basis)
    _, post_counts = an.neuron_key_frequencies(post_fractions)
    live = post.reshape(p * p, -1).std(0) > 0
    clustered = live & (post_fractions.max(0) > 0.5) & np.isin(neuron_freq, freqs)
    found["neurons_live"] = int(live.sum())
    found["neurons_post_relu_per_key_frequency"] = {int(k): int(post_counts[k - 1]) for k in freqs}
    found["neurons_in_key_frequency_clusters_share"] = float(clustered.sum() / max(live.sum(), 1))
    found["neuron_product_share_median"] = (
        float(np.median(product[clustered])) if clustered.any() else None
    )
    found["neuron_linear_share_median"] = (
        float(np.median(linear[clustered])) if clustered.any() else None
    )
    found["neuron_product_above_linear_fraction"] = (
        float((product > linear)[clustered].mean()) if clustered.any() else None
    )
    plot_neuron_terms(
        neuron_freq, product, linear, live, freqs, post_counts, png(figs, "neuron_terms")
    )

    # W_L = W_out @ W_U over the output token, against W_E's key frequencies
    L_norms = an.neuron_logit_map_norms(params, p, basis)
    found["W_L_key_frequencies"] = an.key_frequencies(L_norms).tolist()
    found["W_L_top_frequencies_agree_with_W_E"] = an.top_overlap(L_norms, freqs)
    found["W_L_share_in_W_E_key_frequencies"] = float(L_norms[freqs - 1].sum() / L_norms.sum())
    plot_logit_map_fourier(
        L_norms / L_norms.sum(), E_norms / E_norms.sum(), freqs, png(figs, "W_L_fourier")
    )

    # the logits' a+b-c structure, and the embedding circles
    sum_shares = an.logit_sum_shares(logits.astype(np.float64), p)
    found["logit_sum_share_per_key_frequency"] = {int(k): float(sum_shares[k - 1]) for k in freqs}
    found["logit_sum_share_key_total"] = float(sum_shares[freqs - 1].sum())
    plot_logits_fourier(
        an.spectrum(logits.astype(np.float64), basis),
        sum_shares,
        freqs,
        png(figs, "logits_fourier"),
    )
    circles = [an.embedding_circle(W_E, basis, k) for k in freqs]
    radius = [np.linalg.norm(xy - xy.mean(0), axis=1) for xy in circles]
    found["embedding_circle_radius_cv"] = {
        int(k): float(r.std() / r.mean()) for k, r in zip(freqs, radius)
    }
    plot_embedding_circles(circles, freqs, png(figs, "embedding_circles"))
    return save(out_dir, path, cfg, found)
