"""Speed measurements for minigrok (`make bench`), and the sweep that chose the defaults.

    python bench.py time     # ms per epoch of both engines, GFLOP/s, matmul rate, ratio to the floor;
                             # then ms per training step of add, max and sort, against the PyTorch peer
    python bench.py sweep    # epochs and seconds to grok modular addition, per setting and seed

Timings are medians over many epochs after a warm-up; the machine is shared, so compare
numbers from one session only. minigrok and its PyTorch peer (peer_torch.py, the same model
in plain PyTorch) are timed in the same run, in alternating rounds, so that a slow spell of
the machine falls on both. The peer needs torch (`make bench-peer` installs it); without it
that part is skipped. Builds on minigrok.py, fast.py and, when torch is there, peer_torch.py.
"""
import argparse
import importlib.util
import itertools
import json
import os
import sys
import time

import numpy as np

import fast
import minigrok as mg
import tasks


def synchronize():
    """Wait until the GPU has done the work queued so far (CuPy returns before it is done),
    so that a timing counts the work; nothing on the CPU."""
    if mg.xp.module is not np:
        mg.xp.module.cuda.Device().synchronize()


def median_ms(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    synchronize()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        synchronize()
        ts.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(ts))


def matmul_gflops(dtype="float32"):
    """This machine's matrix-product rate through the array module (NumPy, or CuPy on the
    GPU), on the shape of the MLP's products."""
    rng = np.random.default_rng(0)
    a = mg.xp.asarray(rng.standard_normal((3830, 128)).astype(dtype))
    w = mg.xp.asarray(rng.standard_normal((128, 512)).astype(dtype))
    ms = median_ms(lambda: a @ w, 200, 20)
    return 2 * 3830 * 128 * 512 / ms / 1e6


def epoch_gflop(cfg, data, plan):
    """Floating-point operations of one full-batch epoch as minigrok computes it (matmuls
    only: forward, backward, the (token, position) tables and the composed weights), in
    GFLOP. `plan` is the training set's index_plan: it says which positions need one-hot
    sums and how many readout rows are in use."""
    B, T = data.train[0].shape
    sum_by = fast.sum_plan(plan, data.d_vocab, cfg.dtype)
    varying = lambda sum_by: sum(not isinstance(by, int) for by in sum_by)   # positions whose token varies
    R, V, Vo = data.n_read, data.d_vocab, data.d_vocab_out
    d, H, dh, m = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
    U, used = V * T, len(plan["read_used"])                   # rows of the key/value and the query tables
    per_row = d * m + m * Vo + d * Vo                         # z @ W_Oin, mlp_post @ W_outU, z @ W_OU
    dense = 3 * 2 * B * R * per_row                           # forward + two backward products each
    attention = 2 * B * H * R * T * dh * 3                    # z, dpattern, dv
    tables = 2 * (6 * U * d * d + 3 * used * d * d)           # k/v and q tables, fwd + bwd
    lookups = 2 * V * B * (varying(sum_by) * H * dh + varying(sum_by[T - R:]) * (m + Vo))   # one-hot matmuls
    if plan["attention"] == "table":
        tables += 2 * 3 * H * used * U * dh                   # the QK table, fwd + bwd
    else:
        attention += 2 * B * H * R * T * dh * 3               # scores, dq, dk per example
        lookups += 2 * V * B * (varying(sum_by) * H * dh + varying(sum_by[T - R:]) * H * dh)   # dk and dq sums
    composed = 2 * 3 * (d * d * m + d * d * Vo + m * d * Vo + used * d * (m + Vo))   # W_O W_in etc., read_in/U, and back
    return (dense + attention + tables + composed + lookups) / 1e9


