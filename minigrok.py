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
gradients, the AdamW moments and the checkpoint use the same keys. tasks.py makes the
data; load() hands a trained checkpoint to analysis code.

Reading order: the model (embed, attention, mlp, unembed; forward, backward), the loss,
AdamW, then the config, training, checkpoints and the command line.
"""
import argparse
import collections
import dataclasses
import json
import math
import os
import re
import secrets
import shutil
import signal
import stat
import sys
import time
from dataclasses import dataclass

import numpy as np

try:
    import fcntl            # the output's lock (Unix)
except ImportError:
    fcntl = None

import fast
import tasks

xp = np   # the array module, NumPy or CuPy: chosen once, by use_device()


# ============================================================================ the model
# Dimensions: batch, pos, d_model, head, d_head, d_mlp, d_vocab (input tokens) and
# d_vocab_out (output classes). Weights right-multiply: x @ W, so W_E is [d_vocab, d_model]
# and W_Q is [head, d_model, d_head], as in TransformerLens.
#
# The cache: every activation of forward() at every position, named after the
# TransformerLens hook that holds it (TL_HOOKS below), with TransformerLens's shapes:
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
TL_HOOKS = {"resid_pre": "blocks.0.hook_resid_pre", "q": "blocks.0.attn.hook_q", "k": "blocks.0.attn.hook_k",
            "v": "blocks.0.attn.hook_v", "attn_scores": "blocks.0.attn.hook_attn_scores",
            "pattern": "blocks.0.attn.hook_pattern", "z": "blocks.0.attn.hook_z",
            "attn_out": "blocks.0.hook_attn_out", "resid_mid": "blocks.0.hook_resid_mid",
            "mlp_pre": "blocks.0.mlp.hook_pre", "mlp_post": "blocks.0.mlp.hook_post",
            "mlp_out": "blocks.0.hook_mlp_out", "resid_post": "blocks.0.hook_resid_post"}


def init_params(cfg, d_vocab, d_vocab_out, n_ctx):
    """N(0,1)/sqrt(d_model) for every matrix except W_U (N(0,1)/sqrt(d_vocab)); biases zero."""
    rng = np.random.default_rng(cfg.seed)
    d, H, dh, m = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
    shapes = {"W_E": (d_vocab, d), "W_pos": (n_ctx, d),
              "W_Q": (H, d, dh), "W_K": (H, d, dh), "W_V": (H, d, dh), "W_O": (H, dh, d),
              "W_in": (d, m), "W_out": (m, d), "W_U": (d, d_vocab_out)}
    params = {}
    for name, shape in shapes.items():
        scale = 1 / np.sqrt(d_vocab if name == "W_U" else d)
        params[name] = rng.standard_normal(shape) * scale
    params["b_in"] = np.zeros(m)
    params["b_out"] = np.zeros(d)
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


# ============================================================================ config
@dataclass(frozen=True)
class Config:
    task: str = "add"
    # data
    p: int = 113                 # add: the modulus
    n: int = 100                 # max/median/sort: numbers are 0 .. n-1
    frac_train: float = 0.3      # add: fraction of the p*p pairs used for training
    n_train: int = 0             # training examples (add: overrides frac_train when > 0)
    n_test: int = 0              # max/median/sort: test examples
    augment: bool = False        # max/median/sort: add tuples for every answer value
    data_seed: int = 598
    # model (Nanda et al.'s sizes by default)
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    # optimisation
    lr: float = 1e-3
    weight_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.98
    epochs: int = 3000
    batch_size: int = 0          # 0: full batch
    seed: int = 0                # weight init and minibatch order
    dtype: str = "float32"
    engine: str = "fast"         # fast (fast.py) or plain (the textbook model): equal to float rounding
    # bookkeeping: none of these changes the weights
    eval_every: int = 10
    save_every: int = 1000
    snapshot_every: int = 0      # keep a copy of the weights every K epochs (0: never)


# Nanda et al.'s addition run as a preset (each task's own defaults are tasks.TASK_DEFAULTS).
PRESETS = {
    "nanda": dict(p=113, frac_train=0.3, d_model=128, n_heads=4, d_head=32, d_mlp=512,
                  lr=1e-3, weight_decay=1.0, epochs=25000, eval_every=100,
                  snapshot_every=500),   # (addition's 50 would keep 501 snapshots, ~0.5 GB)
}


class UsageError(Exception):
    """Bad input: reported as one line on stderr and exit code 2."""


def check_config(cfg):
    """Raise UsageError with what is wrong and what is allowed."""
    def need(ok, msg):
        if not ok:
            raise UsageError(msg)
    need(cfg.task in tasks.TASKS, f"unknown task {cfg.task!r}; choose one of {', '.join(tasks.TASKS)}")
    need(cfg.p >= 2, f"--p must be an integer >= 2, got {cfg.p}")
    need(cfg.n >= 2, f"--n must be an integer >= 2, got {cfg.n}")
    need(0 < cfg.frac_train < 1, f"--frac-train must be between 0 and 1 (exclusive), got {cfg.frac_train}")
    for name in ("d_model", "n_heads", "d_head", "d_mlp", "epochs", "eval_every", "save_every"):
        need(getattr(cfg, name) > 0, f"--{name.replace('_', '-')} must be a positive integer, got {getattr(cfg, name)}")
    for name in ("n_train", "n_test", "batch_size", "snapshot_every"):
        need(getattr(cfg, name) >= 0, f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
    need(cfg.n_heads * cfg.d_head == cfg.d_model,
         f"--n-heads ({cfg.n_heads}) times --d-head ({cfg.d_head}) must equal --d-model ({cfg.d_model})")
    for name in ("seed", "data_seed"):
        need(getattr(cfg, name) >= 0, f"--{name.replace('_', '-')} must be >= 0 (NumPy seeds are), got {getattr(cfg, name)}")
    need(cfg.lr > 0 and math.isfinite(cfg.lr), f"--lr must be positive and finite, got {cfg.lr}")
    need(cfg.weight_decay >= 0 and math.isfinite(cfg.weight_decay),
         f"--weight-decay must be >= 0 and finite, got {cfg.weight_decay}")
    need(0 <= cfg.beta1 < 1 and 0 <= cfg.beta2 < 1, "--beta1 and --beta2 must be in [0, 1)")
    need(cfg.dtype in ("float32", "float64"), f"--dtype must be float32 or float64, got {cfg.dtype!r}")
    need(cfg.engine in ENGINES, f"--engine must be one of {', '.join(ENGINES)}, got {cfg.engine!r}")
    n_max = 6208                 # the largest n with n**5 < 2**63: tasks.py codes a tuple as one int64
    need(cfg.task == "add" or cfg.n <= n_max, f"--n must be at most {n_max} (tuples are coded as int64), got {cfg.n}")
    if cfg.task == "add" and cfg.n_train == 0:      # the size comes from --frac-train: name that flag
        total = tasks.n_examples(cfg)
        need(int(cfg.frac_train * total) >= 1, f"--frac-train {cfg.frac_train} gives {int(cfg.frac_train * total)} of "
             f"the {total} pairs (p={cfg.p}) to train on; give a larger --frac-train, or --n-train")
    problem = tasks.size_problem(cfg)
    need(problem is None, problem)


# ============================================================================ backend
def keep_freed_memory():
    """Ask glibc to keep freed memory for reuse instead of returning it to the system.

    NumPy allocates a fresh array for every intermediate, and a training step makes dozens
    of megabyte-sized ones. By default glibc hands large blocks back to the kernel when
    they are freed, so the next step pays a page fault for every 4 KiB it touches again:
    that made an epoch of the default run almost twice as slow. With blocks up to 32 MiB
    served from the heap and the heap never trimmed, the same memory is reused each step.
    Linux/glibc only; elsewhere nothing changes."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20)
    libc.mallopt(M_TRIM_THRESHOLD, 2**30)


