"""Tests that need a CUDA GPU (CuPy): minigrok on the device computes what it computes on the
CPU. Marked `gpu` and skipped where CuPy finds no device; `make gpu-check` runs them first.

Each compares the same computation with NumPy on the CPU and with CuPy on the GPU, from the
same weights and data: both engines' logits and every gradient, an AdamW step, evaluation
with greedy decoding (sort), a checkpoint written from the GPU read back on the CPU, and a
run resumed across devices. Tolerances, relative to each array's largest entry: 1e-12 in
float64 (a few roundings of sums taken in another order); 1e-4 in float32, about a thousand
roundings of float32's 1.2e-7, room for sums of a few hundred products taken in another
order by the GPU's libraries. They are stated here, before any device has run them.
"""
import os

import numpy as np
import pytest

import checkpoint
import minigrok as mg

try:
    import cupy
    GPU = bool(cupy.is_available())
except Exception:           # not installed, or no CUDA libraries
    cupy, GPU = None, False

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not GPU, reason="needs a CUDA GPU (CuPy finds none)")]
TOLERANCE = {"float64": 1e-12, "float32": 1e-4}


@pytest.fixture(autouse=True)
def back_to_numpy():
    yield
    mg.set_array_module(np)


def on(module, arrays):
    """The arrays of a dict on NumPy or CuPy."""
    return {k: (module.asarray(v) if module is cupy else checkpoint.to_numpy(v)) for k, v in arrays.items()}


def rel_err(a, b):
    a, b = checkpoint.to_numpy(a).astype(np.float64), checkpoint.to_numpy(b).astype(np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def small(layout, dtype):
    """Weights with non-zero biases and a batch of tokens, for the add or the sort layout."""
    if layout == "add":
        cfg = mg.Config(task="add", p=23, d_model=16, n_heads=2, d_head=8, d_mlp=32, dtype=dtype)
        n_read, sep = 1, 2
    else:
        cfg = mg.Config(task="sort", n=12, d_model=16, n_heads=2, d_head=8, d_mlp=32, dtype=dtype)
        n_read, sep = 5, 5
    params = mg.init_params(cfg)
    rng = np.random.default_rng(7)
    params["b_in"] = (rng.standard_normal(params["b_in"].shape) * 0.5).astype(dtype)
    params["b_out"] = (rng.standard_normal(params["b_out"].shape) * 0.5).astype(dtype)
    d_vocab = params["W_E"].shape[0]
    tokens = rng.integers(0, d_vocab - 1, size=(64, sep + n_read))
    tokens[:, sep] = d_vocab - 1
    targets = rng.integers(0, d_vocab - 1, size=(64, n_read))
    return cfg, params, tokens, targets, n_read


def step(module, engine, params, tokens, targets, n_read):
    """Logits, loss, gradients on `module`."""
    mg.set_array_module(module)
    p = on(module, params)
    tok, tgt = module.asarray(tokens), module.asarray(targets)
    logits, cache = mg.ENGINES[engine].forward(p, tok, n_read)
    loss, dlogits = mg.cross_entropy(logits, tgt)
    return logits, loss, mg.ENGINES[engine].backward(p, cache, dlogits)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layout", ["add", "sort"])
@pytest.mark.parametrize("engine", ["fast", "plain"])
def test_logits_and_gradients_on_the_gpu_equal_numpys(engine, layout, dtype):
    cfg, params, tokens, targets, n_read = small(layout, dtype)
    logits, loss, grads = step(np, engine, params, tokens, targets, n_read)
    glogits, gloss, ggrads = step(cupy, engine, params, tokens, targets, n_read)
    assert isinstance(glogits, cupy.ndarray) and all(isinstance(g, cupy.ndarray) for g in ggrads.values())
    tol = TOLERANCE[dtype]
    assert rel_err(glogits, logits) < tol and abs(gloss - loss) < tol * abs(loss)
    for k in grads:
        assert ggrads[k].dtype == grads[k].dtype and rel_err(ggrads[k], grads[k]) < tol, k


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_an_adamw_step_on_the_gpu_equals_numpys(dtype):
    cfg, params, tokens, targets, n_read = small("add", dtype)
    after = {}
    for module in (np, cupy):
        _, _, grads = step(module, "fast", params, tokens, targets, n_read)
        p = on(module, params)
        state = mg.adamw_init(p)
        for _ in range(3):
            mg.adamw_step(p, grads, state, cfg)
        after[module.__name__] = p
    for k in params:
        assert rel_err(after["cupy"][k], after["numpy"][k]) < TOLERANCE[dtype], k


@pytest.mark.parametrize("engine", ["fast", "plain"])
def test_evaluation_with_greedy_decoding_on_the_gpu(engine):
    """Sort, decoded greedily: the same predictions, accuracies and loss as on the CPU."""
    cfg = mg.Config(task="sort", n=12, n_train=300, n_test=200, d_model=16, n_heads=2, d_head=8, d_mlp=32,
                    dtype="float64")
    data = mg.tasks.make_data(cfg)
    params = mg.init_params(cfg)
    tokens, targets = data.evals["test"]
    results = {}
    for module in (np, cupy):
        mg.set_array_module(module)
        p, tok, tgt = on(module, params), module.asarray(tokens), module.asarray(targets)
        preds = checkpoint.to_numpy(mg.predict(p, tok, data.n_read, True, mg.ENGINES[engine]))
        results[module.__name__] = (preds, mg.evaluate(p, tok, tgt, data.n_read, True, mg.ENGINES[engine]))
    (preds, ev), (gpreds, gev) = results["numpy"], results["cupy"]
    assert (gpreds == preds).all()
    assert gev["acc"] == ev["acc"] and gev["seq_acc"] == ev["seq_acc"]
    assert abs(gev["loss"] - ev["loss"]) < 1e-12 * ev["loss"]


def train(tmp_path, name, module, epochs, resume=False, dtype="float64"):
    mg.set_array_module(module)
    cfg = mg.Config(task="add", p=23, d_model=16, n_heads=2, d_head=8, d_mlp=32, epochs=epochs, eval_every=5,
                    snapshot_every=5, dtype=dtype)
    path = str(tmp_path / name)
    params, history, code = mg.train(cfg, path, resume=resume, verbose=False)
    assert code == 0
    return path


def test_a_checkpoint_saved_from_the_gpu_loads_on_the_cpu_with_the_same_logits(tmp_path):
    path = train(tmp_path, "gpu.npz", cupy, 20, dtype="float32")
    cfg, params, history = mg.load(path)                       # NumPy arrays, whatever trained them
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in params.values())
    tokens, targets = mg.tasks.make_data(cfg).evals["test"]
    mg.set_array_module(np)
    cpu = mg.forward(params, tokens, 1)[0]
    mg.set_array_module(cupy)
    gpu = mg.forward(on(cupy, params), cupy.asarray(tokens), 1)[0]
    assert rel_err(gpu, cpu) < TOLERANCE["float32"]
    mg.set_array_module(np)                 # the accuracy the GPU recorded, to a near-tie or two
    assert abs(mg.evaluate(params, tokens, targets, 1, False)["acc"] - history["test_acc"][-1]) <= 2 / len(tokens)


