"""Tests of the helpers in analysis.py on planted examples, so that each helper's answer is
known before it runs: tables and weights built with known frequencies for addition (the
Fourier basis, key frequencies, progress measures, phases, ablations, the multiplication
step in the neurons, W_out @ W_U, the logits' a+b-c structure, the embedding circles, the
key-frequency threshold), and hand-worked models and tables for max, median and sort
(forced attention, permutations, rank copying, fits, chance levels, and the circuits built by hand
beside their controls)."""
import numpy as np
import pytest

import analysis
import minigrok as mg
import tasks


def grid(p):
    return np.meshgrid(np.arange(p), np.arange(p), indexing="ij")


def planted_embedding(p, d, freqs, seed=0):
    """W_E [p, d]: cos and sin of each frequency along its own random directions, plus a constant."""
    rng = np.random.default_rng(seed)
    x = np.arange(p)
    W = np.outer(np.ones(p), rng.standard_normal(d))
    for k in freqs:
        W += np.outer(np.cos(2 * np.pi * k * x / p), rng.standard_normal(d))
        W += np.outer(np.sin(2 * np.pi * k * x / p), rng.standard_normal(d))
    return W


# ---------------------------------------------------------------- phases
def test_phases_of_planted_progress_measures():
    e = np.arange(0, 20001, 250)
    s = lambda x, mid, width: 1 / (1 + np.exp(-(x - mid) / width))
    measures = {"epoch": e,
                "excluded_loss": (e - 1500.0) ** 2 / 1e6 + 0.01,              # lowest at 1500
                "restricted_loss": 4.0 * (1 - s(e, 8000, 300)) + 1e-4,        # falls around 8000
                "gini_W_E": 0.1 + 0.5 * s(e, 11000, 300),                     # rises around 11000
                "weight_norm": 3000 - 1500 * s(e, 10500, 300)}                # falls around 10500
    end_memorise, start_cleanup, end_cleanup = analysis.phases(measures)
    assert end_memorise == 1500
    # restricted loss <= 1% of its value at 1500: 4 (1 - s) <= 0.04, s >= 0.99, e >= 8000 + 300 ln 99 = 9379
    assert start_cleanup == 9500
    # the Gini settles last: |gini - final| <= 5% of its range once 0.5 (1 - s) <= 0.05 * 0.5 -> e >= 11000 + 300 ln 19 = 11883
    assert end_cleanup == 12000


def test_settle_epoch_of_a_step_and_of_a_curve_still_moving():
    e = np.arange(10) * 100
    assert analysis.settle_epoch(e, np.r_[np.zeros(4), np.ones(6)], 0) == 400
    assert analysis.settle_epoch(e, np.arange(10.0), 0) == 900        # never settles before the end
    assert analysis.settle_epoch(e, np.ones(10), 300) == 300          # flat from the start


# ---------------------------------------------------------------- ablations
def test_embedding_without_a_frequency_removes_exactly_its_cos_and_sin():
    p, d = 23, 16
    basis, _ = analysis.fourier_basis(p)
    W = planted_embedding(p, d, [3, 7])
    params = {"W_E": np.vstack([W, np.ones((1, d))])}                 # the '=' row stays
    out = analysis.embedding_without_frequencies(params, p, [3])["W_E"]
    before = analysis.frequency_norms(analysis.fourier_1d(W, basis))
    after = analysis.frequency_norms(analysis.fourier_1d(out[:p], basis))
    assert after[2] == pytest.approx(0, abs=1e-20)
    np.testing.assert_allclose(np.delete(after, 2), np.delete(before, 2), rtol=1e-10, atol=1e-20)
    np.testing.assert_array_equal(out[p], params["W_E"][p])


def test_control_frequencies_take_the_strongest_non_key_then_random_others():
    norms = np.array([1, 9, 1, 5, 1, 8, 1, 1.0])                      # frequencies 1..8
    ctrl = analysis.control_frequencies(norms, np.array([2, 6]), n_random=3)
    assert ctrl[0] == 4 and len(set(ctrl)) == 4
    assert not set(ctrl) & {2, 6} and set(ctrl) <= set(range(1, 9))


def test_ablating_a_frequency_the_embedding_lacks_changes_nothing():
    p = 13
    cfg = mg.Config(task="add", p=p, d_model=16, n_heads=2, d_head=8, d_mlp=32, dtype="float64")
    params = mg.init_params(cfg)
    params["W_E"] = analysis.embedding_without_frequencies(params, p, [4])["W_E"]   # no frequency 4 in W_E
    mask = np.random.default_rng(0).random((p, p)) < 0.5
    ab = analysis.frequency_ablations(params, p, [4, 2], mask)
    logits = analysis.run_all_pairs(params, p)[0]
    loss, acc = analysis.loss_and_accuracy(logits, p)
    assert ab["embedding"]["loss"][0] == pytest.approx(loss, rel=1e-12)
    assert ab["embedding"]["accuracy"][0] == acc
    assert ab["embedding"]["loss"][1] != pytest.approx(loss, rel=1e-6)     # frequency 2 is there: it matters
    excluded = analysis.restricted_and_excluded(logits, p, [2])[1]
    assert ab["logits"]["test_loss"][1] == pytest.approx(analysis.loss_and_accuracy(excluded, p, mask)[0], rel=1e-12)


