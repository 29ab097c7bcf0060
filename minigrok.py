"""minigrok: a one-layer transformer that groks, with every line of its training visible.

    python minigrok.py --task add          # modular addition: memorise, then grok

The model is the one of Nanda et al. 2023 ("Progress measures for grokking"): token and
learned position embeddings, one multi-head attention layer, a ReLU MLP, an unembedding;
no LayerNorm. The forward pass, the backward pass (written out by hand, no autograd) and
AdamW are all in this file, on NumPy, or on CuPy when a GPU works (`--device`).

Weights live in one flat dict under TransformerLens's names and right-multiply shapes, so
analysis reads a circuit such as W_E @ W_V @ W_O @ W_in straight off a checkpoint. The
gradients, the AdamW moments and the checkpoint use the same keys. tasks.py makes the
data; load() hands a trained checkpoint to analysis code.

Reading order: the model (init_params, forward, backward), the loss, AdamW, then training,
checkpoints and the command line.
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

import tasks

xp = np   # the array module, NumPy or CuPy: chosen once, by use_device()


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
    # bookkeeping: none of these changes the weights
    eval_every: int = 10
    save_every: int = 1000
    snapshot_every: int = 0      # keep a copy of the weights every K epochs (0: never)


# Each task's defaults, over the Config defaults above (which are Nanda et al.'s model and
# optimiser); and the preset that is Nanda et al.'s addition run. The addition defaults
# come from the sweep in bench.py, reported with the others in README.md.
TASK_DEFAULTS = {
    "add": dict(frac_train=0.3, lr=5e-3, weight_decay=2.0, epochs=1500, eval_every=20, snapshot_every=50),
    "max": dict(n_train=20000, n_test=5000, epochs=100, batch_size=1000, lr=1e-3,
                weight_decay=0.1, eval_every=10, save_every=100),
    "median": dict(n_train=20000, n_test=5000, epochs=300, batch_size=1000, lr=1e-3,
                   weight_decay=0.1, eval_every=10, save_every=100),
    "sort": dict(n_train=20000, n_test=5000, epochs=150, batch_size=1000, lr=1e-3,
                 weight_decay=0.1, eval_every=25, save_every=100),
}
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
    total = tasks.n_examples(cfg)
    if cfg.task == "add":
        n_train = cfg.n_train or int(cfg.frac_train * total)
        need(1 <= n_train < total, f"--n-train must be between 1 and {total - 1} (p*p - 1 for p={cfg.p}), got {n_train}")
    else:
        need(cfg.n_train > 0 and cfg.n_test > 0, "--n-train and --n-test must be positive for max, median and sort")
        need(cfg.n_train + cfg.n_test <= total // 2,
             f"--n-train + --n-test must be at most {total // 2} (half of the n^5 tuples for n={cfg.n}), "
             f"got {cfg.n_train + cfg.n_test}")


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


def use_device(device):
    """Choose the array module once: CuPy on a working GPU, else NumPy.
    'auto' falls back to NumPy with one line on stderr; 'gpu' without a GPU is an error."""
    global xp
    if device == "cpu":
        xp = np
        keep_freed_memory()
        return "cpu"
    try:
        import cupy
        ok = cupy.is_available()
        why = "cupy finds no CUDA device"
    except Exception as e:          # not installed, or no CUDA libraries
        ok, why = False, f"cupy cannot be used ({type(e).__name__})"
    if ok:
        xp = cupy
        return "gpu"
    if device == "gpu":
        raise UsageError(f"--device gpu needs a working CUDA GPU, but {why}; use --device cpu or auto")
    print(f"minigrok: no working GPU ({why}); using NumPy on the CPU", file=sys.stderr)
    xp = np
    keep_freed_memory()
    return "cpu"


def to_numpy(a):
    """Arrays go back to NumPy only at the edges: checkpoints, printing, plotting."""
    return a if isinstance(a, np.ndarray) else a.get()


# ============================================================================ model
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


def heads_as_columns(W):
    """[head, d_model, d_head] -> [d_model, head*d_head]: all heads in one matrix product."""
    return W.transpose(1, 0, 2).reshape(W.shape[1], -1)


def causal_mask(n_pos, n_read):
    """[read, pos], True where the key comes after the query (the query at readout row r
    sits at position n_pos - n_read + r)."""
    query_pos = xp.arange(n_pos - n_read, n_pos)
    return xp.arange(n_pos)[None, :] > query_pos[:, None]


def softmax_over_keys(scores):
    """Softmax over the last axis, the key positions, which is short (3 for addition).
    The max and the sum are taken one key position at a time, over whole slices: NumPy's
    own reductions over a short last axis loop row by row, ~20x slower here."""
    top = scores[..., 0]
    for t in range(1, scores.shape[-1]):
        top = xp.maximum(top, scores[..., t])
    e = xp.exp(scores - top[..., None])
    e /= xp.einsum("...t->...", e)[..., None]
    return e


def one_hot(col, d_vocab, dtype):
    """[vocab, batch] with a 1 at (col[b], b): the matrix that sums each example's row into
    the row of its token. A matmul with it is what BLAS is fast at (np.add.at, the obvious
    way to sum rows by index, is ~10x slower)."""
    out = xp.zeros((d_vocab, len(col)), dtype)
    out[col, xp.arange(len(col))] = 1
    return out


def same_token(col):
    """True where every example has the same token at this position (=, CLS, SEP): its
    table row's gradient is then a plain sum, no one-hot matrix needed."""
    return bool((col == col[0]).all())


