"""interop.py: a minigrok checkpoint in TransformerLens, and a check that both compute the same.

    python interop.py export runs/add.npz runs/add_tl.pt   # TL state dict, and its config as runs/add_tl.json
                                                           # (--overwrite to replace them)
    python interop.py check runs/add.npz                   # TL's logits and cache against minigrok's

minigrok's weights already carry TransformerLens's names and right-multiply shapes
(minigrok.py), so TransformerLens's state dict is the same arrays under TL's keys (TL_KEYS),
plus the biases minigrok does not have: b_Q, b_K, b_V [head, d_head], b_O [d_model] and
b_U [d_vocab_out], all zero. It holds parameters only: TL's attention buffers changed
between versions (3.9 keeps `mask` as an empty [0, 0] tensor, earlier ones as
[n_ctx, n_ctx]), so the model keeps its own.

How a model is built from a config and given these weights depends on the version:
  3.x  HookedTransformer(HookedTransformerConfig(**config)), then
       load_state_dict(state_dict, strict=False): only the buffers mask and IGNORE are missing.
  4.x  HookedTransformer is gone (importing it raises ImportError with a migration note).
       TransformerBridge.boot_native(TransformerBridgeConfig(**config)) builds the same
       model natively, and convert_tl_checkpoint(state_dict, cfg) renames the legacy keys to
       the bridge's own (blocks.0.attn.q.weight, ...), which load_state_dict(strict=True) takes.
`check` builds the model the installed version's way, runs it and minigrok's textbook
forward on the task's test sequences, in float32 and in float64, and compares the logits at
the readout positions and every cache entry that has a TL hook (TL_HOOKS).

NumPy only at import: torch and transformer_lens are imported inside the functions that use
them, so the state dict's tests run without them. `make interop` installs both in a
virtualenv of their own (TL_VERSION=3.9.0 for 3.x) and runs `check` on a trained checkpoint.
"""
import json
import os
import sys
import warnings

import numpy as np

import checkpoint
import minigrok
import tasks

# minigrok weight -> TransformerLens state-dict key (the model has one layer, block 0)
TL_KEYS = {"W_E": "embed.W_E", "W_pos": "pos_embed.W_pos",
           "W_Q": "blocks.0.attn.W_Q", "W_K": "blocks.0.attn.W_K", "W_V": "blocks.0.attn.W_V",
           "W_O": "blocks.0.attn.W_O",
           "W_in": "blocks.0.mlp.W_in", "b_in": "blocks.0.mlp.b_in",
           "W_out": "blocks.0.mlp.W_out", "b_out": "blocks.0.mlp.b_out",
           "W_U": "unembed.W_U"}

# Largest difference allowed, relative to the largest |value| of minigrok's array: float
# rounding. float32's epsilon is 1.2e-7 and a logit sums a few hundred products whose order
# differs between the two, so 1e-5 is about a hundred roundings; float64's epsilon is 2.2e-16.
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


# minigrok's cache keys and the TransformerLens hooks that hold the same activations
TL_HOOKS = {"resid_pre": "blocks.0.hook_resid_pre", "q": "blocks.0.attn.hook_q", "k": "blocks.0.attn.hook_k",
            "v": "blocks.0.attn.hook_v", "attn_scores": "blocks.0.attn.hook_attn_scores",
            "pattern": "blocks.0.attn.hook_pattern", "z": "blocks.0.attn.hook_z",
            "attn_out": "blocks.0.hook_attn_out", "resid_mid": "blocks.0.hook_resid_mid",
            "mlp_pre": "blocks.0.mlp.hook_pre", "mlp_post": "blocks.0.mlp.hook_post",
            "mlp_out": "blocks.0.hook_mlp_out", "resid_post": "blocks.0.hook_resid_post"}


def tl_state_dict(params):
    """minigrok's weights under TransformerLens's state-dict keys, with TL's zero biases:
    {key: NumPy array}. Every size comes from the weights' shapes."""
    H, d_model, d_head = params["W_Q"].shape
    zeros = lambda *shape: np.zeros(shape, params["W_Q"].dtype)
    sd = {key: np.asarray(params[name]) for name, key in TL_KEYS.items()}
    sd.update({"blocks.0.attn.b_Q": zeros(H, d_head), "blocks.0.attn.b_K": zeros(H, d_head),
               "blocks.0.attn.b_V": zeros(H, d_head), "blocks.0.attn.b_O": zeros(d_model),
               "unembed.b_U": zeros(params["W_U"].shape[1])})
    return sd


