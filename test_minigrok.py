"""Tests of the model: the textbook transformer (minigrok.forward/backward) against float64
central differences and properties worked by hand; the fast engine (fast.py) equal to it to
float64 rounding, in logits and in every gradient, on both attention paths; the loss and
AdamW worked by hand; the tasks' data; every array function used exists in CuPy.
"""
import dataclasses
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import fast
import interop
import minigrok as mg
import tasks

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------- the textbook model
def tiny_params(layout, seed=0, dtype="float64"):
    """A small model with non-zero biases, for the add layout or the sort layout."""
    if layout == "add":
        cfg = mg.Config(task="add", p=7, d_model=8, n_heads=2, d_head=4, d_mlp=16, seed=seed, dtype=dtype)
        d_vocab, d_out, n_ctx, n_read = 8, 7, 3, 1
    else:
        cfg = mg.Config(task="sort", n=6, d_model=8, n_heads=2, d_head=4, d_mlp=16, seed=seed, dtype=dtype)
        d_vocab, d_out, n_ctx, n_read = 7, 6, 10, 5
    params = mg.init_params(cfg)
    rng = np.random.default_rng(seed + 100)
    params["b_in"] = rng.standard_normal(params["b_in"].shape).astype(dtype) * 0.5
    params["b_out"] = rng.standard_normal(params["b_out"].shape).astype(dtype) * 0.5
    tokens = rng.integers(0, d_vocab - 1, size=(6, n_ctx))
    tokens[:, 2 if layout == "add" else 5] = d_vocab - 1      # '=' or SEP: one token at a position
    return params, tokens, n_read, d_out


def test_cache_has_transformer_lens_names_and_shapes():
    params, tokens, n_read, d_out = tiny_params("sort")
    logits, c = mg.forward(params, tokens, n_read)
    b, t, h, e, d, m = 6, 10, 2, 4, 8, 16
    expect = dict(resid_pre=(b, t, d), q=(b, t, h, e), k=(b, t, h, e), v=(b, t, h, e),
                  attn_scores=(b, h, t, t), pattern=(b, h, t, t), z=(b, t, h, e), attn_out=(b, t, d),
                  resid_mid=(b, t, d), mlp_pre=(b, t, m), mlp_post=(b, t, m), mlp_out=(b, t, d),
                  resid_post=(b, t, d))
    assert {k: c[k].shape for k in expect} == expect and set(expect) == set(interop.TL_HOOKS)
    assert logits.shape == (b, n_read, d_out)
    np.testing.assert_allclose(logits, c["resid_post"][:, -n_read:] @ params["W_U"], rtol=1e-13)
    np.testing.assert_allclose(c["pattern"].sum(-1), 1)
    assert np.all(np.triu(c["pattern"][0, 0], 1) == 0)             # no query sees a later key


def test_attention_is_causal_and_uniform_when_queries_are_blind():
    params, tokens, _, _ = tiny_params("sort", seed=2)
    # changing a later token leaves every earlier position's logits as they were
    later = tokens.copy()
    later[:, 7:] = (later[:, 7:] + 1) % 6
    before, after = mg.forward(params, tokens, 10)[0], mg.forward(params, later, 10)[0]
    np.testing.assert_array_equal(before[:, :7], after[:, :7])
    assert not np.allclose(before[:, 7:], after[:, 7:])
    # with W_Q = 0 every score is 0: position t attends 1/(t+1) to each of positions 0..t
    params["W_Q"][:] = 0
    pattern = mg.forward(params, tokens, 1)[1]["pattern"]
    want = np.tril(np.ones((10, 10))) / np.arange(1, 11)[:, None]
    np.testing.assert_allclose(pattern, np.broadcast_to(want, pattern.shape), rtol=1e-15)


def central_difference_grads(params, loss, eps=1e-6):
    """d loss / d every weight, by central differences in float64."""
    out = {}
    for name, w in params.items():
        out[name] = np.zeros_like(w)
        for i in np.ndindex(w.shape):
            old = w[i]
            w[i] = old + eps
            up = loss()
            w[i] = old - eps
            down = loss()
            w[i] = old
            out[name][i] = (up - down) / (2 * eps)
    return out


