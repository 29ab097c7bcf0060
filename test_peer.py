"""Tests of the PyTorch peer (peer_torch.py): it computes what minigrok computes, and the
bench times both. Skipped where torch is not installed (`make bench-peer` installs it);
the check that minigrok and bench never need torch runs everywhere."""
import subprocess
import sys
from types import SimpleNamespace

import pytest


def test_bench_does_not_import_torch():
    code = "import sys, bench, minigrok, fast, tasks; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("layout", ["add", "sort"])
def test_peer_computes_what_minigrok_computes(layout):
    """float64, non-zero biases: logits, loss, every gradient and three AdamW steps equal
    minigrok's textbook model to 1e-10 of each array's largest entry (seen: ~1e-15)."""
    pytest.importorskip("torch")
    import peer_torch
    err = peer_torch.check(peer_torch.CHECK_CONFIGS[layout])
    assert set(err) == {"logits", "loss", "grads", "adamw_step_1", "adamw_step_2", "adamw_step_3"}
    assert max(err.values()) < 1e-10, err


def test_check_sees_a_difference():
    """The check is not blind: a peer that leaves out b_out is caught."""
    pytest.importorskip("torch")
    import peer_torch
    forward = peer_torch.forward
    try:
        peer_torch.forward = lambda W, tokens, n_read: forward({**W, "b_out": 0 * W["b_out"]}, tokens, n_read)
        err = peer_torch.check(peer_torch.CHECK_CONFIGS["add"])
    finally:
        peer_torch.forward = forward
    assert err["logits"] > 1e-3


def test_bench_times_minigrok_and_the_peer():
    """bench's comparison runs both programs on the same task and reports both medians."""
    pytest.importorskip("torch")
    import bench
    args = SimpleNamespace(peer="on", rounds=2, steps=1)
    tiny = dict(d_model=16, n_heads=2, d_head=8, d_mlp=32)
    runs = (("add", "tiny", dict(p=13, **tiny)), ("sort", "tiny", dict(n=8, n_train=64, n_test=16, batch_size=32, **tiny)))
    rows = bench.compare_with_peer(args, "cpu", runs=runs)
    assert [r["task"] for r in rows] == ["add", "sort"]
    assert rows[0]["step"] == "full batch of 50" and rows[1]["step"] == "minibatch of 32"
    assert all(r["minigrok_ms"] > 0 and r["peer_ms"] > 0 for r in rows)
    assert all(r["ratio"] == round(r["minigrok_ms"] / r["peer_ms"], 2) for r in rows)
