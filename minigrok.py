"""minigrok: a one-layer transformer that groks, with every line of its training visible.

    python minigrok.py --task add          # modular addition: memorise, then grok

The model is the one of Nanda et al. 2023 ("Progress measures for grokking"): token and
learned position embeddings, one multi-head attention layer, a ReLU MLP, an unembedding;
no LayerNorm. The forward pass, the backward pass (written out by hand, no autograd) and
AdamW are all in this file, on NumPy, or on CuPy when a GPU works (`--device`).

The model below is the textbook one: every position computed, each `*_backward` right
below its `*_forward`, one line per equation. Training uses by default the fast engine in
fast.py, which computes the same logits and gradients (to float rounding; the tests check
it) with a fraction of the work; `--engine plain` trains with the model below instead.

Weights live in one flat dict under TransformerLens's names and right-multiply shapes, so
analysis reads a circuit such as W_E @ W_V @ W_O @ W_in straight off a checkpoint. The
gradients, the AdamW moments and the checkpoint use the same keys.

Reading order: the model (embed, attention, mlp, unembed; forward, backward), the loss,
AdamW, the engines, evaluation, training, the command line. Beside this file: config.py
(the run's settings, Config), tasks.py (the data), arrays.py (NumPy or CuPy, `xp`) and
checkpoint.py (saving, loading and the care that keeps a run safe: locks, atomic writes,
interrupts, resume). load() hands a trained checkpoint to analysis code.
"""
import argparse
import collections
import dataclasses
import functools
import math
import os
import signal
import sys
import time

import numpy as np

import checkpoint
import fast
import tasks
from arrays import set_array_module, to_numpy, use_device, xp   # noqa: F401 (set_array_module: for users)
from checkpoint import load, run_state   # noqa: F401 (the entry points for analysis)
from config import EVAL_CHUNK, PRESETS, Config, UsageError, check_config, config_flags, param_shapes  # noqa: F401 (config_flags: for users)


# ============================================================================ the model
# Dimensions: batch, pos, d_model, head, d_head, d_mlp, d_vocab (input tokens) and
# d_vocab_out (output classes). Weights right-multiply: x @ W, so W_E is [d_vocab, d_model]
# and W_Q is [head, d_model, d_head], as in TransformerLens.
#
# The cache: every activation of forward() at every position, named after the
# TransformerLens hook that holds it (interop.TL_HOOKS), with TransformerLens's shapes:
#   resid_pre   [batch, pos, d_model]         W_E[tokens] + W_pos[pos]
#   q, k, v     [batch, pos, head, d_head]    resid_pre @ W_Q, W_K, W_V (per head)
#   attn_scores [batch, head, pos_q, pos_k]   q.k / sqrt(d_head), -inf where pos_k > pos_q
#   pattern     [batch, head, pos_q, pos_k]   softmax of attn_scores over pos_k
#   z           [batch, pos, head, d_head]    pattern @ v
#   attn_out    [batch, pos, d_model]         z @ W_O, summed over heads
#   resid_mid   [batch, pos, d_model]         resid_pre + attn_out
#   mlp_pre     [batch, pos, d_mlp]           resid_mid @ W_in + b_in
#   mlp_post    [batch, pos, d_mlp]           ReLU(mlp_pre)
#   mlp_out     [batch, pos, d_model]         mlp_post @ W_out + b_out
#   resid_post  [batch, pos, d_model]         resid_mid + mlp_out; logits = resid_post @ W_U


def init_params(cfg):
    """Every weight of cfg's model (shapes: config.param_shapes), drawn in that order from
    the seed: N(0,1)/sqrt(d_model) for every matrix except W_U (N(0,1)/sqrt(d_vocab));
    biases zero."""
    rng, shapes = np.random.default_rng(cfg.seed), param_shapes(cfg)
    d_vocab = shapes["W_E"][0]
    params = {}
    for name, shape in shapes.items():
        if name.startswith("b_"):
            params[name] = np.zeros(shape)
        else:
            params[name] = rng.standard_normal(shape) * (1 / np.sqrt(d_vocab if name == "W_U" else cfg.d_model))
    return {k: xp.asarray(v, dtype=cfg.dtype) for k, v in params.items()}


def einsum(spec, a, b):
    """xp.einsum that lets BLAS do the contraction (optimize=True: ~3x faster on the CPU).
    Also for a [batch, pos, d] array times a matrix: NumPy's `@` there makes one small
    matrix product per example (~5x slower at 5,000 x 5 rows), einsum makes one large one."""
    return xp.einsum(spec, a, b, optimize=True)


def embed_forward(params, tokens):
    """tokens [batch, pos] -> resid_pre [batch, pos, d_model]"""
    return params["W_E"][tokens] + params["W_pos"][:tokens.shape[1]]