@pytest.mark.parametrize("layout", ["add", "sort"])
def test_every_gradient_matches_central_differences(layout):
    for seed in range(100):                       # keep inputs away from ReLU kinks
        params, tokens, n_read, d_out = tiny_params(layout, seed)
        _, cache = mg.forward(params, tokens, n_read)
        if np.abs(cache["mlp_pre"]).min() > 1e-3:
            break
    upstream = np.random.default_rng(7).standard_normal((len(tokens), n_read, d_out))
    grads = mg.backward(params, cache, upstream)
    numeric = central_difference_grads(params, lambda: float((mg.forward(params, tokens, n_read)[0] * upstream).sum()))
    for name in params:
        err = np.abs(grads[name] - numeric[name]).max() / max(np.abs(numeric[name]).max(), 1e-12)
        assert err < 1e-6, f"{name}: relative error {err:.2e}"


def test_whole_model_directional_derivative():
    params, tokens, n_read, d_out = tiny_params("sort", seed=3)
    rng = np.random.default_rng(11)
    targets = rng.integers(0, d_out, size=(len(tokens), n_read))
    logits, cache = mg.forward(params, tokens, n_read)
    _, dlogits = mg.cross_entropy(logits, targets)
    grads = mg.backward(params, cache, dlogits)
    direction = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    eps = 1e-6

    def loss_at(s):
        moved = {k: v + s * direction[k] for k, v in params.items()}
        return mg.cross_entropy(mg.forward(moved, tokens, n_read)[0], targets)[0]

    numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    analytic = sum(float((grads[k] * direction[k]).sum()) for k in params)
    assert abs(numeric - analytic) < 1e-7 * max(1, abs(analytic))


# ---------------------------------------------------------------- the fast engine
@pytest.mark.parametrize("layout", ["add", "sort"])
def test_fast_engine_equals_the_textbook_model(layout):
    """fast.py (tables, readout rows, one-hot sums, composed weights) against the textbook
    model: logits and every gradient equal to float64 rounding."""
    params, tokens, n_read, d_out = tiny_params(layout, seed=5)
    tokens = np.concatenate([tokens] * 40)                # many examples share each table row
    tokens[:, 0] = np.random.default_rng(1).integers(0, params["W_E"].shape[0] - 1, len(tokens))
    upstream = np.random.default_rng(8).standard_normal((len(tokens), n_read, d_out))
    logits, cache = mg.forward(params, tokens, n_read)
    fast_logits, fast_cache = fast.forward(params, tokens, n_read)
    np.testing.assert_allclose(fast_logits, logits, rtol=1e-12, atol=1e-12)
    grads, fast_grads = mg.backward(params, cache, upstream), fast.backward(params, fast_cache, upstream)
    assert set(fast_grads) == set(params)
    for name in params:
        scale = np.abs(grads[name]).max()
        assert np.abs(fast_grads[name] - grads[name]).max() <= 1e-12 * scale, name   # seen: ~1e-15


@pytest.mark.parametrize("layout", ["add", "sort"])
@pytest.mark.parametrize("attention", ["table", "per_example"])
def test_both_attention_paths_equal_the_textbook_model(layout, attention):
    """fast.py's two ways to the attention scores, each forced (index_plan chooses one per
    batch): the QK table, and per-example queries and keys looked up in their tables.
    With a fixed readout token (add) and with varying ones (sort), and with a batch where
    every example has the same token at a varying position (its sum_by is then one token)."""
    params, tokens, n_read, d_out = tiny_params(layout, seed=7)
    tokens = np.concatenate([tokens] * 30)
    tokens[:, 0] = np.random.default_rng(2).integers(0, params["W_E"].shape[0] - 1, len(tokens))
    tokens[:, 1] = 3
    upstream = np.random.default_rng(9).standard_normal((len(tokens), n_read, d_out))
    logits, cache = mg.forward(params, tokens, n_read)
    grads = mg.backward(params, cache, upstream)
    plan = fast.index_plan(tokens, n_read, params, attention=attention)
    assert plan["attention"] == attention and "sum_by" not in plan      # made by backward only
    fast_logits, fast_cache = fast.forward(params, tokens, n_read, plan)
    np.testing.assert_allclose(fast_logits, logits, rtol=1e-12, atol=1e-12)
    fast_grads = fast.backward(params, fast_cache, upstream)
    for name in params:
        scale = np.abs(grads[name]).max()
        assert np.abs(fast_grads[name] - grads[name]).max() <= 1e-12 * scale, name


