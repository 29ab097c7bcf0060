"""The driver for median and sort of five numbers: claims 11, 23-34 (invariance, attention by
rank, the QK scores of the real queries, OV copying and its robustness), and the two
mechanisms found by interventions: how CLS computes the median (median_mechanism) and
whether sort's query finds the successor of the token just written (sort_successor)."""

import numpy as np

import analysis as an
import minigrok as mg
import tasks
from .claims import STILL_ROBUST, STUDY_BANDS, holds_level
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
from .plots import (plot_curves, plot_invariance, plot_median_attention_rank, plot_median_mechanism,
                    plot_ov_matrix, plot_qk_lines, plot_robustness, plot_scores_by_position,
                    plot_sort_attention_rank, plot_sort_successor, plot_tables, png)

FIVE, SORT = an.FIVE, an.SORT


def analyse_median_or_sort(path, out_dir, draw=True, untrained=False, extensions=True):
    """Median and sort: invariance, attention weight by rank, QK scores of the real queries,
    line fits, OV copying and its robustness; for median the test set at each weight
    snapshot; for sort the middle output y3 alone and the previous-token interventions.
    untrained: the measures the claims read, on the run's initial weights (common.load_run),
    without the mechanisms (median_mechanism, sort_successor)."""
    cfg, params, history, snapshots, figs = open_run(path, out_dir, ("median", "sort"), draw,
                                                     untrained)
    n, H = cfg.n, params["W_Q"].shape[0]
    sort = cfg.task == "sort"
    n_read = tasks.LAYOUTS[cfg.task].n_read
    tokens, targets = tasks.make_data(cfg).evals["test"]
    found = {"heads": H}
    history_facts(history, found)
    found["claims_only"] = not extensions or untrained
    plot_curves(
        history,
        None,
        png(figs, "curves"),
        f"{cfg.task.capitalize()} of five numbers ({H} head{'s' * (H > 1)}, "
        f"{cfg.n_train:,} training tuples): loss and accuracy",
    )
    pos_cos, example, sim = invariance(params, cfg, found)
    if draw:
        plot_invariance(
            cfg.task,
            pos_cos,
            example,
            sim,
            ordering_patterns(params, cfg, example),
            found,
            figs,
            range(SORT.n_read) if sort else (0,),
        )

    weights = an.attention_weight_by_rank(params, tokens, n_read)               # [step, head, rank]
    found["attention_weight_by_rank"] = weights
    found["attention_rank_fractions"] = an.attention_rank(params, tokens, n_read)
    x, q, k, qm, km, kc, _ = qk_line_analysis(params, n, found)
    plot_qk_lines(x, q, k, qm, km, found, png(figs, "qk_lines"))
    scores = an.scores_by_position(
        params, n, n, FIVE.sep
    )  # [head, pos, number]: the SEP / CLS query
    found["sep_score_line_r2_median"] = float(
        np.median(an.fit_linear(x, scores.transpose(2, 0, 1))[2])
    )
    if sort:
        own = np.array(
            [weights[s, :, s].max() for s in range(SORT.n_read)]
        )  # best head, the step's own rank
        best_head = [int(weights[s, :, s].argmax()) for s in range(SORT.n_read)]
        other = np.array([np.delete(weights[s, best_head[s]], s).max() for s in range(SORT.n_read)])
        found["own_rank_weight_per_step"], found["other_rank_weight_max_per_step"] = own, other
        found["steps_own_rank_attended_most_fraction"] = float((own > other).mean())
        found["own_rank_weight_mean"] = float(own.mean())
        logits, cache = an.readout_forward(
            params, tokens, SORT.n_read
        )  # teacher-forced: the true y1..y4 fed in
        pat = cache["pattern"][:, :, -SORT.n_read :].astype(np.float64)  # [batch, head, step, pos]
        previous = [
            pat[:, :, s, FIVE.sep + 1 : FIVE.sep + s].sum(-1).mean() for s in range(2, SORT.n_read)
        ]
        found["attention_on_previous_outputs_per_step"] = (
            previous  # steps y3..y5: the outputs before the current one
        )
        found["attention_on_previous_outputs_mean"] = float(np.mean(previous))
        found["attention_on_previous_outputs_per_head"] = (
            np.mean(  # [head]: 'never' is judged per head
                [
                    pat[:, :, s, FIVE.sep + 1 : FIVE.sep + s].sum(-1).mean(0)
                    for s in range(2, SORT.n_read)
                ],
                0,
            )
        )
        found["attention_on_inputs_mean"] = float(pat[:, :, 1:, FIVE.inputs].sum(-1).mean())
        pt = an.previous_token_intervention(params, tokens, targets)
        found["previous_token_intervention"] = pt
        found["intervention_position_answer"] = float(
            np.mean([v["predicts_position_target"] for v in pt.values()])
        )
        found["intervention_successor_answer"] = float(
            np.mean([v["predicts_successor"] for v in pt.values()])
        )
        dq = an.decoding_query_scores(params, n)  # [step, t, head, pos, x]
        cols = dq.transpose(4, 0, 1, 2, 3)  # [x, ...]: one score curve per column
        line_r2 = an.fit_polynomial_r2(x, cols, 1)  # [step, t, head, pos]
        found["decoding_score_line_r2_median"] = float(np.median(line_r2))
        found["decoding_score_line_r2_per_step"] = np.median(line_r2.reshape(len(dq), -1), 1)
        found["decoding_score_cubic_r2_median"] = float(np.median(an.fit_polynomial_r2(x, cols, 3)))
        # claim 31 without a repeated token: a previous output that is not among the inputs
        found["counterfactual_previous_output"] = cf = an.counterfactual_previous_output(
            params, tokens, targets)
        for key in ("answers_rank", "answers_successor_of_t"):
            found[f"counterfactual_{key}"] = float(np.mean([v[key] for v in cf.values()]))
        # the same with t' below y_s: both readings answer above t', as outputs rise in training
        found["counterfactual_below"] = below = an.counterfactual_previous_output_below(
            params, tokens, targets)
        for key in ("answers_rank", "answers_successor_of_t"):
            found[f"counterfactual_below_{key}"] = float(np.mean([v[key] for v in below.values()]))
        if extensions and not untrained:
            found["sort_successor"] = successor = sort_successor(
                params, mg.init_params(cfg), n, dq, best_head, tokens, targets, cf
            )
            plot_sort_successor(successor, png(figs, "successor"))
        by_query = dq.mean(3)  # [step, t, head, x]: mean over key positions
        plot_tables(
            [[by_query[s, :, h] for h in range(H)] for s in range(len(dq))],
            [[f"head {h}" for h in range(H)] for _ in range(len(dq))],
            "Sort: the real queries at the decoding positions: previous output y_s = t (row) at its"
            " position, against every key number x (column), mean over the five input positions",
            png(figs, "qk_decoding"),
            "key number x",
            "query: previous output t",
            "score q.k / sqrt(d_head)",
            row_labels=[f"predicting y{s + 2}" for s in range(len(dq))],
            per_row=True,
        )
        # the study's construction for 'the second number moved': a number at x1 as query
        # (never formed by the model) against every number at x2..x5; one score curve per
        # (query number, head, key position)
        q1 = an.project(params, "W_Q", np.arange(n), 0)  # [xq, head, d_head]
        k_at = an.project(
            params, "W_K", np.arange(n)[None, :], np.arange(1, FIVE.n_inputs)[:, None]
        )  # [pos, x, head, d_head]
        moved = np.einsum("qhe,pkhe->kqhp", q1, k_at)  # [x, xq, head, pos]
        found["x1_query_score_line_r2_median"] = float(np.median(an.fit_polynomial_r2(x, moved, 1)))
        found["x1_query_score_cubic_r2_median"] = float(
            np.median(an.fit_polynomial_r2(x, moved, 3))
        )
        y3 = logits[:, 2:3].astype(np.float64)  # y3, teacher-forced: the median of the five
        found["y3_test_loss"] = mg.cross_entropy(y3, targets[:, 2:3])[0]
        found["y3_test_accuracy"] = float((y3[:, 0].argmax(-1) == targets[:, 2]).mean())
        preds = np.asarray(
            mg.predict(params, tokens, SORT.n_read, True, teacher_logits=logits)
        )  # greedy: its own outputs fed back (the fast engine, equal to the textbook model's)
        fed = tokens.copy()
        fed[:, FIVE.sep + 1 : FIVE.sep + 3] = preds[:, :2]  # y3 read after the model's own y1, y2
        y3_greedy = an.readout_logits(params, fed, SORT.n_read)[:, 2:3].astype(np.float64)
        found["y3_greedy_test_loss"] = mg.cross_entropy(y3_greedy, targets[:, 2:3])[0]
        found["y3_greedy_test_accuracy"] = float((preds[:, 2] == targets[:, 2]).mean())
        plot_sort_attention_rank(weights, png(figs, "attention_rank"))
        title = (
            f"Sort ({H} head{'s' * (H > 1)}): score of the SEP query (predicting y1) against each"
            " number at each input position"
        )
        fit_lines = fit_titles = None
    else:
        if extensions and not untrained:
            found["median_mechanism"] = mech = median_mechanism(params, cfg, tasks.make_data(cfg))
            plot_median_mechanism(mech, png(figs, "mechanism"))
        found["median_weight_best_head"] = float(weights[0, :, FIVE.n_inputs // 2].max())
        found["largest_rank_weight_best_head"] = float(weights[0].max())
        found["snapshot_test"] = {}
        for epoch, snap in snapshots:
            lg = an.readout_logits(snap, tokens)
            found["snapshot_test"][str(epoch)] = {
                "test_loss": mg.cross_entropy(lg.astype(np.float64), targets)[0],
                "test_acc": float((lg[:, 0].argmax(-1) == targets[:, 0]).mean()),
            }
        # the shapes the figures show, fitted: mean weight by rank ~ parabola in rank (an inverted U
        # has a < 0, its peak at the vertex); the CLS score ~ parabola in the number, against a line
        ranks = np.arange(FIVE.n_inputs)
        ra, rv, rr2, rfit = an.fit_quadratic(ranks, weights[0].T)  # per head; rfit [rank, head]
        (
            found["attention_rank_quadratic_curvature_per_head"],
            found["attention_rank_quadratic_peak_per_head"],
        ) = (ra, rv)
        found["attention_rank_quadratic_r2_per_head"] = rr2
        found["attention_rank_most_weight_per_head"] = weights[0].argmax(-1)
        sa, sv, sr2, sfit = an.fit_quadratic(
            x, scores.transpose(2, 0, 1)
        )  # per (head, position); sfit [x, head, pos]
        lr2 = an.fit_linear(x, scores.transpose(2, 0, 1))[2]
        found["cls_score_quadratic_r2"], found["cls_score_line_r2"] = sr2, lr2
        found["cls_score_quadratic_curvature"], found["cls_score_quadratic_vertex"] = sa, sv
        found["cls_score_quadratic_r2_median"], found["cls_score_line_r2_median"] = float(
            np.median(sr2)
        ), float(np.median(lr2))
        found["cls_score_concave_fraction"] = float((sa < 0).mean())
        found["cls_score_vertex_inside_fraction"] = float(((sv >= 0) & (sv <= n - 1)).mean())
        found["cls_score_vertex_median"] = float(np.median(sv))
        plot_median_attention_rank(weights[0], rfit, rv, rr2, png(figs, "attention_rank"))
        title = "Median: score of the CLS query against each number at each input position"
        fit_lines = sfit.transpose(1, 2, 0)                                       # [head, pos, x]
        fit_titles = [
            f"quadratic R^2 {np.median(sr2[h]):.2f}, line {np.median(lr2[h]):.2f}\nvertex"
            f" {np.median(sv[h]):.0f}"
            for h in range(H)
        ]
    plot_scores_by_position(scores, title, png(figs, "qk_by_position"), fit_lines, fit_titles)
    table = an.qk_table(q, k)
    plot_tables(
        [[table[h] for h in range(H)]],
        [[f"head {h}" for h in range(H)]],
        "QK table of the study: a number as query (row; never formed at CLS/SEP) against a key"
        " number (column)",
        png(figs, "qk_table"),
        "key number",
        "query number",
        "score q.k / sqrt(d_head)",
    )
    # the full OV path at every readout, with the real readout residual (CLS, SEP or the previous
    # output): each test input's heads forced onto one input position at a time, logits by
    # the number there
    M = an.ov_copy_matrix(params, tokens, n_read, n)[0]                          # [step, x, output]
    found["ov_matrix_copy_share"], found["ov_matrix_copy_probability_mean"] = an.copy_share(
        np.nanmean(M, 0)
    )
    found["ov_matrix_copy_share_per_step"] = [an.copy_share(m)[0] for m in M]
    plot_ov_matrix(
        np.nanmean(M, 0),
        an.copy_per_number(np.nanmean(M, 0)),
        f"{cfg.task.capitalize()}: full OV circuit at the readout{'s' * sort} (W_E, W_pos, W_V,"
        " W_O, then the MLP and W_U as the model applies them),\nevery head's attention forced"
        " onto one input (holding x) of each test sequence; logits averaged by"
        f" x{', over the five steps' * sort}",
        png(figs, "ov_matrix"),
    )

    target_rank = list(range(FIVE.n_inputs)) if sort else [FIVE.n_inputs // 2]
    other_rank = [r + 1 if r < 4 else r - 1 for r in target_rank]
    found["ov_robustness_items"] = targets.size         # every readout step's answer counts
    whole = extensions and not untrained                # else the curve stops at its first drop
    alphas, curve, found["ov_copy_holds_to_alpha"] = ov_robustness(
        ALPHAS,
        lambda a: an.rank_copy_accuracy(params, tokens, targets, target_rank, other_rank, a),
        targets.size, whole)
    found["ov_forced_accuracy"] = curve[0]
    found["ov_robustness_alpha"], found["ov_robustness_accuracy"] = alphas, curve
    plot_robustness(
        alphas,
        {"": curve},
        f"{cfg.task.capitalize()}: robustness of copying\n"
        "(attention forced onto the answer's input, a neighbour in rank mixed in)",
        png(figs, "ov_robustness") if whole else None,
        band=STUDY_BANDS.get(cfg.task),
        holds=found["ov_copy_holds_to_alpha"],
        at_least=None if sort else STILL_ROBUST,
        level=holds_level(targets.size),
    )
    return save(out_dir, path, cfg, found)


BLEND = (0.0, 0.25, 0.5, 0.75, 1.0)   # CLS's attention: (1 - lam) * uniform pooling + lam * learned
SINGLE_COUNT = 0.8  # a neuron 'reads one count' when one count explains this much of it


def median_mechanism(params, cfg, data):
    """How CLS computes the median, by interventions (issue #24): accuracy with the attention
    imposed (pure pooling, blends towards the learned pattern, all on the median, all on one
    fixed position); the thermometer code (#{x_i > t} for every t) read linearly from CLS's
    residual on held-out tuples, on the trained and on the untrained (initial) weights and
    against shuffled labels; the MLP neurons that read one count, and where they turn on;
    and the built circuit (pooling + a linear read of the code + 'the t where the count
    crosses 2.5') in place of the attention pattern, the MLP and W_U."""
    n, H = cfg.n, params["W_Q"].shape[0]
    init = mg.init_params(cfg)  # this seed's untrained weights: the control
    fit_tokens = data.train[0]
    out = {"blend_lambdas": list(BLEND), "single_count_r2": SINGLE_COUNT}
    # the built circuit's answers on both test sets at once (one fit each): built, its control
    # (labels shuffled) and on the untrained weights
    both = np.concatenate([data.evals[name][0] for name in ("test", "balanced")])
    answers = {
        key: np.split(an.engineered_median(p, fit_tokens, both, n, shuffle_seed=shuffle),
                      [len(data.evals["test"][0])])
        for key, p, shuffle in (
            ("built", params, None), ("shuffled", params, 0), ("initial", init, None)
        )
    }
    for i, name in enumerate(("test", "balanced")):
        tokens, targets = data.evals[name]
        learned = an.readout_pattern(params, tokens)
        model_acc, model_pred = an.readout_accuracy(params, tokens, targets, learned)
        x = tokens[:, FIVE.inputs]
        fixed = [
            an.readout_accuracy(
                params, tokens, targets, an.forced_pattern(tokens, H, np.full(len(x), p))
            )[0]
            for p in range(FIVE.n_inputs)
        ]
        on_median = an.forced_pattern(tokens, H, an.positions_by_rank(x)[:, FIVE.n_inputs // 2])
        built, shuffled, initial = (answers[key][i] for key in ("built", "shuffled", "initial"))
        out[name] = {
            "model": model_acc,
            "uniform": an.readout_accuracy(params, tokens, targets, an.uniform_pattern(tokens, H))[
                0
            ],
            "blend": an.blend_accuracies(params, tokens, targets, BLEND, learned),
            "all_on_median": an.readout_accuracy(params, tokens, targets, on_median)[0],
            "all_on_one_position_best": max(fixed),
            "engineered": float((built == targets[:, 0]).mean()),
            "engineered_agreement": float((built == model_pred).mean()),
            "engineered_shuffled_control": float((shuffled == targets[:, 0]).mean()),
            "engineered_on_initial_weights": float((initial == targets[:, 0]).mean()),
        }
    # the one-count neurons rebuilt as ReLU(slope (count - crossing)) in place of the learned
    # ones, the rest of the model kept (test set; the control permutes their thresholds)
    out["built_neurons"] = an.median_circuit(params, fit_tokens, *data.evals["test"], n,
                                             SINGLE_COUNT)
    out["engineered_numbers"] = {
        "built_attention": 0,
        "built_readout": (cfg.d_model + 1) * n,
        "built_rule": 0,
    }
    # the thermometer code from CLS's residual: fitted on the training tuples, scored on the
    # test set
    tokens = np.concatenate([fit_tokens, data.evals["test"][0]])
    x, fit = tokens[:, FIVE.inputs], np.arange(len(tokens)) < len(fit_tokens)
    for label, p in (("trained", params), ("initial", init)):
        for pattern_name in ("learned", "uniform"):
            pattern = (
                an.readout_pattern(p, tokens)
                if pattern_name == "learned"
                else an.uniform_pattern(tokens, H)
            )
            r2, median, shuffled = an.count_probe(an.cls_resid_mid(p, tokens, pattern), x, n, fit)
            out[f"probe_{label}_{pattern_name}"] = {
                "r2": r2, "r2_median": float(np.nanmedian(r2)),
                "median_read_off_accuracy": float((median == np.median(x[~fit], 1)).mean()),
                "shuffled_r2_max": float(np.nanmax(shuffled))}
    # the MLP: neurons whose pre-activation one count explains, and the count where they turn on
    test_tokens = data.evals["test"][0]
    C = an.threshold_counts(test_tokens[:, FIVE.inputs], n).astype(np.float64)
    for label, p in (("trained", params), ("initial", init)):
        X = an.cls_resid_mid(p, test_tokens, an.readout_pattern(p, test_tokens))  # CLS's residual
        pre = an.mlp_pre_at_cls(p, test_tokens, X)
        live = ((pre > 0).mean(0) > 0.02) & ((pre > 0).mean(0) < 0.98)
        t, r2, crossing, slope = an.single_count_fits(pre, C)
        reads = live & (r2 > SINGLE_COUNT)
        slope_up = slope[reads] > 0
        if label == "trained":  # the intervention: silence them, against as many other live neurons
            others = np.flatnonzero(live & ~reads)
            rng = np.random.default_rng(0)
            tgt = data.evals["test"][1]
            draws = [
                rng.choice(others, min(reads.sum(), len(others)), replace=False) for _ in range(3)
            ]
            silenced = lambda neurons, mean=False: an.accuracy_without_neurons(
                p, test_tokens, tgt, neurons, mean, X)
            out["ablation"] = {
                "without_one_count_neurons": silenced(np.flatnonzero(reads)),
                "without_as_many_other_neurons": float(np.mean([silenced(d) for d in draws])),
                "mean_ablated_one_count_neurons": silenced(np.flatnonzero(reads), mean=True),
                "mean_ablated_as_many_other_neurons": float(
                    np.mean([silenced(d, mean=True) for d in draws])
                ),
            }
        out[f"neurons_{label}"] = {
            "live": int(live.sum()),
            "reading_one_count": int(reads.sum()),
            "share_of_live": float(reads.sum() / max(live.sum(), 1)),
            "best_r2_median_live": float(np.median(r2[live])) if live.any() else None,
            "thresholds": t[reads],
            "crossings": crossing[reads],
            "switching_on_share": float(slope_up.mean()) if reads.any() else None,
            "crossing_between_2_and_3_share": (
                float(((crossing[reads] > 2) & (crossing[reads] < 3)).mean())
                if reads.any()
                else None
            ),
            "crossing_median": float(np.median(crossing[reads])) if reads.any() else None,
            "crossing_iqr": (
                np.percentile(crossing[reads], [25, 75]) if reads.any() else [None, None]
            ),
        }
    return out


def sort_successor(params, init, n, dq, best_head, tokens, targets, counterfactual):
    """Sort's decoding steps (predicting y2..y5), successor or rank (issue #24): how much of
    the real query's score is a function of the key number minus the previous output (the
    successor reading), of the key number alone, of the previous output alone (eta^2, for the
    head that attends the step's own rank most: the median over the input positions, and over
    every head and position); the mean score by that difference; the counterfactual previous
    output that is not among the inputs (no token repeated: `counterfactual`, as
    an.counterfactual_previous_output gives it, measured once by the driver); and the successor rule
    spliced in place of the attention (QK), on the trained and on the untrained weights."""
    explained = an.decoding_score_explained(dq)  # [step, head, pos] each
    heads = [best_head[s + 1] for s in range(len(dq))]  # dq's step s predicts y_{s+2}
    out = {"steps": [f"y{s + 2}" for s in range(len(dq))], "best_head": heads}
    for k, v in explained.items():
        out[f"eta2_{k}_best_head"] = [float(np.median(v[s, h])) for s, h in enumerate(heads)]
        out[f"eta2_{k}_all_heads"] = [float(np.median(v[s])) for s in range(len(dq))]
    by_d = an.score_by_difference(dq, n)  # [step, head, 2n - 1]
    out["score_by_difference_best_head"] = [by_d[s, h] for s, h in enumerate(heads)]
    out["difference_at_peak_best_head"] = [
        int(by_d[s, h].argmax()) - (n - 1) for s, h in enumerate(heads)
    ]
    out["counterfactual_previous_output"] = counterfactual
    # the built circuit: the successor rule in place of every head's attention (QK), greedy
    # decoding;
    # beside it, attention on the input at the step's position, and on a random input (the control)
    out["counterfactual_paths"] = an.counterfactual_paths(params, tokens, targets)
    model = np.asarray(mg.predict(params, tokens, SORT.n_read, True))
    x = tokens[:, FIVE.inputs]
    repeated = np.array([len(set(r)) < FIVE.n_inputs for r in x])
    out["repeated_input_share"] = float(repeated.mean())
    score = lambda pred, rows: {
        "token_accuracy": float((pred[rows] == targets[rows]).mean()),
        "sequence_accuracy": float((pred[rows] == targets[rows]).all(1).mean()),
    }
    out["model"] = {"distinct": score(model, ~repeated), "repeated": score(model, repeated)}
    out["engineered"] = {}
    for rule in ("successor", "successor_with_memory", "rank", "position", "random"):
        built = an.engineered_sort(params, tokens, rule)
        out["engineered"][rule] = {
            **score(built, slice(None)),
            "agreement": float((built == model).mean()),
            "distinct": score(built, ~repeated),
            "repeated": score(built, repeated),
        }
    # the successor rule on the run's untrained weights: what the kept, learned parts contribute
    untrained = an.engineered_sort(init, tokens, "successor")
    out["engineered"]["successor_on_initial_weights"] = {
        "token_accuracy": float((untrained == targets).mean())
    }
    return out
