"""The fast engine: the one-layer transformer of minigrok.py, computed for the clock.

minigrok.py holds the textbook model (read that first); this file computes the same
logits and the same gradients, to float rounding (test_minigrok.py checks both against it
on the addition and sort layouts), with a fraction of the work. It is what training uses
by default (`--engine fast`). Three facts of a one-layer model make that possible:

1. Only the readout positions' predictions are ever read, and nothing computed from a
   position's query, MLP or unembedding reaches another position (there is no second
   layer). So queries, the MLP and the unembedding are computed at the readout positions
   only. Keys and values are still needed at every position.
2. The residual stream entering the layer is W_E[token] + W_pos[pos]: it depends only on
   the (token, position) pair. So q, k and v are computed once per pair, in tables of
   d_vocab * pos rows, and each example looks its rows up. Attention scores too: the score
   of a query row and a key row is an entry of the table q_tab @ k_tab.T, the QK circuit
   W_E W_Q W_K^T W_E^T (plus position terms) of the papers. When that table would have more
   entries than the batch has scores (sort, whose readout tokens vary), each example's
   scores are computed from its looked-up queries and keys instead (index_plan chooses).
3. The residual stream is a sum, and after attention only W_in (the MLP) and W_U (the
   unembedding) read it. So each term goes straight to its readers through composed
   weights W_O W_in, W_O W_U and W_out W_U: resid_mid and resid_post are never formed,
   and the product z @ W_O is not needed at all.

The gradients are named after the tables they belong to (dqk_tab, dread_tab, ...); the
textbook names (dresid_mid, dq, dk, dv) are in minigrok.py's backward. The cache holds only
what this backward needs; analysis uses minigrok.forward, whose cache has every activation.
It computes with arrays.xp, NumPy or CuPy, as minigrok.py does (--device chooses once).
"""
import math

from arrays import xp


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


def index_plan(tokens, n_read, params, attention=None):
    """What forward and backward need from the tokens alone, not from the weights:
    - ids [batch, pos]: each example's rows in the (token, position) tables;
    - read_used: the rows of those tables that the readout positions look up (for their
      queries and their own residual stream), numbered token*R + r: all d_vocab*R of them,
      or only the R that every example shares when the readout tokens are fixed (addition's
      '=': one row, not d_vocab); read_rows [batch, R], or [1, R] to broadcast: each
      example's rows among read_used;
    - attention: how the scores are computed (fact 2). 'table': as entries of the QK table
      q_tab @ k_tab.T, which pays off when the examples' scores outnumber the table's entries
      (addition: 3,830 examples, one query row); then pair [batch, R, pos] is each score's
      place in a head's QK table, and entry [batch, head, R, pos] its place in the stack of
      all heads' tables. 'per_example': each example's queries and keys are looked up in
      q_tab and k_tab and multiplied, which is cheaper when the table is the larger (sort:
      5 readout rows of 101 tokens against 1,010 key rows, 2 million entries, for 50,000
      scores of a 1,000-example batch). None: chosen by that count; tests force each.
    sum_plan(plan) adds, when backward first needs it, how to sum gradients back into table
    rows (forward-only calls, such as evaluation, never make it).
    Full-batch training sees the same tokens every epoch, so train_epoch is given this
    once per run instead of making it every step."""
    batch, n_pos = tokens.shape
    d_vocab, n_heads = params["W_E"].shape[0], params["W_Q"].shape[0]
    ids = tokens * n_pos + xp.arange(n_pos)                     # [batch, pos]: row token*n_pos + pos
    read_ids = tokens[:, n_pos - n_read:] * n_read + xp.arange(n_read)   # [batch, R]: row token*R + r
    if all(same_token(col) for col in read_ids.T):              # fixed readout tokens
        read_used, read_rows = read_ids[0], xp.arange(n_read)[None]
    else:
        read_used, read_rows = xp.arange(d_vocab * n_read), read_ids
    if attention is None:                                       # QK table entries (per head) against scores
        attention = "table" if len(read_used) * d_vocab <= batch * n_read else "per_example"
    plan = {"tokens": tokens, "ids": ids, "read_used": read_used, "read_rows": read_rows, "attention": attention}
    if attention == "table":
        pair = read_rows[:, :, None] * (d_vocab * n_pos) + ids[:, None, :]  # [batch, R, pos]
        table_size = len(read_used) * (d_vocab * n_pos)         # entries in one head's QK table
        plan["pair"] = pair
        plan["entry"] = pair[:, None] + (xp.arange(n_heads) * table_size)[:, None, None]   # [batch, head, R, pos]
    return plan