def test_index_plan_chooses_the_cheaper_attention_path():
    """The QK table when it has fewer entries than the batch has scores (addition's full
    batch: one query row), per-example scores otherwise (a sort minibatch)."""
    for task, batch, want in (("add", None, "table"), ("sort", 1000, "per_example"), ("max", 1000, "table")):
        cfg = mg.Config(**{**tasks.TASK_DEFAULTS[task], "task": task, **({"p": 113} if task == "add" else {})})
        data = tasks.make_data(cfg)
        params = mg.init_params(cfg)
        assert fast.index_plan(data.train[0][:batch], data.n_read, params)["attention"] == want, task


@pytest.mark.parametrize("engine", ["fast", "plain"])
def test_decoding_from_the_teacher_forced_pass_equals_plain_greedy_decoding(engine):
    """evaluate() decodes sort reusing the teacher-forced pass (predict with teacher_logits):
    the same predictions as decoding step by step, for examples whose teacher-forced tokens
    are the model's own greedy outputs (nothing recomputed), ones that leave them at
    different steps, and ones that never follow them."""
    params, tokens, n_read, d_out = tiny_params("sort", seed=3)
    tokens = np.concatenate([tokens] * 20)
    rng = np.random.default_rng(4)
    tokens[:, :5] = rng.integers(0, d_out, (len(tokens), 5))
    greedy = mg.predict(params, tokens, n_read, True, mg.ENGINES[engine])
    first = tokens.shape[1] - n_read
    tokens[:, first + 1:] = greedy[:, :-1]                     # the model's own outputs ...
    for i, step in enumerate(rng.integers(1, n_read + 2, len(tokens))):
        if step < n_read:                                       # ... until a step where it goes astray
            tokens[i, first + step] = (greedy[i, step - 1] + 1 + rng.integers(0, d_out - 1)) % d_out
    want = mg.predict(params, tokens, n_read, True, mg.ENGINES[engine])
    logits = mg.ENGINES[engine].forward(params, tokens, n_read)[0]
    assert (mg.predict(params, tokens, n_read, True, mg.ENGINES[engine], teacher_logits=logits) == want).all()
    astray = (greedy[:, :-1] != tokens[:, first + 1:]).any(1)
    assert 0 < astray.sum() < len(tokens)




def test_cross_entropy_in_float64_does_not_saturate():
    logits = np.zeros((2, 1, 3), np.float32)
    logits[:, 0, 0] = 30.0                        # p(target) = 1 - 2e-13: float32 would say loss 0
    loss, dlogits = mg.cross_entropy(logits, np.zeros((2, 1), int))
    assert loss == pytest.approx(2 * math.exp(-30), rel=1e-6)
    assert dlogits.dtype == np.float32


