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
import dataclasses
import json
import math
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

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
    """xp.einsum that lets BLAS do the contraction (optimize=True: ~3x faster on the CPU)."""
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
    mlp_pre = resid_mid @ params["W_in"] + params["b_in"]                # [batch, pos, d_mlp]
    mlp_post = xp.maximum(mlp_pre, 0)                                    # [batch, pos, d_mlp]
    mlp_out = mlp_post @ params["W_out"] + params["b_out"]               # [batch, pos, d_model]
    return mlp_out, dict(mlp_pre=mlp_pre, mlp_post=mlp_post, mlp_out=mlp_out)


def mlp_backward(dmlp_out, cache, params):
    """dmlp_out [batch, pos, d_model] -> dresid_mid [batch, pos, d_model] and the
    gradients of W_in, b_in, W_out, b_out."""
    # mlp_out = mlp_post @ W_out + b_out
    grads = {"W_out": einsum("bpm,bpd->md", cache["mlp_post"], dmlp_out), "b_out": dmlp_out.sum((0, 1))}
    dmlp_post = dmlp_out @ params["W_out"].T                             # [batch, pos, d_mlp]
    # mlp_post = ReLU(mlp_pre)
    dmlp_pre = dmlp_post * (cache["mlp_pre"] > 0)                        # [batch, pos, d_mlp]
    # mlp_pre = resid_mid @ W_in + b_in
    grads["W_in"] = einsum("bpd,bpm->dm", cache["resid_mid"], dmlp_pre)  # [d_model, d_mlp]
    grads["b_in"] = dmlp_pre.sum((0, 1))
    return dmlp_pre @ params["W_in"].T, grads                            # dresid_mid [batch, pos, d_model]


def unembed_forward(params, resid_post):
    """resid_post [batch, pos, d_model] -> logits [batch, pos, d_vocab_out]"""
    return resid_post @ params["W_U"]


def unembed_backward(dlogits, cache, params):
    """dlogits [batch, pos, d_vocab_out] -> dresid_post [batch, pos, d_model] and the gradient of W_U."""
    return dlogits @ params["W_U"].T, {"W_U": einsum("bpd,bpv->dv", cache["resid_post"], dlogits)}


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
                  lr=1e-3, weight_decay=1.0, epochs=25000, eval_every=100),
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
    need(cfg.lr > 0, f"--lr must be positive, got {cfg.lr}")
    need(cfg.weight_decay >= 0, f"--weight-decay must be >= 0, got {cfg.weight_decay}")
    need(0 <= cfg.beta1 < 1 and 0 <= cfg.beta2 < 1, "--beta1 and --beta2 must be in [0, 1)")
    need(cfg.dtype in ("float32", "float64"), f"--dtype must be float32 or float64, got {cfg.dtype!r}")
    need(cfg.engine in ENGINES, f"--engine must be one of {', '.join(ENGINES)}, got {cfg.engine!r}")
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


def predict(params, tokens, n_read, decode, engine_name="fast"):
    """Predicted tokens [batch, n_read]. With decode (sort), the outputs are generated
    greedily, one at a time, each fed back as the next input: tokens[:, :-(n_read-1)] is
    the prompt and the teacher-forced tokens after it are not looked at."""
    forward_fn = engine(engine_name)[0]
    if not decode:
        return forward_fn(params, tokens, n_read)[0].argmax(-1)
    seq = tokens[:, :tokens.shape[1] - (n_read - 1)]            # [batch, inputs + SEP]
    preds = []
    for step in range(n_read):
        preds.append(forward_fn(params, seq, 1)[0][:, 0].argmax(-1))   # [batch]
        seq = xp.concatenate([seq, preds[-1][:, None]], 1)
    return xp.stack(preds, 1)                                   # [batch, n_read]


def evaluate(params, tokens, targets, n_read, decode, engine_name="fast"):
    """Loss (teacher-forced) and accuracy on a data set, in chunks. Accuracy is that of
    predict(); with decode also seq_acc, the fraction of sequences entirely right."""
    loss, right, seq_right = 0.0, 0, 0
    for i in range(0, len(tokens), EVAL_CHUNK):
        tok, tgt = tokens[i:i + EVAL_CHUNK], targets[i:i + EVAL_CHUNK]
        logits = engine(engine_name)[0](params, tok, n_read)[0]
        loss += cross_entropy(logits, tgt)[0] * len(tok)
        hit = (predict(params, tok, n_read, decode, engine_name) if decode else logits.argmax(-1)) == tgt
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