def sum_plan(plan, d_vocab, dtype):
    """plan["sum_by"]: for each position, how to sum gradients back into table rows (the one
    token every example has there, or the one-hot matrix of the tokens). Made on backward's
    first call with this plan and kept in it (full-batch training makes it once per run)."""
    if "sum_by" not in plan:
        plan["sum_by"] = [int(col[0]) if same_token(col) else one_hot(col, d_vocab, dtype) for col in plan["tokens"].T]
    return plan["sum_by"]


# The cache, for backward only. Shapes, with R = n_read and the tables' rows numbered
# token*pos + position (read_tab: only the rows the readout positions look up, see index_plan):
#   v           [batch, pos, head, d_head]   values, every position (looked up in v_tab)
#   q, k        [batch, R, head, d_head], [batch, pos, head, d_head]: per_example attention only
#               (looked up in q_tab / sqrt(d_head) and k_tab)
#   attn_scores [batch, head, R, pos]        q.k / sqrt(d_head), -inf where masked
#   pattern     [batch, head, R, pos]        softmax of attn_scores over pos
#   z           [batch, R, head, d_head]     pattern-weighted values
#   mlp_post    [batch, R, d_mlp]            ReLU(mlp_pre), with mlp_pre = resid_mid @ W_in + b_in
#                                            (fact 3: without resid_mid); mlp_pre is not kept
#   resid_tab   [vocab*pos, d_model]         W_E[token] + W_pos[pos] for every pair
#   read_tab    [used, d_model]              resid_tab's rows read at the readout
#   q_tab       [used, head, d_head]         queries of read_tab's rows
#   k_tab_T     [head, d_head, vocab*pos]    the key table, transposed (table attention only)
#   W_Oin, W_OU, W_outU                      the composed weights of fact 3
#   plan                                     index_plan(tokens, ...)
def forward(params, tokens, n_read=1, plan=None):
    """tokens [batch, pos] -> logits [batch, n_read, d_vocab_out] at the last n_read
    positions, and the cache above. `plan` is index_plan(tokens, ...) when the caller has
    it already (full-batch training makes it once per run)."""
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
    v_tab = (resid_tab @ heads_as_columns(params["W_V"])).reshape(-1, n_heads, d_head) # [vocab*pos, head, d_head]
    v = xp.take(v_tab, ids, axis=0)                             # [batch, pos, head, d_head] (= v_tab[ids]; take is faster)
    # attention: each readout query against every key at or before it
    cache = {}
    if plan["attention"] == "table":
        # The key table is made transposed, [head, d_head, vocab*pos], as the QK product wants it:
        # a product of contiguous stacks is ~3x faster than one with the transpose of k_tab.
        k_tab_T = (heads_as_columns(params["W_K"]).T @ resid_tab.T).reshape(n_heads, d_head, -1)
        qk_tab = (q_tab / math.sqrt(d_head)).transpose(1, 0, 2) @ k_tab_T               # [head, used, vocab*pos]
        attn_scores = xp.take(qk_tab.reshape(n_heads, -1), plan["pair"], axis=1).transpose(1, 0, 2, 3)   # [batch, head, R, pos] = q.k/sqrt(d_head)
        cache["k_tab_T"] = k_tab_T
    else:
        k_tab = (resid_tab @ heads_as_columns(params["W_K"])).reshape(-1, n_heads, d_head)   # [vocab*pos, head, d_head]
        q = xp.take(q_tab / math.sqrt(d_head), read_rows, axis=0)  # [batch, R, head, d_head] (or [1, R, ...])
        k = xp.take(k_tab, ids, axis=0)                         # [batch, pos, head, d_head]
        attn_scores = q.transpose(0, 2, 1, 3) @ k.transpose(0, 2, 3, 1)   # [batch, head, R, pos] = q.k/sqrt(d_head)
        cache.update(q=q, k=k)
    if n_read > 1:                                              # (the last position sees every key)
        attn_scores = xp.where(causal_mask(n_pos, n_read), -xp.inf, attn_scores)
    pattern = softmax_over_keys(attn_scores)                   # [batch, head, R, pos]
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
    mlp_post = rows(mlp_pre)                                    # [batch*R, d_mlp]
    xp.maximum(mlp_post, 0, out=mlp_post)                       # ReLU in place (backward masks by mlp_post > 0)
    logits = mlp_post @ W_outU                                  # [batch*R, d_vocab_out]
    logits += z_rows @ W_OU
    logits = unrows(logits)                                     # [batch, R, d_vocab_out]
    logits += read_U[read_rows]

    cache.update(v=v, attn_scores=attn_scores, pattern=pattern, z=z,
                 mlp_post=unrows(mlp_post), W_Oin=W_Oin, W_OU=W_OU, W_outU=W_outU, plan=plan,
                 resid_tab=resid_tab, read_tab=read_tab, q_tab=q_tab)
    return logits, cache