def embed_backward(dresid_pre, tokens, params):
    """dresid_pre [batch, pos, d_model] -> gradients of W_E and W_pos."""
    # resid_pre = W_E[tokens] + W_pos: each row's gradient goes back to the row it was read from
    one_hot = (tokens[..., None] == xp.arange(params["W_E"].shape[0])).astype(dresid_pre.dtype)   # [batch, pos, d_vocab]
    dW_pos = xp.zeros_like(params["W_pos"])
    dW_pos[:tokens.shape[1]] = dresid_pre.sum(0)
    return {"W_E": einsum("bpv,bpd->vd", one_hot, dresid_pre), "W_pos": dW_pos}


def attention_forward(params, resid_pre, pattern=None):
    """resid_pre [batch, pos, d_model] -> attn_out [batch, pos, d_model], and the cache.
    `pattern` [batch, head, R, pos], for analysis only, imposes the attention pattern of the
    last R query positions (an intervention: the model runs on from it)."""
    n_pos, d_head = resid_pre.shape[1], params["W_Q"].shape[2]
    q = einsum("bpd,hde->bphe", resid_pre, params["W_Q"])                # [batch, pos, head, d_head]
    k = einsum("bpd,hde->bphe", resid_pre, params["W_K"])                # [batch, pos, head, d_head]
    v = einsum("bpd,hde->bphe", resid_pre, params["W_V"])                # [batch, pos, head, d_head]
    attn_scores = einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(d_head)    # [batch, head, pos_q, pos_k]
    future = xp.triu(xp.ones((n_pos, n_pos), dtype=bool), 1)             # [pos_q, pos_k]: the key comes later
    attn_scores = xp.where(future, -xp.inf, attn_scores)
    own = xp.exp(attn_scores - attn_scores.max(-1, keepdims=True))
    own /= own.sum(-1, keepdims=True)                                    # softmax over pos_k
    if pattern is not None:
        own[:, :, n_pos - pattern.shape[2]:] = pattern
    pattern = own                                                        # [batch, head, pos_q, pos_k]
    z = einsum("bhqk,bkhe->bqhe", pattern, v)                            # [batch, pos, head, d_head]
    attn_out = einsum("bqhe,hed->bqd", z, params["W_O"])                 # [batch, pos, d_model]
    return attn_out, dict(q=q, k=k, v=v, attn_scores=attn_scores, pattern=pattern, z=z, attn_out=attn_out)


def attention_backward(dattn_out, cache, params):
    """dattn_out [batch, pos, d_model] -> dresid_pre [batch, pos, d_model] and the
    gradients of W_Q, W_K, W_V, W_O."""
    q, k, v, pattern, z = (cache[n] for n in ("q", "k", "v", "pattern", "z"))
    d_head = q.shape[-1]
    # attn_out = z @ W_O, summed over heads
    dW_O = einsum("bqhe,bqd->hed", z, dattn_out)                         # [head, d_head, d_model]
    dz = einsum("bqd,hed->bqhe", dattn_out, params["W_O"])               # [batch, pos, head, d_head]
    # z = pattern @ v
    dpattern = einsum("bqhe,bkhe->bhqk", dz, v)                          # [batch, head, pos_q, pos_k]
    dv = einsum("bhqk,bqhe->bkhe", pattern, dz)                          # [batch, pos, head, d_head]
    # pattern = softmax(attn_scores): masked entries have pattern 0, so they get no gradient
    dattn_scores = pattern * (dpattern - (pattern * dpattern).sum(-1, keepdims=True))
    # attn_scores = q.k / sqrt(d_head)
    dq = einsum("bhqk,bkhe->bqhe", dattn_scores, k) / math.sqrt(d_head)  # [batch, pos, head, d_head]
    dk = einsum("bhqk,bqhe->bkhe", dattn_scores, q) / math.sqrt(d_head)  # [batch, pos, head, d_head]
    # q, k, v = resid_pre @ W_Q, W_K, W_V: resid_pre feeds all three
    resid_pre, grads, dresid_pre = cache["resid_pre"], {"W_O": dW_O}, 0
    for name, d in (("W_Q", dq), ("W_K", dk), ("W_V", dv)):
        grads[name] = einsum("bpd,bphe->hde", resid_pre, d)              # [head, d_model, d_head]
        dresid_pre = dresid_pre + einsum("bphe,hde->bpd", d, params[name])   # [batch, pos, d_model]
    return dresid_pre, grads


def mlp_forward(params, resid_mid):
    """resid_mid [batch, pos, d_model] -> mlp_out [batch, pos, d_model], and the cache."""
    mlp_pre = einsum("bpd,dm->bpm", resid_mid, params["W_in"]) + params["b_in"]    # [batch, pos, d_mlp]
    mlp_post = xp.maximum(mlp_pre, 0)                                    # [batch, pos, d_mlp]
    mlp_out = einsum("bpm,md->bpd", mlp_post, params["W_out"]) + params["b_out"]   # [batch, pos, d_model]
    return mlp_out, dict(mlp_pre=mlp_pre, mlp_post=mlp_post, mlp_out=mlp_out)