def set_array_module(module):
    """The one place the array module is set, for this file and the fast engine."""
    global xp
    xp = fast.xp = module


def use_device(device):
    """Choose the array module once: CuPy on a working GPU, else NumPy.
    'auto' falls back to NumPy with one line on stderr; 'gpu' without a GPU is an error."""
    if device == "cpu":
        set_array_module(np)
        keep_freed_memory()
        return "cpu"
    try:
        import cupy
        ok = cupy.is_available()
        why = "cupy finds no CUDA device"
    except Exception as e:          # not installed, or no CUDA libraries
        ok, why = False, f"cupy cannot be used ({type(e).__name__})"
    if ok:
        set_array_module(cupy)
        return "gpu"
    if device == "gpu":
        raise UsageError(f"--device gpu needs a working CUDA GPU, but {why}; use --device cpu or auto")
    print(f"minigrok: no working GPU ({why}); using NumPy on the CPU", file=sys.stderr)
    set_array_module(np)
    keep_freed_memory()
    return "cpu"


def to_numpy(a):
    """Arrays go back to NumPy only at the edges: checkpoints, printing, plotting."""
    return a if isinstance(a, np.ndarray) else a.get()


# ============================================================================ evaluation
ENGINES = ("fast", "plain")


def engine(name):
    """(forward, backward) of an engine: 'plain' is the textbook model at the top of this
    file, 'fast' is fast.py's (the same results to float rounding)."""
    return (fast.forward, fast.backward) if name == "fast" else (forward, backward)


EVAL_CHUNK = 8192   # examples per forward pass in evaluation, to bound memory


def predict(params, tokens, n_read, decode, engine_name="fast", teacher_logits=None):
    """Predicted tokens [batch, n_read]. With decode (sort), the outputs are generated
    greedily, one at a time, each fed back as the next input: tokens[:, :-(n_read-1)] is
    the prompt and the teacher-forced tokens after it are not looked at. With
    teacher_logits (the forward pass on `tokens`, which evaluation makes for the loss
    anyway) the same predictions are made with less work; see decode_from_teacher."""
    forward_fn = engine(engine_name)[0]
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


def evaluate(params, tokens, targets, n_read, decode, engine_name="fast"):
    """Loss (teacher-forced) and accuracy on a data set, in chunks. Accuracy is that of
    predict(); with decode also seq_acc, the fraction of sequences entirely right."""
    loss, right, seq_right = 0.0, 0, 0
    for i in range(0, len(tokens), EVAL_CHUNK):
        tok, tgt = tokens[i:i + EVAL_CHUNK], targets[i:i + EVAL_CHUNK]
        logits = engine(engine_name)[0](params, tok, n_read)[0]
        loss += cross_entropy(logits, tgt)[0] * len(tok)
        hit = (predict(params, tok, n_read, decode, engine_name, logits) if decode else logits.argmax(-1)) == tgt
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


def train_epoch(params, opt, tokens, targets, cfg, epoch, n_read, plan=None):
    """One pass over the training set: full batch, or shuffled minibatches whose order
    depends only on (seed, epoch), so a resumed run sees the same batches. `plan`: the
    full batch's fast.index_plan, made once by the caller (fast engine only). Returns the
    mean loss, or nan (before any update with it) as soon as a loss is not finite."""
    backward_fn = engine(cfg.engine)[1]
    batches = [b if isinstance(b, slice) else xp.asarray(b) for b in epoch_batches(cfg, len(tokens), epoch)]
    total = 0.0
    for idx in batches:
        if cfg.engine == "fast":
            logits, cache = fast.forward(params, tokens[idx], n_read, plan if len(batches) == 1 else None)
        else:
            logits, cache = forward(params, tokens[idx], n_read)
        loss, dlogits = cross_entropy(logits, targets[idx])
        if not np.isfinite(loss):
            return float("nan")
        adamw_step(params, backward_fn(params, cache, dlogits), opt, cfg)
        if opt["step"] % FLUSH_EVERY == 0:
            flush_subnormals(params, opt)
        total += loss
    return total / len(batches)