def test_adamw_matches_the_formula_worked_by_hand():
    cfg = mg.Config(lr=0.1, weight_decay=0.5, beta1=0.9, beta2=0.98)
    params = {"W_in": np.array([1.0, -2.0]), "b_in": np.array([0.5])}
    state = mg.adamw_init(params)
    g1 = {"W_in": np.array([0.2, 0.4]), "b_in": np.array([-1.0])}
    mg.adamw_step(params, g1, state, cfg)
    # step 1: m = 0.1 g, v = 0.02 g^2, m_hat = g, v_hat = g^2, so the Adam step is lr*sign(g)
    # (up to eps); W_in is first decayed by (1 - lr*wd) = 0.95, b_in is not decayed.
    np.testing.assert_allclose(params["W_in"], [0.95 - 0.1, -1.9 - 0.1], rtol=1e-7)
    np.testing.assert_allclose(params["b_in"], [0.5 + 0.1], rtol=1e-7)
    g2 = {"W_in": np.array([-0.2, 0.4]), "b_in": np.array([-1.0])}
    mg.adamw_step(params, g2, state, cfg)
    # step 2 for W_in[0]: m = 0.9*0.02 + 0.1*(-0.2) = -0.002, v = 0.98*0.0008 + 0.02*0.04 = 0.001584,
    # m_hat = -0.002/0.19, v_hat = 0.001584/(1 - 0.98^2) = 0.04
    w1 = 0.95 - 0.1 * 0.2 / (0.2 + 1e-8)          # step 1 exactly
    w0 = w1 * 0.95 - 0.1 * (-0.002 / 0.19) / (math.sqrt(0.001584) / math.sqrt(1 - 0.98 ** 2) + 1e-8)
    assert params["W_in"][0] == pytest.approx(w0, rel=1e-12)
    assert state["step"] == 2


def test_flush_sets_subnormal_weights_and_moments_to_zero_and_nothing_else():
    tiny = np.finfo(np.float32).tiny
    params = {"W_in": np.array([1e-39, -1e-40, tiny, -2 * tiny, 0.5, 1e-30], np.float32)}
    state = {"m": {"W_in": np.array([1e-41, 3e-3, -1e-39, 0, 1.0, -tiny], np.float32)},
             "v": {"W_in": np.array([1e-44, 1e-38, 2e-38, 1e-6, 0, 5e-39], np.float32)}}
    mg.flush_subnormals(params, state)
    assert params["W_in"].tolist() == np.array([0, 0, tiny, -2 * tiny, 0.5, 1e-30], np.float32).tolist()
    assert state["m"]["W_in"].tolist() == np.array([0, 3e-3, 0, 0, 1.0, -tiny], np.float32).tolist()
    assert state["v"]["W_in"].tolist() == np.array([0, 0, 2e-38, 1e-6, 0, 0], np.float32).tolist()
    f64 = {"W_in": np.array([1e-39, 1e-310])}                   # float64: its own smallest normal, 2.2e-308
    mg.flush_subnormals(f64, {"m": {}, "v": {}})
    assert f64["W_in"].tolist() == [1e-39, 0.0]


def test_flushing_subnormals_changes_no_logit_and_no_update():
    """A float32 model with the decayed state of dead neurons planted (subnormal weights,
    and subnormal moments for those and for other weights): the logits, the gradients and an
    AdamW step come out the same after flushing as before it, to float32 rounding (all but
    the flushed entries themselves, which were below 1.2e-38 and are now 0)."""
    cfg = mg.Config(task="sort", n=6, d_model=8, n_heads=2, d_head=4, d_mlp=16, dtype="float32", lr=1e-3)
    params, tokens, n_read, d_out = tiny_params("sort", seed=4, dtype="float32")
    rng = np.random.default_rng(5)
    tiny = np.finfo(np.float32).tiny
    subnormal = lambda shape: (rng.uniform(0.01, 0.99, shape) * tiny * rng.choice([-1, 1], shape)).astype(np.float32)
    params["W_in"][:, :4] = subnormal((8, 4))                  # four dead neurons, decayed
    params["W_out"][:4] = subnormal((4, 8))
    state = mg.adamw_init(params)
    state["step"] = 5000
    for k in params:
        state["m"][k] = (rng.standard_normal(params[k].shape) * 1e-3).astype(np.float32)
        state["v"][k] = (rng.uniform(0, 1e-6, params[k].shape)).astype(np.float32)
        planted = rng.random(params[k].shape) < 0.3
        state["m"][k][planted] = subnormal(planted.sum())
        state["v"][k][planted] = np.abs(subnormal(planted.sum()))
    flushed_params = {k: v.copy() for k, v in params.items()}
    flushed_state = {"step": 5000, "m": {k: v.copy() for k, v in state["m"].items()},
                     "v": {k: v.copy() for k, v in state["v"].items()}}
    mg.flush_subnormals(flushed_params, flushed_state)
    assert (flushed_params["W_in"][:, :4] == 0).all() and (flushed_params["W_out"][:4] == 0).all()
    results = []
    for p, st in ((params, state), (flushed_params, flushed_state)):
        logits, cache = fast.forward(p, tokens, n_read)
        grads = fast.backward(p, cache, mg.cross_entropy(logits, np.zeros((len(tokens), n_read), int))[1])
        mg.adamw_step(p, grads, st, cfg)
        results.append((logits, grads, p))
    (logits, grads, after), (f_logits, f_grads, f_after) = results
    np.testing.assert_allclose(f_logits, logits, rtol=1e-6, atol=1e-6)
    for k in params:
        scale = max(np.abs(grads[k]).max(), 1e-30)
        assert np.abs(f_grads[k] - grads[k]).max() <= 1e-6 * scale, k
        assert np.abs(f_after[k] - after[k]).max() <= 1e-6 * np.abs(after[k]).max(), k