def index_plan(tokens, n_read, params):
    """What forward and backward need from the tokens alone, not from the weights:
    - ids [batch, pos]: each example's rows in the (token, position) tables;
    - read_used: the rows of those tables that the readout positions look up (for their
      queries and their own residual stream), numbered token*R + r: all d_vocab*R of them,
      or only the R that every example shares when the readout tokens are fixed (addition's
      '=': one row, not d_vocab); read_rows [batch, R], or [1, R] to broadcast: each
      example's rows among read_used;
    - pair [batch, R, pos]: each attention score's place in a head's QK table, and entry
      [batch, head, R, pos]: its place in the stack of all heads' tables;
    - sum_by: for each position, how to sum gradients back into table rows (the one token
      every example has there, or the one-hot matrix of the tokens).
    Full-batch training sees the same tokens every epoch, so train_epoch is given this
    once per run instead of making it every step."""
    batch, n_pos = tokens.shape
    d_vocab, n_heads, dtype = params["W_E"].shape[0], params["W_Q"].shape[0], params["W_E"].dtype
    ids = tokens * n_pos + xp.arange(n_pos)                     # [batch, pos]: row token*n_pos + pos
    sum_by = [int(col[0]) if same_token(col) else one_hot(col, d_vocab, dtype) for col in tokens.T]
    read_ids = tokens[:, n_pos - n_read:] * n_read + xp.arange(n_read)   # [batch, R]: row token*R + r
    if all(isinstance(by, int) for by in sum_by[n_pos - n_read:]):       # fixed readout tokens
        read_used, read_rows = read_ids[0], xp.arange(n_read)[None]
    else:
        read_used, read_rows = xp.arange(d_vocab * n_read), read_ids
    pair = read_rows[:, :, None] * (d_vocab * n_pos) + ids[:, None, :]  # [batch, R, pos]
    table_size = len(read_used) * (d_vocab * n_pos)             # entries in one head's QK table
    entry = pair[:, None] + (xp.arange(n_heads) * table_size)[:, None, None]   # [batch, head, R, pos]
    return {"ids": ids, "read_used": read_used, "read_rows": read_rows, "pair": pair, "entry": entry,
            "sum_by": sum_by}


