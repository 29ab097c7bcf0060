"""Speed measurements for minigrok (`make bench`), and the sweep that chose the defaults.

    python bench.py time     # ms per epoch of both engines, GFLOP/s, matmul rate, ratio to the floor
    python bench.py sweep    # epochs and seconds to grok modular addition, per setting and seed

Timings are medians over many epochs after a warm-up; the machine is shared, so compare
numbers from one session only. Builds on minigrok.py and fast.py; reads nothing else.
"""
import argparse
import json
import time

import numpy as np

import fast
import minigrok as mg
import tasks


def median_ms(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(ts))


def matmul_gflops(dtype="float32"):
    """This machine's matrix-product rate through NumPy, on the shape of the MLP's products."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3830, 128)).astype(dtype)
    w = rng.standard_normal((128, 512)).astype(dtype)
    ms = median_ms(lambda: a @ w, 200, 20)
    return 2 * 3830 * 128 * 512 / ms / 1e6


def epoch_gflop(cfg, data, plan):
    """Floating-point operations of one full-batch epoch as minigrok computes it (matmuls
    only: forward, backward, the (token, position) tables and the composed weights), in
    GFLOP. `plan` is the training set's index_plan: it says which positions need one-hot
    sums and how many readout rows are in use."""
    B, T = data.train[0].shape
    varying = lambda sum_by: sum(not isinstance(by, int) for by in sum_by)   # positions whose token varies
    R, V, Vo = data.n_read, data.d_vocab, data.d_vocab_out
    d, H, dh, m = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
    U, used = V * T, len(plan["read_used"])                   # rows of the key/value and the query tables
    per_row = d * m + m * Vo + d * Vo                         # z @ W_Oin, mlp_post @ W_outU, z @ W_OU
    dense = 3 * 2 * B * R * per_row                           # forward + two backward products each
    attention = 2 * B * H * R * T * dh * 3                    # z, dpattern, dv
    tables = 2 * (6 * U * d * d + 3 * used * d * d + 3 * H * used * U * dh)   # k/v, q tables and QK table, fwd + bwd
    composed = 2 * 3 * (d * d * m + d * d * Vo + m * d * Vo + used * d * (m + Vo))   # W_O W_in etc., read_in/U, and back
    lookups = 2 * V * B * (varying(plan["sum_by"]) * H * dh + varying(plan["sum_by"][T - R:]) * (m + Vo))   # one-hot matmuls
    return (dense + attention + tables + composed + lookups) / 1e9


def time_config(name, cfg, epochs, warmup):
    """Median ms of a full-batch epoch with cfg's engine; for the fast engine also the
    FLOP count of its computation and the rate it achieves."""
    data = tasks.make_data(cfg)
    params = mg.init_params(cfg, data.d_vocab, data.d_vocab_out, data.n_ctx)
    opt = mg.adamw_init(params)
    tokens, targets = (mg.xp.asarray(a) for a in data.train)
    plan = fast.index_plan(tokens, data.n_read, params) if cfg.engine == "fast" else None   # once, as train() does
    epoch = [0]

    def step():
        mg.train_epoch(params, opt, tokens, targets, cfg, epoch[0], data.n_read, plan)
        epoch[0] += 1
    ms = median_ms(step, epochs, warmup)
    row = dict(config=name, engine=cfg.engine, n_train=len(tokens), ms_per_epoch=round(ms, 2))
    if plan is not None:
        gflop = epoch_gflop(cfg, data, plan)
        row.update(gflop_per_epoch=round(gflop, 3), achieved_gflops=round(gflop / ms * 1e3, 1))
    return row


def cmd_time(args):
    mg.use_device(args.device)
    rate = matmul_gflops()
    print(f"matmul float32 [3830,128]@[128,512]: {rate:.0f} GFLOP/s")
    rows = []
    # the textbook engine is slower: fewer epochs are timed
    runs = (("nanda", mg.PRESETS["nanda"], "fast", args.epochs), ("nanda", mg.PRESETS["nanda"], "plain", args.epochs // 5),
            ("default", {}, "fast", args.epochs))
    for name, overrides, engine, epochs in runs:
        cfg = mg.Config(**{**tasks.TASK_DEFAULTS["add"], **overrides, "engine": engine})
        r = time_config(name, cfg, epochs, min(args.warmup, epochs))
        if "gflop_per_epoch" in r:
            r["floor_ms"] = round(r["gflop_per_epoch"] / rate * 1e3, 2)
            r["ratio_to_floor"] = round(r["ms_per_epoch"] / r["floor_ms"], 2)
        rows.append(r)
        print(json.dumps(r))
    return rows


# Settings tried for the default `python minigrok.py --task add` (README reports them).
SWEEP = [
    dict(frac_train=0.3, lr=3e-3),
    dict(frac_train=0.3, lr=5e-3),
    dict(frac_train=0.3, lr=1e-2),
    dict(frac_train=0.3, lr=5e-3, weight_decay=2.0),
    dict(frac_train=0.25, lr=5e-3),
    dict(frac_train=0.4, lr=5e-3),
    dict(frac_train=0.3, lr=5e-3, d_mlp=256),
    dict(frac_train=0.3, lr=5e-3, d_model=64, d_head=16, d_mlp=256),
]


def cmd_sweep(args):
    mg.use_device(args.device)
    print("| setting | seed | train 100% (epoch) | test 99% (epoch) | test 99% (s) | ratio |")
    print("|---|---|---|---|---|---|")
    for setting in SWEEP:
        for seed in args.seeds:
            cfg = mg.Config(**{**setting, "seed": seed, "epochs": args.max_epochs, "eval_every": 20,
                               "save_every": 10**9})
            _, history, _ = mg.train(cfg, "/tmp/minigrok-sweep.npz", verbose=False, stop_at=0.99)
            ms = mg.milestones(history)
            tr, te = ms["train_acc_100"], ms["test_acc_99"]
            label = ", ".join(f"{k}={v}" for k, v in setting.items())
            ratio = f"{te[0] / tr[0]:.1f}" if tr and te else "-"
            print(f"| {label} | {seed} | {tr[0] if tr else '-'} | {te[0] if te else '-'} | "
                  f"{te[1] if te else '-'} | {ratio} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("time")
    t.add_argument("--epochs", type=int, default=100)
    t.add_argument("--warmup", type=int, default=10)
    s = sub.add_parser("sweep")
    s.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    s.add_argument("--max-epochs", type=int, default=6000)
    for p in (t, s):
        p.add_argument("--device", default="cpu", choices=("cpu", "gpu", "auto"))
    args = ap.parse_args()
    {"time": cmd_time, "sweep": cmd_sweep}[args.cmd](args)


if __name__ == "__main__":
    main()