def lookup_backward(d, sum_by, d_vocab):
    """The backward of a table lookup table[token, pos]: d [pos, batch, c] -> [d_vocab, pos, c],
    summing the gradients of all examples that looked up the same (token, position) row
    (sum_by from sum_plan, for these positions)."""
    out = xp.zeros((d_vocab,) + d.shape[::2], d.dtype)         # [vocab, pos, c]
    for t, by in enumerate(sum_by):
        if isinstance(by, int):                                 # every example has token `by` here
            out[by, t] = xp.ones(d.shape[1], d.dtype) @ d[t]   # (BLAS sums columns faster than NumPy's sum)
        else:
            out[:, t] = by @ d[t]                               # one-hot [vocab, batch] @ [batch, c]
    return out


def read_backward(d, sum_by_read, used, d_vocab):
    """The backward of a lookup of the readout rows (read_tab[read_rows]): d [batch, R, c]
    -> [used, c], each example's gradient summed into the row it looked up."""
    batch, n_read = d.shape[:2]
    summed = lookup_backward(d.reshape(batch, n_read, -1).transpose(1, 0, 2), sum_by_read, d_vocab)
    return summed.reshape(d_vocab * n_read, -1)[used]


def backward(params, cache, dlogits):
    """dlogits [batch, R, d_vocab_out] -> grads, a dict with the keys of params.
    Each step undoes one line of forward, from the last to the first."""
    W_E, W_pos = params["W_E"], params["W_pos"]
    d_vocab, d_model = W_E.shape
    n_heads, _, d_head = params["W_Q"].shape
    plan, pattern = cache["plan"], cache["pattern"]
    sum_by = sum_plan(plan, d_vocab, W_E.dtype)
    batch, n_pos = plan["ids"].shape
    n_read = dlogits.shape[1]
    read = slice(n_pos - n_read, n_pos)
    used = plan["read_used"]                                    # read_tab's rows, among all d_vocab*R
    rows = lambda a: a.reshape(batch * n_read, -1)              # [batch, R, c] -> [batch*R, c]
    unrows = lambda a: a.reshape(batch, n_read, -1)             # and back
    dlogits = rows(dlogits)
    g = {}

    # logits = z @ W_OU + mlp_post @ W_outU + read_U[read_rows]   (fact 3 in forward)
    z, mlp_post = rows(cache["z"]), rows(cache["mlp_post"])
    g_OU = z.T @ dlogits                                        # [head*d_head, d_vocab_out]
    g_outU = mlp_post.T @ dlogits                               # [d_mlp, d_vocab_out]
    dmlp_pre = dlogits @ cache["W_outU"].T                      # [batch*R, d_mlp], dmlp_post until masked:
    # mlp_post = ReLU(mlp_pre): mlp_post > 0 exactly where mlp_pre > 0
    dmlp_pre *= mlp_post > 0
    # mlp_pre = z @ W_Oin + read_in[read_rows]
    g_Oin = (dmlp_pre.T @ z).T                                  # [head*d_head, d_mlp] (~20% faster than z.T @ dmlp_pre)
    dz = dmlp_pre @ cache["W_Oin"].T                            # [batch*R, head*d_head]
    dz += dlogits @ cache["W_OU"].T                             # (z reaches the logits both ways)
    dz = dz.reshape(batch, n_read, n_heads, d_head)
    # read_in and read_U rows: sum each example's gradient into the row it looked up
    dread_in = read_backward(unrows(dmlp_pre), sum_by[read], used, d_vocab)   # [used, d_mlp]
    dread_U = read_backward(unrows(dlogits), sum_by[read], used, d_vocab)     # [used, d_vocab_out]
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

    # attention back into the q, k and v tables, by the path forward took
    if plan["attention"] == "table":
        dq_tab, dk_tab_T, dv_tab = table_attention_backward(dscores, dz, pattern, cache, sum_by)
    else:
        dq_tab, dk_tab_T, dv_tab = per_example_attention_backward(dscores, dz, pattern, cache, sum_by)
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