# The forward cache, keyed after TransformerLens hooks. Shapes, with R = n_read:
#   resid_pre   [batch, pos, d_model]       W_E[token] + W_pos[pos]
#   q           [batch, R, head, d_head]    queries, at the readout positions only
#   k, v        [batch, pos, head, d_head]  keys and values, at every position
#   attn_scores [batch, head, R, pos]       q.k / sqrt(d_head), -inf where masked
#   pattern     [batch, head, R, pos]       softmax of attn_scores over pos
#   z           [batch, R, head, d_head]    pattern-weighted values
#   attn_out    [batch, R, d_model]         z @ W_O, summed over heads
#   resid_mid   [batch, R, d_model]         resid_pre + attn_out
#   mlp_pre     [batch, R, d_mlp]           resid_mid @ W_in + b_in
#   mlp_post    [batch, R, d_mlp]           ReLU(mlp_pre)
#   resid_post  [batch, R, d_model]         resid_mid + mlp_post @ W_out + b_out
# (attn_out, resid_mid and resid_post only with full_cache: training never forms them, see
# forward), and, for backward, the (token, position) tables described in forward: resid_tab
# [vocab*pos, d_model], read_tab [used, d_model] (the rows read at the readout: all
# vocab*R, or R when every example has the same readout tokens), q_tab [used, head,
# d_head], k_tab_T [head, d_head, vocab*pos] (the key table, transposed), the composed
# weights W_Oin, W_OU, W_outU, and the index plan.
def forward(params, tokens, n_read=1, full_cache=True, pattern=None, plan=None):
    """tokens [batch, pos] -> logits [batch, n_read, d_vocab_out] at the last n_read
    positions, and the cache above. Training passes full_cache=False to skip q, k and
    resid_pre, which only analysis reads (backward works from the tables). Analysis may
    pass `pattern` [batch, head, R, pos] to impose an attention pattern (an intervention:
    the model runs on from it; not for training). `plan` is index_plan(tokens, ...) when
    the caller has it already.

    Three facts of a one-layer model make this cheaper than the textbook computation, with
    the same result (test_minigrok.py checks all three against a plain implementation):
    1. Only the readout positions' predictions are ever read, and nothing computed from a
       position's query, MLP or unembedding reaches another position (there is no second
       layer). So queries, the MLP and the unembedding are computed at the readout
       positions only. Keys and values are still needed at every position.
    2. The residual stream entering the layer is W_E[token] + W_pos[pos]: it depends only
       on the (token, position) pair. So q, k and v are computed once per pair, in tables
       of d_vocab * pos rows (queries: only the pairs that occur at the readout), and
       each example looks its rows up. Attention scores too:
       the score of a query row and a key row is an entry of the table q_tab @ k_tab.T,
       which is the QK circuit W_E W_Q W_K^T W_E^T (plus position terms) of the papers.
    3. The residual stream is a sum, and after attention only W_in (the MLP) and W_U (the
       unembedding) read it. So each term goes straight to its readers through composed
       weights, W_O W_in, W_O W_U and W_out W_U (the OV circuit and the MLP's output seen
       by the unembedding, as in the papers): resid_mid and resid_post are never formed
       in training, and the product z @ W_O is not needed at all.
    """
    W_E, W_pos = params["W_E"], params["W_pos"]
    batch, n_pos = tokens.shape
    d_vocab, d_model = W_E.shape
    n_heads, _, d_head = params["W_Q"].shape
    read = slice(n_pos - n_read, n_pos)                         # the readout positions
    plan = plan or index_plan(tokens, n_read, params)
    ids, read_rows = plan["ids"], plan["read_rows"]             # each example's rows in the tables

    # Tables over (token, position) pairs: resid_tab, k and v have every pair (row
    # token*n_pos + pos); read_tab and q only the pairs read at the readout (plan's read_used).
    resid_tab = W_E[:, None, :] + W_pos[None, :n_pos, :]                               # [vocab, pos, d_model]
    read_tab = resid_tab[:, read].reshape(-1, d_model)[plan["read_used"]]              # [used, d_model]
    resid_tab = resid_tab.reshape(-1, d_model)                                         # [vocab*pos, d_model]
    q_tab = (read_tab @ heads_as_columns(params["W_Q"])).reshape(-1, n_heads, d_head)  # [used, head, d_head]
    # The key table is made transposed, [head, d_head, vocab*pos], as the QK product wants it:
    # a product of contiguous stacks is ~3x faster than one with the transpose of k_tab.
    k_tab_T = (heads_as_columns(params["W_K"]).T @ resid_tab.T).reshape(n_heads, d_head, -1)
    k_tab = k_tab_T.transpose(2, 0, 1)                                                 # [vocab*pos, head, d_head] (a view)
    v_tab = (resid_tab @ heads_as_columns(params["W_V"])).reshape(-1, n_heads, d_head) # [vocab*pos, head, d_head]
    qk_tab = (q_tab / math.sqrt(d_head)).transpose(1, 0, 2) @ k_tab_T                   # [head, used, vocab*pos]

    v = xp.take(v_tab, ids, axis=0)                             # [batch, pos, head, d_head] (= v_tab[ids]; take is faster)
    cache = {}
    if full_cache:
        cache["resid_pre"] = resid_tab[ids]                     # [batch, pos, d_model]
        cache["q"] = q_tab[xp.broadcast_to(read_rows, (batch, n_read))]   # [batch, R, head, d_head]
        cache["k"] = k_tab[ids]                                 # [batch, pos, head, d_head]

    # attention: each readout query against every key at or before it
    attn_scores = xp.take(qk_tab.reshape(n_heads, -1), plan["pair"], axis=1).transpose(1, 0, 2, 3)   # [batch, head, R, pos] = q.k/sqrt(d_head)
    if n_read > 1:                                              # (the last position sees every key)
        attn_scores = xp.where(causal_mask(n_pos, n_read), -xp.inf, attn_scores)
    if pattern is None:
        pattern = softmax_over_keys(attn_scores)               # [batch, head, R, pos]
    z = (pattern @ v.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)    # [batch, R, head, d_head]

    # From here on each readout position is a row of its own: [batch*R, ...] matrices make
    # every product one large matmul (a 3-D @ 2-D product would be batch small ones).
    rows = lambda a: a.reshape(batch * n_read, -1)
    unrows = lambda a: a.reshape(batch, n_read, -1)             # back to [batch, R, ...]
    W_O = params["W_O"].reshape(-1, d_model)                    # [head*d_head, d_model]: all heads, summed
    W_in, W_out, W_U = params["W_in"], params["W_out"], params["W_U"]
    # Fact 3: with resid_mid = resid_pre[read] + z @ W_O, the MLP and the unembedding are
    #   mlp_pre = resid_mid @ W_in + b_in
    #           = z @ (W_O W_in) + (read_tab @ W_in + b_in)[read_rows]
    #   logits  = (resid_mid + mlp_post @ W_out + b_out) @ W_U
    #           = z @ (W_O W_U) + mlp_post @ (W_out W_U) + ((read_tab + b_out) @ W_U)[read_rows]
    # The composed weights are small (no batch dimension). The batch-sized products shrink:
    # z @ W_O is gone, and the MLP's output leaves through d_vocab_out columns, not d_model.
    W_Oin, W_OU, W_outU = W_O @ W_in, W_O @ W_U, W_out @ W_U
    # the readout tokens' own terms, per row of read_tab (for addition one row, the '='):
    read_in = read_tab @ W_in + params["b_in"]                  # [used, d_mlp]
    read_U = (read_tab + params["b_out"]) @ W_U                 # [used, d_vocab_out]
    z_rows = rows(z)                                            # [batch*R, head*d_head]
    mlp_pre = unrows(z_rows @ W_Oin)                            # [batch, R, d_mlp]
    mlp_pre += read_in[read_rows]                               # (in place: no second large array)
    mlp_post = xp.maximum(rows(mlp_pre), 0)                     # [batch*R, d_mlp]
    logits = mlp_post @ W_outU                                  # [batch*R, d_vocab_out]
    logits += z_rows @ W_OU
    logits = unrows(logits)                                     # [batch, R, d_vocab_out]
    logits += read_U[read_rows]

    if full_cache:                                              # the residual stream itself, for analysis
        attn_out = z_rows @ W_O
        resid_mid = rows(unrows(attn_out) + read_tab[read_rows])
        resid_post = resid_mid + mlp_post @ W_out + params["b_out"]
        cache.update(attn_out=unrows(attn_out), resid_mid=unrows(resid_mid), resid_post=unrows(resid_post))
    cache.update(v=v, attn_scores=attn_scores, pattern=pattern, z=z, mlp_pre=mlp_pre,
                 mlp_post=unrows(mlp_post), W_Oin=W_Oin, W_OU=W_OU, W_outU=W_outU, plan=plan,
                 resid_tab=resid_tab, read_tab=read_tab, q_tab=q_tab, k_tab_T=k_tab_T)
    return logits, cache