def mlp_backward(dmlp_out, cache, params):
    """dmlp_out [batch, pos, d_model] -> dresid_mid [batch, pos, d_model] and the
    gradients of W_in, b_in, W_out, b_out."""
    # mlp_out = mlp_post @ W_out + b_out
    grads = {"W_out": einsum("bpm,bpd->md", cache["mlp_post"], dmlp_out), "b_out": dmlp_out.sum((0, 1))}
    dmlp_post = einsum("bpd,md->bpm", dmlp_out, params["W_out"])         # [batch, pos, d_mlp]
    # mlp_post = ReLU(mlp_pre)
    dmlp_pre = dmlp_post * (cache["mlp_pre"] > 0)                        # [batch, pos, d_mlp]
    # mlp_pre = resid_mid @ W_in + b_in
    grads["W_in"] = einsum("bpd,bpm->dm", cache["resid_mid"], dmlp_pre)  # [d_model, d_mlp]
    grads["b_in"] = dmlp_pre.sum((0, 1))
    return einsum("bpm,dm->bpd", dmlp_pre, params["W_in"]), grads        # dresid_mid [batch, pos, d_model]


def unembed_forward(params, resid_post):
    """resid_post [batch, pos, d_model] -> logits [batch, pos, d_vocab_out]"""
    return einsum("bpd,dv->bpv", resid_post, params["W_U"])


def unembed_backward(dlogits, cache, params):
    """dlogits [batch, pos, d_vocab_out] -> dresid_post [batch, pos, d_model] and the gradient of W_U."""
    return einsum("bpv,dv->bpd", dlogits, params["W_U"]), {"W_U": einsum("bpd,bpv->dv", cache["resid_post"], dlogits)}


def forward(params, tokens, n_read=1, pattern=None):
    """tokens [batch, pos] -> logits [batch, n_read, d_vocab_out] at the last n_read
    positions (the only ones a task reads), and the cache of every activation."""
    resid_pre = embed_forward(params, tokens)                            # [batch, pos, d_model]
    attn_out, cache = attention_forward(params, resid_pre, pattern)
    resid_mid = resid_pre + attn_out                                     # [batch, pos, d_model]
    mlp_out, mlp_cache = mlp_forward(params, resid_mid)
    resid_post = resid_mid + mlp_out                                     # [batch, pos, d_model]
    logits = unembed_forward(params, resid_post)                         # [batch, pos, d_vocab_out]
    cache.update(mlp_cache, tokens=tokens, resid_pre=resid_pre, resid_mid=resid_mid, resid_post=resid_post)
    return logits[:, tokens.shape[1] - n_read:], cache


def backward(params, cache, dlogits):
    """dlogits [batch, n_read, d_vocab_out], the loss's gradient at the readout positions
    -> grads, a dict with the keys of params. Each step undoes one line of forward."""
    tokens = cache["tokens"]
    # logits = (logits at every position)[:, -n_read:]: the positions not read get no gradient
    dlogits_all = xp.zeros(tokens.shape + dlogits.shape[2:], dlogits.dtype)   # [batch, pos, d_vocab_out]
    dlogits_all[:, tokens.shape[1] - dlogits.shape[1]:] = dlogits
    dresid_post, grads = unembed_backward(dlogits_all, cache, params)
    # resid_post = resid_mid + mlp_out
    dresid_mid, mlp_grads = mlp_backward(dresid_post, cache, params)
    dresid_mid = dresid_mid + dresid_post
    # resid_mid = resid_pre + attn_out
    dresid_pre, attn_grads = attention_backward(dresid_mid, cache, params)
    dresid_pre = dresid_pre + dresid_mid
    grads.update(mlp_grads, **attn_grads, **embed_backward(dresid_pre, tokens, params))
    return {k: grads[k] for k in params}


# ============================================================================ loss
def cross_entropy(logits, targets):
    """Mean cross-entropy over (batch, readout) -> (loss, dloss/dlogits).
    The sums of exponentials, the loss and the gradient at the target are float64: in
    float32 the loss saturates near 1e-7 (1 + 1e-7 rounds to 1), which is where a grokked
    model's train loss lives, and softmax - 1 at the target would cancel to zero. The
    rest is float32: shifting by the max makes the largest exponential exactly 1, and
    every other one is accurate to ~1e-7 of its own size, which is all the sums need."""
    x = logits - logits.max(-1, keepdims=True)                  # [batch, R, vocab_out], all <= 0
    e = xp.exp(x)
    total = xp.einsum("...v->...", e, dtype=xp.float64)[..., None]   # sum over the vocabulary, in float64
    x_target = xp.take_along_axis(x, targets[..., None], -1)
    loss = (xp.log(total) - x_target).mean()                    # -log p(target)
    n = targets.size
    dlogits = e * (1 / (total * n)).astype(e.dtype)             # softmax / n
    p_target = xp.exp(x_target.astype(xp.float64)) / total      # softmax at the target, in float64
    xp.put_along_axis(dlogits, targets[..., None], ((p_target - 1) / n).astype(e.dtype), -1)
    return float(loss), dlogits                                 # dloss/dlogits = (softmax - onehot) / n