def time_config(name, cfg, epochs, warmup):
    """Median ms of a full-batch epoch with cfg's engine; for the fast engine also the
    FLOP count of its computation and the rate it achieves."""
    data = tasks.make_data(cfg)
    params = mg.init_params(cfg)
    opt = mg.adamw_init(params)
    tokens, targets = (mg.xp.asarray(a) for a in data.train)
    engine = mg.training_engine(cfg, tokens, data.n_read, params)   # once, as train() does
    plan = fast.index_plan(tokens, data.n_read, params) if cfg.engine == "fast" else None   # for the FLOP count
    epoch = [0]

    def step():
        mg.train_epoch(params, opt, tokens, targets, cfg, epoch[0], data.n_read, engine)
        epoch[0] += 1
    ms = median_ms(step, epochs, warmup)
    row = dict(config=name, engine=cfg.engine, n_train=len(tokens), ms_per_epoch=round(ms, 2))
    if plan is not None:
        gflop = epoch_gflop(cfg, data, plan)
        row.update(gflop_per_epoch=round(gflop, 3), achieved_gflops=round(gflop / ms * 1e3, 1))
    return row


def cmd_time(args):
    if args.peer == "on" and importlib.util.find_spec("torch") is None:   # say so now, not after the engines' timings
        load_peer("on")
    mg.use_device(args.device)
    rate = matmul_gflops()
    print(f"matmul float32 [3830,128]@[128,512] on the {args.device}: {rate:.0f} GFLOP/s")
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
    rows += compare_with_peer(args, "cpu" if mg.xp.module is np else "cuda")
    return rows


# ---------------------------------------------------------------- minigrok against its PyTorch peer
# One training step of each task as its default run takes it: addition at Nanda et al.'s
# config takes one full-batch step per epoch, and max and sort take minibatches of 1,000.
PEER_RUNS = (("add", "nanda", mg.PRESETS["nanda"]), ("max", "default", {}), ("sort", "default", {}))


def blas_threads():
    """The number of threads NumPy's BLAS (OpenBLAS) runs: OPENBLAS_NUM_THREADS or
    OMP_NUM_THREADS when set, else one per CPU this process may use."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return len(os.sched_getaffinity(0))


def load_peer(mode):
    """The peer_torch module, or None when the peer is off or torch is missing ('on': an error)."""
    if mode == "off":
        return None
    try:
        import peer_torch
    except ImportError as e:
        if mode == "on":
            sys.exit(f"bench: --peer on needs torch ({e}); `make bench-peer` installs it")
        return None
    return peer_torch


def minigrok_stepper(cfg, data):
    """A function that takes one step of minigrok's training on the next batch, as
    train_epoch does. A minibatch makes its index plan inside fast.forward, every step.
    The full batch's plan is made once, as train() makes it."""
    params = mg.init_params(cfg)
    opt = mg.adamw_init(params)
    tokens, targets = (mg.xp.asarray(a) for a in data.train)
    full, batch = mg.training_engine(cfg, tokens, data.n_read, params), mg.ENGINES[cfg.engine]
    order = itertools.cycle([None if isinstance(i, slice) else mg.xp.asarray(i)
                             for i in mg.epoch_batches(cfg, len(tokens), 0)])   # train_epoch's batches (epoch 0)

    def step():
        idx = next(order)
        if idx is None:
            mg.train_epoch(params, opt, tokens, targets, cfg, 0, data.n_read, full)
        else:                          # a set of batch_size examples is one full-batch epoch
            mg.train_epoch(params, opt, tokens[idx], targets[idx], cfg, 0, data.n_read, batch)
    return step


def peer_stepper(peer, cfg, data, device="cpu"):
    """The same step for the PyTorch peer: the same initial weights and batches."""
    import torch
    params = mg.init_params(cfg)
    _, peer_step = peer.trainer(cfg, params, device)
    tokens, targets = (torch.from_numpy(a).to(device) for a in data.train)
    order = itertools.cycle([None if isinstance(i, slice) else torch.from_numpy(i).to(device)
                             for i in mg.epoch_batches(cfg, len(tokens), 0)])

    def step():
        idx = next(order)
        peer_step(tokens, targets) if idx is None else peer_step(tokens[idx], targets[idx])
    return step