# ---------------------------------------------------------------- the multiplication step
def test_neuron_term_shares_of_planted_neurons():
    p, k = 17, 5
    a, b = grid(p)
    w = 2 * np.pi * k / p
    acts = np.stack([np.cos(w * a) * np.cos(w * b) + 2,                  # product only
                     np.cos(w * a) + np.sin(w * b),                       # linear only
                     np.cos(w * a) * np.sin(w * b) + np.cos(w * a),       # product p^2/4, linear p^2/2: 1/3
                     np.zeros((p, p))], -1)                               # dead
    freq, product, linear = analysis.neuron_term_shares(acts, analysis.fourier_basis(p)[0])
    assert freq[:3].tolist() == [k, k, k]
    np.testing.assert_allclose(product, [1, 0, 1 / 3, 0], atol=1e-12)
    np.testing.assert_allclose(linear, [0, 1, 2 / 3, 0], atol=1e-12)


def test_neuron_logit_map_norms_and_top_overlap():
    p, d, d_mlp = 19, 8, 6
    c = np.arange(p)
    rng = np.random.default_rng(1)
    W_U = np.outer(rng.standard_normal(d), np.cos(2 * np.pi * 4 * c / p)) + \
        0.5 * np.outer(rng.standard_normal(d), np.sin(2 * np.pi * 7 * c / p))
    norms = analysis.neuron_logit_map_norms({"W_out": rng.standard_normal((d_mlp, d)), "W_U": W_U}, p,
                                            analysis.fourier_basis(p)[0])
    assert np.flatnonzero(norms > 1e-12 * norms.max()).tolist() == [3, 6]
    assert analysis.top_overlap(norms, np.array([4, 7])) == 1
    assert analysis.top_overlap(norms, np.array([4, 2])) == 0.5


# ---------------------------------------------------------------- the logits and the embedding circles
def test_logit_sum_shares_of_a_planted_table():
    p = 11
    a, b, c = np.meshgrid(np.arange(p), np.arange(p), np.arange(p), indexing="ij")
    w = lambda k: 2 * np.pi * k / p
    key = 5 * np.cos(w(2) * (a + b - c)) + 2 * np.sin(w(3) * (a + b - c))
    other = 3 * np.cos(w(4) * (a - b)) * np.cos(w(1) * c)                 # no a+b-c structure
    shares = analysis.logit_sum_shares(key + 7, p)
    want = np.zeros(5)
    want[1], want[2] = 25 / 29, 4 / 29                                    # variances 25/2 and 4/2
    np.testing.assert_allclose(shares, want, atol=1e-12)
    # other: 9 (1/2)(1/2) per cell on average, beside 29/2
    np.testing.assert_allclose(analysis.logit_sum_shares(key + other, p), want * 14.5 / (14.5 + 2.25), atol=1e-12)


def test_spectrum_of_a_table_with_an_output_axis_sums_over_it():
    p = 7
    basis, _ = analysis.fourier_basis(p)
    t = np.random.default_rng(2).standard_normal((p, p, 3))
    S = analysis.spectrum(t, basis)
    np.testing.assert_allclose(S ** 2, sum(analysis.spectrum(t[:, :, i], basis) ** 2 for i in range(3)), rtol=1e-12)


def test_embedding_circle_puts_number_x_at_angle_w_k_x():
    p, d, k = 29, 12, 6
    W = planted_embedding(p, d, [k, 11])
    basis, _ = analysis.fourier_basis(p)
    # the other frequency and the constant leak into the plane of frequency k through their
    # directions' overlap with it (random directions here), so keep only frequency k
    clean = analysis.frequency_rows(basis, [k])
    xy = analysis.embedding_circle(clean.T @ (clean @ W), basis, k)
    # an ellipse in general (cos and sin directions of unequal length); after whitening a circle
    u, s, vt = np.linalg.svd(xy - xy.mean(0), full_matrices=False)
    angle = np.angle(u[:, 0] + 1j * u[:, 1])
    step = np.angle(np.exp(1j * np.diff(angle)))
    np.testing.assert_allclose(np.abs(step), 2 * np.pi * k / p, atol=1e-9)
    assert np.all(np.sign(step) == np.sign(step[0]))


def test_key_frequency_counts_fall_as_the_threshold_rises():
    norms = np.r_[30.0, 10.0, np.ones(8)]                                 # shares 0.625, 0.21, 0.02 each; 1/K = 0.1
    counts = analysis.key_frequency_counts(norms, [0.1, 1, 3, 7])
    assert counts.tolist() == [10, 2, 1, 0]