# ---------------------------------------------------------------- tasks
def test_addition_data():
    cfg = mg.Config(task="add", p=11, frac_train=0.3)
    d = tasks.make_data(cfg)
    (xtr, ytr), (xte, yte) = d.evals["train"], d.evals["test"]
    assert len(xtr) == int(0.3 * 121) and len(xtr) + len(xte) == 121
    pairs = {tuple(r) for r in xtr[:, :2]} | {tuple(r) for r in xte[:, :2]}
    assert len(pairs) == 121                       # disjoint and complete
    assert np.all(xtr[:, 2] == 11) and d.d_vocab == 12 and d.d_vocab_out == 11
    for x, y in ((xtr, ytr), (xte, yte)):
        assert all((a + b) % 11 == t for (a, b, _), (t,) in zip(x, y))
    assert len(tasks.make_data(dataclasses.replace(cfg, n_train=50)).train[0]) == 50


@pytest.mark.parametrize("task", ["max", "median", "sort"])
def test_five_number_data(task):
    cfg = mg.Config(task=task, n=20, n_train=800, n_test=200, augment=True, data_seed=3)
    d = tasks.make_data(cfg)
    xtr, ytr = d.train
    xte, yte = d.evals["test"]
    assert len(xte) == 200 and len(xtr) >= 800
    codes = lambda x: {tuple(r) for r in x[:, :5]}
    assert not codes(xtr) & codes(xte) and not codes(xtr) & codes(d.evals["balanced"][0])
    assert len(codes(xtr)) == len(xtr)             # no repeats
    for x, y in ((xtr, ytr), (xte, yte)):
        assert np.all(x[:, 5] == 20)
        for row, target in zip(x, y):
            nums = sorted(row[:5])
            want = {"max": [nums[-1]], "median": [nums[2]], "sort": nums}[task]
            assert list(target) == want
            if task == "sort":                     # teacher forcing: y1..y4 follow SEP
                assert list(row[6:]) == nums[:4]
    answers = ytr[:, -1] if task != "median" else ytr[:, 0]
    if task != "sort":
        assert set(answers) == set(range(20)), "augmentation must cover every output value"
    bal = d.evals["balanced"][1][:, -1 if task == "max" else 0]
    if task != "sort":
        # every value but max 0 (a single tuple, already claimed by training) is tested
        assert np.bincount(bal, minlength=20)[1:].min() > 0