def tl_config(cfg, data):
    """The TransformerLens config fields of a minigrok model: keyword arguments of both
    HookedTransformerConfig (3.x) and TransformerBridgeConfig (4.x). d_vocab_out is stated
    because it differs from d_vocab: the '=' (CLS, SEP) token is an input, never an output."""
    return dict(model_name=f"minigrok-{cfg.task}", n_layers=1, d_model=cfg.d_model, d_head=cfg.d_head,
                n_heads=cfg.n_heads, d_mlp=cfg.d_mlp, d_vocab=data.d_vocab, d_vocab_out=data.d_vocab_out,
                n_ctx=data.n_ctx, act_fn="relu", normalization_type=None, attn_only=False,
                positional_embedding_type="standard")


def tl_model(state_dict, config, dtype="float64"):
    """The TransformerLens model with these weights, built the installed version's way:
    (model, one line saying how). state_dict is tl_state_dict's, config tl_config's."""
    import torch
    torch_dtype = getattr(torch, dtype)
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)).to(torch_dtype) for k, v in state_dict.items()}
    try:                                 # 4.x: the legacy-key converter and the native model
        from transformer_lens import TransformerBridge, TransformerBridgeConfig
        from transformer_lens.conversion_utils import convert_tl_checkpoint
    except ImportError:                  # 3.x (and earlier): HookedTransformer
        from transformer_lens import HookedTransformer, HookedTransformerConfig
        with warnings.catch_warnings():  # 3.x warns that HookedTransformer goes in 4.0: we know
            warnings.simplefilter("ignore", DeprecationWarning)
            model = HookedTransformer(HookedTransformerConfig(**config, dtype=torch_dtype, device="cpu"))
        result = model.load_state_dict(sd, strict=False)
        missing = [k for k in result.missing_keys if not k.endswith((".mask", ".IGNORE"))]
        if missing or result.unexpected_keys:
            raise RuntimeError(f"HookedTransformer.load_state_dict: missing {missing}, "
                               f"unexpected {result.unexpected_keys}")
        return model.eval(), (f"HookedTransformer(HookedTransformerConfig(**config)).load_state_dict"
                              f"(sd, strict=False); left to the model: {', '.join(result.missing_keys)}")
    cfg = TransformerBridgeConfig(**config)
    model = TransformerBridge.boot_native(cfg, dtype=torch_dtype, device="cpu")
    model.load_state_dict(convert_tl_checkpoint(sd, cfg), strict=True)
    return model.eval(), ("TransformerBridge.boot_native(TransformerBridgeConfig(**config))"
                          ".load_state_dict(convert_tl_checkpoint(sd, cfg), strict=True)")


def relative_difference(ours, theirs):
    """max |theirs - ours| / max |ours| over the finite entries; inf if the arrays differ
    in shape or in where they are -inf (the masked attention scores)."""
    theirs = np.asarray(theirs, np.float64)
    ours = np.asarray(ours, np.float64)
    finite = np.isfinite(ours)
    if theirs.shape != ours.shape or not np.array_equal(finite, np.isfinite(theirs)) \
            or not np.array_equal(ours[~finite], theirs[~finite]):
        return np.inf
    return np.abs(theirs[finite] - ours[finite]).max() / max(np.abs(ours[finite]).max(), 1e-30)


def compare(params, cfg, data, dtype):
    """Run TransformerLens and minigrok on the test sequences in `dtype`: (route, rows,
    passed, accuracy), each row (name, relative difference or None if not compared, note)."""
    import torch
    params = {k: v.astype(dtype) for k, v in params.items()}
    tokens = data.evals["test"][0]                                       # [batch, pos]
    model, route = tl_model(tl_state_dict(params), tl_config(cfg, data), dtype)
    with torch.no_grad():
        tl_logits, tl_cache = model.run_with_cache(torch.from_numpy(tokens))
    tl_logits = tl_logits.numpy()[:, tokens.shape[1] - data.n_read:]     # [batch, n_read, d_vocab_out]
    logits, cache = minigrok.forward(params, tokens, data.n_read)        # the textbook model
    tol = TOLERANCE[dtype]
    rows = [("logits", relative_difference(logits, tl_logits), "at the readout positions")]
    for name, hook in TL_HOOKS.items():
        if hook not in tl_cache:
            rows.append((name, None, f"{hook} is not in TransformerLens's cache"))
            continue
        theirs = tl_cache[hook].numpy()
        # TL 4.3's bridge fills hook_attn_scores with the softmax pattern: say so, do not fail on it
        if name == "attn_scores" and np.array_equal(theirs, tl_cache[TL_HOOKS["pattern"]].numpy()):
            rows.append((name, None, f"{hook} holds the pattern (after softmax) in this version"))
            continue
        rows.append((name, relative_difference(cache[name], theirs), hook))
    passed = all(d is None or d <= tol for _, d, _ in rows)          # logits are always compared
    accuracy = {"minigrok": (logits.argmax(-1) == data.evals["test"][1]).mean(),
                "TransformerLens": (tl_logits.argmax(-1) == data.evals["test"][1]).mean()}
    return route, rows, passed, accuracy