def test_add_circuit_on_planted_logits_with_wrong_answers():
    """Logits that are a closed form on frequencies 3 and 7 (plus a constant per (a, b) and a
    little noise), with a wrong answer planted on a few test pairs: the closed form answers
    every pair, so its agreement is the model's accuracy; fitted on other frequencies, it
    explains nothing and its loss is log p."""
    p = 23
    a, b, c = np.meshgrid(np.arange(p), np.arange(p), np.arange(p), indexing="ij")
    w = lambda k: 2 * np.pi * k / p
    rng = np.random.default_rng(0)
    logits = 30 * np.cos(w(3) * (a + b - c)) + 20 * np.cos(w(7) * (a + b - c))
    logits += rng.standard_normal((p, p, 1)) + 0.05 * rng.standard_normal((p, p, p))
    test = rng.random((p, p)) < 0.5
    wrong = np.flatnonzero(test.ravel())[:10]                   # ten test pairs answer a + b + 1
    wa, wb = np.unravel_index(wrong, (p, p))
    logits[wa, wb, (wa + wb + 1) % p] += 100
    out = analysis.add_circuit(logits, p, np.array([3, 7]), test, draws=3)
    assert out["learned"] == pytest.approx(1 - 10 / test.sum())
    assert out["engineered"] == 1 and out["agreement"] == out["learned"]
    assert out["engineered_variance_explained"] > 0.95 and out["control_variance_explained"] < 0.01
    assert out["control_loss"] > 0.95 * np.log(p) and out["engineered_loss"] < 1e-3
    assert out["uniform_loss"] == pytest.approx(np.log(p)) and out["built_numbers"] == 2
    target = (a[:, :, 0] + b[:, :, 0]) % p
    assert out["baseline"] == np.bincount(target[test]).max() / test.sum()


# ---- max, median, sort
def small_five_model(n, n_ctx, seed=0, d=8, H=2, dh=4, m=16):
    """A random float64 model for the five-number tasks, biases non-zero (nothing hides behind zeros)."""
    rng = np.random.default_rng(seed)
    shapes = {"W_E": (n + 1, d), "W_pos": (n_ctx, d), "W_Q": (H, d, dh), "W_K": (H, d, dh), "W_V": (H, d, dh),
              "W_O": (H, dh, d), "W_in": (d, m), "W_out": (m, d), "W_U": (d, n), "b_in": (m,), "b_out": (d,)}
    return {k: rng.standard_normal(s) / np.sqrt(s[-2] if len(s) > 1 else 4) for k, s in shapes.items()}


@pytest.mark.parametrize("task", ["max", "sort"])
def test_ov_copy_matrix_equals_the_path_written_out(task):
    """Each readout's residual is its own embedding plus sum_h (W_E[x] + W_pos[j]) W_V W_O for the
    attended input; then the MLP and W_U. Written out here per example, position and step."""
    import tasks
    n, lay = 7, tasks.LAYOUTS[task]
    params = small_five_model(n, lay.n_ctx)
    rng = np.random.default_rng(1)
    tokens, _ = tasks.sequences(task, rng.integers(0, n, (40, 5)), n)
    M, count = analysis.ov_copy_matrix(params, tokens, lay.n_read, n)
    ov = np.einsum("hde,hef->df", params["W_V"], params["W_O"])                  # sum over heads of W_V[h] W_O[h]
    want, seen = np.zeros((lay.n_read, n, n)), np.zeros(n)
    for t in tokens:
        for j in range(5):
            seen[t[j]] += 1
            for s in range(lay.n_read):
                q = lay.first_read + s
                resid = params["W_E"][t[q]] + params["W_pos"][q] + (params["W_E"][t[j]] + params["W_pos"][j]) @ ov
                resid = resid + np.maximum(resid @ params["W_in"] + params["b_in"], 0) @ params["W_out"] + params["b_out"]
                want[s, t[j]] += resid @ params["W_U"]
    np.testing.assert_array_equal(count, seen)
    ok = seen > 0
    np.testing.assert_allclose(M[:, ok], want[:, ok] / seen[ok, None], rtol=1e-9, atol=1e-12)
    assert np.isnan(M[:, ~ok]).all()