def table_attention_backward(dscores, dz, pattern, cache, sum_by):
    """Attention's backward when forward scored from the QK table (plan["attention"] ==
    "table"): dscores [batch, head, R, pos] and dz [batch, R, head, d_head] -> the gradients
    of q_tab [used, head*d_head], of the key table (transposed, [head*d_head, vocab*pos]) and
    of v_tab [vocab*pos, head*d_head]."""
    plan, q_tab = cache["plan"], cache["q_tab"]
    batch, n_heads, _, n_pos = dscores.shape
    d_head, n_used = dz.shape[3], len(plan["read_used"])
    d_vocab, dtype = cache["resid_tab"].shape[0] // n_pos, q_tab.dtype
    n_rows = d_vocab * n_pos
    # Back into the tables. attn_scores = qk_tab[:, read_rows, ids]: add each score's
    # gradient into its table entry (bincount sums the entries that share an index).
    dqk_tab = xp.bincount(plan["entry"].ravel(), weights=(dscores / math.sqrt(d_head)).ravel(), minlength=n_heads * n_used * n_rows)
    dqk_tab = dqk_tab.reshape(n_heads, n_used, n_rows).astype(dtype)
    # qk_tab = q_tab @ k_tab.T / sqrt(d_head)   (the division is folded into dqk_tab above)
    k_tab_T = cache["k_tab_T"]
    dq_tab = (dqk_tab @ k_tab_T.transpose(0, 2, 1)).transpose(1, 0, 2).reshape(n_used, -1)         # [used, head*d_head]
    dk_tab_T = (q_tab.transpose(1, 2, 0) @ dqk_tab).reshape(n_heads * d_head, n_rows)               # [head*d_head, vocab*pos]
    # z = pattern @ v with v = v_tab[ids]: the value at key position t gets each example's dz
    # weighted by its pattern there, summed into the table row the example looked up (as in
    # lookup_backward), one position at a time: no [batch, pos, head, d_head] array is made,
    # and where all examples share the token only the sum is computed.
    dv_tab = xp.zeros((d_vocab, n_pos, n_heads * d_head), dtype)
    for t, by in enumerate(sum_by):
        if isinstance(by, int):                             # every example has token `by` here
            dv_tab[by, t] = xp.einsum("bhr,brhd->hd", pattern[..., t], dz).ravel()
        else:
            dv = xp.einsum("bhr,brhd->bhd", pattern[..., t], dz).reshape(batch, -1)   # [batch, head*d_head]
            dv_tab[:, t] = by @ dv                          # one-hot [vocab, batch] @ [batch, head*d_head]
    dv_tab = dv_tab.reshape(n_rows, -1)                     # [vocab*pos, head*d_head]
    return dq_tab, dk_tab_T, dv_tab


def per_example_attention_backward(dscores, dz, pattern, cache, sum_by):
    """Attention's backward when forward scored each example from its looked-up queries and
    keys (plan["attention"] == "per_example"): the same three table gradients as
    table_attention_backward."""
    plan = cache["plan"]
    batch, n_heads, n_read, n_pos = dscores.shape
    d_head, dtype = dz.shape[3], cache["q_tab"].dtype
    d_vocab = cache["resid_tab"].shape[0] // n_pos
    n_rows, read = d_vocab * n_pos, slice(n_pos - n_read, n_pos)
    # attn_scores = q @ k.T per example and head, with q = (q_tab / sqrt(d_head))[read_rows]
    # and k = k_tab[ids]; z = pattern @ v with v = v_tab[ids]: each example's dq, dk and
    # dv, summed into the table rows it looked up (dk and dv in one lookup_backward)
    # (the products write straight into the layouts the sums want: `out` is a transposed
    # view of them, ~6x faster than making [batch, head, pos, d_head] and reordering it)
    q, k = cache["q"].transpose(0, 2, 1, 3), cache["k"].transpose(0, 2, 1, 3)   # [batch or 1, head, R or pos, d_head]
    dq = xp.empty((batch, n_read, n_heads, d_head), dtype)
    xp.matmul(dscores, k, out=dq.transpose(0, 2, 1, 3))                         # [batch, R, head, d_head]
    dq /= math.sqrt(d_head)
    dkv = xp.empty((n_pos, batch, 2, n_heads, d_head), dtype)               # dk and dv side by side
    xp.matmul(dscores.transpose(0, 1, 3, 2), q, out=dkv[:, :, 0].transpose(1, 2, 0, 3))   # dk [batch, head, pos, d_head]
    xp.matmul(pattern.transpose(0, 1, 3, 2), dz.transpose(0, 2, 1, 3), out=dkv[:, :, 1].transpose(1, 2, 0, 3))   # dv
    dq_tab = read_backward(dq, sum_by[read], plan["read_used"], d_vocab)                                                        # [used, head*d_head]
    dkv_tab = lookup_backward(dkv.reshape(n_pos, batch, -1), sum_by, d_vocab).reshape(n_rows, 2, -1)   # [vocab*pos, 2, head*d_head]
    dk_tab_T, dv_tab = dkv_tab[:, 0].T, dkv_tab[:, 1]
    return dq_tab, dk_tab_T, dv_tab