def check(path, say=print):
    """Compare TransformerLens with minigrok on checkpoint `path`: 0 if they agree to float
    rounding in float32 and float64, 1 if not."""
    from importlib.metadata import version
    cfg, params, _ = minigrok.load(path)
    data = tasks.make_data(cfg)
    say(f"TransformerLens {version('transformer_lens')}, torch {version('torch')}; {path}: task {cfg.task}, "
        f"{len(data.evals['test'][0])} test sequences, logits read at the last {data.n_read} position(s)")
    ok = True
    for dtype in ("float32", "float64"):
        route, rows, passed, accuracy = compare(params, cfg, data, dtype)
        if dtype == "float32":
            say(f"model: {route}")
        say(f"{dtype} (tolerance {TOLERANCE[dtype]:.0e} of max |minigrok's value|): "
            f"test accuracy {accuracy['TransformerLens']:.4%} in TransformerLens, {accuracy['minigrok']:.4%} in minigrok")
        for name, d, note in rows:
            verdict = "not compared" if d is None else ("equal" if d <= TOLERANCE[dtype] else "DIFFERENT")
            shown = "" if d is None else f"{d:.1e}"
            say(f"  {name:<12} {shown:>8}  {verdict:<12}  {note}")
        ok &= passed
    say("interop: TransformerLens computes minigrok's logits and activations to float rounding" if ok
        else "interop: TransformerLens and minigrok DIFFER beyond float rounding")
    return 0 if ok else 1


def export(path, out, overwrite=False):
    """Write checkpoint `path` as a TransformerLens state dict (torch.save) to `out`, and
    tl_config's fields as JSON beside it (`out` with .json). Neither replaces a file unless
    overwrite says so, and never the checkpoint itself; each is written atomically."""
    config_path = os.path.splitext(out)[0] + ".json"
    if config_path == out:
        raise minigrok.UsageError(f"OUT {out} ends in .json, the name of its config; give a .pt name")
    for p in (out, config_path):
        if os.path.abspath(p) == os.path.abspath(path) or (os.path.exists(p) and os.path.samefile(p, path)):
            raise minigrok.UsageError(f"export would write {p}, the checkpoint being exported; give another OUT")
        if os.path.isdir(p):
            raise minigrok.UsageError(f"{p} is a directory; give a file name for OUT")
        if os.path.lexists(p) and not overwrite:
            raise minigrok.UsageError(f"{p} exists; interop will not replace it: add --overwrite to replace it, "
                                      f"or give another OUT")
    import torch
    cfg, params, _ = minigrok.load(path)
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tl_state_dict(params).items()}
    config = json.dumps(tl_config(cfg, tasks.make_data(cfg)), indent=1).encode()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    checkpoint.write_atomically(out, lambda f: torch.save(sd, f))
    checkpoint.write_atomically(config_path, lambda f: f.write(config))
    print(f"wrote {out} ({len(sd)} tensors) and {config_path}")
    return 0


USAGE = "usage: python interop.py export CHECKPOINT OUT.pt [--overwrite] | python interop.py check CHECKPOINT"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["-h"], ["--help"]):
        print(__doc__.split("\n\n")[0] + "\n\n" + USAGE)
        return 0
    overwrite = argv[:1] == ["export"] and "--overwrite" in argv
    argv = [a for a in argv if not (overwrite and a == "--overwrite")]
    if not argv or (argv[0], len(argv)) not in (("export", 3), ("check", 2)):
        print(f"interop: error: {USAGE}", file=sys.stderr)
        return 2
    try:
        checkpoint.read_header(argv[1])              # a missing or unreadable file: one line, exit 2, before
                                                   # the imports (export and check load it whole, checked)
        try:
            import torch  # noqa: F401
            if argv[0] == "check":
                import transformer_lens  # noqa: F401
        except ImportError as e:
            raise minigrok.UsageError(f"{argv[0]} needs torch{' and transformer_lens' * (argv[0] == 'check')} "
                                      f"({e}); `make interop` installs them in a virtualenv of their own")
        return export(argv[1], argv[2], overwrite) if argv[0] == "export" else check(argv[1])
    except minigrok.UsageError as e:
        print(f"interop: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
