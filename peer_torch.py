"""peer_torch: minigrok's model in plain PyTorch, the program minigrok's speed is compared with.

    make bench-peer             # installs torch (requirements-peer.txt) into .venv, then runs bench.py time
    python peer_torch.py check  # proves that the peer computes what minigrok computes (float64)

This is the model of minigrok.py written the way a PyTorch user would write it:
token and position embedding, causal multi-head attention, ReLU MLP and unembedding,
computed at every position. The readout positions are sliced off the logits. Autograd
does the backward pass and torch.optim.AdamW the update. The weights keep minigrok's
names and layouts (W_Q [head, d_model, d_head], ...). They start as minigrok.init_params
makes them, and the data is tasks.make_data(cfg), so one config gives both programs the
same work. `check` compares the logits, every gradient and three AdamW updates with
minigrok's textbook model in float64. bench.py times both programs in one run
(`python bench.py time`).

torch is optional. Nothing in minigrok imports this file, and bench.py imports it only
when `import torch` works.
"""
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

import minigrok as mg
import tasks


def forward(W, tokens, n_read):
    """tokens [batch, pos] -> logits [batch, n_read, d_vocab_out]. Every position is
    computed; the last n_read are returned."""
    batch, n_pos = tokens.shape
    n_heads, d_model, d_head = W["W_Q"].shape
    as_columns = lambda w: w.transpose(0, 1).reshape(d_model, -1)               # [head, d_model, d_head] -> [d_model, head*d_head]
    split = lambda x: x.view(batch, n_pos, n_heads, d_head).transpose(1, 2)     # [batch, pos, head*d_head] -> [batch, head, pos, d_head]
    resid_pre = W["W_E"][tokens] + W["W_pos"][:n_pos]                          # [batch, pos, d_model]
    q, k, v = (split(resid_pre @ as_columns(W[n])) for n in ("W_Q", "W_K", "W_V"))   # [batch, head, pos, d_head]
    attn_scores = q @ k.transpose(-1, -2) / math.sqrt(d_head)                   # [batch, head, pos_q, pos_k]
    future = torch.ones(n_pos, n_pos, dtype=torch.bool, device=tokens.device).triu(1)   # key after the query
    pattern = attn_scores.masked_fill(future, -math.inf).softmax(-1)            # [batch, head, pos_q, pos_k]
    z = (pattern @ v).transpose(1, 2).reshape(batch, n_pos, -1)                 # [batch, pos, head*d_head]
    resid_mid = resid_pre + z @ W["W_O"].reshape(-1, d_model)                   # [batch, pos, d_model]
    mlp_post = torch.relu(resid_mid @ W["W_in"] + W["b_in"])                    # [batch, pos, d_mlp]
    resid_post = resid_mid + mlp_post @ W["W_out"] + W["b_out"]                 # [batch, pos, d_model]
    return (resid_post @ W["W_U"])[:, n_pos - n_read:]                          # [batch, n_read, d_vocab_out]


def loss_fn(W, tokens, targets):
    """Mean cross-entropy over (batch, readout), as minigrok.cross_entropy."""
    logits = forward(W, tokens, targets.shape[1])
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten()), logits


def trainer(cfg, params, device="cpu"):
    """minigrok's weights (NumPy) -> (W, step). W holds torch copies of the weights on
    `device` ("cpu" or "cuda"), and step(tokens, targets) takes one training step on them
    (tokens and targets on the same device) and returns the loss. AdamW has minigrok's betas
    and eps, and decays the weight matrices only (minigrok.DECAYED)."""
    W = {k: torch.tensor(mg.to_numpy(v), device=device, requires_grad=True) for k, v in params.items()}
    groups = [{"params": [W[k] for k in W if k in mg.DECAYED], "weight_decay": cfg.weight_decay},
              {"params": [W[k] for k in W if k not in mg.DECAYED], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8)

    def step(tokens, targets):
        opt.zero_grad()
        loss, _ = loss_fn(W, tokens, targets)
        loss.backward()
        opt.step()
        return loss
    return W, step


# ---------------------------------------------------------------- the check
CHECK_CONFIGS = {   # small, in float64: the add layout (read at the last position) and sort (read at five)
    "add": mg.Config(task="add", p=13, frac_train=0.5, d_model=16, n_heads=2, d_head=8, d_mlp=32,
                     lr=1e-2, weight_decay=0.5, dtype="float64"),
    "sort": mg.Config(task="sort", n=8, n_train=64, n_test=16, d_model=16, n_heads=2, d_head=8, d_mlp=32,
                      lr=1e-2, weight_decay=0.5, dtype="float64"),
}


def rel_err(a, b):
    """Largest difference relative to b's largest entry."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def check(cfg, adam_steps=3):
    """Relative errors of the peer against minigrok's textbook model (minigrok.forward,
    backward, cross_entropy, adamw_step) on cfg's training set: the logits, the loss,
    every gradient, and the weights after each of `adam_steps` AdamW steps. The biases
    start non-zero, so that their gradients and their place in the model are tested too."""
    data = tasks.make_data(cfg)
    params = mg.init_params(cfg)
    rng = np.random.default_rng(1)
    params["b_in"] = rng.standard_normal(params["b_in"].shape) * 0.5
    params["b_out"] = rng.standard_normal(params["b_out"].shape) * 0.5
    W, step = trainer(cfg, params)
    tokens, targets = data.train
    tokens_t, targets_t = torch.from_numpy(tokens), torch.from_numpy(targets)
    opt, err = mg.adamw_init(params), {}
    for t in range(adam_steps):
        logits, cache = mg.forward(params, tokens, data.n_read)
        loss, dlogits = mg.cross_entropy(logits, targets)
        grads = mg.backward(params, cache, dlogits)
        if t == 0:                                       # the gradients the peer's step will use
            loss_t, logits_t = loss_fn(W, tokens_t, targets_t)
            loss_t.backward()
            err["logits"] = rel_err(logits_t.detach(), logits)
            err["loss"] = rel_err(loss_t.item(), loss)
            err["grads"] = max(rel_err(W[k].grad, grads[k]) for k in params)
            for w in W.values():
                w.grad = None
        mg.adamw_step(params, grads, opt, cfg)
        step(tokens_t, targets_t)
        err[f"adamw_step_{t + 1}"] = max(rel_err(W[k].detach(), params[k]) for k in params)
    return err


def main():
    if sys.argv[1:] != ["check"]:
        sys.exit(__doc__)
    worst = 0.0
    for name, cfg in CHECK_CONFIGS.items():
        err = check(cfg)
        worst = max(worst, *err.values())
        print(f"{name}: " + "  ".join(f"{k} {v:.1e}" for k, v in err.items()))
    print(f"largest relative error {worst:.1e}: {'the same computation' if worst < 1e-10 else 'DIFFERENT'}")
    sys.exit(0 if worst < 1e-10 else 1)


if __name__ == "__main__":
    main()
