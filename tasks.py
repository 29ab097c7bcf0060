"""The four algorithmic tasks minigrok trains on, as token sequences and targets.

    add     [a, b, =]                  -> (a + b) mod p            read at position 2
    max     [x1 .. x5, CLS]            -> max(x1 .. x5)            read at position 5
    median  [x1 .. x5, CLS]            -> median(x1 .. x5)         read at position 5
    sort    [x1 .. x5, SEP, y1 .. y4]  -> y1 .. y5 = sorted(x)     read at positions 5 .. 9

Numbers are tokens 0 .. p-1 (add) or 0 .. n-1 (the others); the one extra token (=, CLS
or SEP) is the last in the vocabulary. Predictions are read at the last `n_read`
positions of a sequence: at position i the model predicts the token at i + 1, so in sort
the prediction of y1 is read at SEP and that of y_{k+1} at y_k (teacher forcing).

Everything here is NumPy and seeded: the same config always makes the same data, which is
what lets a checkpoint store only its seeds. `make_data(cfg)` makes the data; `LAYOUTS`
says where things sit in each task's sequence, `TASK_DEFAULTS` holds each task's training
defaults and `size_problem(cfg)` checks that the sizes asked for fit the task.
"""
from dataclasses import dataclass

import numpy as np

TASKS = ("add", "max", "median", "sort")


@dataclass(frozen=True)
class Layout:
    """Where things sit in a task's sequence: the inputs first, then the '=', CLS or SEP
    token, then (sort) the teacher-forced outputs; predictions read at the last n_read."""
    n_inputs: int    # numbers in the prompt: a, b for add; x1 .. x5 for the others
    n_ctx: int       # sequence length
    n_read: int      # predictions are read at the last n_read positions

    @property
    def inputs(self):
        return slice(0, self.n_inputs)       # tokens[:, layout.inputs] are the input numbers

    @property
    def sep(self):
        return self.n_inputs                 # the position of '=', CLS or SEP

    @property
    def first_read(self):
        return self.n_ctx - self.n_read      # the first readout position (sort: SEP)


LAYOUTS = {"add": Layout(n_inputs=2, n_ctx=3, n_read=1), "max": Layout(n_inputs=5, n_ctx=6, n_read=1),
           "median": Layout(n_inputs=5, n_ctx=6, n_read=1), "sort": Layout(n_inputs=5, n_ctx=10, n_read=5)}
N_INPUTS = LAYOUTS["max"].n_inputs   # max, median and sort read five numbers

# Each task's training defaults, over minigrok.Config's defaults (Nanda et al.'s model and
# optimiser). The addition defaults come from the sweep in bench.py (see BENCH.md).
TASK_DEFAULTS = {
    "add": dict(frac_train=0.3, lr=5e-3, weight_decay=2.0, epochs=1500, eval_every=20, snapshot_every=50),
    "max": dict(n_train=20000, n_test=5000, epochs=100, batch_size=1000, lr=1e-3,
                weight_decay=0.1, eval_every=10, save_every=100),
    "median": dict(n_train=20000, n_test=5000, epochs=300, batch_size=1000, lr=1e-3,
                   weight_decay=0.1, eval_every=10, save_every=100),
    "sort": dict(n_train=20000, n_test=5000, epochs=150, batch_size=1000, lr=1e-3,
                 weight_decay=0.1, eval_every=25, save_every=100),
}


@dataclass
class Data:
    """A task's training set and evaluation sets, as int64 NumPy arrays.

    tokens [batch, pos], targets [batch, n_read]: the targets of the last n_read positions.
    `evals` maps a name ('train', 'test', and for five-number tasks 'balanced': a test set
    with every answer value equally often) to (tokens, targets).
    """
    d_vocab: int          # input tokens
    d_vocab_out: int      # output classes
    n_ctx: int            # sequence length
    n_read: int           # predictions read at the last n_read positions
    decode: bool          # evaluate by greedy autoregressive decoding (sort)
    train: tuple
    evals: dict


def make_data(cfg):
    """Build the data of cfg.task from cfg's sizes and cfg.data_seed."""
    if cfg.task == "add":
        return _addition(cfg)
    return _five_numbers(cfg)


# ---------------------------------------------------------------- modular addition
def _addition(cfg):
    p = cfg.p
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    a, b = a.ravel(), b.ravel()
    tokens = np.stack([a, b, np.full_like(a, p)], axis=1)          # [p*p, 3], '=' is token p
    targets = ((a + b) % p)[:, None]                                # [p*p, 1]
    n_train = cfg.n_train or int(cfg.frac_train * p * p)
    order = np.random.default_rng(cfg.data_seed).permutation(p * p)
    tr, te = order[:n_train], order[n_train:]
    return Data(d_vocab=p + 1, d_vocab_out=p, n_ctx=LAYOUTS["add"].n_ctx, n_read=LAYOUTS["add"].n_read, decode=False,
                train=(tokens[tr], targets[tr]),
                evals={"train": (tokens[tr], targets[tr]), "test": (tokens[te], targets[te])})


def n_examples(cfg):
    """How many distinct examples the task has (n_train and n_test must fit in it)."""
    return cfg.p ** 2 if cfg.task == "add" else cfg.n ** N_INPUTS