def record(history, epoch, wall, params, evals, data, engine_name):
    """Append one evaluation of every data set to history (a dict of lists)."""
    history.setdefault("epoch", []).append(epoch)
    history.setdefault("wall_s", []).append(round(wall, 3))
    for name, (tokens, targets) in evals.items():
        for key, value in evaluate(params, tokens, targets, data.n_read, data.decode, engine_name).items():
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


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM outside the training loop (see Interrupt). A BaseException, as
    KeyboardInterrupt is, so that no `except Exception` swallows it."""
    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Interrupt:
    """Ctrl-C (SIGINT) and SIGTERM, from the start of a run to its end. Outside the training
    loop (building the data, loading a checkpoint, the first evaluation, plotting) a signal
    raises Interrupted at once: nothing can be half-written then, since every file is
    written to a temporary file and renamed. Inside the loop (`deferred`) a signal is only
    noted, and the loop stops after the epoch it is in, so the weights are saved whole,
    never half-updated."""
    def __init__(self):
        self.signum, self.deferred, self.old = None, False, {}
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self.old[s] = signal.signal(s, self.handle)
            except ValueError:          # not the main thread: signals keep their handlers
                pass

    def handle(self, signum, frame):
        if not self.deferred:
            raise Interrupted(signum)
        self.signum = signum

    def restore(self):
        for s, h in self.old.items():
            signal.signal(s, h)


def all_finite(arrays):
    return all(bool(xp.isfinite(a).all()) for a in arrays)


def drop_unscheduled_row(history, epoch, cfg):
    """A run evaluates every eval_every epochs and at its last epoch. A checkpoint made at
    the end of a shorter run (or by an older version when interrupted) ends with a row at
    its last epoch that a run going on past that epoch does not make: it goes, so that the
    resumed history is row for row that of the uninterrupted run."""
    if history["epoch"][-1] == epoch and epoch % cfg.eval_every and epoch < cfg.epochs:
        for rows in history.values():
            rows.pop()


def train(cfg, out, resume=False, verbose=True, stop_at=None, progress=True, stop=None):
    """Train cfg's task, checkpointing to `out` (whatever is there: main() checks the path
    first); with resume, continue the run saved at `out` (or at the path resume gives); with
    stop_at, stop early once test accuracy reaches it. Every checkpoint says whether the run
    has finished (run_state). verbose: print progress (unless progress=False) and the summary.
    stop: main()'s Interrupt, else one is made for this call.
    Returns (params, history, exit_code): 0; 1 when the loss or the weights became nan or
    inf, or a checkpoint could not be written (the last one written stays); 128 + the
    signal's number when interrupted (saved, if an epoch was completed)."""
    own_stop, stop = stop is None, stop or Interrupt()
    try:
        data = tasks.make_data(cfg)
        as_xp = lambda pair: tuple(xp.asarray(a) for a in pair)
        train_tokens, train_targets = as_xp(data.train)
        evals = {name: as_xp(pair) for name, pair in data.evals.items()}
        if resume:
            source = out if resume is True else resume
            ck = load_checkpoint(source)
            check_resumable(ck["config"], cfg)
            history, snapshots, epoch, wall0 = ck["history"], ck["snapshots"], ck["epoch"], ck["wall_s"]
            done = check_resume_epoch(source, epoch, history, cfg, stop_at)
            if done:
                if not ck["finished"] or source != out:     # it had ended, but its checkpoint did not say so
                    save_checkpoint(out, cfg, ck["params"], ck["opt"], history, snapshots, epoch, ck["wall_s"],
                                    True, stop_at)
                if verbose:
                    print(f"{source} {done}; nothing to train")
                return ck["params"], history, 0
            drop_unscheduled_row(history, epoch, cfg)
            params = {k: xp.asarray(v) for k, v in ck["params"].items()}
            opt = {"step": ck["opt"]["step"], "m": {k: xp.asarray(v) for k, v in ck["opt"]["m"].items()},
                   "v": {k: xp.asarray(v) for k, v in ck["opt"]["v"].items()}}
            saved = epoch if source == out else None    # the checkpoint at out that belongs to this run
        else:
            source = None
            params = init_params(cfg, data.d_vocab, data.d_vocab_out, data.n_ctx)
            opt, history, snapshots, epoch, wall0, saved = adamw_init(params), {}, [], 0, 0.0, None
            record(history, 0, 0.0, params, evals, data, cfg.engine)
            if cfg.snapshot_every:
                snapshots.append((0, {k: to_numpy(v).copy() for k, v in params.items()}))

        full = cfg.engine == "fast" and is_full_batch(cfg, len(train_tokens))
        plan = fast.index_plan(train_tokens, data.n_read, params) if full else None
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
                save_checkpoint(out, cfg, params, opt, history, snapshots, epoch, wall(), finished, stop_at)
            except OSError as e:
                return f"could not write the checkpoint {out} at epoch {epoch} ({e.strerror or e})"

        stop.deferred = True        # from here a signal is acted on between epochs
        while True:
            with np.errstate(over="ignore", invalid="ignore"):    # checked below, in one line
                loss = train_epoch(params, opt, train_tokens, train_targets, cfg, epoch, data.n_read, plan)
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
                    record(history, epoch, wall(), params, evals, data, cfg.engine)
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
            how = "--finish" if out.endswith(UNFINISHED) else "--resume"
            rest = "the run is complete" if epoch == cfg.epochs or reached else f"continue with the same flags and {how}"
            print(f"{newline}minigrok: interrupted ({signal.Signals(stop.signum).name}) at epoch {epoch}; "
                  f"saved {out} ({rest})", file=sys.stderr)
            return params, history, 128 + stop.signum
        if tty:
            print()
        if verbose:
            print_summary(cfg, history, out, wall(), overhead / max(time.perf_counter() - t_start, 1e-9))
        return params, history, 0
    finally:
        if own_stop:
            stop.restore()


def check_resume_epoch(out, epoch, history, cfg, stop_at):
    """For --resume: None if the run at `out` has epochs left to train, or why it has not
    (it is complete); UsageError if it went past --epochs."""
    if epoch > cfg.epochs:
        raise UsageError(f"--resume: {out} is at epoch {epoch}, past --epochs {cfg.epochs}; give --epochs "
                         f"above {epoch} to continue it")
    if epoch == cfg.epochs:
        return f"is already complete (epoch {epoch} of {cfg.epochs})"
    if stop_at is not None:
        for e, acc in zip(history["epoch"], history["test_acc"]):
            if acc >= stop_at and e > 0 and e % cfg.eval_every == 0:
                return f"already reached test accuracy {stop_at} at epoch {e} (--stop-at)"
    return None