def cpu_seconds():
    """(CPU seconds the whole machine has been busy, CPU seconds this process has used).
    The first is None where there is no /proc/stat (not Linux)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:8]]   # user nice system idle iowait irq softirq
        machine = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    except OSError:
        machine = None
    own = os.times()
    return machine, own.user + own.system


def alternate(steps, rounds, repeats, warmup, sync=lambda: None):
    """Median ms per call of each function in `steps` (a dict). In each round, each function
    runs `warmup` untimed calls and then `repeats` timed calls, one function after the other.
    The order flips every round, so a slow spell of the shared machine falls on all of them.
    sync() waits for a GPU's queued work, before a timing starts and before it ends."""
    times = {name: [] for name in steps}
    for r in range(rounds):
        for name in (list(steps) if r % 2 == 0 else list(steps)[::-1]):
            for _ in range(warmup):
                steps[name]()
            sync()
            for _ in range(repeats):
                t0 = time.perf_counter()
                steps[name]()
                sync()
                times[name].append(time.perf_counter() - t0)
    return {name: round(1e3 * float(np.median(ts)), 2) for name, ts in times.items()}


def compare_with_peer(args, device="cpu", runs=PEER_RUNS):
    """For each (task, label, config overrides) in `runs`: the median ms of one training
    step of minigrok (fast engine) and, when torch is installed, of the PyTorch peer on
    the same data from the same weights, on the same device ("cpu", or "cuda": minigrok
    on CuPy, the peer on PyTorch's CUDA), and the ratio minigrok / peer (below 1: minigrok
    is faster)."""
    peer = load_peer(args.peer)
    sync, why = synchronize, "torch is not installed; `make bench-peer` installs it and times the PyTorch peer"
    if peer is not None:
        import torch
        if device == "cuda" and not torch.cuda.is_available():
            if args.peer == "on":
                sys.exit("bench: minigrok runs on the GPU here, but PyTorch sees no CUDA device for the peer")
            peer, why = None, "this PyTorch sees no CUDA device, and minigrok runs on the GPU"
    if peer is not None:
        if device == "cuda":
            sync = lambda: (synchronize(), torch.cuda.synchronize())
            where = f"CUDA ({torch.cuda.get_device_name()})"
        else:
            torch.set_num_threads(blas_threads())
            where = f"{torch.get_num_threads()} CPU threads, as many as NumPy's BLAS"
        print(f"peer: PyTorch {torch.__version__} on {where}; "
              f"{args.rounds} alternating rounds of {args.steps} timed steps each")
    elif args.peer != "off":
        print(f"peer: skipped ({why})")
    rows = []
    for task, label, overrides in runs:
        cfg = mg.Config(**{**tasks.TASK_DEFAULTS[task], **overrides, "task": task})
        data = tasks.make_data(cfg)
        steps = {"minigrok": minigrok_stepper(cfg, data)}
        if peer is not None:
            steps["peer"] = peer_stepper(peer, cfg, data, device)
        (machine0, own0), t0 = cpu_seconds(), time.perf_counter()
        ms = alternate(steps, args.rounds, args.steps, warmup=2, sync=sync)
        (machine1, own1), wall = cpu_seconds(), time.perf_counter() - t0
        full = mg.is_full_batch(cfg, len(data.train[0]))
        row = dict(task=task, config=label,
                   step=f"full batch of {len(data.train[0])}" if full else f"minibatch of {cfg.batch_size}",
                   minigrok_ms=ms["minigrok"])
        if peer is not None:
            row.update(peer_ms=ms["peer"], ratio=round(ms["minigrok"] / ms["peer"], 2))
        if machine0 is not None:   # how many cores other processes kept busy meanwhile (0: a quiet machine)
            row["others_cores"] = round(max(machine1 - machine0 - (own1 - own0), 0) / wall, 2)
        rows.append(row)
        print(json.dumps(row))
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
    t.add_argument("--peer", default="auto", choices=("auto", "on", "off"),
                   help="time the PyTorch peer too (auto: when torch is installed)")
    t.add_argument("--rounds", type=int, default=5, help="alternating rounds of minigrok and the peer")
    t.add_argument("--steps", type=int, default=10, help="timed steps of each, per round")
    s = sub.add_parser("sweep")
    s.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    s.add_argument("--max-epochs", type=int, default=6000)
    for p in (t, s):
        p.add_argument("--device", default="cpu", choices=("cpu", "gpu", "auto"))
    args = ap.parse_args()
    {"time": cmd_time, "sweep": cmd_sweep}[args.cmd](args)


if __name__ == "__main__":
    main()
