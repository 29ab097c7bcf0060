"""Tests of interop.py: the TransformerLens state dict's keys, shapes and zero biases and
the command line's bad input (NumPy only), and, where torch and transformer_lens are
installed (`make interop`), that TransformerLens computes minigrok's logits and cache."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import interop
import checkpoint
import minigrok
import tasks

HERE = os.path.dirname(os.path.abspath(__file__))
HAS_TL = importlib.util.find_spec("transformer_lens") is not None


def small(dtype="float64"):
    """A small addition model (p 13) with random weights and non-zero MLP biases, so a
    bias that went to the wrong place would show."""
    cfg = minigrok.Config(task="add", p=13, d_model=16, n_heads=4, d_head=4, d_mlp=24, dtype=dtype)
    data = tasks.make_data(cfg)
    params = minigrok.init_params(cfg)
    rng = np.random.default_rng(1)
    params["b_in"] = rng.standard_normal(cfg.d_mlp).astype(dtype)
    params["b_out"] = rng.standard_normal(cfg.d_model).astype(dtype)
    return cfg, data, params


def save(path, cfg, params):
    checkpoint.save_checkpoint(str(path), cfg, params, minigrok.adamw_init(params), {}, [], 0, 0.0)


def test_state_dict_keys_shapes_and_zero_biases():
    cfg, data, params = small()
    sd = interop.tl_state_dict(params)
    H, d, dh, m, V, Vo = 4, 16, 4, 24, 14, 13
    want = {"embed.W_E": (V, d), "pos_embed.W_pos": (3, d),
            "blocks.0.attn.W_Q": (H, d, dh), "blocks.0.attn.W_K": (H, d, dh), "blocks.0.attn.W_V": (H, d, dh),
            "blocks.0.attn.W_O": (H, dh, d), "blocks.0.attn.b_Q": (H, dh), "blocks.0.attn.b_K": (H, dh),
            "blocks.0.attn.b_V": (H, dh), "blocks.0.attn.b_O": (d,),
            "blocks.0.mlp.W_in": (d, m), "blocks.0.mlp.b_in": (m,), "blocks.0.mlp.W_out": (m, d),
            "blocks.0.mlp.b_out": (d,), "unembed.W_U": (d, Vo), "unembed.b_U": (Vo,)}
    assert {k: v.shape for k, v in sd.items()} == want
    for name, key in interop.TL_KEYS.items():
        assert np.array_equal(sd[key], params[name])             # the same numbers, not transposed
    for key in ("blocks.0.attn.b_Q", "blocks.0.attn.b_K", "blocks.0.attn.b_V", "blocks.0.attn.b_O", "unembed.b_U"):
        assert not sd[key].any() and sd[key].dtype == np.float64


def test_config_states_both_vocabularies():
    cfg, data, _ = small()
    c = interop.tl_config(cfg, data)
    assert (c["d_vocab"], c["d_vocab_out"], c["n_ctx"]) == (14, 13, 3)
    assert (c["n_layers"], c["d_model"], c["n_heads"], c["d_head"], c["d_mlp"]) == (1, 16, 4, 4, 24)
    assert c["act_fn"] == "relu" and c["normalization_type"] is None and not c["attn_only"]
    json.dumps(c)                                                 # the export writes it as JSON


def test_relative_difference_on_masked_scores():
    ours = np.array([[0.5, -np.inf], [1.0, 2.0]])
    assert interop.relative_difference(ours, ours + [[1e-3, 0], [0, 0]]) == pytest.approx(5e-4)
    assert interop.relative_difference(ours, np.where(np.isinf(ours), -1e5, ours)) == np.inf   # mask differs
    assert interop.relative_difference(ours, ours[:1]) == np.inf


@pytest.mark.parametrize("args", [["check", "no_such.npz"], ["export", "no_such.npz", "out.pt"], ["check"], []])
def test_bad_input_is_one_line_and_exit_2(args, tmp_path):
    r = subprocess.run([sys.executable, os.path.join(HERE, "interop.py"), *args], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("interop: error:")


@pytest.mark.skipif(HAS_TL, reason="transformer_lens is installed")
def test_check_without_transformer_lens_says_how_to_get_it(tmp_path):
    cfg, _, params = small()
    save(tmp_path / "m.npz", cfg, params)
    r = subprocess.run([sys.executable, os.path.join(HERE, "interop.py"), "check", str(tmp_path / "m.npz")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "make interop" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_transformer_lens_computes_minigroks_logits_and_cache(dtype):
    pytest.importorskip("transformer_lens")
    cfg, data, params = small()
    route, rows, passed, accuracy = interop.compare(params, cfg, data, dtype)
    compared = {name: d for name, d, _ in rows if d is not None}
    assert passed and {"logits", "pattern", "mlp_post", "resid_post"} <= set(compared)
    assert max(compared.values()) <= interop.TOLERANCE[dtype]
    assert accuracy["minigrok"] == accuracy["TransformerLens"]


def test_exported_files_load_as_the_readme_says(tmp_path):
    """The files `export` writes, loaded by the README's recipe for the installed version."""
    pytest.importorskip("transformer_lens")
    import torch
    cfg, data, params = small()
    save(tmp_path / "m.npz", cfg, params)
    assert interop.main(["export", str(tmp_path / "m.npz"), str(tmp_path / "m_tl.pt")]) == 0
    config = json.load(open(tmp_path / "m_tl.json"))
    state_dict = torch.load(tmp_path / "m_tl.pt")
    try:
        from transformer_lens import TransformerBridge, TransformerBridgeConfig
        from transformer_lens.conversion_utils import convert_tl_checkpoint
        tl_cfg = TransformerBridgeConfig(**config, dtype=torch.float64)
        model = TransformerBridge.boot_native(tl_cfg, dtype=torch.float64)
        model.load_state_dict(convert_tl_checkpoint(state_dict, tl_cfg), strict=True)
    except ImportError:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
        model = HookedTransformer(HookedTransformerConfig(**config, dtype=torch.float64))
        result = model.load_state_dict(state_dict, strict=False)
        assert not result.unexpected_keys
        assert all(k.endswith((".mask", ".IGNORE")) for k in result.missing_keys)
    tokens = data.evals["test"][0]
    with torch.no_grad():
        logits = model(torch.from_numpy(tokens))[:, -1].numpy()
    assert np.abs(logits - minigrok.forward(params, tokens, 1)[0][:, 0]).max() < 1e-12