def lookup_backward(d, sum_by, d_vocab):
    """The backward of a table lookup table[token, pos]: d [pos, batch, c] -> [d_vocab, pos, c],
    summing the gradients of all examples that looked up the same (token, position) row
    (sum_by from index_plan, for these positions)."""
    out = xp.zeros((d_vocab,) + d.shape[::2], d.dtype)         # [vocab, pos, c]
    for t, by in enumerate(sum_by):
        if isinstance(by, int):                                 # every example has token `by` here
            out[by, t] = xp.ones(d.shape[1], d.dtype) @ d[t]   # (BLAS sums columns faster than NumPy's sum)
        else:
            out[:, t] = by @ d[t]                               # one-hot [vocab, batch] @ [batch, c]
    return out


def backward(params, cache, dlogits):
    """dlogits [batch, R, d_vocab_out] -> grads, a dict with the keys of params.
    Each step undoes one line of forward, from the last to the first."""
    W_E, W_pos = params["W_E"], params["W_pos"]
    d_vocab, d_model = W_E.shape
    n_heads, _, d_head = params["W_Q"].shape
    plan, pattern = cache["plan"], cache["pattern"]
    batch, n_pos = plan["ids"].shape
    n_read = dlogits.shape[1]
    read = slice(n_pos - n_read, n_pos)
    used = plan["read_used"]                                    # read_tab's rows, among all d_vocab*R
    n_rows, n_used = d_vocab * n_pos, len(used)                 # rows of resid_tab and of read_tab
    rows = lambda a: a.reshape(batch * n_read, -1)              # [batch, R, c] -> [batch*R, c]
    dlogits = rows(dlogits)
    g = {}

    # logits = z @ W_OU + mlp_post @ W_outU + read_U[read_rows]   (fact 3 in forward)
    z, mlp_post = rows(cache["z"]), rows(cache["mlp_post"])
    g_OU = z.T @ dlogits                                        # [head*d_head, d_vocab_out]
    g_outU = mlp_post.T @ dlogits                               # [d_mlp, d_vocab_out]
    dmlp_pre = dlogits @ cache["W_outU"].T                      # [batch*R, d_mlp], dmlp_post until masked:
    # mlp_post = ReLU(mlp_pre)
    dmlp_pre *= rows(cache["mlp_pre"]) > 0
    # mlp_pre = z @ W_Oin + read_in[read_rows]
    g_Oin = (dmlp_pre.T @ z).T                                  # [head*d_head, d_mlp] (~20% faster than z.T @ dmlp_pre)
    dz = dmlp_pre @ cache["W_Oin"].T                            # [batch*R, head*d_head]
    dz += dlogits @ cache["W_OU"].T                             # (z reaches the logits both ways)
    dz = dz.reshape(batch, n_read, n_heads, d_head)
    # read_in and read_U rows: sum each example's gradient into the row it looked up
    per_row = lambda d: lookup_backward(d.reshape(batch, n_read, -1).transpose(1, 0, 2),
                                        plan["sum_by"][read], d_vocab).reshape(d_vocab * n_read, -1)[used]
    dread_in, dread_U = per_row(dmlp_pre), per_row(dlogits)     # [used, d_mlp], [used, d_vocab_out]
    # The composed weights back to the model's own, by the chain rule through
    # W_Oin = W_O W_in, W_OU = W_O W_U, W_outU = W_out W_U, read_in = read_tab W_in + b_in
    # and read_U = (read_tab + b_out) W_U: small products, no batch dimension.
    W_O, W_in, W_out, W_U = params["W_O"].reshape(-1, d_model), params["W_in"], params["W_out"], params["W_U"]
    read_tab = cache["read_tab"]                                # [used, d_model]
    g["W_O"] = (g_Oin @ W_in.T + g_OU @ W_U.T).reshape(n_heads, d_head, d_model)
    g["W_in"] = W_O.T @ g_Oin + read_tab.T @ dread_in
    g["b_in"] = dread_in.sum(0)
    g["W_out"] = g_outU @ W_U.T
    g["W_U"] = W_O.T @ g_OU + W_out.T @ g_outU + (read_tab + params["b_out"]).T @ dread_U
    g["b_out"] = dread_U.sum(0) @ W_U.T
    dread_tab = dread_in @ W_in.T + dread_U @ W_U.T             # [used, d_model]
    # z = pattern @ v   (per head)
    dpattern = dz.transpose(0, 2, 1, 3) @ cache["v"].transpose(0, 2, 3, 1)   # [batch, head, R, pos]
    # pattern = softmax(attn_scores); masked entries have pattern 0 and so get no gradient
    dscores = pattern * (dpattern - xp.einsum("...t,...t->...", dpattern, pattern)[..., None])   # [batch, head, R, pos]

    # Back into the tables. attn_scores = qk_tab[:, read_rows, ids]: add each score's
    # gradient into its table entry (bincount sums the entries that share an index).
    dqk_tab = xp.bincount(plan["entry"].ravel(), weights=(dscores / math.sqrt(d_head)).ravel(), minlength=n_heads * n_used * n_rows)
    dqk_tab = dqk_tab.reshape(n_heads, n_used, n_rows).astype(W_E.dtype)
    # qk_tab = q_tab @ k_tab.T / sqrt(d_head)   (the division is folded into dqk_tab above)
    q_tab, k_tab_T = cache["q_tab"], cache["k_tab_T"]
    dq_tab = (dqk_tab @ k_tab_T.transpose(0, 2, 1)).transpose(1, 0, 2).reshape(n_used, -1)             # [used, head*d_head]
    dk_tab_T = (q_tab.transpose(1, 2, 0) @ dqk_tab).reshape(n_heads * d_head, n_rows)                   # [head*d_head, vocab*pos]
    # z = pattern @ v with v = v_tab[ids]: the value at key position t gets each example's dz
    # weighted by its pattern there, summed into the table row the example looked up (as in
    # lookup_backward), one position at a time: no [batch, pos, head, d_head] array is made,
    # and where all examples share the token only the sum is computed.
    dv_tab = xp.zeros((d_vocab, n_pos, n_heads * d_head), W_E.dtype)
    for t, by in enumerate(plan["sum_by"]):
        if isinstance(by, int):                                 # every example has token `by` here
            dv_tab[by, t] = xp.einsum("bhr,brhd->hd", pattern[..., t], dz).ravel()
        else:
            dv = xp.einsum("bhr,brhd->bhd", pattern[..., t], dz).reshape(batch, -1)   # [batch, head*d_head]
            dv_tab[:, t] = by @ dv                              # one-hot [vocab, batch] @ [batch, head*d_head]
    dv_tab = dv_tab.reshape(n_rows, -1)                         # [vocab*pos, head*d_head]
    # q_tab = read_tab @ W_Q;  k_tab, v_tab = resid_tab @ W_K, W_V   (all heads at once)
    per_head = lambda m: m.reshape(d_model, n_heads, d_head).transpose(1, 0, 2)  # [d_model, head*d_head] -> [head, d_model, d_head]
    g["W_Q"] = per_head(read_tab.T @ dq_tab)
    g["W_K"] = per_head((dk_tab_T @ cache["resid_tab"]).T)
    g["W_V"] = per_head(cache["resid_tab"].T @ dv_tab)
    dread_tab += dq_tab @ heads_as_columns(params["W_Q"]).T
    dresid_tab = (heads_as_columns(params["W_K"]) @ dk_tab_T).T + dv_tab @ heads_as_columns(params["W_V"]).T
    # resid_tab = W_E[token] + W_pos[pos], and read_tab the same at the readout rows in use
    dread_all = xp.zeros((d_vocab * n_read, d_model), W_E.dtype)
    dread_all[used] = dread_tab
    dresid_tab = dresid_tab.reshape(d_vocab, n_pos, d_model)
    dresid_tab[:, read] += dread_all.reshape(d_vocab, n_read, d_model)
    g["W_E"] = dresid_tab.sum(1)
    g["W_pos"] = xp.zeros_like(W_pos)
    g["W_pos"][:n_pos] = dresid_tab.sum(0)
    return {k: xp.ascontiguousarray(g[k]) for k in params}


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


