"""The driver for max of five numbers: claims 9-10 and 13-22 (invariance, attention on the
maximum, the QK line fits and the attention law they give, OV copying and its robustness)
and the engineered circuit, from one checkpoint."""

import numpy as np

import analysis as an
import tasks
from .claims import STUDY_BANDS, holds_level
from .common import (
    ALPHAS,
    history_facts,
    invariance,
    open_run,
    ordering_patterns,
    ov_robustness,
    qk_line_analysis,
    save,
)
from .plots import (
    plot_curves,
    plot_invariance,
    plot_ov_forced,
    plot_ov_matrix,
    plot_qk_lines,
    plot_robustness,
    plot_scores_by_position,
    plot_tables,
    png,
)

FIVE = an.FIVE


def analyse_max(path, out_dir, draw=True, untrained=False, extensions=True):
    """figures/<run>/findings.json, and with draw the figures beside it (untrained: the
    measures on the run's initial weights, common.load_run)."""
    cfg, params, history, _, figs = open_run(path, out_dir, ("max",), draw, untrained)
    n, H = cfg.n, params["W_Q"].shape[0]
    data = tasks.make_data(cfg)
    test_tokens, test_targets = data.evals["test"]
    found = {"augmented": cfg.augment, "d_head": cfg.d_head}
    history_facts(history, found)
    found["claims_only"] = not extensions or untrained
    found["balanced_accuracy"] = history["balanced_acc"][-1]
    # the study's 'augmented test set': held-out tuples drawn as --augment draws the training set,
    # the random test tuples and balanced ones (every answer equally often) in training's
    # proportion, n * max(1, n_train // (10 n)) extra per n_train (tasks._five_numbers)
    bal_tokens, bal_targets = data.evals["balanced"]
    extra = round(len(test_tokens) * n * max(1, cfg.n_train // (10 * n)) / cfg.n_train)
    pick = np.random.default_rng(0).choice(len(bal_tokens), extra, replace=False)
    aug_tokens = np.concatenate([test_tokens, bal_tokens[pick]])
    aug_targets = np.concatenate([test_targets, bal_targets[pick]])
    found["augmented_test_set_size"], found["augmented_test_set_extra"] = len(aug_tokens), extra
    found["augmented_test_accuracy"] = float(
        (an.readout_logits(params, aug_tokens)[:, 0].argmax(-1) == aug_targets[:, 0]).mean()
    )
    plain = data.train[0][
        : cfg.n_train, FIVE.inputs
    ]  # the random tuples (augmentation comes after them)
    found["train_tuples"], found["train_max_below_n_over_5"] = len(plain), int(
        (plain.max(1) < n // 5).sum()
    )
    found["n"], found["small_cut"] = n, n // 5  # the numbers 0..n-1; 'small': below n // 5
    pos_cos, example, sim = invariance(params, cfg, found)
    if draw:
        plot_invariance(
            cfg.task, pos_cos, example, sim, ordering_patterns(params, cfg, example), found, figs
        )
    found["head_top_attention_on_max_fraction"] = an.head_picks_max(params, test_tokens)
    found["head_mean_attention_on_max"], found["head_mean_attention_on_max_runner_up_close"] = (
        an.attention_on_max(params, test_tokens)
    )
    cls_scores = an.scores_by_position(
        params, n, n, FIVE.sep
    )  # [head, pos, number]: the real query
    x = np.arange(n)
    found["cls_score_key_correlation_per_head"] = np.array(
        [
            np.mean([np.corrcoef(cls_scores[h, j], x)[0, 1] for j in range(FIVE.n_inputs)])
            for h in range(H)
        ]
    )

    x, q, k, qm, km, kc, fitted_table = qk_line_analysis(params, n, found)
    table = an.qk_table(q, k)
    plot_tables(
        [[table[h] for h in range(H)]],
        [[f"head {h}" for h in range(H)]],
        "QK table of the study: a number as query (row; never formed by the model) against a key"
        " number (column)",
        png(figs, "qk_table"),
        "key number",
        "query number",
        "score q.k / sqrt(d_head)",
    )
    plot_tables([[table[0], fitted_table[0]]], [["learned q, k", "q, k on their fitted lines"]],
                f"Head 0's QK table, learned and recomputed from the lines\n(correlation "
                f"{found['number_query_table_fit_correlation']:.3f})", png(figs, "qk_table_fitted"),
                "key number", "query number", "score q.k / sqrt(d_head)")
    plot_qk_lines(x, q, k, qm, km, found, png(figs, "qk_lines"), law=True)
    plot_scores_by_position(
        cls_scores,
        "Max: score of the CLS query (the real query) against each number at each input position",
        png(figs, "qk_by_position"),
    )

    # the full OV path: every head's attention forced onto an input holding x (all five
    # inputs hold x,
    # so the position does not matter beyond its embedding), read at CLS through the MLP and W_U
    same, _ = tasks.sequences("max", np.repeat(np.arange(n)[:, None], FIVE.n_inputs, 1), n)
    M = an.ov_copy_matrix(params, same, 1, n)[0][0]                                  # [x, output]
    found["ov_matrix_copy_share"], found["ov_matrix_copy_probability_mean"] = an.copy_share(M)
    plot_ov_matrix(
        M,
        an.copy_per_number(M),
        "Max: full OV circuit at CLS (W_E, W_pos, W_V, W_O, then the MLP and W_U as the model"
        " applies them),\nevery head's attention forced onto an input holding x; logits averaged"
        " over the five input positions",
        png(figs, "ov_matrix"),
    )

    acc, _ = an.ov_copy_accuracy(params, test_tokens, test_targets, n)
    bal_tokens, bal_targets = data.evals["balanced"]
    _, bal_per_value = an.ov_copy_accuracy(params, bal_tokens, bal_targets, n)
    found["ov_forced_accuracy_test"] = acc
    found["ov_forced_accuracy_balanced_per_output"] = bal_per_value
    small = n // 5
    found["ov_forced_accuracy_balanced_large_outputs"] = float(np.nanmean(bal_per_value[small:]))
    found["ov_forced_accuracy_balanced_small_outputs"] = float(np.nanmean(bal_per_value[:small]))
    plot_ov_forced(bal_per_value, small, png(figs, "ov_forced"))
    found["ov_robustness_items"] = len(test_targets)
    whole = extensions and not untrained                # else the curve stops at its first drop
    alphas, curve, found["ov_copy_holds_to_alpha"] = ov_robustness(
        ALPHAS, lambda a: an.ov_copy_accuracy(params, test_tokens, test_targets, n, a)[0],
        len(test_targets), whole)
    found["ov_robustness_alpha"], found["ov_robustness_accuracy"] = alphas, curve
    plot_robustness(
        alphas,
        {"": curve},
        "Max: robustness of copying\n(attention forced onto the maximum, the runner-up mixed in)",
        png(figs, "ov_robustness") if whole else None,
        band=STUDY_BANDS["max"],
        holds=found["ov_copy_holds_to_alpha"],
        level=holds_level(len(test_targets)),
    )
    found["model_test_accuracy"] = float(
        (an.readout_logits(params, test_tokens)[:, 0].argmax(-1) == test_targets[:, 0]).mean()
    )
    found["engineered_test_accuracy"] = an.engineered_max_accuracy(
        params, test_tokens, test_targets, n, km, kc
    )
    found["line_law_weight_on_max"] = an.weight_on_max(
        an.line_attention(params, test_tokens, n, km, kc), test_tokens
    )
    if extensions and not untrained:       # the circuit rebuilt by hand, its controls (CIRCUITS)
        found["circuit"] = {name: an.max_circuit(params, *data.evals[name], n, km, kc)
                            for name in ("test", "balanced")}
    plot_curves(
        history,
        None,
        png(figs, "curves"),
        f"Max of five numbers{' (augmented training set)' * cfg.augment}: loss and accuracy",
    )
    return save(out_dir, path, cfg, found)