def print_summary(cfg, history, out, wall, overhead):
    ms = milestones(history)
    say = lambda m: f"epoch {m[0]} ({m[1]:.1f} s)" if m else "not reached"
    print(f"train accuracy 100%: {say(ms['train_acc_100'])}")
    print(f"test accuracy 50%:   {say(ms['test_acc_50'])}")
    print(f"test accuracy 99%:   {say(ms['test_acc_99'])}")
    finals = "  ".join(f"{k} {v[-1]:.4g}" for k, v in history.items() if k not in ("epoch", "wall_s"))
    print(f"final (epoch {history['epoch'][-1]}): {finals}")
    print(f"wall time {wall:.1f} s ({100 * overhead:.1f}% in evaluation and checkpoints), "
          f"peak memory {peak_memory_mb():.0f} MB; checkpoint {out}")


def peak_memory_mb():
    """This process's peak resident memory (Linux reports kilobytes), or nan elsewhere."""
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except (ImportError, AttributeError):
        return float("nan")


# ============================================================================ checkpoints
RUN_FIELDS_FREE = ("epochs", "save_every")   # may differ between a run and its --resume


def first_difference(saved, cfg):
    """(field, saved value, value here) of the first config field, other than those free
    to change on --resume, in which two runs differ; None if there is none."""
    for f in dataclasses.fields(Config):
        a, b = getattr(saved, f.name), getattr(cfg, f.name)
        if f.name not in RUN_FIELDS_FREE and a != b:
            return f.name, a, b
    return None


def check_resumable(saved, cfg):
    """A resumed run must record what the uninterrupted run would have: the same weights
    (every field that changes them) and the same evaluations and snapshots (eval_every,
    snapshot_every). Only --epochs and --save-every may change."""
    diff = first_difference(saved, cfg)
    if diff:
        name, a, b = diff
        raise UsageError(f"--resume: the checkpoint was trained with {name}={a!r} but this run "
                         f"has {name}={b!r}; resume with the same flags (only --epochs and "
                         f"--save-every may change)")


def param_shapes(cfg):
    """The shape of every weight of cfg's model, from its sizes and its task's layout."""
    d_vocab_out = cfg.p if cfg.task == "add" else cfg.n
    n_ctx, d, H, dh, m = tasks.LAYOUTS[cfg.task].n_ctx, cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
    return {"W_E": (d_vocab_out + 1, d), "W_pos": (n_ctx, d), "W_Q": (H, d, dh), "W_K": (H, d, dh),
            "W_V": (H, d, dh), "W_O": (H, dh, d), "W_in": (d, m), "b_in": (m,), "W_out": (m, d),
            "b_out": (d,), "W_U": (d, d_vocab_out)}


def temporary_name(path):
    """A new temporary file's name beside `path`, recognisable as path's (see temporaries)."""
    folder, base = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{base}.{secrets.token_hex(4)}.tmp")


def temporaries(path):
    """The temporary files of `path` in its folder: those a killed run may have left."""
    folder, base = os.path.split(os.path.abspath(path))
    pattern = re.compile(rf"\.{re.escape(base)}\.[0-9a-f]{{8}}\.tmp")
    try:
        return sorted(os.path.join(folder, n) for n in os.listdir(folder) if pattern.fullmatch(n))
    except OSError:
        return []


def write_atomically(path, write):
    """Call write(f) on a new temporary file beside `path`, then rename it over `path`: a
    crash or a failed write (disk full, ...) leaves `path` as it was. The temporary file is
    removed on any failure; only a kill -9 or a power cut can leave one behind."""
    tmp = temporary_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)   # 0o666 less the umask, as open() gives
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_checkpoint(path, cfg, params, opt, history, snapshots, epoch, wall_s, finished=None, stop_at=None):
    """Write the run to `path` atomically (write_atomically): a crash or a failed write
    leaves the previous checkpoint as it was. finished: whether the run has reached its
    end (its epochs, or its --stop-at); by default, whether epoch is cfg.epochs."""
    finished = epoch >= cfg.epochs if finished is None else finished
    arrays = {"format": np.array("minigrok-1"), "config": np.array(json.dumps(dataclasses.asdict(cfg))),
              "history": np.array(json.dumps(history)), "epoch": np.array(epoch),
              "wall_s": np.array(wall_s), "adam_step": np.array(opt["step"]),
              "finished": np.array(bool(finished)), "stop_at": np.array(np.nan if stop_at is None else stop_at)}
    for k, v in params.items():
        arrays[k] = to_numpy(v)
        arrays[f"adam_m/{k}"] = to_numpy(opt["m"][k])
        arrays[f"adam_v/{k}"] = to_numpy(opt["v"][k])
    if snapshots:
        arrays["snapshot_epochs"] = np.array([e for e, _ in snapshots])
        for k in params:
            arrays[f"snapshot/{k}"] = np.stack([s[k] for _, s in snapshots])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomically(path, lambda f: np.savez(f, **arrays))


def _open_checkpoint(path):
    if not os.path.exists(path):
        partial = unfinished_path(path) if path.endswith(".npz") else None
        if partial and os.path.isfile(partial):
            state = run_state(partial)
            raise UsageError(f"checkpoint {path} does not exist: its run is unfinished, saved at epoch {state.epoch} "
                             f"of {state.config.epochs} in {partial}; finish it with: {finish_command(partial, state)}")
        raise UsageError(f"checkpoint {path} does not exist; train one with python minigrok.py --task ... --out {path}")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory, not a minigrok checkpoint")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise UsageError(f"cannot read {path} ({e.strerror or e})")
    if magic[:2] != b"PK":                 # every .npz is a zip archive; np.load would try pickle
        what = "it is empty" if not magic else "a .npy array" if magic[:1] == b"\x93" else "not an .npz archive"
        raise UsageError(f"{path} is not a minigrok checkpoint ({what})")
    z = None
    try:
        z = np.load(path, allow_pickle=False)      # lazy: arrays are read when asked for
        if "format" not in z.files:
            raise UsageError(f"{path} is not a minigrok checkpoint (an .npz archive without minigrok's 'format' entry)")
        if str(z["format"]) != "minigrok-1":
            raise UsageError(f"{path} is not a minigrok checkpoint (its format is {str(z['format'])[:40]!r}, not 'minigrok-1')")
        return z, Config(**json.loads(str(z["config"])))
    except Exception as e:
        if z is not None:
            z.close()
        if isinstance(e, UsageError):
            raise
        raise UsageError(f"{path} is not a readable minigrok checkpoint ({type(e).__name__}: {e})")