def train_epoch(params, opt, tokens, targets, cfg, epoch, n_read, plan=None):
    """One pass over the training set: full batch, or shuffled minibatches whose order
    depends only on (seed, epoch), so a resumed run sees the same batches. `plan`: the
    full batch's fast.index_plan, made once by the caller (fast engine only). Returns the
    mean loss, or nan (before any update with it) as soon as a loss is not finite."""
    backward_fn = engine(cfg.engine)[1]
    n = len(tokens)
    if is_full_batch(cfg, n):
        batches = [slice(None)]
    else:
        perm = xp.asarray(np.random.default_rng([cfg.seed, epoch]).permutation(n))
        batches = [perm[i:i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]
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


class Interrupt:
    """Ctrl-C (or SIGTERM) sets a flag; the loop checks it between epochs, so the weights
    are never saved half-updated."""
    def __init__(self):
        self.hit = False
        self.old = {s: signal.signal(s, self.handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def handle(self, signum, frame):
        self.hit = True

    def restore(self):
        for s, h in self.old.items():
            signal.signal(s, h)


def train(cfg, out, resume=False, verbose=True, stop_at=None, progress=True):
    """Train cfg's task, checkpointing to `out`; with stop_at, stop early once test accuracy
    reaches it. verbose: print progress (unless progress=False) and the summary.
    Returns (params, history, exit_code)."""
    data = tasks.make_data(cfg)
    as_xp = lambda pair: tuple(xp.asarray(a) for a in pair)
    train_tokens, train_targets = as_xp(data.train)
    evals = {name: as_xp(pair) for name, pair in data.evals.items()}
    if resume:
        ck = load_checkpoint(out)
        check_resumable(ck["config"], cfg)
        params = {k: xp.asarray(v) for k, v in ck["params"].items()}
        opt = {"step": ck["opt"]["step"], "m": {k: xp.asarray(v) for k, v in ck["opt"]["m"].items()},
               "v": {k: xp.asarray(v) for k, v in ck["opt"]["v"].items()}}
        history, snapshots, epoch, wall0 = ck["history"], ck["snapshots"], ck["epoch"], ck["wall_s"]
    else:
        params = init_params(cfg, data.d_vocab, data.d_vocab_out, data.n_ctx)
        opt, history, snapshots, epoch, wall0 = adamw_init(params), {}, [], 0, 0.0
        record(history, 0, 0.0, params, evals, data, cfg.engine)
        if cfg.snapshot_every:
            snapshots.append((0, {k: to_numpy(v).copy() for k, v in params.items()}))

    full = cfg.engine == "fast" and is_full_batch(cfg, len(train_tokens))
    plan = fast.index_plan(train_tokens, data.n_read, params) if full else None

    def save(epoch, wall):
        save_checkpoint(out, cfg, params, opt, history, snapshots, epoch, wall)

    progress = verbose and progress
    tty = progress and sys.stdout.isatty()
    stop, code, overhead = Interrupt(), 0, 0.0
    t_start, e_start = time.perf_counter(), epoch
    wall = lambda: wall0 + time.perf_counter() - t_start
    try:
        while epoch < cfg.epochs:
            loss = train_epoch(params, opt, train_tokens, train_targets, cfg, epoch, data.n_read, plan)
            if not np.isfinite(loss):
                kept = f"the last good checkpoint is kept at {out}" if os.path.exists(out) else "nothing was saved"
                print(f"\nminigrok: the training loss became {loss} at epoch {epoch + 1}; stopped, {kept}",
                      file=sys.stderr)
                return params, history, 1
            epoch += 1
            t0 = time.perf_counter()
            if cfg.snapshot_every and epoch % cfg.snapshot_every == 0:
                snapshots.append((epoch, {k: to_numpy(v).copy() for k, v in params.items()}))
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs or stop.hit:
                record(history, epoch, wall(), params, evals, data, cfg.engine)
                rate = (epoch - e_start) / max(time.perf_counter() - t_start, 1e-9)
                if tty:
                    print("\r" + status_line(cfg, history, rate), end="", flush=True)
                elif progress:
                    print(status_line(cfg, history, rate), flush=True)
                if stop_at is not None and history["test_acc"][-1] >= stop_at:
                    break
            if epoch % cfg.save_every == 0 or stop.hit:
                save(epoch, wall())
            overhead += time.perf_counter() - t0
            if stop.hit:
                print(f"\nminigrok: interrupted at epoch {epoch}; saved {out} "
                      f"(continue with the same flags and --resume)", file=sys.stderr)
                return params, history, 130
        t0 = time.perf_counter()
        save(epoch, wall())
        overhead += time.perf_counter() - t0
    finally:
        stop.restore()
    if tty:
        print()
    if verbose:
        print_summary(cfg, history, out, wall(), overhead / max(time.perf_counter() - t_start, 1e-9))
    return params, history, code


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


def check_resumable(saved, cfg):
    for f in dataclasses.fields(Config):
        a, b = getattr(saved, f.name), getattr(cfg, f.name)
        if f.name not in RUN_FIELDS_FREE and a != b:
            raise UsageError(f"--resume: the checkpoint was trained with {f.name}={a!r} but this run "
                             f"has {f.name}={b!r}; resume with the same flags (only --epochs and "
                             f"--save-every may change)")


def save_checkpoint(path, cfg, params, opt, history, snapshots, epoch, wall_s):
    """Write the run to `path` atomically: a temporary file in the same folder, then a
    rename, so a crash mid-write leaves the previous checkpoint as it was."""
    arrays = {"format": np.array("minigrok-1"), "config": np.array(json.dumps(dataclasses.asdict(cfg))),
              "history": np.array(json.dumps(history)), "epoch": np.array(epoch),
              "wall_s": np.array(wall_s), "adam_step": np.array(opt["step"])}
    for k, v in params.items():
        arrays[k] = to_numpy(v)
        arrays[f"adam_m/{k}"] = to_numpy(opt["m"][k])
        arrays[f"adam_v/{k}"] = to_numpy(opt["v"][k])
    if snapshots:
        arrays["snapshot_epochs"] = np.array([e for e, _ in snapshots])
        for k in params:
            arrays[f"snapshot/{k}"] = np.stack([s[k] for _, s in snapshots])
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)                              # mkstemp makes it private; a checkpoint is not
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_checkpoint(path):
    """Everything a checkpoint holds, as NumPy arrays and plain Python: config, params,
    opt (AdamW state), history, snapshots [(epoch, params)], epoch, wall_s."""
    if not os.path.exists(path):
        raise UsageError(f"checkpoint {path} does not exist; train one with python minigrok.py --task ... --out {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["format"]) != "minigrok-1":
                raise ValueError("unknown format")
            raw = json.loads(str(z["config"]))
            cfg = Config(**raw)
            names = [k for k in z.files if k in ("b_in", "b_out") or k.startswith("W_")]
            params = {k: z[k] for k in names}
            opt = {"step": int(z["adam_step"]), "m": {k: z[f"adam_m/{k}"] for k in names},
                   "v": {k: z[f"adam_v/{k}"] for k in names}}
            snapshots = []
            if "snapshot_epochs" in z.files:
                stacks = {k: z[f"snapshot/{k}"] for k in names}
                snapshots = [(int(e), {k: stacks[k][i] for k in names})
                             for i, e in enumerate(z["snapshot_epochs"])]
            return dict(config=cfg, params=params, opt=opt, history=json.loads(str(z["history"])),
                        snapshots=snapshots, epoch=int(z["epoch"]), wall_s=float(z["wall_s"]))
    except UsageError:
        raise
    except Exception as e:
        raise UsageError(f"{path} is not a readable minigrok checkpoint ({type(e).__name__}: {e})")


def load(path):
    """(config, weights, history) of a checkpoint: the entry point for analysis."""
    ck = load_checkpoint(path)
    return ck["config"], ck["params"], ck["history"]


# ============================================================================ plotting
def plot_history(history, path, title):
    """Train and test loss and accuracy against epoch, on log axes: the grokking curve."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = np.maximum(np.array(history["epoch"]), 1)         # epoch 0 drawn at 1 on a log axis
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    sets = [k[:-5] for k in history if k.endswith("_loss")]
    for name in sets:
        ax_loss.plot(epochs, history[f"{name}_loss"], label=name)
        ax_acc.plot(epochs, history[f"{name}_acc"], label=name)
    ax_loss.set(xscale="log", yscale="log", xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xscale="log", xlabel="epoch", ylabel="accuracy", ylim=(-0.02, 1.02), title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
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
    ap.add_argument("--out", help="checkpoint path (default: runs/<task>.npz)")
    ap.add_argument("--resume", action="store_true", help="continue the run saved at --out")
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
    args = make_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
        out = args.out or os.path.join("runs", f"{cfg.task}.npz")
        use_device(args.device)
        params, history, code = train(cfg, out, resume=args.resume, stop_at=args.stop_at, progress=not args.quiet)
    except UsageError as e:
        print(f"minigrok: error: {e}", file=sys.stderr)
        return 2
    if code == 0:
        png = os.path.splitext(out)[0] + ".png"
        plot_history(history, png, f"{cfg.task}: train and test loss and accuracy (d_model {cfg.d_model}, seed {cfg.seed})")
        print(f"grokking curve: {png}")
    return code


if __name__ == "__main__":
    sys.exit(main())