@pytest.mark.parametrize("first, then", [("gpu", "cpu"), ("cpu", "gpu")])
def test_a_run_resumes_across_devices(tmp_path, first, then):
    """Ten epochs on one device, ten more resumed on the other: the run of twenty on the
    CPU, to float64 rounding grown over twenty Adam steps; the same history rows."""
    device = {"gpu": cupy, "cpu": np}
    whole = checkpoint.load_checkpoint(train(tmp_path, "whole.npz", np, 20))
    train(tmp_path, "cut.npz", device[first], 10)
    cut = checkpoint.load_checkpoint(train(tmp_path, "cut.npz", device[then], 20, resume=True))
    assert cut["epoch"] == 20 and cut["history"]["epoch"] == whole["history"]["epoch"]
    assert [e for e, _ in cut["snapshots"]] == [e for e, _ in whole["snapshots"]]
    for k in whole["params"]:
        assert rel_err(cut["params"][k], whole["params"][k]) < 1e-9, k
        assert rel_err(cut["opt"]["v"][k], whole["opt"]["v"][k]) < 1e-9, k


def test_the_command_line_trains_on_the_gpu(tmp_path, capsys):
    out = str(tmp_path / "add.npz")
    code = mg.main(["--task", "add", "--p", "23", "--d-model", "16", "--n-heads", "2", "--d-mlp", "32",
                    "--epochs", "30", "--device", "gpu", "--quiet", "--out", out])
    assert code == 0 and mg.xp.module is cupy
    assert os.path.exists(out) and mg.run_state(out).finished