# ============================================================================ AdamW
DECAYED = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "W_out", "W_U")   # every weight matrix, not the biases


def adamw_init(params):
    return {"step": 0, "m": {k: xp.zeros_like(v) for k, v in params.items()},
            "v": {k: xp.zeros_like(v) for k, v in params.items()}}


def adamw_step(params, grads, state, cfg):
    """One AdamW update in place, with PyTorch's semantics: decoupled weight decay
    (w -= lr*wd*w, before the Adam step), bias-corrected moments, eps 1e-8 added to
    sqrt(v_hat)."""
    state["step"] += 1
    t, b1, b2 = state["step"], cfg.beta1, cfg.beta2
    for k, w in params.items():
        m, v = state["m"][k], state["v"][k]
        if k in DECAYED:
            w *= 1 - cfg.lr * cfg.weight_decay
        m *= b1
        m += (1 - b1) * grads[k]
        v *= b2
        v += (1 - b2) * grads[k] ** 2
        denom = xp.sqrt(v) / math.sqrt(1 - b2 ** t) + 1e-8
        w -= (cfg.lr / (1 - b1 ** t)) * m / denom


FLUSH_EVERY = 100   # AdamW steps between flushes of subnormal numbers (a fixed schedule: resume is bit-identical)


def flush_subnormals(params, state):
    """Set to 0 every weight and AdamW moment smaller in size than the dtype's smallest
    normal number (float32: 1.2e-38). Why: the weights of a dead ReLU neuron get a gradient
    of exactly 0, so weight decay shrinks them by (1 - lr*wd) every step, and m and v of
    such weights shrink by beta1 and beta2; within thousands of steps they are subnormal,
    and arithmetic on subnormals is ~100x slower on x86 CPUs (a long run slowed down ~10x).
    Why nothing that matters changes: a weight below 1.2e-38 times an activation of normal
    size adds less than 1e-30 of any normal-sized sum it enters, far below float32's
    resolution (1e-7), so no logit changes beyond rounding; m below 1.2e-38 moves a weight
    by less than lr * 1e-29 (m's bias correction is at most 10x, and the denominator is at
    least eps = 1e-8); and sqrt(v) below 1.1e-19 is negligible beside eps. Such numbers would
    decay to 0 anyway. test_minigrok.py checks logits, gradients and an AdamW step."""
    for arrays in (params, state["m"], state["v"]):
        for a in arrays.values():
            a[xp.abs(a) < xp.finfo(a.dtype).tiny] = 0


# ============================================================================ engines
# An engine is what training calls: forward(params, tokens, n_read) -> (logits at the
# readout positions, cache) and backward(params, cache, dlogits) -> grads. 'plain' is the
# textbook model above, 'fast' is fast.py's: the same numbers to float rounding (the tests
# check it). A run picks one (Config.engine) and passes it on as a value.
Engine = collections.namedtuple("Engine", "forward backward")
ENGINES = {"plain": Engine(forward, backward), "fast": Engine(fast.forward, fast.backward)}


# ============================================================================ evaluation
def predict(params, tokens, n_read, decode, engine=ENGINES["fast"], teacher_logits=None):
    """Predicted tokens [batch, n_read]. With decode (sort), the outputs are generated
    greedily, one at a time, each fed back as the next input: tokens[:, :-(n_read-1)] is
    the prompt and the teacher-forced tokens after it are not looked at. With
    teacher_logits (the forward pass on `tokens`, which evaluation makes for the loss
    anyway) the same predictions are made with less work; see decode_from_teacher."""
    forward_fn = engine.forward
    if not decode:
        return forward_fn(params, tokens, n_read)[0].argmax(-1)
    if teacher_logits is not None:
        return decode_from_teacher(params, tokens, n_read, teacher_logits, forward_fn)
    seq = tokens[:, :tokens.shape[1] - (n_read - 1)]            # [batch, inputs + SEP]
    preds = []
    for step in range(n_read):
        preds.append(forward_fn(params, seq, 1)[0][:, 0].argmax(-1))   # [batch]
        seq = xp.concatenate([seq, preds[-1][:, None]], 1)
    return xp.stack(preds, 1)                                   # [batch, n_read]


def decode_from_teacher(params, tokens, n_read, teacher_logits, forward_fn):
    """Greedy decoding as in predict(), reusing the teacher-forced pass. A prediction depends
    only on the tokens before it, so as long as an example's predictions so far are the
    teacher-forced tokens, its next prediction is the teacher-forced pass's argmax there
    (the same logits, to float rounding). Only the examples that have gone astray are run
    again, from the step where they did: after training, almost none."""
    first = tokens.shape[1] - n_read                            # the first readout position (SEP)
    preds = teacher_logits.argmax(-1)                           # [batch, n_read]
    seq, astray = tokens.copy(), xp.zeros(len(tokens), bool)
    for step in range(1, n_read):
        astray |= preds[:, step - 1] != tokens[:, first + step]   # its input here is its own prediction
        idx = xp.flatnonzero(astray)
        if len(idx):
            seq[idx, first + step] = preds[idx, step - 1]
            preds[idx, step] = forward_fn(params, seq[idx, :first + step + 1], 1)[0][:, 0].argmax(-1)
    return preds