def test_sort_decoding_is_greedy_and_autoregressive():
    # A fake model through predict(): it answers each step by a rule on the prefix it is
    # given; teacher-forced tokens after SEP must not be looked at.
    params, _, _, _ = tiny_params("sort")
    tokens = np.array([[3, 1, 4, 1, 5, 6, 0, 0, 0, 0]])   # SEP=6, junk after it
    seen = []

    def fake_forward(params, seq, n_read=1, plan=None):
        seen.append(seq.copy())
        logits = np.zeros((len(seq), 1, 6))
        logits[:, 0, seq.shape[1] % 6] = 1.0              # predicts len(prefix) mod 6
        return logits, {}

    preds = mg.predict(params, tokens, 5, decode=True, engine=mg.Engine(fake_forward, None))
    assert [s.shape[1] for s in seen] == [6, 7, 8, 9, 10]
    assert preds.tolist() == [[0, 1, 2, 3, 4]]
    assert seen[-1][0, 6:].tolist() == [0, 1, 2, 3]       # its own outputs fed back


# ---------------------------------------------------------------- CuPy portability
class Recorder:
    """Stands in for the array module: passes everything to NumPy and records each name used."""
    def __init__(self, module, prefix=""):
        self._module, self._prefix, self.used = module, prefix, set()

    def __getattr__(self, name):
        self.used.add(self._prefix + name)
        attr = getattr(self._module, name)
        if name in ("add", "multiply", "maximum") and not self._prefix:   # ufunc methods: add.reduceat, ...
            sub = Recorder(attr, prefix=name + ".")
            sub.used = self.used
            return sub
        return attr

    def __call__(self, *args, **kwargs):      # a recorded ufunc, e.g. xp.maximum(a, 0)
        return self._module(*args, **kwargs)


@pytest.mark.parametrize("engine", ["fast", "plain"])
def test_every_array_function_used_exists_in_cupy(engine):
    cupy = pytest.importorskip("cupy") if not os.environ.get("CI") else __import__("cupy")
    rec = Recorder(np)
    mg.set_array_module(rec)
    cfg = mg.Config(task="sort", n=6, n_train=30, n_test=10, d_model=8, n_heads=2, d_head=4, d_mlp=16, engine=engine)
    data = tasks.make_data(cfg)
    params = mg.init_params(cfg)
    opt = mg.adamw_init(params)
    tok, tgt = (rec.asarray(a) for a in data.train)
    mg.train_epoch(params, opt, tok, tgt, cfg, 0, data.n_read, mg.training_engine(cfg, tok, data.n_read, params))
    mg.evaluate(params, tok, tgt, data.n_read, data.decode, mg.ENGINES[engine])
    mg.flush_subnormals(params, opt)
    if engine == "fast":                      # both attention paths (this batch picks per_example)
        for attention in ("table", "per_example"):
            logits, cache = fast.forward(params, tok, data.n_read, fast.index_plan(tok, data.n_read, params, attention))
            fast.backward(params, cache, logits)
    if engine == "plain":                     # the analysis-only intervention too
        mg.forward(params, tok, 1, pattern=rec.ones((len(tok), 2, 1, tok.shape[1])) / tok.shape[1])
    assert ({"bincount", "take"} if engine == "fast" else {"einsum", "triu", "where"}) <= rec.used
    missing = []
    for name in sorted(rec.used):
        obj = cupy
        for part in name.split("."):
            obj = getattr(obj, part, None)
        if obj is None:
            missing.append(name)
    assert not missing, f"not in cupy: {missing}"


FAKE_CUPY = """# NumPy standing in for CuPy, so that test_gpu.py's own code runs where there is no GPU
import numpy as _np
from numpy import *  # noqa: F401,F403
for _n in dir(_np):
    if not _n.startswith("__"):
        globals().setdefault(_n, getattr(_np, _n))
ndarray = _np.ndarray
is_available = lambda: True
"""


def test_the_gpu_tests_run_where_numpy_stands_in_for_cupy(tmp_path):
    """test_gpu.py cannot run here on a device; its code can, with NumPy posing as CuPy:
    what `make gpu-check` runs first on a GPU does not fail on a typo or a wrong name."""
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text(FAKE_CUPY)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_gpu.py"],
                          cwd=HERE, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and " passed" in done.stdout and "skipped" not in done.stdout, done.stdout