def size_problem(cfg):
    """What is wrong with cfg's data sizes, as one line with what is allowed; None if they fit."""
    total = n_examples(cfg)
    if cfg.task == "add":
        n_train = cfg.n_train or int(cfg.frac_train * total)
        if not 1 <= n_train < total:
            return f"--n-train must be between 1 and {total - 1} (p*p - 1 for p={cfg.p}), got {n_train}"
    elif not (cfg.n_train > 0 and cfg.n_test > 0):
        return "--n-train and --n-test must be positive for max, median and sort"
    elif cfg.n_train + cfg.n_test > total // 2:
        return (f"--n-train + --n-test must be at most {total // 2} (half of the n^5 tuples for n={cfg.n}), "
                f"got {cfg.n_train + cfg.n_test}")
    return None


# ---------------------------------------------------------------- max, median, sort
def target_of(task, x):
    """The answer for inputs x [batch, 5]: [batch, 1] for max and median, [batch, 5] for sort."""
    if task == "max":
        return x.max(axis=1, keepdims=True)
    if task == "median":
        return np.median(x, axis=1, keepdims=True).astype(x.dtype)   # 5 inputs: the middle one
    return np.sort(x, axis=1)


def sequences(task, x, n):
    """Inputs x [batch, 5] -> (tokens, targets) laid out as in the module docstring."""
    y = target_of(task, x)
    sep = np.full((len(x), 1), n)                                    # CLS / SEP is token n
    if task == "sort":
        return np.concatenate([x, sep, y[:, :-1]], axis=1), y       # [batch, 10], [batch, 5]
    return np.concatenate([x, sep], axis=1), y                      # [batch, 6], [batch, 1]


def _random_tuples(rng, n, count):
    return rng.integers(0, n, size=(count, N_INPUTS))


def _tuples_with_target(rng, task, n, v, count):
    """`count` random tuples whose answer is the number v: for max (and sort) the numbers
    are drawn from 0..v with one of them v, so small numbers appear in every rank; for
    median two are drawn below or at v, two at or above it, and one is v."""
    if task == "median":
        lo = rng.integers(0, v + 1, size=(count, 2))
        hi = rng.integers(v, n, size=(count, 2))
        x = np.concatenate([lo, hi, np.full((count, 1), v)], axis=1)
    else:
        x = rng.integers(0, v + 1, size=(count, N_INPUTS))
        x[np.arange(count), rng.integers(0, N_INPUTS, size=count)] = v
    return rng.permuted(x, axis=1)                                   # shuffle the positions


def _balanced(rng, task, n, per_value):
    """Tuples balanced over the answer: per_value of them for every value 0..n-1."""
    return np.concatenate([_tuples_with_target(rng, task, n, v, per_value) for v in range(n)])


def _unique_rows(x, n, exclude=()):
    """Drop repeated tuples (keeping first occurrences in order) and any in `exclude`."""
    codes = x @ (n ** np.arange(N_INPUTS))                           # a tuple as one integer
    _, first = np.unique(codes, return_index=True)
    keep = np.zeros(len(x), bool)
    keep[first] = True
    for other in exclude:
        keep &= ~np.isin(codes, other @ (n ** np.arange(N_INPUTS)))
    return x[keep]


def _five_numbers(cfg):
    task, n = cfg.task, cfg.n
    rng = np.random.default_rng(cfg.data_seed)
    # Draw a few more than needed so that removing repeats leaves enough; train and test
    # come from one pool of distinct ordered tuples, so they are disjoint.
    want = cfg.n_train + cfg.n_test
    pool = _unique_rows(_random_tuples(rng, n, int(want * 1.05) + 100), n)
    while len(pool) < want:
        pool = _unique_rows(np.concatenate([pool, _random_tuples(rng, n, want)]), n)
    train_x, test_x = pool[:cfg.n_train], pool[cfg.n_train:want]
    # Random tuples almost never have a small answer (the study: about 10 of 40k have
    # max < 20), so those outputs get no training signal and a random test set says
    # little about them. The study's fix, --augment, adds tuples for every answer value to
    # training (about 10% more data). They are drawn whether or not --augment is given,
    # and a second test set, balanced over answer values, avoids them: so that test set
    # is the same with and without --augment, and the two runs can be compared on it.
    rng_augment = np.random.default_rng([cfg.data_seed, 1])
    extra = _unique_rows(_balanced(rng_augment, task, n, max(1, cfg.n_train // (10 * n))), n,
                         exclude=(train_x, test_x))
    rng_balanced = np.random.default_rng([cfg.data_seed, 2])
    balanced = _unique_rows(_balanced(rng_balanced, task, n, max(1, cfg.n_test // n)), n,
                            exclude=(train_x, test_x, extra))
    if cfg.augment:
        train_x = np.concatenate([train_x, extra])
    train = sequences(task, train_x, n)
    evals = {"train": train, "test": sequences(task, test_x, n),
             "balanced": sequences(task, balanced, n)}
    return Data(d_vocab=n + 1, d_vocab_out=n, n_ctx=LAYOUTS[task].n_ctx, n_read=LAYOUTS[task].n_read,
                decode=task == "sort", train=train, evals=evals)