def evaluate(params, tokens, targets, n_read, decode, engine=ENGINES["fast"]):
    """Loss (teacher-forced) and accuracy on a data set, in chunks. Accuracy is that of
    predict(); with decode also seq_acc, the fraction of sequences entirely right."""
    loss, right, seq_right = 0.0, 0, 0
    for i in range(0, len(tokens), EVAL_CHUNK):
        tok, tgt = tokens[i:i + EVAL_CHUNK], targets[i:i + EVAL_CHUNK]
        logits = engine.forward(params, tok, n_read)[0]
        loss += cross_entropy(logits, tgt)[0] * len(tok)
        hit = (predict(params, tok, n_read, decode, engine, logits) if decode else logits.argmax(-1)) == tgt
        right += int(hit.sum())
        seq_right += int(hit.all(1).sum())
    out = {"loss": loss / len(tokens), "acc": right / targets.size}
    if decode:
        out["seq_acc"] = seq_right / len(tokens)
    return out


# ============================================================================ training
def is_full_batch(cfg, n):
    """True when an epoch is one step over all n training examples."""
    return cfg.batch_size == 0 or cfg.batch_size >= n


def epoch_batches(cfg, n, epoch):
    """Each step's example indices in one epoch of n examples: [slice(None)] for a full
    batch, else minibatches (NumPy arrays) shuffled by (seed, epoch) only, so a resumed run
    sees the same batches."""
    if is_full_batch(cfg, n):
        return [slice(None)]
    perm = np.random.default_rng([cfg.seed, epoch]).permutation(n)
    return [perm[i:i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]


def training_engine(cfg, tokens, n_read, params):
    """The engine train_epoch steps with: cfg's; for the fast engine on one full batch, with
    that batch's index plan (which depends on the tokens only) made once, here."""
    engine = ENGINES[cfg.engine]
    if cfg.engine == "fast" and is_full_batch(cfg, len(tokens)):
        plan = fast.index_plan(tokens, n_read, params)
        engine = engine._replace(forward=functools.partial(fast.forward, plan=plan))
    return engine


def train_epoch(params, opt, tokens, targets, cfg, epoch, n_read, engine):
    """One pass over the training set with `engine`: full batch, or shuffled minibatches
    whose order depends only on (seed, epoch), so a resumed run sees the same batches.
    Returns the mean loss, or nan (before any update with it) as soon as a loss is not finite."""
    batches = [b if isinstance(b, slice) else xp.asarray(b) for b in epoch_batches(cfg, len(tokens), epoch)]
    total = 0.0
    for idx in batches:
        logits, cache = engine.forward(params, tokens[idx], n_read)
        loss, dlogits = cross_entropy(logits, targets[idx])
        if not np.isfinite(loss):
            return float("nan")
        adamw_step(params, engine.backward(params, cache, dlogits), opt, cfg)
        if opt["step"] % FLUSH_EVERY == 0:
            flush_subnormals(params, opt)
        total += loss
    return total / len(batches)


def record(history, epoch, wall, params, evals, data, engine):
    """Append one evaluation of every data set to history (a dict of lists)."""
    history.setdefault("epoch", []).append(epoch)
    history.setdefault("wall_s", []).append(round(wall, 3))
    for name, (tokens, targets) in evals.items():
        for key, value in evaluate(params, tokens, targets, data.n_read, data.decode, engine).items():
            history.setdefault(f"{name}_{key}", []).append(value)


def milestones(history):
    """(epoch, wall seconds) at which train accuracy first reached 100% and test accuracy
    first reached 50% and 99%; None where it has not (yet)."""
    def first(key, threshold):
        for e, w, a in zip(history["epoch"], history["wall_s"], history[key]):
            if a >= threshold:
                return e, w
        return None
    return {"train_acc_100": first("train_acc", 1.0), "test_acc_50": first("test_acc", 0.5),
            "test_acc_99": first("test_acc", 0.99)}


def status_line(cfg, history, rate):
    h = {k: v[-1] for k, v in history.items()}
    left = (cfg.epochs - h["epoch"]) / rate if rate > 0 else 0
    return (f"epoch {h['epoch']:>6}/{cfg.epochs}  loss {h['train_loss']:.3e} / {h['test_loss']:.3e}  "
            f"acc {h['train_acc']:.4f} / {h['test_acc']:.4f}  {rate:6.1f} epochs/s  {left:5.0f} s left")


def all_finite(arrays):
    return all(bool(xp.isfinite(a).all()) for a in arrays)


def train(cfg, out, resume=False, verbose=True, stop_at=None, progress=True, stop=None):
    """Train cfg's task, checkpointing to `out` (whatever is there: main() checks the path
    first); with resume, continue the run saved at `out` (or at the path resume gives); with
    stop_at, stop early once test accuracy reaches it. Every checkpoint says whether the run
    has finished (run_state). verbose: print progress (unless progress=False) and the summary.
    stop: main()'s Interrupt, else one is made for this call.
    Returns (params, history, exit_code): 0; 1 when the loss or the weights became nan or
    inf, or a checkpoint could not be written (the last one written stays); 128 + the
    signal's number when interrupted (saved, if an epoch was completed)."""
    own_stop, stop = stop is None, stop or checkpoint.Interrupt()
    try:
        data = tasks.make_data(cfg)
        as_xp = lambda pair: tuple(xp.asarray(a) for a in pair)
        train_tokens, train_targets = as_xp(data.train)
        evals = {name: as_xp(pair) for name, pair in data.evals.items()}
        engine = ENGINES[cfg.engine]
        if resume:
            source = out if resume is True else resume
            ck, done = checkpoint.resume_from(source, out, cfg, stop_at)
            if done:
                if verbose:
                    print(f"{source} {done}; nothing to train")
                return ck["params"], ck["history"], 0
            history, snapshots, epoch, wall0 = ck["history"], ck["snapshots"], ck["epoch"], ck["wall_s"]
            params = {k: xp.asarray(v) for k, v in ck["params"].items()}
            opt = {"step": ck["opt"]["step"], "m": {k: xp.asarray(v) for k, v in ck["opt"]["m"].items()},
                   "v": {k: xp.asarray(v) for k, v in ck["opt"]["v"].items()}}
            saved = epoch if source == out else None    # the checkpoint at out that belongs to this run
        else:
            source = None
            params = init_params(cfg)
            opt, history, snapshots, epoch, wall0, saved = adamw_init(params), {}, [], 0, 0.0, None
            record(history, 0, 0.0, params, evals, data, engine)
            if cfg.snapshot_every:
                snapshots.append((0, {k: to_numpy(v).copy() for k, v in params.items()}))
        step_engine = training_engine(cfg, train_tokens, data.n_read, params)
        progress = verbose and progress
        tty = progress and sys.stdout.isatty()
        newline = "\n" if tty else ""           # ends the status line updated in place
        overhead, e_start, t_start = 0.0, epoch, time.perf_counter()
        wall = lambda: wall0 + time.perf_counter() - t_start

        def stopped(why):
            """One line on stderr: why the run stopped, and which checkpoint of its own is kept."""
            if saved is None:
                kept = f"nothing was saved, {source} is kept as it was" if resume else "nothing was saved"
            elif resume and saved == e_start:
                kept = f"{out} is kept as it was resumed (epoch {saved})"
            else:
                kept = f"its last checkpoint, {out} at epoch {saved}, is kept"
            print(f"{newline}minigrok: {why}; stopped, {kept}", file=sys.stderr)
            return params, history, 1

        def save(epoch, finished):
            """Write the checkpoint if everything in it is finite; None, or what went wrong."""
            if not all_finite([*opt["m"].values(), *opt["v"].values()]):
                return f"the AdamW moments became nan or inf by epoch {epoch}"
            try:
                checkpoint.save_checkpoint(out, cfg, params, opt, history, snapshots, epoch, wall(), finished,
                                           stop_at)
            except OSError as e:
                return f"could not write the checkpoint {out} at epoch {epoch} ({e.strerror or e})"

        stop.deferred = True        # from here a signal is acted on between epochs
        while True:
            with np.errstate(over="ignore", invalid="ignore"):    # checked below, in one line
                loss = train_epoch(params, opt, train_tokens, train_targets, cfg, epoch, data.n_read, step_engine)
            epoch += 1
            if not math.isfinite(loss):
                return stopped(f"the training loss became {loss} at epoch {epoch}")
            if not all_finite(params.values()):
                return stopped(f"the weights became nan or inf at epoch {epoch} (loss {loss:.4g} before it)")
            t0, reached = time.perf_counter(), False
            if cfg.snapshot_every and epoch % cfg.snapshot_every == 0:
                snapshots.append((epoch, {k: to_numpy(v).copy() for k, v in params.items()}))
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                with np.errstate(over="ignore", invalid="ignore"):
                    record(history, epoch, wall(), params, evals, data, engine)
                if not all(math.isfinite(rows[-1]) for rows in history.values()):
                    bad = [k for k, rows in history.items() if not math.isfinite(rows[-1])]
                    return stopped(f"the evaluation at epoch {epoch} gave {bad[0]} {history[bad[0]][-1]}")
                rate = (epoch - e_start) / max(time.perf_counter() - t_start, 1e-9)
                if tty:
                    print("\r" + status_line(cfg, history, rate), end="", flush=True)
                elif progress:
                    print(status_line(cfg, history, rate), flush=True)
                reached = stop_at is not None and history["test_acc"][-1] >= stop_at
            if epoch % cfg.save_every == 0:
                problem = save(epoch, epoch == cfg.epochs or reached)
                if problem:
                    return stopped(problem)
                saved = epoch
            overhead += time.perf_counter() - t0
            if epoch == cfg.epochs or reached or stop.signum is not None:
                break
        if saved != epoch:
            t0, problem = time.perf_counter(), save(epoch, epoch == cfg.epochs or reached)
            if problem:
                return stopped(problem)
            saved, overhead = epoch, overhead + time.perf_counter() - t0
        if stop.signum is not None:
            how = "--finish" if out.endswith(checkpoint.UNFINISHED) else "--resume"
            rest = "the run is complete" if epoch == cfg.epochs or reached else f"continue with the same flags and {how}"
            print(f"{newline}minigrok: interrupted ({signal.Signals(stop.signum).name}) at epoch {epoch}; "
                  f"saved {out} ({rest})", file=sys.stderr)
            return params, history, 128 + stop.signum
        if tty:
            print()
        if verbose:
            print_summary(cfg, history, wall(), overhead / max(time.perf_counter() - t_start, 1e-9))
        return params, history, 0
    finally:
        if own_stop:
            stop.restore()


def print_summary(cfg, history, wall, overhead):
    ms = milestones(history)
    say = lambda m: f"epoch {m[0]} ({m[1]:.1f} s)" if m else "not reached"
    print(f"train accuracy 100%: {say(ms['train_acc_100'])}")
    print(f"test accuracy 50%:   {say(ms['test_acc_50'])}")
    print(f"test accuracy 99%:   {say(ms['test_acc_99'])}")
    finals = "  ".join(f"{k} {v[-1]:.4g}" for k, v in history.items() if k not in ("epoch", "wall_s"))
    print(f"final (epoch {history['epoch'][-1]}): {finals}")
    print(f"wall time {wall:.1f} s ({100 * overhead:.1f}% in evaluation and checkpoints), "
          f"peak memory {checkpoint.peak_memory_mb():.0f} MB")


# ============================================================================ plotting
def plot_history(history, path, title):
    """Train and test loss and accuracy against epoch, on log axes: the grokking curve.
    The epoch axis is linear from 0 to 1 and logarithmic beyond (symlog), so epoch 0 is
    drawn where it is. Written atomically, as checkpoints are."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = np.array(history["epoch"])
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    sets = [k[:-5] for k in history if k.endswith("_loss")]
    for name in sets:
        ax_loss.plot(epochs, history[f"{name}_loss"], label=name)
        ax_acc.plot(epochs, history[f"{name}_acc"], label=name)
    ax_loss.set(yscale="log", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(ylabel="accuracy", ylim=(-0.02, 1.02), title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.set_xscale("symlog", linthresh=1)                    # epoch 0 at 0, log scale from epoch 1
        ax.set(xlabel="epoch (log scale from 1; 0 at the left edge)", xlim=(0, max(epochs.max(), 1)))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    try:
        checkpoint.write_atomically(path, lambda f: fig.savefig(f, format=os.path.splitext(path)[1][1:] or "png", dpi=110))
    finally:
        plt.close(fig)


# ============================================================================ command line
class Parser(argparse.ArgumentParser):
    def error(self, message):          # one line, exit 2
        print(f"minigrok: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def make_parser():
    ap = Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="Task defaults (over the Config defaults shown above): "
                       + "; ".join(f"{t}: {', '.join(f'{k}={v}' for k, v in o.items()) or 'as shown'}"
                                   for t, o in tasks.TASK_DEFAULTS.items())
                       + ". --preset nanda: " + ", ".join(f"{k}={v}" for k, v in PRESETS["nanda"].items()) + ".")
    ap.add_argument("--task", default="add", help="add, max, median or sort (default: add)")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="a named configuration, e.g. nanda (Nanda et al. 2023)")
    helps = {"p": "modulus for add", "n": "numbers are 0..n-1 for max/median/sort",
             "frac_train": "add: fraction of pairs to train on", "n_train": "training examples (add: overrides --frac-train)",
             "n_test": "test examples (max/median/sort)", "data_seed": "seed of the train/test split",
             "epochs": "training epochs", "batch_size": "minibatch size (0: full batch)",
             "seed": "seed of the weight init and minibatch order", "dtype": "float32 or float64",
             "eval_every": "evaluate every K epochs", "save_every": "checkpoint every K epochs",
             "snapshot_every": "keep a weight snapshot every K epochs (0: never)",
             "engine": "fast (fast.py) or plain (the textbook model in minigrok.py)"}
    for f in dataclasses.fields(Config):
        if f.name in ("task", "augment"):
            continue
        ap.add_argument("--" + f.name.replace("_", "-"), type=f.type if isinstance(f.type, type) else eval(f.type),
                        default=None, help=f"{helps.get(f.name, f.name.replace('_', ' '))} (default: {f.default})")
    ap.add_argument("--augment", action="store_true", default=None,
                    help="max/median/sort: add tuples for every answer value (the study's fix)")
    ap.add_argument("--out", help="checkpoint path (default: runs/<task>.npz); the curve goes beside it, as .png")
    ap.add_argument("--resume", action="store_true", help="continue the run saved at --out")
    ap.add_argument("--finish", action="store_true",
                    help="bring --out to this run, finished: start it, continue it where it was interrupted, or "
                         "nothing if it is done; safe to repeat. Until it is finished the run is kept at "
                         "NAME.unfinished.npz, so a file at --out is always a finished run (what make uses)")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace what is at --out (without it, a fresh run refuses to replace anything)")
    ap.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                    help="auto: CuPy if a GPU works, else NumPy (default: auto); for both engines")
    ap.add_argument("--stop-at", type=float, metavar="ACC", help="stop once test accuracy reaches ACC (e.g. 0.99)")
    ap.add_argument("--quiet", action="store_true", help="print only the summary")
    return ap


def config_from_args(args):
    """Config defaults, then the task's defaults, then the preset, then explicit flags."""
    if args.task not in tasks.TASKS:
        raise UsageError(f"unknown task {args.task!r}; choose one of {', '.join(tasks.TASKS)}")
    values = {"task": args.task, **tasks.TASK_DEFAULTS[args.task], **PRESETS.get(args.preset, {})}
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
             if f.name != "task" and getattr(args, f.name) is not None}
    values.update(given)
    if "d_head" not in given:          # by default the heads split d_model evenly
        d_model, n_heads = values.get("d_model", Config.d_model), values.get("n_heads", Config.n_heads)
        if n_heads > 0 and d_model % n_heads:
            raise UsageError(f"--n-heads ({n_heads}) must divide --d-model ({d_model}), or give --d-head")
        values["d_head"] = d_model // max(n_heads, 1)
    cfg = Config(**values)
    check_config(cfg)
    return cfg