def read_header(path):
    """(config, epoch) of a checkpoint, without reading its weights."""
    state = run_state(path)
    return state.config, state.epoch


RunState = collections.namedtuple("RunState", "config epoch finished stop_at")


def _finished(z, cfg, epoch):
    """What a checkpoint says of its end; one written before it said so is finished when
    it reached its epochs (a run stopped early by --stop-at then reads as unfinished)."""
    if "finished" in z.files:
        return bool(z["finished"]), float(z["stop_at"])
    return epoch >= cfg.epochs, math.nan


def run_state(path):
    """RunState(config, epoch, finished, stop_at) of a checkpoint, without its weights:
    finished is True when the run reached its epochs or its --stop-at (stop_at: nan if
    none), False for a run saved on its way (periodically, or when interrupted)."""
    z, cfg = _open_checkpoint(path)
    try:
        with z:
            epoch = int(z["epoch"])
            return RunState(cfg, epoch, *_finished(z, cfg, epoch))
    except Exception as e:
        raise UsageError(f"{path} is not a readable minigrok checkpoint ({type(e).__name__}: {e})")


def unfinished_path(out):
    """Where `--finish --out out` keeps its run until it is finished (a.npz -> a.unfinished.npz):
    a file at `out` is then always a finished run, which is what make relies on."""
    return out[:-len(".npz")] + UNFINISHED


UNFINISHED = ".unfinished.npz"


def config_flags(cfg):
    """The command-line flags that give cfg: its task, and each field that differs from the
    task's defaults (config_from_args(flags) == cfg)."""
    base = Config(task=cfg.task, **tasks.TASK_DEFAULTS[cfg.task])
    flags = ["--task", cfg.task]
    for f in dataclasses.fields(Config):
        value = getattr(cfg, f.name)
        if f.name == "task" or value == getattr(base, f.name):
            continue
        if f.name == "d_head" and value == cfg.d_model // cfg.n_heads:
            continue                                        # what config_from_args gives by default
        flag = "--" + f.name.replace("_", "-")
        flags += [flag] if f.type in (bool, "bool") else [flag, str(value)]
    return flags


def finish_command(path, state):
    """The command that finishes the unfinished run saved at `path`."""
    flags = config_flags(state.config) + ([] if math.isnan(state.stop_at) else ["--stop-at", repr(state.stop_at)])
    if path.endswith(UNFINISHED):
        return " ".join(["python minigrok.py", *flags, "--finish", "--out", path[:-len(UNFINISHED)] + ".npz"])
    return " ".join(["python minigrok.py", *flags, "--out", path, "--resume"])


def unfinished_problem(path, state):
    """One line: the run at `path` is unfinished, how far it got, and the command that finishes it."""
    return (f"{path} is an unfinished run (saved at epoch {state.epoch} of {state.config.epochs}); "
            f"finish it with: {finish_command(path, state)}")


def require_finished(path):
    """UsageError unless the checkpoint at `path` is a finished run: analysing a run
    interrupted on its way would report a model that was never trained to its end."""
    state = run_state(path)
    if not state.finished:
        raise UsageError(unfinished_problem(path, state))
    return state


def check_task(path, task, who):
    """UsageError unless the checkpoint at `path` is of `task` (`who` is what needs it)."""
    cfg, _ = read_header(path)
    if cfg.task != task:
        raise UsageError(f"{path} is a checkpoint of task {cfg.task}, but {who} needs one of task {task}")


def check_matches_config(path, cfg, params, opt, snapshots):
    """UsageError unless the config is valid and every array has its weight's shape and dtype."""
    try:
        check_config(cfg)
    except UsageError as e:
        raise UsageError(f"{path}: its config is not valid ({e})")
    want = param_shapes(cfg)
    if set(params) != set(want):
        raise UsageError(f"{path} holds the weights {sorted(params)}, not a minigrok model's {sorted(want)}")
    arrays = [(k, params[k]) for k in want] + [(f"adam_m/{k}", opt["m"][k]) for k in want]
    arrays += [(f"adam_v/{k}", opt["v"][k]) for k in want] + [(f"snapshot/{k}", s[k]) for _, s in snapshots[:1] for k in want]
    for name, a in arrays:
        shape = want[name.split("/")[-1]]
        if a.shape != shape or a.dtype != cfg.dtype:
            raise UsageError(f"{path}: its config (task {cfg.task}, p {cfg.p}, n {cfg.n}, d_model {cfg.d_model}, "
                             f"n_heads {cfg.n_heads}, d_head {cfg.d_head}, d_mlp {cfg.d_mlp}, {cfg.dtype}) wants "
                             f"{name} {list(shape)} {cfg.dtype}, but it is {list(a.shape)} {a.dtype}: the config "
                             f"does not match the weights")


def load_checkpoint(path):
    """Everything a checkpoint holds, as NumPy arrays and plain Python: config, params,
    opt (AdamW state), history, snapshots [(epoch, params)], epoch, wall_s, finished and
    stop_at (see run_state); finished or not. Checked whole:
    a config that does not match the weights is a UsageError, not a later traceback."""
    z, cfg = _open_checkpoint(path)
    try:
        with z:
            names = [k for k in z.files if k in ("b_in", "b_out") or k.startswith("W_")]
            params = {k: z[k] for k in names}
            opt = {"step": int(z["adam_step"]), "m": {k: z[f"adam_m/{k}"] for k in names},
                   "v": {k: z[f"adam_v/{k}"] for k in names}}
            snapshots = []
            if "snapshot_epochs" in z.files:
                stacks = {k: z[f"snapshot/{k}"] for k in names}
                snapshots = [(int(e), {k: stacks[k][i] for k in names})
                             for i, e in enumerate(z["snapshot_epochs"])]
            epoch = int(z["epoch"])
            finished, stop_at = _finished(z, cfg, epoch)
            ck = dict(config=cfg, params=params, opt=opt, history=json.loads(str(z["history"])),
                      snapshots=snapshots, epoch=epoch, wall_s=float(z["wall_s"]), finished=finished,
                      stop_at=stop_at)
    except Exception as e:
        raise UsageError(f"{path} is not a readable minigrok checkpoint ({type(e).__name__}: {e})")
    check_matches_config(path, cfg, params, opt, snapshots)
    return ck


