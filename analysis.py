"""analysis.py: small helpers that take a trained minigrok checkpoint apart, each returning arrays.

For modular addition they follow Nanda et al. 2023 ("Progress measures for grokking"): the
embedding, the attention and the MLP neurons read in the Fourier basis over Z_p, key
frequencies found from the weights, progress measures on the weight snapshots, and the
extracted algorithm put in place of the learned weights. For max, median and sort they
follow the study this project reproduces: order invariance, which input each head reads
(by mean attention weight, not only argmax), QK scores of the queries the model really
forms, line fits per dimension, OV copying and its robustness. Chance baselines (random
vectors of the same dimension and count) sit beside the cosines. For each task a circuit
built by hand goes in place of learned parts (add_circuit, max_circuit, median_circuit):
its accuracy, a control's, a baseline and its agreement with the model, as floats.

Nothing here draws, judges or writes files: study.py runs the study (per-task drivers,
plots, the claims table, findings.json and REPORT.md) on top of these helpers, and the
tests plant answers in them. Builds on minigrok.py (load, forward), fast.py (forward, where only
logits are read) and tasks.py; NumPy only.
"""
import numpy as np

import fast
import minigrok as mg
import tasks

FIVE, SORT = tasks.LAYOUTS["max"], tasks.LAYOUTS["sort"]   # where the five numbers and CLS/SEP sit