# ============================================================================ evaluation
EVAL_CHUNK = 8192   # examples per forward pass in evaluation, to bound memory


def predict(params, tokens, n_read, decode):
    """Predicted tokens [batch, n_read]. With decode (sort), the outputs are generated
    greedily, one at a time, each fed back as the next input: tokens[:, :-(n_read-1)] is
    the prompt and the teacher-forced tokens after it are not looked at."""
    if not decode:
        return forward(params, tokens, n_read)[0].argmax(-1)
    seq = tokens[:, :tokens.shape[1] - (n_read - 1)]            # [batch, inputs + SEP]
    preds = []
    for step in range(n_read):
        preds.append(forward(params, seq, 1, full_cache=False)[0][:, 0].argmax(-1))   # [batch]
        seq = xp.concatenate([seq, preds[-1][:, None]], 1)
    return xp.stack(preds, 1)                                   # [batch, n_read]


def evaluate(params, tokens, targets, n_read, decode):
    """Loss (teacher-forced) and accuracy on a data set, in chunks. Accuracy is that of
    predict(); with decode also seq_acc, the fraction of sequences entirely right."""
    loss, right, seq_right = 0.0, 0, 0
    for i in range(0, len(tokens), EVAL_CHUNK):
        tok, tgt = tokens[i:i + EVAL_CHUNK], targets[i:i + EVAL_CHUNK]
        logits = forward(params, tok, n_read, full_cache=False)[0]
        loss += cross_entropy(logits, tgt)[0] * len(tok)
        hit = (predict(params, tok, n_read, decode) if decode else logits.argmax(-1)) == tgt
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
    full batch's index_plan, made once by the caller. Returns the mean loss, or nan
    (before any update with it) as soon as a loss is not finite."""
    n = len(tokens)
    if is_full_batch(cfg, n):
        batches = [slice(None)]
    else:
        perm = xp.asarray(np.random.default_rng([cfg.seed, epoch]).permutation(n))
        batches = [perm[i:i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]
    total = 0.0
    for idx in batches:
        logits, cache = forward(params, tokens[idx], n_read, full_cache=False,
                                plan=plan if len(batches) == 1 else None)
        loss, dlogits = cross_entropy(logits, targets[idx])
        if not np.isfinite(loss):
            return float("nan")
        adamw_step(params, backward(params, cache, dlogits), opt, cfg)
        total += loss
    return total / len(batches)


def record(history, epoch, wall, params, evals, data):
    """Append one evaluation of every data set to history (a dict of lists)."""
    history.setdefault("epoch", []).append(epoch)
    history.setdefault("wall_s", []).append(round(wall, 3))
    for name, (tokens, targets) in evals.items():
        for key, value in evaluate(params, tokens, targets, data.n_read, data.decode).items():
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
        record(history, 0, 0.0, params, evals, data)
        if cfg.snapshot_every:
            snapshots.append((0, {k: to_numpy(v).copy() for k, v in params.items()}))

    plan = index_plan(train_tokens, data.n_read, params) if is_full_batch(cfg, len(train_tokens)) else None

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
                record(history, epoch, wall(), params, evals, data)
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
                                   for t, o in TASK_DEFAULTS.items())
                       + ". --preset nanda: " + ", ".join(f"{k}={v}" for k, v in PRESETS["nanda"].items()) + ".")
    ap.add_argument("--task", default="add", help="add, max, median or sort (default: add)")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="a named configuration, e.g. nanda (Nanda et al. 2023)")
    helps = {"p": "modulus for add", "n": "numbers are 0..n-1 for max/median/sort",
             "frac_train": "add: fraction of pairs to train on", "n_train": "training examples (add: overrides --frac-train)",
             "n_test": "test examples (max/median/sort)", "data_seed": "seed of the train/test split",
             "epochs": "training epochs", "batch_size": "minibatch size (0: full batch)",
             "seed": "seed of the weight init and minibatch order", "dtype": "float32 or float64",
             "eval_every": "evaluate every K epochs", "save_every": "checkpoint every K epochs",
             "snapshot_every": "keep a weight snapshot every K epochs (0: never)"}
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
                    help="auto: CuPy if a GPU works, else NumPy (default: auto)")
    ap.add_argument("--stop-at", type=float, metavar="ACC", help="stop once test accuracy reaches ACC (e.g. 0.99)")
    ap.add_argument("--quiet", action="store_true", help="print only the summary")
    return ap


def config_from_args(args):
    """Config defaults, then the task's defaults, then the preset, then explicit flags."""
    if args.task not in tasks.TASKS:
        raise UsageError(f"unknown task {args.task!r}; choose one of {', '.join(tasks.TASKS)}")
    values = {"task": args.task, **TASK_DEFAULTS[args.task], **PRESETS.get(args.preset, {})}
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