@pytest.mark.parametrize("task", ["max", "median", "sort"])
def test_forward_with_pattern_is_the_textbook_forward_at_the_readouts(task):
    """The readout-only forward with an imposed pattern gives mg.forward's logits (float64 weights)."""
    import tasks
    n, lay = 7, tasks.LAYOUTS[task]
    params = small_five_model(n, lay.n_ctx)
    rng = np.random.default_rng(2)
    tokens, _ = tasks.sequences(task, rng.integers(0, n, (30, 5)), n)
    pattern = rng.random((30, params["W_Q"].shape[0], lay.n_read, lay.n_ctx))
    pattern /= pattern.sum(-1, keepdims=True)
    want, _ = mg.forward(params, tokens, lay.n_read, pattern=pattern.copy())
    np.testing.assert_allclose(analysis.forward_with_pattern(params, tokens, lay.n_read, pattern), want,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("task", ["max", "median", "sort"])
def test_attention_pattern_and_readout_forward_are_the_textbook_forward(task):
    """The shortcuts the analyses take for speed (the attention alone; the MLP and W_U at the
    readouts only) give exactly what mg.forward's cache and logits hold (float64 weights)."""
    import tasks
    n, lay = 7, tasks.LAYOUTS[task]
    params = small_five_model(n, lay.n_ctx)
    tokens, _ = tasks.sequences(task, np.random.default_rng(3).integers(0, n, (30, 5)), n)
    logits, cache = mg.forward(params, tokens, lay.n_read)
    same = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    same(analysis.attention_pattern(params, tokens), cache["pattern"])
    got, got_cache = analysis.readout_forward(params, tokens, lay.n_read)
    same(got, logits)
    same(got_cache["pattern"], cache["pattern"])
    for name in ("mlp_pre", "mlp_post"):
        same(got_cache[name], cache[name][:, -lay.n_read:])
    same(analysis.readout_logits(params, tokens, lay.n_read), logits)
    assert analysis.readout_pattern(params, tokens).shape == (30, params["W_Q"].shape[0], 1, lay.n_ctx)


def test_copy_share_of_a_planted_matrix():
    n = 20
    M = 3 * np.eye(n) + 0.1 * np.random.default_rng(0).standard_normal((n, n))
    M[:4] = np.roll(M[:4], 1, axis=1)                       # four numbers copied to their successor
    M[5] = np.nan                                           # a number never attended: skipped
    share, prob = analysis.copy_share(M)
    assert share == pytest.approx(15 / 19)
    assert 0 < prob < share                                  # the four miss, the others are confident but not certain


def test_fit_quadratic_finds_a_planted_bump_and_its_peak():
    x = np.arange(100.0)
    rng = np.random.default_rng(0)
    bump = -0.01 * (x - 37) ** 2 + 2                                   # a bell peaking at 37
    Y = np.stack([bump, 2 * bump + 1, 0.5 * x], 1)                     # [x, 3]: two bumps and a line
    a, vertex, r2, fitted = analysis.fit_quadratic(x, Y)
    np.testing.assert_allclose(a, [-0.01, -0.02, 0], atol=1e-12)
    np.testing.assert_allclose(vertex[:2], [37, 37])
    np.testing.assert_allclose(r2, 1)
    np.testing.assert_allclose(fitted, Y, atol=1e-9)
    assert analysis.fit_linear(x, bump)[2] < 0.5                       # a line cannot: the bump is near the middle
    noisy = bump[:, None] + 0.3 * rng.standard_normal((100, 4))
    a, vertex, r2, _ = analysis.fit_quadratic(x, noisy.reshape(100, 2, 2))
    assert a.shape == vertex.shape == r2.shape == (2, 2)
    assert (a < 0).all() and (np.abs(vertex - 37) < 3).all() and (r2 > 0.8).all()


def test_fit_quadratic_peak_of_an_inverted_u_over_ranks():
    ranks = np.arange(5)
    weights = np.array([[0.1, 0.2, 0.4, 0.2, 0.1], [0.05, 0.1, 0.2, 0.4, 0.25]]).T   # [rank, head]
    a, vertex, r2, _ = analysis.fit_quadratic(ranks, weights)
    assert (a < 0).all()
    assert vertex[0] == pytest.approx(2)                    # symmetric: the peak is the median rank
    assert 2.5 < vertex[1] < 4                               # skewed to the larger ranks: the peak moves past the median


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


def test_copy_map_reads_the_position_with_most_weight_summed_over_heads():
    tokens = np.array([[3, 9, 1, 9, 2, 20], [5, 6, 7, 8, 4, 20], [5, 6, 7, 8, 4, 20]])
    pattern = np.zeros((3, 2, 1, 6))
    pattern[0, :, 0] = [[0.6, 0, 0.1, 0, 0, 0.3], [0, 0, 0.55, 0, 0, 0.45]]   # head 0 alone: 3
    pattern[1, :, 0] = [[0, 0, 0, 0, 0, 1], [0, 0, 0, 0.2, 0.1, 0.7]]         # CLS is no answer
    pattern[2, :, 0] = 1 / 6                                                   # a tie: the first
    assert analysis.copy_map(pattern, tokens).tolist() == [1, 8, 5]


def test_shuffled_lines_move_each_slope_with_its_intercept():
    m = np.arange(12.0).reshape(3, 4)
    m2, c2 = analysis.shuffled_lines(m, m + 100, seed=0)
    np.testing.assert_array_equal(c2 - m2, 100)                    # the pairs stay together
    assert sorted(m2.ravel()) == sorted(m.ravel()) and (m2 != m).any()
    assert (analysis.shuffled_lines(m, m, seed=1)[0] != m2).any()


def copying_max_model(n, beta=8.0):
    """A max model whose CLS score is beta x (keys exactly on a line: key x e_0, the query
    beta sqrt(d_head) e_0), -100 on CLS itself (its key e_1, the query -100 sqrt(d_head) e_1),
    and which copies what it attends to: one-hot embeddings, OV twice the identity, no MLP,
    W_U reading the number."""
    d = n + 2                                                   # one-hot of 0..n-1 and CLS, then x
    cfg = mg.Config(task="max", n=n, d_model=d, n_heads=1, d_head=d, d_mlp=4, dtype="float64")
    params = mg.init_params(cfg)
    params["W_E"] = np.eye(n + 1, d)
    params["W_E"][:n, n + 1] = np.arange(n)
    params["W_pos"] = np.zeros_like(params["W_pos"])
    params["W_K"], params["W_Q"] = np.zeros((1, d, d)), np.zeros((1, d, d))
    params["W_K"][0, n + 1, 0], params["W_Q"][0, n, 0] = 1, beta * np.sqrt(d)
    params["W_K"][0, n, 1], params["W_Q"][0, n, 1] = 1, -100 * np.sqrt(d)
    params["W_V"], params["W_O"] = np.eye(d)[None], 2 * np.eye(d)[None]
    for k in ("W_in", "b_in", "W_out", "b_out"):
        params[k] = np.zeros_like(params[k])
    params["W_U"] = np.eye(d, n)
    return params


def test_max_circuit_on_a_planted_copying_model_with_two_outputs_swapped():
    """The keys are exactly linear, so the key lines give the model's own attention
    (agreement 1); W_U swaps the outputs n-2 and n-1, so the copy map, right everywhere,
    agrees with the model exactly where the model is right. Shuffled lines move the slope
    off the query's direction: far below the model. With the query turned round the model
    attends to the minimum and the copy map follows it."""
    n = 20
    params = copying_max_model(n)
    params["W_U"][:, [n - 2, n - 1]] = params["W_U"][:, [n - 1, n - 2]]
    rng = np.random.default_rng(0)
    x = rng.integers(0, n, (600, 5))
    x[:360, 2] = x[:360].max(1)                          # position 2 holds the maximum more often
    tokens, targets = tasks.sequences("max", x, n)
    _, k = analysis.qk_vectors(params, n)
    km, kc, _ = analysis.fit_linear(np.arange(n), k)
    out = analysis.max_circuit(params, tokens, targets, n, km, kc)
    right = ~np.isin(x.max(1), [n - 2, n - 1])
    assert out["learned"] == pytest.approx(right.mean()) and out["heads_rising"] == 1
    assert out["engineered"] == out["learned"] and out["engineered_agreement"] == 1
    assert out["engineered_copy"] == 1 and out["engineered_copy_agreement"] == out["learned"]
    assert out["copy_on_learned_attention"] == 1
    assert out["control"] < 0.5 and out["control_copy"] < 0.5 and out["control_agreement"] < 0.6
    assert out["baseline"] == pytest.approx((x[:, 2] == x.max(1)).mean())
    params = copying_max_model(n, beta=-8.0)
    _, k = analysis.qk_vectors(params, n)
    km, kc, _ = analysis.fit_linear(np.arange(n), k)
    out = analysis.max_circuit(params, tokens, targets, n, km, kc)
    assert out["heads_rising"] == 0
    assert out["engineered_agreement"] == out["engineered_copy_agreement"] == 1
    assert out["engineered_copy"] == pytest.approx((x.min(1) == x.max(1)).mean())


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


# ---------------------------------------------------------------- median: interventions at CLS
def test_thermometer_code_of_a_tuple_worked_by_hand():
    x = np.array([[3, 1, 4, 1, 5], [0, 0, 0, 0, 0]])
    C = analysis.threshold_counts(x, 6)
    assert C.tolist() == [[5, 3, 3, 2, 1, 0], [0, 0, 0, 0, 0, 0]]
    assert ((C >= 3).sum(1) == np.median(x, 1)).all()          # the median is where the count crosses 2.5


def test_imposed_patterns_reproduce_the_model_and_pool_uniformly(tmp_path):
    """The learned pattern imposed gives the model's own predictions and residual; pure
    pooling puts 1/5 on each input; blending at lam 0 and 1 gives those two accuracies."""
    cfg, out = tiny_max_model(tmp_path, epochs=5)
    _, params, _ = mg.load(out)
    tokens, targets = tasks.make_data(cfg).evals["test"]
    logits, cache = mg.forward(params, tokens, 1)
    learned = analysis.readout_pattern(params, tokens)
    acc, preds = analysis.readout_accuracy(params, tokens, targets, learned)
    assert (preds == logits[:, 0].argmax(-1)).all() and acc == float((preds == targets[:, 0]).mean())
    np.testing.assert_allclose(analysis.cls_resid_mid(params, tokens, learned), cache["resid_mid"][:, -1], rtol=1e-5,
                               atol=1e-5)
    uniform = analysis.uniform_pattern(tokens, params["W_Q"].shape[0])
    assert np.allclose(uniform[:, :, 0, :5], 0.2) and (uniform[:, :, 0, 5] == 0).all()
    blend = analysis.blend_accuracies(params, tokens, targets, [0.0, 1.0])
    assert blend[1] == acc and blend[0] == analysis.readout_accuracy(params, tokens, targets, uniform)[0]


def test_count_probe_reads_a_planted_thermometer_code_and_not_noise():
    """Features that are a linear image of the thermometer code (plus a little noise): R^2
    near 1 on held-out tuples and the median read off exactly; the same probe on shuffled
    labels, and on features unrelated to the tuple, near 0."""
    rng = np.random.default_rng(0)
    n, batch = 20, 4000
    x = rng.integers(0, n, (batch, 5))
    C = analysis.threshold_counts(x, n).astype(float)
    X = C @ rng.standard_normal((n, 48)) + 0.01 * rng.standard_normal((batch, 48))
    train = np.arange(batch) < batch // 2
    r2, median, shuffled = analysis.count_probe(X, x, n, train)
    varying = ~np.isnan(r2)
    assert varying.sum() >= n - 1 and (r2[varying] > 0.99).all()
    assert (median == np.median(x[~train], 1)).all()
    assert np.nanmax(shuffled) < 0.1                            # (48 features, 2,000 tuples: seen up to 0.05)
    r2_noise, _, _ = analysis.count_probe(rng.standard_normal((batch, 48)), x, n, train)
    assert np.nanmax(r2_noise) < 0.1


def test_median_read_off_counts_and_single_count_fits_on_planted_neurons():
    rng = np.random.default_rng(1)
    n, batch = 30, 3000
    x = rng.integers(0, n, (batch, 5))
    C = analysis.threshold_counts(x, n).astype(float)
    assert (analysis.median_from_counts(C) == np.median(x, 1)).all()
    # planted neurons: neuron j reads the count at threshold t_j, turning on at count 2.5
    # (slope +1 or -1); the last two read noise
    t_planted = np.array([3, 10, 17, 25])
    slopes = np.array([1.0, -2.0, 0.5, 3.0])
    pre = np.c_[(C[:, t_planted] - 2.5) * slopes + 0.01 * rng.standard_normal((batch, 4)),
                rng.standard_normal((batch, 2))]
    t, r2, crossing, slope = analysis.single_count_fits(pre, C)
    assert (t[:4] == t_planted).all() and (r2[:4] > 0.99).all() and (r2[4:] < 0.05).all()
    np.testing.assert_allclose(crossing[:4], 2.5, atol=0.02)
    np.testing.assert_allclose(slope[:4], slopes, rtol=0.01)


def test_engineered_median_on_a_planted_embedding_and_its_shuffled_control():
    """A model whose CLS residual under uniform attention is the mean of one-hot embeddings
    of the numbers (W_E the identity, W_V W_O copying): the thermometer code is exactly
    linear in it, so the built readout gets every median; fitted to shuffled labels, chance."""
    n = 12
    cfg = mg.Config(task="median", n=n, d_model=16, n_heads=1, d_head=16, d_mlp=8, dtype="float64")
    params = mg.init_params(cfg)
    params["W_E"] = np.eye(n + 1, 16)
    params["W_pos"] = np.zeros_like(params["W_pos"])
    params["W_V"], params["W_O"] = np.eye(16)[None], np.eye(16)[None]
    rng = np.random.default_rng(0)
    fit, held = (tasks.sequences("median", rng.integers(0, n, (m, 5)), n)[0] for m in (2000, 500))
    pred = analysis.engineered_median(params, fit, held, n)
    assert (pred == np.median(held[:, :5], 1)).all()
    control = analysis.engineered_median(params, fit, held, n, shuffle_seed=0)
    assert (control == np.median(held[:, :5], 1)).mean() < 0.4


def counting_median_model(n):
    """A median model built by hand: uniform attention (W_Q = 0) and OV the identity put
    (e_CLS + sum_i e_{x_i}) / 6 beside CLS's one-hot, so #{x_i > t} = C[t] is linear in the
    residual; neurons 2t and 2t+1 are ReLU(2 (C[t] - 2)) and ReLU(2 (C[t] - 3)), half their
    difference 1[C[t] >= 3] = 1[t < median] written to dimension n+1+t; W_U scores each m' by
    sum_{t < m'} 2 1[C[t] >= 3] - sum_{t >= m'} 1[C[t] >= 3] - m', which peaks at the median.
    The last neuron, #{x_i = 5} - 0.5, reads no single count and writes nothing."""
    d, m = 2 * n + 2, 2 * n + 1                      # one-hot 0..n, the n steps, a constant
    cfg = mg.Config(task="median", n=n, d_model=d, n_heads=1, d_head=d, d_mlp=m, dtype="float64")
    params = mg.init_params(cfg)
    params["W_E"], params["W_pos"] = np.eye(n + 1, d), np.zeros_like(params["W_pos"])
    params["W_Q"] = np.zeros((1, d, d))
    params["W_V"], params["W_O"] = np.eye(d)[None], np.eye(d)[None]
    above = np.arange(n)[:, None] > np.arange(n)[None, :]                         # [v, t]: v > t
    params["W_in"] = np.zeros((d, m))
    params["W_in"][5, -1] = 6
    params["W_in"][:n, 0:2 * n:2] = params["W_in"][:n, 1:2 * n:2] = 2 * 6 * above   # slope 2, not 1
    params["b_in"] = np.r_[np.repeat([[-4.0, -6.0]], n, 0).ravel(), -0.5]
    params["W_out"] = np.zeros((m, d))
    params["W_out"][np.arange(0, 2 * n, 2), n + 1 + np.arange(n)] = 0.5
    params["W_out"][np.arange(1, 2 * n, 2), n + 1 + np.arange(n)] = -0.5
    params["b_out"] = np.zeros(d)
    params["b_out"][-1] = 1
    params["W_U"] = np.zeros((d, n))
    params["W_U"][n + 1:2 * n + 1] = np.where(above.T, 2.0, -1.0)        # [t, m']: 2 where t < m'
    params["W_U"][-1] = -np.arange(n)
    return params


def test_median_circuit_rebuilds_planted_count_neurons_exactly():
    """Every neuron of the planted model but the last is a ReLU of one count, so the built
    neurons are the model's own (agreement 1) and the last is left learned; their thresholds
    shuffled, or the neurons held at their mean, lose the median."""
    n = 12
    params = counting_median_model(n)
    rng = np.random.default_rng(0)
    fit, held = (tasks.sequences("median", rng.integers(0, n, (m, 5)), n) for m in (2000, 600))
    out = analysis.median_circuit(params, fit[0], *held, n)
    assert out["learned"] == 1 and out["engineered"] == 1 and out["engineered_agreement"] == 1
    C = analysis.threshold_counts(fit[0][:, :5], n)
    on = np.stack([C > 2, C > 3], -1).reshape(len(C), -1).mean(0)                 # neurons 2t, 2t+1
    assert out["built_neurons"] == ((on > 0.02) & (on < 0.98)).sum() >= n             # not the last
    assert out["built_numbers"] == 3 * out["built_neurons"]
    assert out["control"] < 0.5 and out["mean_ablated"] < 0.5
    assert out["baseline"] == pytest.approx((held[0][:, :5] == held[1]).mean(0).max())


# ---------------------------------------------------------------- sort: successor or rank
def test_eta_squared_and_decoding_scores_tell_a_difference_from_a_value():
    assert analysis.eta_squared([1, 1, 3, 3], ["a", "a", "b", "b"]) == 1.0
    assert analysis.eta_squared([1, 3, 1, 3], ["a", "a", "b", "b"]) == pytest.approx(-0.5)   # adjusted: below 0
    noise = np.random.default_rng(0).standard_normal(2000)
    assert abs(analysis.eta_squared(noise, np.arange(2000) % 200)) < 0.05     # 200 groups of noise explain nothing
    n = 15
    t, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    successor = -np.abs(x - t - 1.0)                   # peaks at x = t + 1: depends on x - t only
    by_value = np.sin(x / 3.0) + 0 * t                 # depends on x only
    scores = np.stack([successor, by_value])[:, :, None, None, :]          # [step, t, head, pos, x]
    out = analysis.decoding_score_explained(scores)
    assert out["key_minus_previous"][0, 0, 0] == pytest.approx(1) and out["key"][0, 0, 0] < 0.5
    assert out["key"][1, 0, 0] == pytest.approx(1) and out["key_minus_previous"][1, 0, 0] < 0.5
    by_d = analysis.score_by_difference(scores, n)
    assert by_d[0, 0].argmax() == n                    # d = +1
    np.testing.assert_allclose(by_d[0, 0], -np.abs(np.arange(-(n - 1), n) - 1.0))


def test_counterfactual_previous_output_never_repeats_a_token_and_reads_a_planted_rule(monkeypatch):
    """A fake model that answers 'the smallest input above the token at the step's position'
    answers y_{s+2} after the counterfactual; one that answers 'the input of rank s + 1'
    answers y_{s+1}; the counterfactual token is never among the inputs."""
    rng = np.random.default_rng(0)
    n = 30
    x = rng.choice(n, size=(400, 5), replace=True)
    tokens, targets = tasks.sequences("sort", x, n)
    seen = []

    def model(rule):
        def readout_logits(params, toks, n_read):
            logits = np.zeros((len(toks), n_read, n))
            inputs = np.sort(toks[:, :5], 1)
            for s in range(n_read):
                prev = toks[:, FIVE_SEP + s]
                if s and rule == "successor":
                    above = np.where(inputs > prev[:, None], inputs, n + 1).min(1)
                    answer = np.where(above <= n - 1, above, inputs[:, -1])
                else:
                    answer = inputs[:, s]
                logits[np.arange(len(toks)), s, answer] = 1
            seen.append(toks)
            return logits
        return readout_logits

    FIVE_SEP = analysis.FIVE.sep
    for rule, key in (("successor", "answers_successor_of_t"), ("rank", "answers_rank")):
        monkeypatch.setattr(analysis, "readout_logits", model(rule))
        out = analysis.counterfactual_previous_output(None, tokens, targets)
        assert set(out) == {"y2", "y3", "y4"} and all(v["tested"] > 50 for v in out.values())
        assert all(v[key] == 1.0 for v in out.values()), (rule, out)
    for s, toks in zip([1, 2, 3] * 2, seen):           # the calls, step by step: the moved token is no input
        assert not (toks[:, FIVE_SEP + s][:, None] == toks[:, :5]).any()
    # t' below y_s: the same two planted rules answer y_s (successor) and y_{s+1} (rank), at every step
    seen.clear()
    for rule, key in (("successor", "answers_successor_of_t"), ("rank", "answers_rank")):
        monkeypatch.setattr(analysis, "readout_logits", model(rule))
        out = analysis.counterfactual_previous_output_below(None, tokens, targets)
        assert set(out) == {"y2", "y3", "y4", "y5"} and all(v["tested"] > 50 for v in out.values())
        assert all(v[key] == 1.0 for v in out.values()), (rule, out)
    for s, toks in zip([1, 2, 3, 4] * 2, seen):
        moved = toks[:, FIVE_SEP + s]
        assert not (moved[:, None] == toks[:, :5]).any()                    # no input
        below = np.sort(toks[:, :5], 1)[:, s - 1]                             # y_s, the token replaced
        assert (moved < below).all()                                          # below it: outputs still rise after


def copying_sort_model(n):
    """A sort model that copies what it attends to: one-hot embeddings, OV twice the identity
    (so the copied number outweighs the readout token's own), no MLP, W_U reading the number."""
    d = n + 1 + 11                                            # the embedding and room for the positions
    cfg = mg.Config(task="sort", n=n, d_model=d, n_heads=1, d_head=d, d_mlp=4, dtype="float64")
    params = mg.init_params(cfg)
    params["W_E"], params["W_pos"] = np.eye(n + 1, d), np.zeros_like(params["W_pos"])
    params["W_V"], params["W_O"] = np.eye(d)[None], 2 * np.eye(d)[None]
    for k in ("W_in", "b_in", "W_out", "b_out"):
        params[k] = np.zeros_like(params[k])
    params["W_U"] = np.eye(d, n)
    return params


def test_engineered_sort_with_a_copying_model_follows_its_rule():
    n = 40
    params = copying_sort_model(n)
    rng = np.random.default_rng(0)
    x = np.array([rng.choice(n, 5, replace=False) for _ in range(200)])      # distinct inputs
    tokens, targets = tasks.sequences("sort", x, n)
    for rule in ("successor", "successor_with_memory", "rank"):
        assert (analysis.engineered_sort(params, tokens, rule) == targets).all(), rule
    assert (analysis.engineered_sort(params, tokens, "position") == x).all()
    assert (analysis.engineered_sort(params, tokens, "random") == targets).mean() < 0.4
    repeated = np.array([[1, 1, 5, 7, 9], [3, 3, 3, 0, 3], [8, 2, 8, 2, 8]])
    tokens, targets = tasks.sequences("sort", repeated, n)
    assert (analysis.engineered_sort(params, tokens, "successor_with_memory") == targets).all()   # each copy once
    assert analysis.engineered_sort(params, tokens, "successor")[0].tolist() == [1, 5, 7, 9, 9]   # skips a copy


def test_silencing_no_neuron_is_the_model_and_silencing_all_leaves_the_rest(tmp_path):
    cfg, out = tiny_max_model(tmp_path, epochs=5)
    _, params, _ = mg.load(out)
    tokens, targets = tasks.make_data(cfg).evals["test"]
    acc = analysis.readout_accuracy(params, tokens, targets, analysis.readout_pattern(params, tokens))[0]
    assert analysis.accuracy_without_neurons(params, tokens, targets, []) == acc
    everything = np.arange(params["W_in"].shape[1])
    X = analysis.cls_resid_mid(params, tokens, analysis.readout_pattern(params, tokens))
    no_mlp = ((X + params["b_out"]) @ params["W_U"]).argmax(-1) == targets[:, 0]
    assert analysis.accuracy_without_neurons(params, tokens, targets, everything) == float(no_mlp.mean())


def test_counterfactual_paths_with_the_real_token_are_the_model(tmp_path):
    """The path split leaves the model as it is when nothing is moved: with the real pattern
    and the real tokens forward_with_pattern is the model (checked through a copying model,
    whose answers the two paths then share)."""
    n = 40
    params = copying_sort_model(n)
    rng = np.random.default_rng(1)
    x = np.array([rng.choice(n, 5, replace=False) for _ in range(300)])
    tokens, targets = tasks.sequences("sort", x, n)
    logits, cache = mg.forward(params, tokens, 5)
    again = analysis.forward_with_pattern(params, tokens, 5, cache["pattern"][:, :, -5:])
    np.testing.assert_allclose(again, logits, atol=1e-9)
    out = analysis.counterfactual_paths(params, tokens, targets)
    assert set(out) == {"attention_only", "all_but_attention"}
    assert all(0 <= v["answers_successor_of_t"] + v["answers_rank"] <= 1 for p in out.values() for v in p.values())
