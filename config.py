"""config.py: what a minigrok run is made of, written once: its settings (Config, with each
task's defaults in tasks.py and named presets here), the checks that refuse a bad one, and
the shapes of the weights those settings give.

minigrok.py trains a Config; checkpoint.py stores it beside the weights and checks them
against param_shapes; the command line (minigrok.py) turns flags into a Config and
config_flags turns one back into flags.
"""
import dataclasses
import math
from dataclasses import dataclass

import tasks


class UsageError(Exception):
    """Bad input: reported as one line on stderr and exit code 2."""


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


PRESETS = {
    "nanda": dict(p=113, frac_train=0.3, d_model=128, n_heads=4, d_head=32, d_mlp=512,
                  lr=1e-3, weight_decay=1.0, epochs=25000, eval_every=100,
                  snapshot_every=500),   # (addition's 50 would keep 501 snapshots, ~0.5 GB)
}


ENGINES = ("fast", "plain")   # fast.py's engine, or the textbook model in minigrok.py
EVAL_CHUNK = 8192             # examples per forward pass in evaluation, to bound memory


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
    for name in ("seed", "data_seed"):
        need(getattr(cfg, name) >= 0, f"--{name.replace('_', '-')} must be >= 0 (NumPy seeds are), got {getattr(cfg, name)}")
    need(cfg.lr > 0 and math.isfinite(cfg.lr), f"--lr must be positive and finite, got {cfg.lr}")
    need(cfg.weight_decay >= 0 and math.isfinite(cfg.weight_decay),
         f"--weight-decay must be >= 0 and finite, got {cfg.weight_decay}")
    need(0 <= cfg.beta1 < 1 and 0 <= cfg.beta2 < 1, "--beta1 and --beta2 must be in [0, 1)")
    need(cfg.dtype in ("float32", "float64"), f"--dtype must be float32 or float64, got {cfg.dtype!r}")
    need(cfg.engine in ENGINES, f"--engine must be one of {', '.join(ENGINES)}, got {cfg.engine!r}")
    n_max = 6208                 # the largest n with n**5 < 2**63: tasks.py codes a tuple as one int64
    need(cfg.task == "add" or cfg.n <= n_max, f"--n must be at most {n_max} (tuples are coded as int64), got {cfg.n}")
    if cfg.task == "add" and cfg.n_train == 0:      # the size comes from --frac-train: name that flag
        total = tasks.n_examples(cfg)
        need(int(cfg.frac_train * total) >= 1, f"--frac-train {cfg.frac_train} gives {int(cfg.frac_train * total)} of "
             f"the {total} pairs (p={cfg.p}) to train on; give a larger --frac-train, or --n-train")
    problem = tasks.size_problem(cfg)
    need(problem is None, problem)


def param_shapes(cfg):
    """The shape of every weight of cfg's model, from its sizes and its task's layout: the
    one place they are written (init_params draws them, checkpoints are checked against
    them). Inputs are the output classes and one more token ('=', CLS or SEP)."""
    d_vocab_out = cfg.p if cfg.task == "add" else cfg.n
    d_vocab, n_ctx = d_vocab_out + 1, tasks.LAYOUTS[cfg.task].n_ctx
    d, H, dh, m = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
    return {"W_E": (d_vocab, d), "W_pos": (n_ctx, d),                      # embed
            "W_Q": (H, d, dh), "W_K": (H, d, dh), "W_V": (H, d, dh), "W_O": (H, dh, d),   # attention
            "W_in": (d, m), "W_out": (m, d),                                # MLP
            "W_U": (d, d_vocab_out),                                        # unembed
            "b_in": (m,), "b_out": (d,)}


def config_flags(cfg):
    """The command-line flags that give cfg: its task, and each field that differs from the
    task's defaults (config_from_args(flags) == cfg)."""
    base = Config(task=cfg.task, **tasks.TASK_DEFAULTS[cfg.task])
    flags = ["--task", cfg.task]
    for f in dataclasses.fields(Config):
        value = getattr(cfg, f.name)
        if f.name == "task" or value == getattr(base, f.name):
            continue
        if f.name == "d_head" and value == cfg.d_model // cfg.n_heads:
            continue                                        # what config_from_args gives by default
        flag = "--" + f.name.replace("_", "-")
        flags += [flag] if f.type in (bool, "bool") else [flag, str(value)]
    return flags