def main(argv=None):
    """The run, from its flags: every check that needs no training is made first (config,
    output path, memory and disk, the lock, a trial save, what is at --out), then training,
    then the curve.
    Exit codes: 0 done, 1 stopped (nan/inf, a write failed), 2 bad input, 128 + signal."""
    args = make_parser().parse_args(argv)
    stop, out, lock, finished, trained = checkpoint.Interrupt(), None, None, False, False
    try:
        cfg = config_from_args(args)
        checkpoint.check_run_flags(args.resume, args.overwrite, args.finish, args.stop_at)
        out = os.path.join("runs", f"{cfg.task}.npz") if args.out is None else args.out
        checkpoint.check_out(out, args.resume)
        on_gpu = use_device(args.device) == "gpu"
        lock = checkpoint.claim_output(out, cfg, on_gpu, args.finish)
        where, resume, start = checkpoint.plan_run(out, cfg, args.resume, args.overwrite, args.finish, args.stop_at)
        if where is None:
            print(f"{out} is finished ({start} epochs); nothing to train")
            return 0
        params, history, code = train(cfg, where, resume=resume, stop_at=args.stop_at,
                                      progress=not args.quiet, stop=stop)
        if where != out and os.path.exists(where) and checkpoint.run_state(where).finished:
            os.replace(where, out)              # finished (even if a signal came in its last epoch): only now
                                                # does it take the name make looks for
        trained = max(history.get("epoch") or [start]) > start   # False: a resumed run had nothing to train
        finished, stop.deferred = True, False     # a signal now stops the plot at once
        if code == 0 and stop.signum is not None:  # noted after the last save, before the plot
            raise checkpoint.Interrupted(stop.signum)
        if code == 0:
            png = checkpoint.plot_path(out)
            try:
                plot_history(history, png, f"{cfg.task}: train and test loss and accuracy (d_model {cfg.d_model}, seed {cfg.seed})")
            except OSError as e:
                print(f"minigrok: could not write the curve {png} ({e.strerror or e}); the checkpoint {out} is saved",
                      file=sys.stderr)
                return 1
            print(f"checkpoint: {out}\ngrokking curve: {png}")
        return code
    except UsageError as e:
        print(f"minigrok: error: {e}", file=sys.stderr)
        return 2
    except checkpoint.Interrupted as e:
        if finished and trained:
            where = f"after training; the checkpoint {out} is saved, its curve was not drawn"
        elif finished:
            where = f"while redrawing the curve, with nothing to train; {out} is as it was, its curve was not redrawn"
        else:
            where = "before an epoch was completed; nothing was saved" + (
                f", {out} is as it was" if args.resume and out is not None else "")
        print(f"minigrok: interrupted ({e}) {where}", file=sys.stderr)
        return 128 + e.signum
    finally:
        stop.deferred = True                # a signal now changes nothing: the run is over
        if lock is not None:
            checkpoint.unlock_output(lock, out)
        stop.restore()


if __name__ == "__main__":
    sys.exit(main())