# ============================================================================ Fourier toolkit
def fourier_basis(p):
    """Orthonormal Fourier basis over Z_p: rows [p, p] and their names. Row 0 is the
    constant; then cos(2πkx/p), sin(2πkx/p) for k = 1 .. (p-1)//2 (and cos(πx) when p is even)."""
    x = np.arange(p)
    rows, names = [np.ones(p)], ["const"]
    for k in range(1, (p - 1) // 2 + 1):
        rows += [np.cos(2 * np.pi * k * x / p), np.sin(2 * np.pi * k * x / p)]
        names += [f"cos {k}", f"sin {k}"]
    if p % 2 == 0:
        rows.append(np.cos(np.pi * x))
        names.append(f"cos {p // 2}")
    basis = np.array(rows)
    return basis / np.linalg.norm(basis, axis=1, keepdims=True), names


def fourier_1d(t, basis):
    """t [p, ...] indexed by a number -> its components [p, ...] in the basis."""
    return np.tensordot(basis, t, axes=(1, 0))


def fourier_2d(t, basis):
    """t [p, p, ...] indexed by (a, b) -> components [p, p, ...]: row = a's, column = b's."""
    rows = np.tensordot(basis, t, axes=(1, 0))                 # [a's component, b, ...]
    return np.moveaxis(np.tensordot(rows, basis, axes=(1, 1)), -1, 1)


def frequency_norms(components):
    """Components [p, ...] from fourier_1d -> squared norm per frequency k = 1..(p-1)//2
    (cos and sin together, summed over the other axes) [K]."""
    sq = (components.reshape(len(components), -1) ** 2).sum(1)
    K = (len(components) - 1) // 2
    return sq[1:2 * K + 1].reshape(K, 2).sum(1)


KEY_FACTOR = 5.0


def key_frequencies(norms, factor=KEY_FACTOR):
    """Key frequencies (1-based) from per-frequency squared norms [K]: those whose share of the
    total exceeds `factor` times the share every frequency would have if they were equal
    (1/K). Noise spreads its norm evenly and has none; a Fourier circuit has a few."""
    share = norms / norms.sum()
    return np.flatnonzero(share > factor / len(norms)) + 1


def neuron_frequency_fractions(acts, basis):
    """acts [p, p, n] (a neuron's value for each (a, b)) -> [K, n]: the fraction of each
    neuron's variance (constant removed) in the 2-D components built from {1, cos k, sin k}."""
    F = fourier_2d(acts, basis)
    F[0, 0] = 0
    total = (F ** 2).sum((0, 1))
    K = (len(basis) - 1) // 2
    fractions = []
    for k in range(1, K + 1):
        idx = [0, 2 * k - 1, 2 * k]
        fractions.append((F[np.ix_(idx, idx)] ** 2).sum((0, 1)) / np.maximum(total, 1e-30))
    return np.array(fractions)


def neuron_key_frequencies(fractions, explained=0.5, min_share=0.02):
    """Frequencies that explain more than `explained` of the variance of at least `min_share`
    of the neurons (neurons that are dead, variance ~0, count for none)."""
    best = fractions.argmax(0)
    ok = fractions.max(0) > explained
    counts = np.bincount(best[ok], minlength=len(fractions))
    return np.flatnonzero(counts >= min_share * fractions.shape[1]) + 1, counts


def all_pairs(p):
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    return np.stack([a.ravel(), b.ravel(), np.full(p * p, p)], 1)             # [p*p, 3]


def run_all_pairs(params, p):
    """Logits [p, p, p], attention from '=' to each position [p, p, head, pos], and
    pre-ReLU neuron activations [p, p, d_mlp], for every input (a, b)."""
    logits, cache = readout_forward(params, all_pairs(p))
    pattern = cache["pattern"][:, :, -1, :]                                    # [p*p, head, pos]: the '=' query
    return (logits[:, 0].reshape(p, p, -1), pattern.reshape(p, p, *pattern.shape[1:]),
            cache["mlp_pre"][:, -1].reshape(p, p, -1))


def all_pair_logits(params, p):
    """Logits [p, p, p] for every input (a, b) alone, by the fast engine (readout position only;
    equal to the textbook forward by test_minigrok's equality tests): where only logits are read."""
    return fast.forward(params, all_pairs(p), 1)[0][:, 0].reshape(p, p, -1)


def position_symmetry(params, p):
    """Is the model symmetric in its two inputs? |W_pos[0] - W_pos[1]|, their cosine, and the
    largest |difference| of pre-ReLU neuron activations between (a, b) and (b, a)."""
    w0, w1 = params["W_pos"][0].astype(np.float64), params["W_pos"][1].astype(np.float64)
    _, _, acts = run_all_pairs(params, p)
    swap = np.abs(acts - acts.transpose(1, 0, 2))
    return {"pos_embed_diff_norm": float(np.linalg.norm(w0 - w1)),
            "pos_embed_cosine": float(w0 @ w1 / np.linalg.norm(w0) / np.linalg.norm(w1)),
            "swap_max_abs_diff": float(swap.max()),
            "swap_max_abs_diff_relative": float(swap.max() / np.abs(acts).max())}


def loss_and_accuracy(logits, p, mask=None):
    """Cross-entropy (minigrok's, in float64) and accuracy of logits [p, p, p] against
    (a+b) mod p, over mask [p, p]."""
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    mask = np.ones((p, p), bool) if mask is None else mask
    target = ((a + b) % p)[mask]                                   # [n]
    picked = np.asarray(logits, np.float64)[mask]                  # [n, p]
    loss, _ = mg.cross_entropy(picked[:, None], target[:, None])
    return loss, float((picked.argmax(-1) == target).mean())


def sum_directions(p, freqs):
    """Unit vectors over the (a, b) grid [2*len(freqs), p, p]: cos(w_k(a+b)), sin(w_k(a+b))."""
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    dirs = []
    for k in freqs:
        w = 2 * np.pi * k / p
        for f in (np.cos, np.sin):
            d = f(w * (a + b))
            dirs.append(d / np.linalg.norm(d))
    return np.array(dirs).reshape(-1, p, p)


def restricted_and_excluded(logits, p, freqs):
    """Nanda et al.'s logit surgery: project each output's logit table over (a, b) onto
    cos/sin(w_k(a+b)) for the key frequencies (restricted: keep those and the constant;
    excluded: remove them). Returns (restricted logits, excluded logits), both [p, p, p]."""
    dirs = sum_directions(p, freqs)                                              # [2F, p, p]
    coef = np.einsum("fab,abc->fc", dirs, logits)                                # [2F, p]
    along = np.einsum("fab,fc->abc", dirs, coef)
    const = logits.mean((0, 1), keepdims=True)
    return const + along, logits - along


def train_mask(cfg, p):
    """[p, p] True for the pairs the run trained on (the split is rebuilt from the seed)."""
    import tasks
    tokens = tasks.make_data(cfg).train[0]
    mask = np.zeros((p, p), bool)
    mask[tokens[:, 0], tokens[:, 1]] = True
    return mask


def gini(x):
    """Gini coefficient of non-negative values: 0 when all are equal, near 1 when one dominates."""
    x = np.sort(np.abs(np.ravel(x)))
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def progress_measures(snapshots, cfg, freqs):
    """Nanda et al.'s progress measures at every weight snapshot: restricted loss (all
    inputs), excluded loss (training inputs), Gini of the Fourier-component norms of W_E
    and of W_out @ W_U, and the total sum of squared weights."""
    p = cfg.p
    basis, _ = fourier_basis(p)
    mask = train_mask(cfg, p)
    rows = {k: [] for k in ("epoch", "restricted_loss", "excluded_loss", "gini_W_E", "gini_W_out_U", "weight_norm")}
    for epoch, params in snapshots:
        logits = all_pair_logits(params, p)
        restricted, excluded = restricted_and_excluded(logits.astype(np.float64), p, freqs)
        rows["epoch"].append(epoch)
        rows["restricted_loss"].append(loss_and_accuracy(restricted, p)[0])
        rows["excluded_loss"].append(loss_and_accuracy(excluded, p, mask)[0])
        rows["gini_W_E"].append(gini(np.linalg.norm(fourier_1d(params["W_E"][:p], basis), axis=1)))
        out_U = params["W_out"].astype(np.float64) @ params["W_U"]              # [d_mlp, p]
        rows["gini_W_out_U"].append(gini(np.linalg.norm(fourier_1d(out_U.T, basis), axis=1)))
        rows["weight_norm"].append(float(sum((v.astype(np.float64) ** 2).sum() for v in params.values())))
    return {k: np.array(v) for k, v in rows.items()}


# ---------------------------------------------------------------- addition: phases, ablations, the multiplication step
CIRCUIT_FORMED = 0.01   # circuit formation ends when the restricted loss is down to 1% of its value when memorisation ended
SETTLED = 0.05          # a curve has settled once it stays within 5% of its range of its final value


def settle_epoch(epochs, x, start):
    """The first epoch >= start from which x stays within SETTLED times its range (over the
    epochs >= start) of its final value, for the rest of the run. The last epoch means the
    curve was still moving when the run ended."""
    later = np.asarray(epochs) >= start
    e, x = np.asarray(epochs)[later], np.asarray(x, np.float64)[later]
    off = np.flatnonzero(np.abs(x - x[-1]) > SETTLED * (x.max() - x.min()))
    return int(e[off[-1] + 1]) if len(off) else int(e[0])


def phases(measures):
    """Nanda et al.'s three phases, from the progress measures at the snapshots:
    memorisation ends where the excluded loss on the training inputs is lowest (from then
    on the train loss rests more and more on the key frequencies); circuit formation runs
    while the restricted loss falls, until it is down to CIRCUIT_FORMED of its value at the
    end of memorisation; clean-up ends when the Gini coefficient of W_E's Fourier norms and
    the total weight norm have both settled (settle_epoch). Returns the three epochs."""
    e, r = np.asarray(measures["epoch"]), np.asarray(measures["restricted_loss"])
    i_memorise = int(np.argmin(measures["excluded_loss"]))
    formed = (e > e[i_memorise]) & (r <= CIRCUIT_FORMED * r[i_memorise])
    start_cleanup = int(e[formed][0]) if formed.any() else int(e[-1])
    end_cleanup = max(settle_epoch(e, measures["gini_W_E"], start_cleanup),
                      settle_epoch(e, measures["weight_norm"], start_cleanup))
    return int(e[i_memorise]), start_cleanup, end_cleanup


def frequency_rows(basis, freqs):
    """The cos and sin rows of the basis for each frequency in freqs [2 * len(freqs), p]."""
    return basis[[i for k in freqs for i in (2 * k - 1, 2 * k)]]


def embedding_without_frequencies(params, p, freqs):
    """The weights with the cos and sin components of `freqs` projected out of W_E's number rows."""
    B = frequency_rows(fourier_basis(p)[0], freqs)                              # [2F, p]
    W_E = params["W_E"].astype(np.float64).copy()
    W_E[:p] -= B.T @ (B @ W_E[:p])
    return {**params, "W_E": W_E.astype(params["W_E"].dtype)}


def control_frequencies(norms, freqs, n_random=2, seed=0):
    """Non-key frequencies to ablate beside the key ones: the non-key frequency with the
    largest W_E norm (the strongest control), then n_random others drawn at random (1-based)."""
    others = np.setdiff1d(np.arange(1, len(norms) + 1), freqs)
    strongest = others[np.argmax(norms[others - 1])]
    rest = np.setdiff1d(others, [strongest])
    drawn = np.random.default_rng(seed).choice(rest, min(n_random, len(rest)), replace=False)
    return np.r_[strongest, np.sort(drawn)].astype(int)


def frequency_ablations(params, p, freqs, test_mask):
    """Necessity of each frequency: for every k in freqs, loss and accuracy on all p^2 inputs
    and on the test inputs (test_mask [p, p]) with k removed from W_E's number rows
    (embedding_without_frequencies) and, separately, with k removed from the logits (the
    excluded logits of restricted_and_excluded). Returns {"embedding"|"logits": {"loss",
    "accuracy", "test_loss", "test_accuracy": [len(freqs)]}}."""
    out = {site: {m: [] for m in ("loss", "accuracy", "test_loss", "test_accuracy")} for site in ("embedding", "logits")}
    logits = all_pair_logits(params, p).astype(np.float64)
    for k in freqs:
        tables = {"embedding": all_pair_logits(embedding_without_frequencies(params, p, [k]), p).astype(np.float64),
                  "logits": restricted_and_excluded(logits, p, [k])[1]}
        for site, lg in tables.items():
            for prefix, mask in (("", None), ("test_", test_mask)):
                loss, acc = loss_and_accuracy(lg, p, mask)
                out[site][prefix + "loss"].append(loss)
                out[site][prefix + "accuracy"].append(acc)
    return {site: {m: np.array(v) for m, v in d.items()} for site, d in out.items()}


def neuron_term_shares(acts, basis):
    """acts [p, p, n] (post-ReLU activations for every (a, b)) -> per neuron: its frequency k
    (the one whose {1, cos k, sin k} block holds most of its variance) [n], and the shares of
    its variance (constant removed) in the product terms, cells (k, k): cos/sin(w_k a) x
    cos/sin(w_k b) [n], and in the linear terms, cells (k, 0) and (0, k) [n]. Dead neurons
    (no variance) get shares 0."""
    F = fourier_2d(np.asarray(acts, np.float64), basis) ** 2                    # [p, p, n]
    F[0, 0] = 0
    total = F.sum((0, 1))
    k = neuron_frequency_fractions(acts, basis).argmax(0) + 1                   # [n]
    n, c, s = np.arange(F.shape[-1]), 2 * k - 1, 2 * k
    product = F[c, c, n] + F[c, s, n] + F[s, c, n] + F[s, s, n]
    linear = F[c, 0, n] + F[s, 0, n] + F[0, c, n] + F[0, s, n]
    live = total > 1e-12 * max(total.max(), 1e-300)
    return k, np.where(live, product / np.maximum(total, 1e-300), 0), np.where(live, linear / np.maximum(total, 1e-300), 0)


def neuron_logit_map_norms(params, p, basis):
    """W_L = W_out @ W_U [d_mlp, p] (what each neuron adds to each output token's logit) ->
    squared norm per output-token frequency k = 1..K [K]."""
    W_L = params["W_out"].astype(np.float64) @ params["W_U"].astype(np.float64)[:, :p]   # [d_mlp, p]
    return frequency_norms(fourier_1d(W_L.T, basis))


def top_overlap(norms, freqs):
    """The fraction of freqs (1-based) that are among the len(freqs) largest of norms [K]."""
    if len(freqs) == 0:
        return float("nan")
    top = np.argsort(norms)[::-1][:len(freqs)] + 1
    return float(np.isin(freqs, top).mean())


def logit_sum_shares(logits, p):
    """The share of the logits' variance (each (a, b) row centred over c) along
    cos/sin(w_k (a + b - c)), for every frequency k = 1..K [K]. The logits are summed along
    each diagonal s = a + b - c mod p first: the directions depend on (a, b, c) only through s."""
    a, b, c = np.meshgrid(np.arange(p), np.arange(p), np.arange(p), indexing="ij")
    centred = logits - logits.mean(-1, keepdims=True)                           # [p, p, p]
    G = np.bincount(((a + b - c) % p).ravel(), centred.ravel(), p)               # [p]: sum over each diagonal
    # a unit basis row u(s) is cos(w s) / sqrt(p / 2); the unit direction over the p^3 cells is
    # cos(w (a + b - c)) / sqrt(p^3 / 2), so its coefficient is <G, u> / p
    return frequency_norms(fourier_1d(G, fourier_basis(p)[0])) / p ** 2 / (centred ** 2).sum()


def embedding_circle(W_E, basis, k):
    """Every number's embedding W_E[:p] [p, d_model] in the plane of frequency k: the plane
    spanned by W_E's cos k and sin k components (orthonormalised, cos first) -> [p, 2]. On a
    Fourier circuit number x sits at angle w_k x on a circle."""
    p = len(basis)
    W = np.asarray(W_E[:p], np.float64)
    u = frequency_rows(basis, [k]) @ W                                          # [2, d_model]
    Q, _ = np.linalg.qr(u.T)                                                    # [d_model, 2]
    return W @ Q


def key_frequency_counts(norms, factors):
    """How many key frequencies key_frequencies finds at each threshold factor [len(factors)]."""
    return np.array([len(key_frequencies(norms, f)) for f in factors])


def embedding_on_key_frequencies(params, p, freqs):
    """The weights with W_E's number rows projected onto the constant and the key
    frequencies' cos and sin components (everything else in the embedding removed)."""
    basis, _ = fourier_basis(p)
    keep = [0] + [i for k in freqs for i in (2 * k - 1, 2 * k)]
    B = basis[keep]
    W_E = params["W_E"].astype(np.float64).copy()
    W_E[:p] = B.T @ (B @ W_E[:p])
    return {**params, "W_E": W_E.astype(params["W_E"].dtype)}


def closed_form_logits(logits, p, freqs):
    """Fit logits(a, b, c) ~ sum_k alpha_k cos(w_k (a + b - c)) by least squares to the
    model's logits (each (a, b) row centred: a constant per row does not change the softmax).
    Returns (alpha [F], fitted logits [p, p, p], fraction of the centred logits' variance explained)."""
    a, b, c = np.meshgrid(np.arange(p), np.arange(p), np.arange(p), indexing="ij")
    centred = logits - logits.mean(-1, keepdims=True)
    if len(freqs) == 0:                                   # no key frequencies: nothing to fit
        return np.zeros(0), np.zeros_like(centred), 0.0
    feats = np.stack([np.cos(2 * np.pi * k / p * (a + b - c)) for k in freqs], -1).reshape(-1, len(freqs))
    alpha, *_ = np.linalg.lstsq(feats, centred.ravel(), rcond=None)
    fitted = (feats @ alpha).reshape(p, p, p)
    explained = 1 - ((centred - fitted) ** 2).sum() / (centred ** 2).sum()
    return alpha, fitted, float(explained)


def add_circuit(logits, p, freqs, test_mask, draws=5, seed=0):
    """Addition's built circuit against the model `logits` [p, p, p] on the test pairs
    (test_mask [p, p]). Built: the closed form sum_k alpha_k cos(w_k (a + b - c)) over the
    key frequencies (closed_form_logits: len(freqs) alphas fitted to the model's logits, the
    frequencies read off W_E); nothing learned is kept. Control: the same fit on as many
    non-key frequencies drawn at random, `draws` times (means). Baseline: the best constant
    answer. Agreement: the share of test pairs where a circuit's answer is the model's.
    A cosine with alpha > 0 at any frequency peaks at c = a + b (p prime), so the closed
    form's accuracy holds by construction and a control's follows its alphas' signs: the
    losses and the variance explained carry the comparison (uniform_loss = log p)."""
    logits = np.asarray(logits, np.float64)
    learned = logits[test_mask].argmax(-1)                                      # [test]

    def measure(lg):                        # accuracy, loss, agreement with the model
        loss, acc = loss_and_accuracy(lg, p, test_mask)
        return acc, loss, float((lg[test_mask].argmax(-1) == learned).mean())

    _, fitted, explained = closed_form_logits(logits, p, freqs)
    others = np.setdiff1d(np.arange(1, (p - 1) // 2 + 1), freqs)
    rng = np.random.default_rng(seed)
    control, control_explained = [], []
    for _ in range(draws):
        _, lg, ex = closed_form_logits(logits, p, rng.choice(others, len(freqs), replace=False))
        control.append(measure(lg))
        control_explained.append(ex)
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    target = ((a + b) % p)[test_mask]
    out = dict(zip(("learned", "learned_loss"), measure(logits)[:2]))
    out.update(zip(("engineered", "engineered_loss", "agreement"), measure(fitted)))
    control = map(float, np.mean(control, 0))
    out.update(zip(("control", "control_loss", "control_agreement"), control))
    return {**out, "engineered_variance_explained": explained,
            "control_variance_explained": float(np.mean(control_explained)),
            "baseline": float(np.bincount(target, minlength=p).max() / len(target)),
            "uniform_loss": float(np.log(p)), "built_numbers": len(freqs)}


def spectrum(table, basis):
    """Norm of a table's 2-D Fourier components grouped by frequency: [K+1, K+1], entry
    (i, j) from a's frequency i and b's frequency j (cos and sin together; 0 is the
    constant), with the (0, 0) term (the table's mean) zeroed. A table [p, p, ...] with more
    axes (logits [a, b, c]) is summed over them."""
    F = fourier_2d(table.astype(np.float64), basis) ** 2
    F = F.reshape(*F.shape[:2], -1).sum(-1)
    K = (len(basis) - 1) // 2
    freq = np.r_[0, np.repeat(np.arange(1, K + 1), 2), np.full(len(basis) - 1 - 2 * K, K + 1)].astype(int)
    G = np.zeros((K + 2, K + 2))
    np.add.at(G, (freq[:, None], freq[None, :]), F)
    G[0, 0] = 0
    return np.sqrt(G[:K + 1, :K + 1])


def cosine_matrix(X):
    """Rows of X [n, d] -> [n, n] cosine similarity of every pair."""
    X = np.asarray(X, np.float64).reshape(len(X), -1)
    unit = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-30)
    return unit @ unit.T


def orderings(numbers, n, task="max"):
    """All 120 orderings of five numbers as the task's sequences: [x1..x5, CLS] for max and
    median, [x1..x5, SEP, y1..y4] for sort."""
    from itertools import permutations
    return tasks.sequences(task, np.array(list(permutations(numbers))), n)[0]


def permutation_similarity(params, numbers, n, task="max"):
    """Cosine similarity [120, 120] of the pre-ReLU MLP activations at the readout
    position(s) for every pair of orderings of the same five numbers (1 everywhere: order
    does not matter)."""
    tokens = orderings(numbers, n, task)
    n_read = tasks.LAYOUTS[task].n_read
    return cosine_matrix(readout_forward(params, tokens, n_read)[1]["mlp_pre"].reshape(len(tokens), -1))


def head_picks_max(params, tokens):
    """Per head, the fraction of inputs on which the largest attention from CLS falls on a
    position holding the maximum."""
    top = attention_pattern(params, tokens)[:, :, -1, FIVE.inputs].argmax(-1)                            # [batch, head]
    values = np.take_along_axis(tokens[:, FIVE.inputs], top, 1)
    return (values == tokens[:, FIVE.inputs].max(1, keepdims=True)).mean(0)


def qk_vectors(params, n, query_pos=FIVE.sep, key_positions=range(FIVE.n_inputs)):
    """q [n, head, d_head] of each number placed at query_pos, and k [n, head, d_head] of
    each number at the key positions (averaged over them: the inputs' position embeddings
    are nearly equal)."""
    W_E, W_pos = params["W_E"].astype(np.float64), params["W_pos"].astype(np.float64)
    q = np.einsum("xd,hde->xhe", W_E[:n] + W_pos[query_pos], params["W_Q"])
    k = np.einsum("xd,hde->xhe", W_E[:n] + W_pos[list(key_positions)].mean(0), params["W_K"])
    return q, k


def qk_table(q, k):
    """Un-normalised attention score [head, query number, key number] = q.k / sqrt(d_head)."""
    return np.einsum("xhe,yhe->hxy", q, k) / np.sqrt(q.shape[-1])


def fit_polynomial(x, Y, degree):
    """Least-squares polynomial of `degree` in x for every column of Y [len(x), ...]: the
    coefficients [degree + 1, ...] (highest power first), R^2 and the fitted values, each
    shaped like Y's columns."""
    x = np.asarray(x, np.float64)
    Yf = np.asarray(Y, np.float64).reshape(len(x), -1)
    A = np.vander(x, degree + 1)
    coef, *_ = np.linalg.lstsq(A, Yf, rcond=None)
    fitted = A @ coef
    total = ((Yf - Yf.mean(0)) ** 2).sum(0)
    r2 = 1 - ((Yf - fitted) ** 2).sum(0) / np.maximum(total, 1e-30)
    shape = np.shape(Y)[1:]
    return coef.reshape(degree + 1, *shape), r2.reshape(shape), fitted.reshape(np.shape(Y))


def fit_linear(x, Y):
    """Least-squares line y = m x + c for every column of Y [len(x), ...]: (m, c, R^2),
    each shaped like a row of Y."""
    (m, c), r2, _ = fit_polynomial(x, Y, 1)
    return m, c, r2


def project(params, name, token, pos):
    """(W_E[token] + W_pos[pos]) @ params[name] for every head, in float64: the query, key
    or value a token has at a position. token, pos: ints or broadcastable arrays ->
    [..., head, d_head]."""
    x = params["W_E"].astype(np.float64)[token] + params["W_pos"].astype(np.float64)[pos]
    return np.einsum("...d,hde->...he", x, params[name])


def attention_law(params, n, k_slope, k_intercept):
    """The real query (CLS at position 5) against keys on the fitted lines k_d = m_d x + c_d:
    score(x) = sum_d q_d (m_d x + c_d) / sqrt(d_head) = beta (x - x0), per head."""
    q_cls = project(params, "W_Q", n, FIVE.sep)                                        # [head, d_head]
    scale = np.sqrt(q_cls.shape[-1])
    beta = (q_cls * k_slope).sum(-1) / scale
    return beta, -(q_cls * k_intercept).sum(-1) / scale / beta


def attention_pattern(params, tokens):
    """The model's attention pattern [batch, head, pos_q, pos_k], as mg.forward's cache has
    it: the textbook model's embedding and attention only (the MLP and W_U come after it)."""
    return mg.attention_forward(params, mg.embed_forward(params, tokens))[1]["pattern"]


def readout_forward(params, tokens, n_read=1):
    """mg.forward(params, tokens, n_read) with the MLP and W_U run at the readout positions only
    (forward runs them at every position; in one layer nothing else reaches the readouts): the
    logits [batch, n_read, d_vocab_out] and the cache, whose pattern covers every position and
    whose mlp_pre and mlp_post [batch, n_read, d_mlp] the readouts. The textbook model's own
    pieces, in its order."""
    resid_pre = mg.embed_forward(params, tokens)                                  # [batch, pos, d_model]
    attn_out, cache = mg.attention_forward(params, resid_pre)
    resid_mid = (resid_pre + attn_out)[:, tokens.shape[1] - n_read:]              # [batch, n_read, d_model]
    mlp_out, mlp_cache = mg.mlp_forward(params, resid_mid)
    cache.update(mlp_cache)
    return mg.unembed_forward(params, resid_mid + mlp_out), cache                 # [batch, n_read, d_vocab_out]


def readout_logits(params, tokens, n_read=1):
    """mg.forward(params, tokens, n_read)'s logits [batch, n_read, d_vocab_out] (readout_forward)."""
    return readout_forward(params, tokens, n_read)[0]


def forward_with_pattern(params, tokens, n_read, pattern):
    """mg.forward(params, tokens, n_read, pattern=pattern)'s logits, computed at the readout
    positions only: with the readout's attention imposed, its residual is its own embedding
    plus the imposed mix of every position's value vectors, and nothing else at other
    positions reaches it in one layer. The textbook model's own pieces, in its order."""
    resid_pre = mg.embed_forward(params, tokens)                                  # [batch, pos, d_model]
    v = mg.einsum("bpd,hde->bphe", resid_pre, params["W_V"])                      # [batch, pos, head, d_head]
    z = mg.einsum("bhqk,bkhe->bqhe", pattern, v)                                  # [batch, R, head, d_head]
    resid_mid = resid_pre[:, tokens.shape[1] - n_read:] + mg.einsum("bqhe,hed->bqd", z, params["W_O"])
    mlp_out, _ = mg.mlp_forward(params, resid_mid)
    return mg.unembed_forward(params, resid_mid + mlp_out)                        # [batch, R, d_vocab_out]


def forced_pattern(tokens, n_heads, target_pos, other_pos=None, alpha=0.0):
    """Attention from CLS of every head put on target_pos [batch], with a fraction alpha
    moved to other_pos: (1 - alpha) one-hot + alpha one-hot. [batch, head, 1, pos]."""
    batch, n_pos = tokens.shape
    pattern = np.zeros((batch, n_heads, 1, n_pos), np.float32)
    pattern[np.arange(batch), :, 0, target_pos] = 1 - alpha
    if other_pos is not None:
        pattern[np.arange(batch), :, 0, other_pos] += alpha
    return pattern


def argmax_and_runner_up(tokens):
    """Position of the maximum, and of the largest number smaller than it (the maximum
    again where all five are equal) [batch] each."""
    x = tokens[:, FIVE.inputs]
    top = x.argmax(1)
    below = np.where(x < x.max(1, keepdims=True), x, -1)
    second = np.where(below.max(1) >= 0, below.argmax(1), top)
    return top, second


def ov_copy_accuracy(params, tokens, targets, n, alpha=0.0):
    """Accuracy when every head's attention is forced onto the maximum's position, with a
    fraction alpha of the runner-up's value vector mixed in; and accuracy per output value."""
    top, second = argmax_and_runner_up(tokens)
    pattern = forced_pattern(tokens, params["W_Q"].shape[0], top, second, alpha)
    logits = forward_with_pattern(params, tokens, 1, pattern)
    hit = logits[:, 0].argmax(-1) == targets[:, 0]
    per_value = np.array([hit[targets[:, 0] == v].mean() if (targets[:, 0] == v).any() else np.nan
                          for v in range(n)])
    return float(hit.mean()), per_value


def line_attention(params, tokens, n, k_slope, k_intercept):
    """The CLS query's attention [batch, head, 1, pos] with the learned keys of the numbers
    replaced by their fitted lines k = m x + c (CLS's own key kept):
    softmax(q_CLS . (m x + c) / sqrt(d_head)) over the five inputs and CLS."""
    q_cls, k_cls = project(params, "W_Q", n, FIVE.sep), project(params, "W_K", n, FIVE.sep)  # [head, d_head] each
    x = tokens[:, FIVE.inputs].astype(np.float64)
    k_in = x[:, :, None, None] * k_slope + k_intercept                          # [batch, 5, head, d_head]
    scores = np.concatenate([np.einsum("bthe,he->bht", k_in, q_cls),
                             np.broadcast_to((q_cls * k_cls).sum(-1), (len(x), len(q_cls)))[:, :, None]], -1)
    scores = scores / np.sqrt(q_cls.shape[-1])
    pattern = np.exp(scores - scores.max(-1, keepdims=True))
    return (pattern / pattern.sum(-1, keepdims=True))[:, :, None, :]


def engineered_max_accuracy(params, tokens, targets, n, k_slope, k_intercept):
    """End-to-end accuracy with the CLS query's attention computed from the key lines (line_attention)."""
    pattern = line_attention(params, tokens, n, k_slope, k_intercept).astype(np.float32)
    logits = forward_with_pattern(params, tokens, 1, pattern)
    return float((logits[:, 0].argmax(-1) == targets[:, 0]).mean())


def copy_map(pattern, tokens):
    """A copy map built in place of W_V, W_O, the MLP and W_U (0 numbers): the answer is the
    input number at the position on which CLS's pattern [batch, head, 1, pos] puts the most
    weight summed over heads (CLS itself left out; ties to the first). Predictions [batch]."""
    weight = pattern[:, :, 0, FIVE.inputs].sum(1)                                  # [batch, 5]
    return tokens[np.arange(len(tokens)), weight.argmax(1)]


def shuffled_lines(k_slope, k_intercept, seed=0):
    """The key lines' control: the (slope, intercept) pairs [head, d_head] permuted together
    across heads and dimensions: the same numbers, no longer lined up with the query."""
    perm = np.random.default_rng(seed).permutation(k_slope.size)
    shuffle = lambda a: a.ravel()[perm].reshape(a.shape)
    return shuffle(k_slope), shuffle(k_intercept)


def max_circuit(params, tokens, targets, n, k_slope, k_intercept, draws=5):
    """Max's built circuits against the model on tuples `tokens` (accuracies, and agreement:
    the share of tuples where a circuit's answer is the model's).
    engineered: the numbers' keys on the lines k = m x + c (built: 2 x head x d_head numbers,
      fitted to the learned keys); W_E, W_pos, CLS's query and key, W_V, W_O, MLP, W_U learned.
    engineered_copy: that attention, then copy_map (0 numbers) in place of W_V, W_O, the MLP
      and W_U; learned: only CLS's query and own key. It answers the maximum whenever every
      head's score rises with the number (attention_law's beta > 0: heads_rising).
    copy_on_learned_attention: the model's own attention, then copy_map.
    control, control_copy: engineered and engineered_copy on shuffled_lines (seeds 0..draws-1,
      means). baseline: the input at the best fixed position (about 1/5)."""
    learned = readout_logits(params, tokens)[:, 0].argmax(-1)

    def answers(pattern):                   # learned OV, MLP and W_U; the copy map
        logits = forward_with_pattern(params, tokens, 1, pattern.astype(np.float32))
        return logits[:, 0].argmax(-1), copy_map(pattern, tokens)

    def measure(pred):                      # accuracy, agreement with the model
        return [float((pred == targets[:, 0]).mean()), float((pred == learned).mean())]

    out = {"learned": measure(learned)[0]}
    preds = (*answers(line_attention(params, tokens, n, k_slope, k_intercept)),
             copy_map(readout_pattern(params, tokens), tokens))
    for name, pred in zip(("engineered", "engineered_copy", "copy_on_learned_attention"), preds):
        out[name], out[f"{name}_agreement"] = measure(pred)
    control = []
    for seed in range(draws):
        shuffled = line_attention(params, tokens, n, *shuffled_lines(k_slope, k_intercept, seed))
        control.append([v for pred in answers(shuffled) for v in measure(pred)])
    out.update(zip(("control", "control_agreement", "control_copy", "control_copy_agreement"),
                   map(float, np.mean(control, 0))))
    out["baseline"] = float((tokens[:, FIVE.inputs] == targets).mean(0).max())
    out["heads_rising"] = int((attention_law(params, n, k_slope, k_intercept)[0] > 0).sum())
    return out


def weight_on_max(pattern, tokens):
    """Mean attention weight [head] that a CLS pattern [batch, head, 1, pos] puts on the maximum's position(s)."""
    x = tokens[:, FIVE.inputs]
    return (pattern[:, :, 0, FIVE.inputs] * (x == x.max(1, keepdims=True))[:, None, :]).sum(-1).mean(0)


def positions_by_rank(x):
    """x [batch, 5] -> [batch, 5]: the position of the r-th smallest input (ties in order)."""
    return np.argsort(x, axis=1, kind="stable")


def rank_copy_accuracy(params, tokens, targets, target_rank, other_rank, alpha=0.0):
    """Accuracy (over all readout steps) when every head's attention at readout step s is
    forced onto the input of rank target_rank[s], with a fraction alpha moved to the input of
    rank other_rank[s]: does the OV circuit copy what it is pointed at?"""
    n_read = targets.shape[1]
    pos = positions_by_rank(tokens[:, FIVE.inputs])
    pattern = np.zeros((len(tokens), params["W_Q"].shape[0], n_read, tokens.shape[1]), np.float32)
    rows = np.arange(len(tokens))
    for s in range(n_read):
        pattern[rows, :, s, pos[:, target_rank[s]]] += 1 - alpha
        pattern[rows, :, s, pos[:, other_rank[s]]] += alpha
    logits = forward_with_pattern(params, tokens, n_read, pattern)
    return float((logits.argmax(-1) == targets).mean())


def attention_rank(params, tokens, n_read):
    """[step, head, rank]: the fraction of inputs on which a head's largest attention over
    the five inputs, at each readout step, lands on the input of each rank (0 = smallest)."""
    top = attention_pattern(params, tokens)[:, :, -n_read:, FIVE.inputs].argmax(-1)                     # [batch, head, R]
    rank = np.argsort(positions_by_rank(tokens[:, FIVE.inputs]), axis=1)                 # rank of each position
    rank_of_top = np.take_along_axis(rank, top.reshape(len(tokens), -1), 1).reshape(top.shape)
    return np.stack([(rank_of_top == r).mean(0) for r in range(FIVE.n_inputs)], -1).transpose(1, 0, 2)


def previous_token_intervention(params, tokens, targets):
    """Sort, steps 2-4: the input at the step's position is the previous output y_s. Put
    y_{s+1} there instead (the token about to be predicted). A model that outputs 'the
    smallest input above the current token' now says y_{s+2}; one that outputs the s-th
    smallest by position still says y_{s+1}. Fractions of each, per step (distinct inputs only)."""
    distinct = np.array([len(set(r)) == FIVE.n_inputs for r in tokens[:, FIVE.inputs]])
    tokens, targets = tokens[distinct], targets[distinct]
    out = {}
    for s in range(1, 4):
        moved = tokens.copy()
        moved[:, FIVE.sep + s] = targets[:, s]
        pred = readout_logits(params, moved, SORT.n_read)[:, s].argmax(-1)
        out[f"y{s + 1}"] = {"predicts_position_target": float((pred == targets[:, s]).mean()),
                            "predicts_successor": float((pred == targets[:, s + 1]).mean())}
    return out


def scores_by_position(params, n, query_token, query_pos, key_positions=range(FIVE.n_inputs)):
    """Un-normalised score [head, key position, number] of one query (token, position)
    against every number placed at each input position."""
    q = project(params, "W_Q", query_token, query_pos)                          # [head, d_head]
    k = project(params, "W_K", np.arange(n)[None, :], np.array(list(key_positions))[:, None])   # [pos, n, head, d_head]
    return np.einsum("he,pxhe->hpx", q, k) / np.sqrt(q.shape[-1])


def holds_to(alphas, curve, level=0.99):
    """The largest alpha up to which accuracy stays >= level at every alpha from the first one
    (a dip followed by a recovery ends it at the dip); None if it is below level at the first."""
    last = None
    for alpha, acc in zip(alphas, curve):
        if acc is None or acc < level:
            break
        last = float(alpha)
    return last


# ============================================================================ median: how CLS computes it
# Interventions on the readout of a max/median model (one query, at CLS): impose a pattern,
# blend the learned one with pure pooling, and read what the residual stream at CLS holds
# after attention with a linear probe, on held-out tuples, against shuffled labels.
def readout_pattern(params, tokens):
    """The model's own attention from CLS [batch, head, 1, pos]."""
    return attention_pattern(params, tokens)[:, :, -1:, :]


def uniform_pattern(tokens, n_heads):
    """Pure pooling: every head at CLS puts 1/5 on each of the five inputs, none on CLS
    [batch, head, 1, pos]."""
    pattern = np.zeros((len(tokens), n_heads, 1, tokens.shape[1]), np.float32)
    pattern[:, :, 0, FIVE.inputs] = 1 / FIVE.n_inputs
    return pattern


def readout_accuracy(params, tokens, targets, pattern):
    """Accuracy of the answer read at CLS with CLS's attention imposed, and the predictions."""
    preds = forward_with_pattern(params, tokens, 1, pattern.astype(np.float32))[:, 0].argmax(-1)
    return float((preds == targets[:, 0]).mean()), preds


def blend_accuracies(params, tokens, targets, lams, learned=None):
    """Accuracy with CLS's attention (1 - lam) * uniform + lam * learned, for each lam in
    lams: lam 0 is pure pooling, lam 1 the model itself; what the learned deviations from
    uniform add, step by step. learned: readout_pattern(params, tokens), when the caller has it."""
    learned = readout_pattern(params, tokens) if learned is None else learned
    uniform = uniform_pattern(tokens, learned.shape[1])
    return np.array([readout_accuracy(params, tokens, targets, (1 - lam) * uniform + lam * learned)[0]
                     for lam in lams])


def cls_resid_mid(params, tokens, pattern):
    """The residual stream at CLS after attention [batch, d_model] with CLS's attention
    `pattern` [batch, head, 1, pos] (the model's own, or one imposed): CLS's embedding plus,
    per head, the pattern's mix of every position's embedding through the head's OV matrix
    W_V W_O (what attention_forward computes, in another order), in float64."""
    resid_pre = mg.embed_forward(params, tokens).astype(np.float64)               # [batch, pos, d_model]
    mixed = pattern[:, :, 0, :].astype(np.float64) @ resid_pre                    # [batch, head, d_model]
    OV = params["W_V"].astype(np.float64) @ params["W_O"]                         # [head, d_model, d_model]
    return resid_pre[:, -1] + mixed.reshape(len(tokens), -1) @ OV.reshape(-1, OV.shape[-1])


def threshold_counts(x, n):
    """The thermometer code of a tuple: c[b, t] = #{i : x[b, i] > t} for t = 0 .. n-1 [batch, n].
    The median m of five numbers is the number of thresholds t with c[t] >= 3."""
    return (x[:, :, None] > np.arange(n)[None, None, :]).sum(1)


def fit_probe(X, Y, ridge=1e-6):
    """Least-squares linear map with an intercept from X [batch, d] to Y [batch, k]: a
    function that applies it. A ridge of `ridge` times the mean feature variance keeps the
    solve well-posed without shrinking a real signal."""
    mean_x, mean_y = X.mean(0), Y.mean(0)
    Xc = X - mean_x
    reg = ridge * max(float(Xc.var(0).mean()), 1e-300) * len(X)
    W = np.linalg.solve(Xc.T @ Xc + reg * np.eye(X.shape[1]), Xc.T @ (Y - mean_y))
    return lambda Z: (Z - mean_x) @ W + mean_y


def r2_per_column(Y, P):
    """R^2 of predictions P for each column of Y [batch, k]; nan where Y does not vary."""
    ss_tot = ((Y - Y.mean(0)) ** 2).sum(0)
    ss_res = ((Y - P) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), np.nan)


def count_probe(X, x, n, train, seed=0):
    """Is the thermometer code linearly readable from X [batch, d] (the residual at CLS)?
    A probe fitted on the examples `train` (a boolean mask) and scored on the others:
    (R^2 per threshold t [n], the median read off the probed code (the number of t whose
    probed count is above 2.5) on the held-out examples [held-out], and the R^2 per t of the
    same probe fitted to labels shuffled among the training examples: chance)."""
    C = threshold_counts(x, n).astype(np.float64)
    probe = fit_probe(X[train], C[train])
    held = probe(X[~train])
    shuffled = fit_probe(X[train], C[train][np.random.default_rng(seed).permutation(train.sum())])
    return r2_per_column(C[~train], held), (held > 2.5).sum(1), r2_per_column(C[~train], shuffled(X[~train]))


def median_from_counts(counts):
    """The median read off a (probed) thermometer code [batch, n]: the number of thresholds
    t whose count is above 2.5 (the median m has counts >= 3 below it and <= 2 from it on)."""
    return (counts > 2.5).sum(1)


def engineered_median(params, fit_tokens, eval_tokens, n, shuffle_seed=None):
    """The median computed by a built circuit spliced onto the model's embedding and OV
    circuit: CLS attends uniformly to the five inputs (built, no numbers), a linear map reads
    the thermometer code from CLS's residual (fitted on fit_tokens: (d_model + 1) * n numbers)
    and the median is read off it (median_from_counts, no numbers); the MLP and W_U are not
    used. With shuffle_seed, the map is fitted to labels shuffled among the tuples (the
    control). Predictions [len(eval_tokens)]."""
    H = params["W_Q"].shape[0]
    X = cls_resid_mid(params, fit_tokens, uniform_pattern(fit_tokens, H))
    C = threshold_counts(fit_tokens[:, FIVE.inputs], n).astype(np.float64)
    if shuffle_seed is not None:
        C = C[np.random.default_rng(shuffle_seed).permutation(len(C))]
    probe = fit_probe(X, C)
    return median_from_counts(probe(cls_resid_mid(params, eval_tokens, uniform_pattern(eval_tokens, H))))


def mlp_pre_at_cls(params, tokens, X=None):
    """The MLP's pre-activations at CLS [batch, d_mlp] with the model's own attention, in float64.
    X: CLS's residual cls_resid_mid(params, tokens, readout_pattern(params, tokens)), when the
    caller has it."""
    X = cls_resid_mid(params, tokens, readout_pattern(params, tokens)) if X is None else X
    return X @ params["W_in"].astype(np.float64) + params["b_in"]


def accuracy_without_neurons(params, tokens, targets, neurons, mean=False, X=None):
    """Test accuracy of the answer at CLS (the model's own attention) with the MLP neurons
    `neurons` silenced: their post-ReLU activation set to 0, or with mean=True to its mean
    over the tuples (a milder ablation: what the neuron says beyond its average). X: CLS's
    residual cls_resid_mid(params, tokens, readout_pattern(params, tokens)), when the caller
    has it."""
    X = cls_resid_mid(params, tokens, readout_pattern(params, tokens)) if X is None else X
    post = np.maximum(X @ params["W_in"].astype(np.float64) + params["b_in"], 0)
    post[:, neurons] = post[:, neurons].mean(0) if mean else 0
    logits = (X + post @ params["W_out"] + params["b_out"]) @ params["W_U"]
    return float((logits.argmax(-1) == targets[:, 0]).mean())


def single_count_fits(pre, C):
    """For each neuron (a column of pre [batch, d_mlp]): the threshold t whose count C[:, t]
    alone best explains it by a line (R^2 = squared correlation), that R^2, the count at
    which the line crosses zero (where the neuron turns on or off) and the line's slope
    (> 0: it turns on as the count grows). [d_mlp] each."""
    Pc = pre - pre.mean(0)
    Cc = C - C.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = (Pc.T @ Cc) / np.outer(np.linalg.norm(Pc, axis=0), np.linalg.norm(Cc, axis=0))
    r2 = np.nan_to_num(corr ** 2)                                                    # [d_mlp, n]
    t = r2.argmax(1)
    cols = np.arange(pre.shape[1])
    slope = (Pc * Cc[:, t]).sum(0) / np.maximum((Cc[:, t] ** 2).sum(0), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = C.mean(0)[t] - pre.mean(0) / slope
    return t, r2[cols, t], crossing, slope


def count_neuron_answers(params, X, C, neurons, t, slope, crossing):
    """Median: the answer read from CLS's residual after attention X [batch, d_model]
    (cls_resid_mid) through the MLP and W_U, with the neurons `neurons` built from the
    tuples' thermometer code C [batch, n]: post = ReLU(slope (C[:, t] - crossing)), three
    numbers each (single_count_fits); the other neurons learned. Predictions [batch]."""
    post = np.maximum(X @ params["W_in"].astype(np.float64) + params["b_in"], 0)  # [batch, d_mlp]
    post[:, neurons] = np.maximum(slope * (C[:, t] - crossing), 0)
    return ((X + post @ params["W_out"] + params["b_out"]) @ params["W_U"]).argmax(-1)


def median_circuit(params, fit_tokens, tokens, targets, n, r2_min=0.8, draws=5):
    """Median's built MLP neurons against the model on `tokens`. Built: the live neurons (on
    for 2-98% of fit_tokens) that one count explains (R^2 > r2_min, single_count_fits on
    fit_tokens), each ReLU(slope (C[t] - crossing)) (count_neuron_answers: 3 numbers each);
    learned: W_E, W_pos, the attention, W_V, W_O, the other neurons, W_out, W_U. control: the
    thresholds t permuted among the built neurons (`draws` draws, means); mean_ablated: those
    neurons held at their mean; baseline: the input at the best fixed position. Agreement:
    the share of tuples where the answer is the model's."""
    def resid_and_counts(toks):             # CLS's residual (own attention) and the code C
        X = cls_resid_mid(params, toks, readout_pattern(params, toks))           # [batch, d_model]
        return X, threshold_counts(toks[:, FIVE.inputs], n).astype(np.float64)  # [batch, n]

    X, C = resid_and_counts(fit_tokens)
    pre = X @ params["W_in"].astype(np.float64) + params["b_in"]                  # [fit, d_mlp]
    t, r2, crossing, slope = single_count_fits(pre, C)
    on = (pre > 0).mean(0)
    built = np.flatnonzero((on > 0.02) & (on < 0.98) & (r2 > r2_min))
    X, C = resid_and_counts(tokens)
    answers = lambda thresholds: count_neuron_answers(params, X, C, built, thresholds,
                                                      slope[built], crossing[built])
    learned = count_neuron_answers(params, X, C, [], [], [], [])
    measure = lambda pred: [float((pred == targets[:, 0]).mean()), float((pred == learned).mean())]
    rng = np.random.default_rng(0)
    control = np.mean([measure(answers(rng.permutation(t[built]))) for _ in range(draws)], 0)
    engineered = measure(answers(t[built]))
    return {"learned": measure(learned)[0], "engineered": engineered[0],
            "engineered_agreement": engineered[1],
            "control": float(control[0]), "control_agreement": float(control[1]),
            "mean_ablated": accuracy_without_neurons(params, tokens, targets, built, mean=True, X=X),
            "baseline": float((tokens[:, FIVE.inputs] == targets).mean(0).max()),
            "built_neurons": len(built), "built_numbers": 3 * len(built)}


# ============================================================================ sort: successor or rank
def eta_squared(values, groups):
    """The share of the variance of `values` explained by the mean of each group (eta^2),
    adjusted for the number of groups as R^2 is for the number of predictors (so that a
    reading with more groups gains nothing by that alone): how much of it is a function of
    the group label alone."""
    values, groups = np.ravel(values).astype(np.float64), np.ravel(groups)
    _, index = np.unique(groups, return_inverse=True)
    counts = np.bincount(index)
    means = np.bincount(index, values) / counts
    total, N, k = ((values - values.mean()) ** 2).sum(), len(values), len(counts)
    if total == 0 or N <= k:
        return float("nan")
    return float(1 - ((values - means[index]) ** 2).sum() / total * (N - 1) / (N - k))


def decoding_score_explained(scores):
    """scores [step, t, head, pos, x] (decoding_query_scores: the query is the previous
    output t at its decoding position, the key a number x at an input position) -> eta^2
    [step, head, pos] of the score as a function of x - t (the successor reading: 'the next
    number above the one just written'), of x alone (the key's own value: an order by value,
    whatever was written) and of t alone."""
    n_step, n, n_head, n_pos, _ = scores.shape
    t, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    out = {k: np.zeros((n_step, n_head, n_pos)) for k in ("key_minus_previous", "key", "previous")}
    for s in range(n_step):
        for h in range(n_head):
            for p in range(n_pos):
                S = scores[s, :, h, p, :]                                          # [t, x]
                out["key_minus_previous"][s, h, p] = eta_squared(S, x - t)
                out["key"][s, h, p] = eta_squared(S, x)
                out["previous"][s, h, p] = eta_squared(S, t)
    return out


def score_by_difference(scores, n):
    """The mean score [step, head, 2n - 1] at each key - previous difference d = -(n-1) .. n-1
    (averaged over the input positions and over the (t, x) pairs with that d)."""
    t, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    d = (x - t).ravel() + n - 1
    S = scores.mean(3)                                                             # [step, t, head, x]
    out = np.zeros((S.shape[0], S.shape[2], 2 * n - 1))
    for s in range(S.shape[0]):
        for h in range(S.shape[2]):
            out[s, h] = np.bincount(d, S[s, :, h, :].ravel(), 2 * n - 1) / np.bincount(d, minlength=2 * n - 1)
    return out


def counterfactual_tuples(tokens, targets, seed=0):
    """For decoding steps s = 1..3: (s, the tuples with room, the moved tokens, y_{s+1},
    y_{s+2}): y_s replaced by a number t' drawn strictly between y_{s+1} and y_{s+2}, in
    the tuples where the two are at least 2 apart (t' is then no input)."""
    rng = np.random.default_rng(seed)
    for s in range(1, 4):
        lo, hi = targets[:, s], targets[:, s + 1]                                  # y_{s+1}, y_{s+2}
        room = hi - lo >= 2
        t = lo[room] + 1 + (rng.random(room.sum()) * (hi[room] - lo[room] - 1)).astype(int)   # lo < t < hi
        moved = tokens[room].copy()
        moved[:, FIVE.sep + s] = t
        yield s, room, moved, lo[room], hi[room]


def counterfactual_previous_output(params, tokens, targets, seed=0):
    """Sort, decoding steps 2-4 (predicting y_{s+1} after y_s): put in place of y_s a number
    t' that is not among the inputs, drawn strictly between y_{s+1} and y_{s+2} (tuples with
    room there; counterfactual_tuples). Nothing is repeated, as the model never saw in
    training. 'The smallest input above the token just written' now answers y_{s+2}; 'the
    input of rank s+1' (by position in the output) still answers y_{s+1}. Per step: the
    fraction answering each, the replaced y_s, and how many tuples were tested."""
    out = {}
    for s, room, moved, lo, hi in counterfactual_tuples(tokens, targets, seed):
        pred = readout_logits(params, moved, SORT.n_read)[:, s].argmax(-1)
        out[f"y{s + 1}"] = {"tested": int(room.sum()),
                            "answers_successor_of_t": float((pred == hi).mean()),
                            "answers_rank": float((pred == lo).mean()),
                            "answers_the_replaced_output": float((pred == targets[room, s - 1]).mean())}
    return out


def counterfactual_paths(params, tokens, targets, seed=0):
    """counterfactual_previous_output split by path (the same t', the same tuples): only the
    attention pattern that t' gives (every value, residual and MLP input as with y_s), or
    everything but the pattern (t' in the residual and among the values, the pattern y_s
    gives). Per step, the fraction answering the successor of t' and by rank, for each."""
    out = {}
    for s, room, moved, lo, hi in counterfactual_tuples(tokens, targets, seed):
        real = tokens[room]
        patterns = {name: attention_pattern(params, toks)[:, :, -SORT.n_read:]
                    for name, toks in (("real", real), ("moved", moved))}
        for path, toks, pattern in (("attention_only", real, patterns["moved"]),
                                    ("all_but_attention", moved, patterns["real"])):
            pred = forward_with_pattern(params, toks, SORT.n_read, pattern)[:, s].argmax(-1)
            out.setdefault(path, {})[f"y{s + 1}"] = {"answers_successor_of_t": float((pred == hi).mean()),
                                                     "answers_rank": float((pred == lo).mean())}
    return out


def engineered_sort(params, tokens, rule="successor", seed=0):
    """Sort decoded greedily with every head's attention at each step imposed by a rule (the
    model's W_E, W_pos, OV circuit, MLP and W_U kept): 'successor', the smallest input above
    the token just written (at SEP the smallest; the largest when none is above), which
    skips the second copy of a repeated input; 'successor_with_memory', the smallest input
    at least the token just written among those not attended yet (a memory the model does
    not have, which handles repeats); 'rank', the input of rank s at step s (on a sequence
    decoded right, the same input as the successor: the two cannot be told apart this
    way); 'position', the input at position s; 'random', an input drawn at random (the
    control). The rules have no numbers. Predictions [batch, 5]."""
    x, H = tokens[:, FIVE.inputs], params["W_Q"].shape[0]
    rng, rows = np.random.default_rng(seed), np.arange(len(tokens))
    seq, preds = tokens.copy(), np.zeros((len(tokens), SORT.n_read), int)
    used, big = np.zeros(x.shape, bool), np.iinfo(x.dtype).max
    for s in range(SORT.n_read):
        if rule == "position":
            pos = np.full(len(x), s)
        elif rule == "random":
            pos = rng.integers(0, FIVE.n_inputs, len(x))
        elif rule == "rank":
            pos = positions_by_rank(x)[:, s]
        elif rule == "successor":
            above = x > (preds[:, s - 1, None] if s else -1)
            pos = np.where(above.any(1), np.where(above, x, big).argmin(1), x.argmax(1))
        else:
            ok = ~used if s == 0 else ~used & (x >= preds[:, s - 1, None])
            ok = np.where(ok.any(1, keepdims=True), ok, ~used)         # none at least it: the smallest left
            pos = np.where(ok, x, big).argmin(1)
            used[rows, pos] = True
        prefix = seq[:, :FIVE.sep + 1 + s]
        logits = forward_with_pattern(params, prefix, 1, forced_pattern(prefix, H, pos))
        preds[:, s] = logits[:, 0].argmax(-1)
        if s + 1 < SORT.n_read:
            seq[rows, FIVE.sep + 1 + s] = preds[:, s]
    return preds


# ============================================================================ baselines and small statistics
def chance_cosines(dim, n_vectors, draws=2000, seed=0):
    """Cosine similarities [draws, n_vectors, n_vectors] of n_vectors independent Gaussian
    vectors of dimension dim: what 'close' and 'perpendicular' are measured against."""
    X = np.random.default_rng(seed).standard_normal((draws, n_vectors, dim))
    X /= np.linalg.norm(X, axis=-1, keepdims=True)
    return X @ X.transpose(0, 2, 1)


def mean_off_diagonal(C):
    """C [..., n, n] -> mean of the entries off the diagonal [...]."""
    n = C.shape[-1]
    return (C.sum((-1, -2)) - np.trace(C, axis1=-2, axis2=-1)) / (n * (n - 1))


def fit_polynomial_r2(x, Y, degree):
    """R^2 of a least-squares polynomial of `degree` in x for every column of Y [len(x), ...]."""
    return fit_polynomial(x, Y, degree)[1]


def first_epoch(history, key, threshold):
    """The first evaluated epoch at which history[key] >= threshold, or None."""
    for e, v in zip(history["epoch"], history[key]):
        if v >= threshold:
            return int(e)
    return None


def spectrum_asymmetry(S):
    """||S - S^T|| / ||S|| of a square spectrum (0: symmetric in its two inputs)."""
    return float(np.linalg.norm(S - S.T) / max(np.linalg.norm(S), 1e-30))


def attention_on_max(params, tokens):
    """Mean attention weight [head] from CLS on the position(s) holding the maximum, and the
    same over the inputs whose runner-up is the maximum minus one (the hardest to tell apart;
    nan where there are none)."""
    pattern = attention_pattern(params, tokens)[:, :, -1, FIVE.inputs].astype(np.float64)   # [batch, head, 5]
    x = tokens[:, FIVE.inputs]
    on_max = (pattern * (x == x.max(1, keepdims=True))[:, None, :]).sum(-1)           # [batch, head]
    below = np.where(x < x.max(1, keepdims=True), x, -1).max(1)
    close = below == x.max(1) - 1
    return on_max.mean(0), (on_max[close].mean(0) if close.any() else np.full(on_max.shape[1], np.nan))


def attention_weight_by_rank(params, tokens, n_read):
    """[step, head, rank]: the mean attention weight, at each readout step, on the input of
    each rank (0 = smallest; ties by position)."""
    pattern = attention_pattern(params, tokens)[:, :, -n_read:, FIVE.inputs].astype(np.float64)   # [batch, head, R, 5]
    pos = positions_by_rank(tokens[:, FIVE.inputs])                                   # [batch, rank]
    by_rank = np.take_along_axis(pattern, pos[:, None, None, :], -1)                  # [batch, head, R, rank]
    return by_rank.mean(0).transpose(1, 0, 2)


def decoding_query_scores(params, n):
    """Sort: the queries the model really forms at the decoding positions. For step s = 1..4
    the query is the previous output y_s (a number t) at position SEP + s; its score against
    every number x at every input position: [step, t, head, input position, x]."""
    q = project(params, "W_Q", np.arange(n)[None, :], (FIVE.sep + np.arange(1, SORT.n_read))[:, None])   # [step, t, head, d_head]
    k = project(params, "W_K", np.arange(n)[None, :], np.arange(FIVE.n_inputs)[:, None])                   # [pos, x, head, d_head]
    return np.einsum("sthe,pxhe->sthpx", q, k) / np.sqrt(q.shape[-1])


def counterfactual_previous_output_below(params, tokens, targets, seed=0):
    """Sort, decoding steps 2-5 (predicting y_{s+1} after y_s): put in place of y_s a number t'
    drawn strictly between y_{s-1} and y_s (below y_1 for s = 1), in the tuples with room there
    and y_s < y_{s+1}. t' is no input, and both readings now answer above it, as outputs always
    rise in training: 'the smallest input above the token just written' answers y_s, 'the input
    of rank s+1' answers y_{s+1}. Per step: the fraction answering each, and how many tuples."""
    rng, out = np.random.default_rng(seed), {}
    for s in range(1, SORT.n_read):
        lo = targets[:, s - 2] if s >= 2 else np.full(len(targets), -1)         # y_{s-1} (or -1)
        hi, nxt = targets[:, s - 1], targets[:, s]                               # y_s, y_{s+1}
        room = (hi - lo >= 2) & (nxt > hi)
        t = lo[room] + 1 + (rng.random(room.sum()) * (hi[room] - lo[room] - 1)).astype(int)   # lo < t < hi
        moved = tokens[room].copy()
        moved[:, FIVE.sep + s] = t
        pred = readout_logits(params, moved, SORT.n_read)[:, s].argmax(-1)
        out[f"y{s + 1}"] = {"tested": int(room.sum()),
                            "answers_successor_of_t": float((pred == hi[room]).mean()),
                            "answers_rank": float((pred == nxt[room]).mean())}
    return out


# ============================================================================ max, median, sort: OV matrix and shape fits
def ov_copy_matrix(params, tokens, n_read, n):
    """The full OV path as the model applies it at the readout: at every readout position the
    attention of every head is forced onto one input position j (all of its weight), so the
    readout's residual is its own embedding (CLS, SEP or the previous output, at its position)
    plus sum_h (W_E[x] + W_pos[j]) W_V[h] W_O[h] for the number x at j; the MLP and W_U follow
    as in forward. Done for j = 1..5 in turn; logits are averaged by the number x at j.
    Returns [step, x, output] mean logits (nan rows for numbers never seen) and counts [x]."""
    batch, n_pos = tokens.shape
    H = params["W_Q"].shape[0]
    total = np.zeros((n_read, n, params["W_U"].shape[1]))
    count = np.zeros(n)
    for j in range(FIVE.n_inputs):
        pattern = np.zeros((batch, H, n_read, n_pos), np.float32)
        pattern[..., j] = 1
        logits = forward_with_pattern(params, tokens, n_read, pattern)           # [batch, step, output]
        np.add.at(total, (slice(None), tokens[:, j]), logits.transpose(1, 0, 2).astype(np.float64))
        count += np.bincount(tokens[:, j], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count[None, :, None], count


def copy_per_number(M):
    """M [x, output] (logits when the input number is x; nan rows: x never seen) -> per x:
    seen [n], hit (the largest output is x; False where unseen) [n] and the softmax
    probability of output x (nan where unseen) [n]."""
    seen = np.isfinite(M).all(1)
    x = np.flatnonzero(seen)
    rows = M[x]
    p = np.exp(rows - rows.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    hit, prob = np.zeros(len(M), bool), np.full(len(M), np.nan)
    hit[x], prob[x] = rows.argmax(1) == x, p[np.arange(len(x)), x]
    return seen, hit, prob


def copy_share(M):
    """M [x, output] -> the share of the seen x whose largest output is x, and the mean
    softmax probability of output x (copy_per_number, averaged)."""
    seen, hit, prob = copy_per_number(M)
    return float(hit[seen].mean()), float(prob[seen].mean())


def fit_quadratic(x, Y):
    """Least-squares parabola y = a x^2 + b x + c for every column of Y [len(x), ...]:
    (a, vertex -b / 2a, R^2), each shaped like a row of Y, and the fitted values shaped like
    Y. a < 0: a bump peaking at the vertex."""
    (a, b, _), r2, fitted = fit_polynomial(x, Y, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = -b / (2 * a)
    return a, vertex, r2, fitted