def load(path, unfinished=False):
    """(config, weights, history) of a finished run's checkpoint: the entry point for
    analysis. An unfinished run (interrupted on its way; run_state tells) is refused
    with the command that finishes it, unless unfinished=True."""
    if not unfinished:
        require_finished(path)
    ck = load_checkpoint(path)
    return ck["config"], ck["params"], ck["history"]


# ============================================================================ the output
# Before a run trains, main() checks everything it will write: the path (check_out), the
# memory and disk it needs (check_resources), that no other run writes there (lock_output),
# that a save can be written there (try_a_save) and that nothing there is replaced unasked
# (check_existing).
def plot_path(out):
    """The curve beside checkpoint `out` (a.npz -> a.png). --out must end in .npz, so that no
    two outputs share a curve (a and a.npz would), and out's lock protects its curve too."""
    return out[:-len(".npz")] + ".png" if out.endswith(".npz") else os.path.splitext(out)[0] + ".png"


TEMPORARY_EXTRA = len(".") + len(".01234567.tmp")   # what temporary_name adds to a name


def name_max(folder):
    """The longest file name (in bytes) the filesystem of `folder` takes."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def sticky_problem(path, st):
    """Why `path` (stat st) cannot be renamed over though it may be written: in a folder with
    the sticky bit (as /tmp) only the file's owner, the folder's owner or root may do that."""
    folder = os.stat(os.path.dirname(os.path.abspath(path)))
    if folder.st_mode & stat.S_ISVTX and hasattr(os, "geteuid") and os.geteuid() not in (0, st.st_uid, folder.st_uid):
        return (f"belongs to another user (uid {st.st_uid}), in a folder with the sticky bit (as /tmp) where only "
                f"its owner may replace it; choose another --out")
    return None


def file_problem(path):
    """Why minigrok must not write to `path`, or None."""
    if os.path.islink(path):
        return (f"is a symbolic link (to {os.readlink(path)}), which minigrok does not replace; give the "
                f"file's own path or another --out")
    if os.path.isdir(path):
        return "is a directory; give a file path"
    if not os.path.exists(path):
        return None
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file (a device, pipe or socket); give a file path"
    # mode bits as well as access(): root may write anything, but a file with no write
    # bit set was made read-only on purpose
    if not st.st_mode & 0o222 or not os.access(path, os.W_OK):
        return "is read-only, so minigrok will not replace it; make it writable if it may be, or choose another --out"
    return sticky_problem(path, st)


def check_out(out):
    """UsageError if `out` (or the curve beside it) is no place for a checkpoint."""
    if not out:
        raise UsageError("--out is empty; give a file path such as runs/add.npz")
    if not os.path.basename(out):
        raise UsageError(f"--out {out} names a folder; give a file path such as {os.path.join(out, 'add.npz')}")
    if os.path.splitext(out)[1].lower() == ".png":
        raise UsageError(f"--out {out} is the name of the run's own curve (--out with .png), which would overwrite "
                         f"the checkpoint; give a .npz name")
    problem = file_problem(out)
    if problem:
        raise UsageError(f"--out {out} {problem}")
    if not out.endswith(".npz"):
        raise UsageError(f"--out {out} must end in .npz (the curve goes beside it as name.png, and without the "
                         f"extension two outputs would share one); give e.g. {os.path.splitext(out)[0]}.npz")
    problem = file_problem(plot_path(out))
    if problem:
        raise UsageError(f"the curve's path {plot_path(out)} {problem}")
    folder = existing_folder(out)
    if not os.path.isdir(folder):
        raise UsageError(f"--out {out}: {folder} is a file, not a folder")
    n, limit = len(os.fsencode(os.path.basename(out))), name_max(folder)
    if n + TEMPORARY_EXTRA > limit:
        raise UsageError(f"--out {out}: the file name is too long ({n} bytes; each save writes a temporary file "
                         f"named .<name>.<8 hex digits>.tmp, {TEMPORARY_EXTRA} bytes longer, and names here are at "
                         f"most {limit}); give a name of at most {limit - TEMPORARY_EXTRA} bytes")


def existing_folder(path):
    """The nearest folder above `path` that exists (the run creates the rest)."""
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return folder


def try_a_save(out):
    """Before training, what every save does, tried on a temporary file named as a save's:
    create it beside `out`, rename it, remove it. A folder that cannot take a new file (no
    permission, immutable, out of inodes, a name too long) is found now, not after training;
    `out` itself is not touched (whether it may be replaced: file_problem)."""
    tmp, moved = temporary_name(out), temporary_name(out)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(tmp, moved)
    except OSError as e:
        folder = os.path.dirname(os.path.abspath(out))
        raise UsageError(f"cannot write in {folder}: a trial save of a temporary file failed ({e.strerror or e}); "
                         f"choose another --out") from None
    finally:
        for path in (tmp, moved):
            try:
                os.unlink(path)
            except OSError:
                pass


def memory_estimate(cfg, on_gpu=False):
    """The bytes a run holds in host memory at its peak, counting only its largest arrays:
    the data (int64 tokens and targets, and the copies made while splitting them), the
    weights with their gradients and AdamW state, the snapshots, the QK table and the larger
    of one training step and one evaluation chunk (on a GPU only the data and snapshots are
    in host memory). A lower bound, so that no run that fits is refused: the peaks of ten
    runs of all four tasks and both engines, measured, were 1.1 to 1.8 times it."""
    lay, size = tasks.LAYOUTS[cfg.task], np.dtype(cfg.dtype).itemsize
    d_vocab_out = cfg.p if cfg.task == "add" else cfg.n
    d_vocab, n_varying = d_vocab_out + 1, lay.n_ctx - 1      # one position holds the same token ('=', CLS, SEP)
    ints = lay.n_ctx + lay.n_read                            # one example's tokens and targets
    if cfg.task == "add":
        n_made = cfg.p ** 2
        n_train = cfg.n_train or int(cfg.frac_train * n_made)
        data = 8 * n_made * (2 * ints + 3)                   # all pairs, the split's copies, a, b and the order
        n_eval = n_made - n_train
    else:
        extra = cfg.n * max(1, cfg.n_train // (10 * cfg.n))  # augmentation tuples (made either way)
        balanced = cfg.n * max(1, cfg.n_test // cfg.n)
        n_made = cfg.n_train + cfg.n_test + extra + balanced
        n_train = cfg.n_train + (extra if cfg.augment else 0)
        data = 8 * n_made * (lay.n_inputs + ints)
        n_eval = max(cfg.n_test, balanced)
    n_params, n_snapshots = count_params(cfg), count_snapshots(cfg)
    host = data + size * n_params * n_snapshots
    if on_gpu:
        return host
    batch = n_train if cfg.batch_size == 0 else min(cfg.batch_size, n_train)
    pos = lay.n_read if cfg.engine == "fast" else lay.n_ctx  # positions that go through the MLP and unembedding
    per_example = n_varying * d_vocab + 3 * pos * (d_vocab_out + cfg.d_mlp) + lay.n_ctx * cfg.d_model
    step = size * batch * per_example                        # one-hot lookups, logits, exp, grads, MLP
    chunk = size * min(EVAL_CHUNK, max(n_train, n_eval)) * per_example
    used = lay.n_read if cfg.task != "sort" else d_vocab * lay.n_read   # query rows of the QK table
    qk = size * cfg.n_heads * used * d_vocab * lay.n_ctx if cfg.engine == "fast" else 0
    return host + size * n_params * 5 + qk + max(step, chunk)


def count_params(cfg):
    return sum(math.prod(s) for s in param_shapes(cfg).values())


def count_snapshots(cfg):
    """Snapshots a run keeps: epoch 0, then every snapshot_every epochs."""
    return cfg.epochs // cfg.snapshot_every + 1 if cfg.snapshot_every else 0


def checkpoint_bytes(cfg):
    """A checkpoint's size: weights, AdamW moments and snapshots (the history is small)."""
    return np.dtype(cfg.dtype).itemsize * count_params(cfg) * (3 + count_snapshots(cfg))


def available_memory():
    """Bytes that can be allocated (MemAvailable plus free swap), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return info["MemAvailable"] + info.get("SwapFree", 0)
    except (OSError, KeyError, ValueError, IndexError):
        return None


def check_resources(cfg, out, on_gpu=False):
    """UsageError when the run cannot fit in memory, or its checkpoint on the disk."""
    gb = lambda b: f"{b / 2**30:,.1f} GB" if b >= 2**30 else f"{b / 2**20:.1f} MB"
    need, have = memory_estimate(cfg, on_gpu), available_memory()
    if have is not None and need > have:
        raise UsageError(f"this run needs at least {gb(need)} of memory (an estimate) but {gb(have)} are "
                         f"available; make it smaller (--p, --n, --n-train, --batch-size, --snapshot-every)")
    folder = existing_folder(out)
    # From the second save on, the last checkpoint and the temporary file of the next one are
    # both on disk: two checkpoints, less what a file at --out (resumed or replaced) holds now.
    size = checkpoint_bytes(cfg)
    need = 2 * size - (os.path.getsize(out) if os.path.isfile(out) else 0)
    try:
        disk = shutil.disk_usage(folder)
    except OSError:
        return
    if disk.total and need > disk.free:     # (pseudo filesystems such as /proc have no size: lock_output finds them)
        raise UsageError(f"the checkpoint will take {gb(size)}, and {gb(need)} free while a save replaces the last "
                         f"one, but {folder} has {gb(disk.free)} free; free some space or choose another --out")


def lock_output(out):
    """Claim `out` for this run: an exclusive lock (flock) on the file out + '.lock', made
    first, so a second run on the same path stops at once instead of overwriting this one
    (or its curve: plot_path gives each --out a curve of its own). The lock is the kernel's,
    so a killed run holds none (its file may stay, and is reused). Whether a save can be
    written beside it is tried next (try_a_save). Returns the lock (a file descriptor) for
    unlock_output."""
    path, folder = out + ".lock", os.path.dirname(os.path.abspath(out))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the folder {folder} for --out ({e.strerror})")
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise UsageError(f"cannot write in {folder}: creating {path} failed ({e.strerror}); choose another --out")
        if fcntl is None:               # no flock (Windows): no protection against a second run
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UsageError(f"another minigrok run (pid {pid}) is writing {out}; wait for it to end, or choose "
                             f"another --out")
        except OSError as e:            # a filesystem without locks
            print(f"minigrok: cannot lock {path} ({e.strerror}); nothing stops a second run on {out}", file=sys.stderr)
            return fd
        # The run before us removes its lock file before letting go of the lock: if it did so
        # between our open and our flock, we hold a lock on a removed file, and start again.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            mine = os.read(fd, 64).decode(errors="replace").strip()
            if mine and not mine.isdigit():         # not a lock file left by a killed run: someone's file
                os.close(fd)
                raise UsageError(f"{path} exists and is not minigrok's lock file; move it, or choose another --out")
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def unlock_output(fd, out):
    try:
        os.unlink(out + ".lock")        # removed while still held: see lock_output
    except OSError:
        pass
    os.close(fd)


def remove_stale_temporaries(out):
    """Remove the temporary files that a run killed mid-write left beside `out` and its
    curve. Called with the lock held, so they belong to no running save."""
    removed = []
    for path in temporaries(out) + temporaries(plot_path(out)) + temporaries(unfinished_path(out)):
        try:
            os.unlink(path)
            removed.append(os.path.basename(path))
        except OSError:
            pass
    if removed:
        print(f"minigrok: removed {len(removed)} temporary file(s) left by an interrupted run: {', '.join(removed)}",
              file=sys.stderr)


def check_existing(out, cfg, resume, overwrite):
    """A fresh run never replaces what is at `out` or at its curve's path unless --overwrite
    says so; --resume needs the same run there, with epochs left to train (checked again by
    train). Returns the epoch the run starts from."""
    if resume:
        saved, epoch = read_header(out)
        check_resumable(saved, cfg)
        check_resume_epoch(out, epoch, None, cfg, None)     # past --epochs: an error before any work
        return epoch
    if overwrite:
        return 0
    if os.path.exists(unfinished_path(out)) and not os.path.exists(out):
        raise UsageError(f"an unfinished run of --out {out} is at {unfinished_path(out)}: --finish continues it, "
                         f"--overwrite trains afresh (and leaves it), or choose another --out")
    if not os.path.exists(out):
        if os.path.lexists(plot_path(out)):
            raise UsageError(f"the curve's path {plot_path(out)} holds a file, which this run would replace: choose "
                             f"another --out, or add --overwrite to replace it")
        return 0
    try:
        state = run_state(out)
    except UsageError:
        raise UsageError(f"--out {out} exists and is not a minigrok checkpoint; minigrok will not replace it: "
                         f"choose another --out, or add --overwrite to replace it") from None
    saved, epoch = state.config, state.epoch
    where = (f"finished at epoch {epoch}" if state.finished else
             f"unfinished: saved at epoch {epoch} of {saved.epochs}, when it was interrupted")
    diff = first_difference(saved, cfg)
    if diff is None:
        more = "" if not state.finished else " (give more --epochs)"
        raise UsageError(f"--out {out} already holds this run, {where}: --resume continues it{more}, --overwrite "
                         f"trains it again from scratch, or choose another --out")
    name, a, b = diff
    raise UsageError(f"--out {out} holds another run ({name}={a!r} there, {b!r} here), {where}: --resume with "
                     f"that run's flags continues it, --overwrite replaces it, or choose another --out")


def plan_finish(out, cfg, stop_at):
    """For --finish: (where the run trains, what it resumes, its first epoch); where is None
    when `out` already holds this run, finished. The run trains at unfinished_path(out) and
    resumes what is there, else continues the run at `out` (an unfinished one, or a finished
    one given more --epochs), else starts from epoch 0."""
    partial = unfinished_path(out)
    for path in (partial, out):
        if not os.path.exists(path):
            continue
        try:
            ck = load_checkpoint(path)
        except UsageError:
            raise UsageError(f"--finish: {path} exists and is not a minigrok checkpoint; minigrok will not "
                             f"replace it: move it, or choose another --out") from None
        diff = first_difference(ck["config"], cfg)
        if diff:
            name, a, b = diff
            raise UsageError(f"--finish: {path} holds another run ({name}={a!r} there, {b!r} here); remove it to "
                             f"train this one, or choose another --out")
        done = check_resume_epoch(path, ck["epoch"], ck["history"], cfg, stop_at)
        if done and path == out:
            return None, None, ck["epoch"]
        return partial, path, ck["epoch"]
    if os.path.lexists(plot_path(out)) and not os.path.exists(out):
        raise UsageError(f"the curve's path {plot_path(out)} holds a file, which this run would replace: move it, "
                         f"or choose another --out")
    return partial, False, 0


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
        write_atomically(path, lambda f: fig.savefig(f, format=os.path.splitext(path)[1][1:] or "png", dpi=110))
    finally:
        plt.close(fig)


# ============================================================================ command line
class Parser(argparse.ArgumentParser):
    def error(self, message):          # one line, exit 2
        print(f"minigrok: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def make_parser():
    d = Config()
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
    stop, out, lock, finished, trained = Interrupt(), None, None, False, False
    try:
        cfg = config_from_args(args)
        if args.stop_at is not None and not 0 < args.stop_at <= 1:
            raise UsageError(f"--stop-at must be a test accuracy in (0, 1], got {args.stop_at}")
        if args.resume and args.overwrite:
            raise UsageError("--resume continues the run at --out and --overwrite replaces it: give one of them")
        if args.finish and (args.resume or args.overwrite):
            raise UsageError("--finish starts, continues or leaves the run at --out as needed: give it without "
                             "--resume and --overwrite")
        out = os.path.join("runs", f"{cfg.task}.npz") if args.out is None else args.out
        check_out(out)
        if args.resume:
            read_header(out)                # nothing to resume: refused before lock_output makes a folder
        on_gpu = use_device(args.device) == "gpu"
        check_resources(cfg, out, on_gpu)
        lock = lock_output(out)
        remove_stale_temporaries(out)
        try_a_save(out)
        if args.finish:
            where, resume, start = plan_finish(out, cfg, args.stop_at)
            if where is None:
                print(f"{out} is finished ({start} epochs); nothing to train")
                return 0
            if resume:
                print(f"minigrok: continuing {resume} from epoch {start}", flush=True)
        else:
            where, resume = out, args.resume
            start = check_existing(out, cfg, args.resume, args.overwrite)
        params, history, code = train(cfg, where, resume=resume, stop_at=args.stop_at,
                                      progress=not args.quiet, stop=stop)
        if code == 0 and where != out:
            os.replace(where, out)              # finished: only now does it take the name make looks for
        trained = max(history.get("epoch") or [start]) > start   # False: a resumed run had nothing to train
        finished, stop.deferred = True, False     # a signal now stops the plot at once
        if code == 0 and stop.signum is not None:  # noted after the last save, before the plot
            raise Interrupted(stop.signum)
        if code == 0:
            png = plot_path(out)
            try:
                plot_history(history, png, f"{cfg.task}: train and test loss and accuracy (d_model {cfg.d_model}, seed {cfg.seed})")
            except OSError as e:
                print(f"minigrok: could not write the curve {png} ({e.strerror or e}); the checkpoint {out} is saved",
                      file=sys.stderr)
                return 1
            print(f"grokking curve: {png}")
        return code
    except UsageError as e:
        print(f"minigrok: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
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
            unlock_output(lock, out)
        stop.restore()


if __name__ == "__main__":
    sys.exit(main())
