"""checkpoint.py: what keeps a minigrok run safe, so that minigrok.py can read as the model.

The promises (README's "Checkpoints" section states them for users):
- Nothing is replaced unasked. Before training, the output path is checked (a writable .npz
  path: not a directory, a symbolic link, a read-only file, another user's file in a sticky
  folder, a device), a save is tried beside it, the run's memory and two checkpoints' disk
  are estimated, and a lock stops a second run on the same path. A fresh run never replaces
  what is there; --resume needs the same run, --overwrite replaces it. Bad input is one line
  on stderr and exit code 2 (UsageError).
- No file is ever half-written: every checkpoint and curve goes to a temporary file that is
  renamed over the old one (write_atomically); a killed run's temporary files are removed by
  the next run on the same path.
- A crash never becomes a result: a checkpoint says whether its run finished (run_state);
  load() and the study refuse an unfinished one with the command that finishes it; --finish
  keeps a run at NAME.unfinished.npz until it is finished (plan_finish).
- Ctrl-C and SIGTERM stop a run between epochs, saved (Interrupt).
- Resume is exact: the same flags (check_resumable), the same history rows.

A checkpoint is one .npz: the weights under their names, the AdamW moments (adam_m/W_E, ...),
the config and the history as JSON, the epoch, whether the run finished, and the snapshots.
"""
import collections
import dataclasses
import functools
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import signal
import stat
import sys

import numpy as np

try:
    import fcntl            # the output's lock (Unix)
except ImportError:
    fcntl = None

import tasks
from arrays import to_numpy
from config import EVAL_CHUNK, Config, UsageError, check_config, config_flags, param_shapes


# ============================================================================ interrupts


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM outside the training loop (see Interrupt). A BaseException, as
    KeyboardInterrupt is, so that no `except Exception` swallows it."""
    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Interrupt:
    """Ctrl-C (SIGINT) and SIGTERM, from the start of a run to its end. Outside the training
    loop (building the data, loading a checkpoint, the first evaluation, plotting) a signal
    raises Interrupted at once: nothing can be half-written then, since every file is
    written to a temporary file and renamed. Inside the loop (`deferred`) a signal is only
    noted, and the loop stops after the epoch it is in, so the weights are saved whole,
    never half-updated."""
    def __init__(self):
        self.signum, self.deferred, self.old = None, False, {}
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self.old[s] = signal.signal(s, self.handle)
            except ValueError:          # not the main thread: signals keep their handlers
                pass

    def handle(self, signum, frame):
        if not self.deferred:
            raise Interrupted(signum)
        self.signum = signum

    def restore(self):
        for s, h in self.old.items():
            signal.signal(s, h)



# ============================================================================ resume


def resume_from(source, out, cfg, stop_at):
    """The run saved at `source` (out itself, or --finish's other file), checked to be cfg's
    run, as load_checkpoint gives it, and None; or, when it has nothing left to train, why
    (then `out` holds it, saying it is finished)."""
    ck = load_checkpoint(source)
    if ck["opt"] is None:
        raise UsageError(f"--resume: {source} keeps no AdamW state (a zoo file, for analysis); resume the run it "
                         f"was made from, under runs/")
    check_resumable(ck["config"], cfg)
    done = check_resume_epoch(source, ck["epoch"], ck["history"], cfg, stop_at)
    if done:
        if not ck["finished"] or source != out:     # it had ended, but its checkpoint did not say so
            save_checkpoint(out, cfg, ck["params"], ck["opt"], ck["history"], ck["snapshots"], ck["epoch"],
                            ck["wall_s"], True, stop_at)
        return ck, done
    drop_unscheduled_row(ck["history"], ck["epoch"], cfg)
    return ck, None


def drop_unscheduled_row(history, epoch, cfg):
    """A run evaluates every eval_every epochs and at its last epoch. A checkpoint made at
    the end of a shorter run (or by an older version when interrupted) ends with a row at
    its last epoch that a run going on past that epoch does not make: it goes, so that the
    resumed history is row for row that of the uninterrupted run."""
    if history["epoch"][-1] == epoch and epoch % cfg.eval_every and epoch < cfg.epochs:
        for rows in history.values():
            rows.pop()


def check_resume_epoch(out, epoch, history, cfg, stop_at):
    """For --resume: None if the run at `out` has epochs left to train, or why it has not
    (it is complete); UsageError if it went past --epochs."""
    if epoch > cfg.epochs:
        raise UsageError(f"--resume: {out} is at epoch {epoch}, past --epochs {cfg.epochs}; give --epochs "
                         f"above {epoch} to continue it")
    if epoch == cfg.epochs:
        return f"is already complete (epoch {epoch} of {cfg.epochs})"
    if stop_at is not None:
        for e, acc in zip(history["epoch"], history["test_acc"]):
            if acc >= stop_at and e > 0 and e % cfg.eval_every == 0:
                return f"already reached test accuracy {stop_at} at epoch {e} (--stop-at)"
    return None


RUN_FIELDS_FREE = ("epochs", "save_every")   # may differ between a run and its --resume


def first_difference(saved, cfg):
    """(field, saved value, value here) of the first config field, other than those free
    to change on --resume, in which two runs differ; None if there is none."""
    for f in dataclasses.fields(Config):
        a, b = getattr(saved, f.name), getattr(cfg, f.name)
        if f.name not in RUN_FIELDS_FREE and a != b:
            return f.name, a, b
    return None


def check_resumable(saved, cfg):
    """A resumed run must record what the uninterrupted run would have: the same weights
    (every field that changes them) and the same evaluations and snapshots (eval_every,
    snapshot_every). Only --epochs and --save-every may change."""
    diff = first_difference(saved, cfg)
    if diff:
        name, a, b = diff
        raise UsageError(f"--resume: the checkpoint was trained with {name}={a!r} but this run "
                         f"has {name}={b!r}; resume with the same flags (only --epochs and "
                         f"--save-every may change)")



# ============================================================================ atomic writes


def temporary_name(path):
    """A new temporary file's name beside `path`, recognisable as path's (see temporaries)."""
    folder, base = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{base}.{secrets.token_hex(4)}.tmp")


def temporaries(path):
    """The temporary files of `path` in its folder: those a killed run may have left."""
    folder, base = os.path.split(os.path.abspath(path))
    pattern = re.compile(rf"\.{re.escape(base)}\.[0-9a-f]{{8}}\.tmp")
    try:
        return sorted(os.path.join(folder, n) for n in os.listdir(folder) if pattern.fullmatch(n))
    except OSError:
        return []


def write_atomically(path, write):
    """Call write(f) on a new temporary file beside `path`, then rename it over `path`: a
    crash or a failed write (disk full, ...) leaves `path` as it was. The temporary file is
    removed on any failure; only a kill -9 or a power cut can leave one behind."""
    tmp = temporary_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)   # 0o666 less the umask, as open() gives
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise



# ============================================================================ checkpoints
CODE_FILES = ("minigrok.py", "fast.py", "tasks.py", "config.py", "arrays.py", "checkpoint.py")   # what trains


@functools.lru_cache(maxsize=None)
def code_digest():
    """sha256 of the training code (CODE_FILES, beside this file): a checkpoint records which
    code trained it, so that --finish never continues a run with other code."""
    h = hashlib.sha256()
    for name in CODE_FILES:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()




def save_checkpoint(path, cfg, params, opt, history, snapshots, epoch, wall_s, finished=None, stop_at=None,
                    code=None, compress=False):
    """Write the run to `path` atomically (write_atomically): a crash or a failed write
    leaves the previous checkpoint as it was. finished: whether the run has reached its
    end (its epochs, or its --stop-at); by default, whether epoch is cfg.epochs. opt None:
    no AdamW state (a zoo file, see slim); code: the digest of the code that trained it
    (by default this code's)."""
    finished = epoch >= cfg.epochs if finished is None else finished
    arrays = {"format": np.array("minigrok-1"), "config": np.array(json.dumps(dataclasses.asdict(cfg))),
              "history": np.array(json.dumps(history)), "epoch": np.array(epoch), "wall_s": np.array(wall_s)}
    if opt is not None:
        arrays["adam_step"] = np.array(opt["step"])
    arrays.update(finished=np.array(bool(finished)), stop_at=np.array(np.nan if stop_at is None else stop_at),
                  code=np.array(code_digest() if code is None else code))
    for k, v in params.items():
        arrays[k] = to_numpy(v)
        if opt is not None:
            arrays[f"adam_m/{k}"] = to_numpy(opt["m"][k])
            arrays[f"adam_v/{k}"] = to_numpy(opt["v"][k])
    if snapshots:
        arrays["snapshot_epochs"] = np.array([e for e, _ in snapshots])
        for k in params:
            arrays[f"snapshot/{k}"] = np.stack([s[k] for _, s in snapshots])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomically(path, lambda f: (np.savez_compressed if compress else np.savez)(f, **arrays))


def _open_checkpoint(path):
    if not os.path.exists(path):
        partial = unfinished_path(path) if path.endswith(".npz") else None
        if partial and os.path.isfile(partial):
            state = run_state(partial)
            raise UsageError(f"checkpoint {path} does not exist: its run is unfinished, saved at epoch {state.epoch} "
                             f"of {state.config.epochs} in {partial}; finish it with: {finish_command(partial, state)}")
        raise UsageError(f"checkpoint {path} does not exist; train one with python minigrok.py --task ... --out {path}")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory, not a minigrok checkpoint")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise UsageError(f"cannot read {path} ({e.strerror or e})")
    if magic[:2] != b"PK":                 # every .npz is a zip archive; np.load would try pickle
        what = "it is empty" if not magic else "a .npy array" if magic[:1] == b"\x93" else "not an .npz archive"
        raise UsageError(f"{path} is not a minigrok checkpoint ({what})")
    z = None
    try:
        z = np.load(path, allow_pickle=False)      # lazy: arrays are read when asked for
        if "format" not in z.files:
            raise UsageError(f"{path} is not a minigrok checkpoint (an .npz archive without minigrok's 'format' entry)")
        if str(z["format"]) != "minigrok-1":
            raise UsageError(f"{path} is not a minigrok checkpoint (its format is {str(z['format'])[:40]!r}, not 'minigrok-1')")
        return z, Config(**json.loads(str(z["config"])))
    except Exception as e:
        if z is not None:
            z.close()
        if isinstance(e, UsageError):
            raise
        raise UsageError(f"{path} is not a readable minigrok checkpoint ({type(e).__name__}: {e})")


def read_header(path):
    """(config, epoch) of a checkpoint, without reading its weights."""
    state = run_state(path)
    return state.config, state.epoch


RunState = collections.namedtuple("RunState", "config epoch finished stop_at")


def _finished(z, cfg, epoch):
    """What a checkpoint says of its end; one written before it said so is finished when
    it reached its epochs (a run stopped early by --stop-at then reads as unfinished)."""
    if "finished" in z.files:
        return bool(z["finished"]), float(z["stop_at"])
    return epoch >= cfg.epochs, math.nan


def run_state(path):
    """RunState(config, epoch, finished, stop_at) of a checkpoint, without its weights:
    finished is True when the run reached its epochs or its --stop-at (stop_at: nan if
    none), False for a run saved on its way (periodically, or when interrupted)."""
    z, cfg = _open_checkpoint(path)
    try:
        with z:
            epoch = int(z["epoch"])
            return RunState(cfg, epoch, *_finished(z, cfg, epoch))
    except Exception as e:
        raise UsageError(f"{path} is not a readable minigrok checkpoint ({type(e).__name__}: {e})")


UNFINISHED = ".unfinished.npz"


def unfinished_path(out):
    """Where `--finish --out out` keeps its run until it is finished (a.npz -> a.unfinished.npz):
    a file at `out` is then always a finished run, which is what make relies on."""
    return out[:-len(".npz")] + UNFINISHED


def finish_command(path, state):
    """The command that finishes the unfinished run saved at `path`."""
    flags = config_flags(state.config) + ([] if math.isnan(state.stop_at) else ["--stop-at", repr(state.stop_at)])
    if path.endswith(UNFINISHED):
        return " ".join(["python minigrok.py", *flags, "--finish", "--out", path[:-len(UNFINISHED)] + ".npz"])
    return " ".join(["python minigrok.py", *flags, "--out", path, "--resume"])


def unfinished_problem(path, state):
    """One line: the run at `path` is unfinished, how far it got, and the command that finishes it."""
    return (f"{path} is an unfinished run (saved at epoch {state.epoch} of {state.config.epochs}); "
            f"finish it with: {finish_command(path, state)}")


def require_finished(path):
    """UsageError unless the checkpoint at `path` is a finished run: analysing a run
    interrupted on its way would report a model that was never trained to its end."""
    state = run_state(path)
    if not state.finished:
        raise UsageError(unfinished_problem(path, state))
    return state


def check_task(path, task, who):
    """UsageError unless the checkpoint at `path` is of `task` (`who` is what needs it)."""
    cfg, _ = read_header(path)
    if cfg.task != task:
        raise UsageError(f"{path} is a checkpoint of task {cfg.task}, but {who} needs one of task {task}")


def check_matches_config(path, cfg, params, opt, snapshots):
    """UsageError unless the config is valid and every array has its weight's shape and dtype."""
    try:
        check_config(cfg)
    except UsageError as e:
        raise UsageError(f"{path}: its config is not valid ({e})")
    want = param_shapes(cfg)
    if set(params) != set(want):
        raise UsageError(f"{path} holds the weights {sorted(params)}, not a minigrok model's {sorted(want)}")
    arrays = [(k, params[k]) for k in want] + [(f"snapshot/{k}", s[k]) for _, s in snapshots[:1] for k in want]
    if opt is not None:
        arrays += [(f"adam_m/{k}", opt["m"][k]) for k in want] + [(f"adam_v/{k}", opt["v"][k]) for k in want]
    for name, a in arrays:
        shape = want[name.split("/")[-1]]
        if a.shape != shape or a.dtype != cfg.dtype:
            raise UsageError(f"{path}: its config (task {cfg.task}, p {cfg.p}, n {cfg.n}, d_model {cfg.d_model}, "
                             f"n_heads {cfg.n_heads}, d_head {cfg.d_head}, d_mlp {cfg.d_mlp}, {cfg.dtype}) wants "
                             f"{name} {list(shape)} {cfg.dtype}, but it is {list(a.shape)} {a.dtype}: the config "
                             f"does not match the weights")


def load_checkpoint(path):
    """Everything a checkpoint holds, as NumPy arrays and plain Python: config, params,
    opt (AdamW state; None for a zoo file, see slim), history, snapshots [(epoch, params)], epoch, wall_s, finished and
    stop_at (see run_state); finished or not. Checked whole:
    a config that does not match the weights is a UsageError, not a later traceback."""
    z, cfg = _open_checkpoint(path)
    try:
        with z:
            names = [k for k in z.files if k in ("b_in", "b_out") or k.startswith("W_")]
            params = {k: z[k] for k in names}
            opt = None                  # a zoo file (slim) keeps no AdamW state
            if "adam_step" in z.files:
                opt = {"step": int(z["adam_step"]), "m": {k: z[f"adam_m/{k}"] for k in names},
                       "v": {k: z[f"adam_v/{k}"] for k in names}}
            snapshots = []
            if "snapshot_epochs" in z.files:
                stacks = {k: z[f"snapshot/{k}"] for k in names}
                snapshots = [(int(e), {k: stacks[k][i] for k in names})
                             for i, e in enumerate(z["snapshot_epochs"])]
            epoch = int(z["epoch"])
            finished, stop_at = _finished(z, cfg, epoch)
            ck = dict(config=cfg, params=params, opt=opt, history=json.loads(str(z["history"])),
                      snapshots=snapshots, epoch=epoch, wall_s=float(z["wall_s"]), finished=finished,
                      stop_at=stop_at, code=str(z["code"]) if "code" in z.files else None)
    except Exception as e:
        raise UsageError(f"{path} is not a readable minigrok checkpoint ({type(e).__name__}: {e})")
    check_matches_config(path, cfg, params, opt, snapshots)
    return ck


def load(path, unfinished=False):
    """(config, weights, history) of a finished run's checkpoint: the entry point for
    analysis. An unfinished run (interrupted on its way; run_state tells) is refused
    with the command that finishes it, unless unfinished=True."""
    if not unfinished:
        require_finished(path)
    ck = load_checkpoint(path)
    return ck["config"], ck["params"], ck["history"]



def slim(src, dst, snapshot_every=None):
    """Write to dst the finished run at src for analysis only (the model zoo): its weights,
    config, history and whether it finished, without the AdamW moments; its snapshots every
    snapshot_every epochs (None: none). The file is compressed, and load() reads it like any
    checkpoint; --resume does not (no optimiser state)."""
    ck = load_checkpoint(src)
    if not ck["finished"]:
        raise UsageError(unfinished_problem(src, run_state(src)))
    kept = [(e, p) for e, p in ck["snapshots"] if snapshot_every and e % snapshot_every == 0]
    save_checkpoint(dst, ck["config"], ck["params"], None, ck["history"], kept, ck["epoch"], ck["wall_s"], True,
                    ck["stop_at"], code=ck["code"] or "", compress=True)


# ============================================================================ the output


def plot_path(out):
    """The curve beside checkpoint `out` (a.npz -> a.png). --out must end in .npz, so that no
    two outputs share a curve (a and a.npz would), and out's lock protects its curve too."""
    return out[:-len(".npz")] + ".png" if out.endswith(".npz") else os.path.splitext(out)[0] + ".png"


TEMPORARY_EXTRA = len(".") + len(".01234567.tmp")   # what temporary_name adds to a name


def name_max(folder):
    """The longest file name (in bytes) the filesystem of `folder` takes."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def sticky_problem(path, st):
    """Why `path` (stat st) cannot be renamed over though it may be written: in a folder with
    the sticky bit (as /tmp) only the file's owner, the folder's owner or root may do that."""
    folder = os.stat(os.path.dirname(os.path.abspath(path)))
    if folder.st_mode & stat.S_ISVTX and hasattr(os, "geteuid") and os.geteuid() not in (0, st.st_uid, folder.st_uid):
        return (f"belongs to another user (uid {st.st_uid}), in a folder with the sticky bit (as /tmp) where only "
                f"its owner may replace it; choose another --out")
    return None


def file_problem(path):
    """Why minigrok must not write to `path`, or None."""
    if os.path.islink(path):
        return (f"is a symbolic link (to {os.readlink(path)}), which minigrok does not replace; give the "
                f"file's own path or another --out")
    if os.path.isdir(path):
        return "is a directory; give a file path"
    if not os.path.exists(path):
        return None
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file (a device, pipe or socket); give a file path"
    # mode bits as well as access(): root may write anything, but a file with no write
    # bit set was made read-only on purpose
    if not st.st_mode & 0o222 or not os.access(path, os.W_OK):
        return "is read-only, so minigrok will not replace it; make it writable if it may be, or choose another --out"
    return sticky_problem(path, st)


def check_run_flags(resume, overwrite, finish, stop_at):
    """UsageError for flags of the run that do not go together."""
    if stop_at is not None and not 0 < stop_at <= 1:
        raise UsageError(f"--stop-at must be a test accuracy in (0, 1], got {stop_at}")
    if resume and overwrite:
        raise UsageError("--resume continues the run at --out and --overwrite replaces it: give one of them")
    if finish and (resume or overwrite):
        raise UsageError("--finish starts, continues or leaves the run at --out as needed: give it without "
                         "--resume and --overwrite")


def claim_output(out, cfg, on_gpu, finish=False):
    """Before a run trains, what it needs of the machine and of `out`: the memory and disk
    (check_resources), the lock that keeps any other run off `out` (lock_output), the
    temporary files a killed run left there gone, and a trial save. Returns the lock."""
    check_resources(cfg, out, on_gpu, finish)
    lock = lock_output(out)
    try:
        remove_stale_temporaries(out)
        try_a_save(out)
    except BaseException:
        unlock_output(lock, out)
        raise
    return lock


def plan_run(out, cfg, resume, overwrite, finish, stop_at):
    """(where the run trains, what it resumes (a path, or False), its first epoch) from what
    is at `out` and the flags; where is None when --finish finds the run finished."""
    if not finish:
        return out, resume, check_existing(out, cfg, resume, overwrite)
    where, source, start = plan_finish(out, cfg, stop_at)
    if source:
        print(f"minigrok: continuing {source} from epoch {start}", flush=True)
    return where, source, start


def check_out(out, resume=False):
    """UsageError if `out` (or the curve beside it) is no place for a checkpoint, or, with
    resume, holds none (refused before lock_output makes a folder)."""
    if not out:
        raise UsageError("--out is empty; give a file path such as runs/add.npz")
    if not os.path.basename(out):
        raise UsageError(f"--out {out} names a folder; give a file path such as {os.path.join(out, 'add.npz')}")
    if os.path.splitext(out)[1].lower() == ".png":
        raise UsageError(f"--out {out} is the name of the run's own curve (--out with .png), which would overwrite "
                         f"the checkpoint; give a .npz name")
    problem = file_problem(out)
    if problem:
        raise UsageError(f"--out {out} {problem}")
    if not out.endswith(".npz"):
        raise UsageError(f"--out {out} must end in .npz (the curve goes beside it as name.png, and without the "
                         f"extension two outputs would share one); give e.g. {os.path.splitext(out)[0]}.npz")
    problem = file_problem(plot_path(out))
    if problem:
        raise UsageError(f"the curve's path {plot_path(out)} {problem}")
    folder = existing_folder(out)
    if not os.path.isdir(folder):
        raise UsageError(f"--out {out}: {folder} is a file, not a folder")
    n, limit = len(os.fsencode(os.path.basename(out))), name_max(folder)
    if n + TEMPORARY_EXTRA > limit:
        raise UsageError(f"--out {out}: the file name is too long ({n} bytes; each save writes a temporary file "
                         f"named .<name>.<8 hex digits>.tmp, {TEMPORARY_EXTRA} bytes longer, and names here are at "
                         f"most {limit}); give a name of at most {limit - TEMPORARY_EXTRA} bytes")
    if resume:
        read_header(out)


def existing_folder(path):
    """The nearest folder above `path` that exists (the run creates the rest)."""
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return folder


def try_a_save(out):
    """Before training, what every save does, tried on a temporary file named as a save's:
    create it beside `out`, rename it, remove it. A folder that cannot take a new file (no
    permission, immutable, out of inodes, a name too long) is found now, not after training;
    `out` itself is not touched (whether it may be replaced: file_problem)."""
    tmp, moved = temporary_name(out), temporary_name(out)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(tmp, moved)
    except OSError as e:
        folder = os.path.dirname(os.path.abspath(out))
        raise UsageError(f"cannot write in {folder}: a trial save of a temporary file failed ({e.strerror or e}); "
                         f"choose another --out") from None
    finally:
        for path in (tmp, moved):
            try:
                os.unlink(path)
            except OSError:
                pass


def lock_output(out):
    """Claim `out` for this run: an exclusive lock (flock) on the file out + '.lock', made
    first, so a second run on the same path stops at once instead of overwriting this one
    (or its curve: plot_path gives each --out a curve of its own). The lock is the kernel's,
    so a killed run holds none (its file may stay, and is reused). Whether a save can be
    written beside it is tried next (try_a_save). Returns the lock (a file descriptor) for
    unlock_output."""
    path, folder = out + ".lock", os.path.dirname(os.path.abspath(out))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the folder {folder} for --out ({e.strerror})")
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise UsageError(f"cannot write in {folder}: creating {path} failed ({e.strerror}); choose another --out")
        if fcntl is None:               # no flock (Windows): no protection against a second run
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UsageError(f"another minigrok run (pid {pid}) is writing {out}; wait for it to end, or choose "
                             f"another --out")
        except OSError as e:            # a filesystem without locks
            print(f"minigrok: cannot lock {path} ({e.strerror}); nothing stops a second run on {out}", file=sys.stderr)
            return fd
        # The run before us removes its lock file before letting go of the lock: if it did so
        # between our open and our flock, we hold a lock on a removed file, and start again.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            mine = os.read(fd, 64).decode(errors="replace").strip()
            if mine and not mine.isdigit():         # not a lock file left by a killed run: someone's file
                os.close(fd)
                raise UsageError(f"{path} exists and is not minigrok's lock file; move it, or choose another --out")
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def unlock_output(fd, out):
    try:
        os.unlink(out + ".lock")        # removed while still held: see lock_output
    except OSError:
        pass
    os.close(fd)


def remove_stale_temporaries(out):
    """Remove the temporary files that a run killed mid-write left beside `out` and its
    curve. Called with the lock held, so they belong to no running save."""
    removed = []
    for path in temporaries(out) + temporaries(plot_path(out)) + temporaries(unfinished_path(out)):
        try:
            os.unlink(path)
            removed.append(os.path.basename(path))
        except OSError:
            pass
    if removed:
        print(f"minigrok: removed {len(removed)} temporary file(s) left by an interrupted run: {', '.join(removed)}",
              file=sys.stderr)


def check_existing(out, cfg, resume, overwrite):
    """A fresh run never replaces what is at `out` or at its curve's path unless --overwrite
    says so; --resume needs the same run there, with epochs left to train (checked again by
    train). Returns the epoch the run starts from."""
    if resume:
        saved, epoch = read_header(out)
        check_resumable(saved, cfg)
        check_resume_epoch(out, epoch, None, cfg, None)     # past --epochs: an error before any work
        return epoch
    if overwrite:
        return 0
    if os.path.exists(unfinished_path(out)) and not os.path.exists(out):
        raise UsageError(f"an unfinished run of --out {out} is at {unfinished_path(out)}: --finish continues it, "
                         f"--overwrite trains afresh (and leaves it), or choose another --out")
    if not os.path.exists(out):
        if os.path.lexists(plot_path(out)):
            raise UsageError(f"the curve's path {plot_path(out)} holds a file, which this run would replace: choose "
                             f"another --out, or add --overwrite to replace it")
        return 0
    try:
        state = run_state(out)
    except UsageError:
        raise UsageError(f"--out {out} exists and is not a minigrok checkpoint; minigrok will not replace it: "
                         f"choose another --out, or add --overwrite to replace it") from None
    saved, epoch = state.config, state.epoch
    where = (f"finished at epoch {epoch}" if state.finished else
             f"unfinished: saved at epoch {epoch} of {saved.epochs}, when it was interrupted")
    diff = first_difference(saved, cfg)
    if diff is None:
        more = "" if not state.finished else " (give more --epochs)"
        raise UsageError(f"--out {out} already holds this run, {where}: --resume continues it{more}, --overwrite "
                         f"trains it again from scratch, or choose another --out")
    name, a, b = diff
    raise UsageError(f"--out {out} holds another run ({name}={a!r} there, {b!r} here), {where}: --resume with "
                     f"that run's flags continues it, --overwrite replaces it, or choose another --out")


def plan_finish(out, cfg, stop_at):
    """For --finish: (where the run trains, what it resumes, its first epoch); where is None
    when `out` already holds this run, finished. The run trains at unfinished_path(out) and
    resumes what is there, else continues the run at `out` (an unfinished one, or a finished
    one given more --epochs), else starts from epoch 0. A run that other code trained (see
    code_digest) is trained again, and replaces the one at `out` only when finished; one of
    other flags is refused."""
    partial = unfinished_path(out)
    found = {}
    for path in (out, partial):
        if not os.path.exists(path):
            continue
        try:
            ck = load_checkpoint(path)
        except UsageError:
            raise UsageError(f"--finish: {path} exists and is not a minigrok checkpoint; minigrok will not "
                             f"replace it: move it, or choose another --out") from None
        diff = first_difference(ck["config"], cfg)
        if diff:
            name, a, b = diff
            raise UsageError(f"--finish: {path} holds another run ({name}={a!r} there, {b!r} here); remove it to "
                             f"train this one, or choose another --out")
        found[path] = ck
    for path in (partial, out):            # a run that other code trained is not this code's run
        if path in found and found[path]["code"] != code_digest():
            print(f"minigrok: {path} was trained by other code (a change to {', '.join(CODE_FILES)}); training "
                  f"again{', beside it' * (path == out)}", file=sys.stderr)
            del found[path]
    for path in (partial, out):
        if path in found:
            ck = found[path]
            done = check_resume_epoch(path, ck["epoch"], ck["history"], cfg, stop_at)
            if done and path == out and ck["finished"]:
                return None, None, ck["epoch"]
            return partial, path, ck["epoch"]
    if os.path.lexists(plot_path(out)) and not os.path.exists(out):
        raise UsageError(f"the curve's path {plot_path(out)} holds a file, which this run would replace: move it, "
                         f"or choose another --out")
    return partial, False, 0



# ============================================================================ memory and disk


def memory_estimate(cfg, on_gpu=False):
    """The bytes a run holds in host memory at its peak, counting only its largest arrays:
    the data (int64 tokens and targets, and the copies made while splitting them), the
    weights with their gradients and AdamW state, the snapshots, the QK table and the larger
    of one training step and one evaluation chunk (on a GPU only the data and snapshots are
    in host memory). A lower bound, so that no run that fits is refused: the peaks of ten
    runs of all four tasks and both engines, measured, were 1.1 to 1.8 times it."""
    lay, size = tasks.LAYOUTS[cfg.task], np.dtype(cfg.dtype).itemsize
    d_vocab_out = cfg.p if cfg.task == "add" else cfg.n
    d_vocab, n_varying = d_vocab_out + 1, lay.n_ctx - 1      # one position holds the same token ('=', CLS, SEP)
    ints = lay.n_ctx + lay.n_read                            # one example's tokens and targets
    if cfg.task == "add":
        n_made = cfg.p ** 2
        n_train = cfg.n_train or int(cfg.frac_train * n_made)
        data = 8 * n_made * (2 * ints + 3)                   # all pairs, the split's copies, a, b and the order
        n_eval = n_made - n_train
    else:
        extra = cfg.n * max(1, cfg.n_train // (10 * cfg.n))  # augmentation tuples (made either way)
        balanced = cfg.n * max(1, cfg.n_test // cfg.n)
        n_made = cfg.n_train + cfg.n_test + extra + balanced
        n_train = cfg.n_train + (extra if cfg.augment else 0)
        data = 8 * n_made * (lay.n_inputs + ints)
        n_eval = max(cfg.n_test, balanced)
    n_params, n_snapshots = count_params(cfg), count_snapshots(cfg)
    host = data + size * n_params * n_snapshots
    if on_gpu:
        return host
    batch = n_train if cfg.batch_size == 0 else min(cfg.batch_size, n_train)
    pos = lay.n_read if cfg.engine == "fast" else lay.n_ctx  # positions that go through the MLP and unembedding
    per_example = n_varying * d_vocab + 3 * pos * (d_vocab_out + cfg.d_mlp) + lay.n_ctx * cfg.d_model
    step = size * batch * per_example                        # one-hot lookups, logits, exp, grads, MLP
    chunk = size * min(EVAL_CHUNK, max(n_train, n_eval)) * per_example
    used = lay.n_read if cfg.task != "sort" else d_vocab * lay.n_read   # query rows of the QK table
    qk = size * cfg.n_heads * used * d_vocab * lay.n_ctx if cfg.engine == "fast" else 0
    return host + size * n_params * 5 + qk + max(step, chunk)


def count_params(cfg):
    return sum(math.prod(s) for s in param_shapes(cfg).values())


def count_snapshots(cfg):
    """Snapshots a run keeps: epoch 0, then every snapshot_every epochs."""
    return cfg.epochs // cfg.snapshot_every + 1 if cfg.snapshot_every else 0


def checkpoint_bytes(cfg):
    """A checkpoint's size: weights, AdamW moments and snapshots (the history is small)."""
    return np.dtype(cfg.dtype).itemsize * count_params(cfg) * (3 + count_snapshots(cfg))


def available_memory():
    """Bytes that can be allocated (MemAvailable plus free swap), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return info["MemAvailable"] + info.get("SwapFree", 0)
    except (OSError, KeyError, ValueError, IndexError):
        return None


def check_resources(cfg, out, on_gpu=False, finish=False):
    """UsageError when the run cannot fit in memory, or its checkpoint on the disk."""
    gb = lambda b: f"{b / 2**30:,.1f} GB" if b >= 2**30 else f"{b / 2**20:.1f} MB"
    need, have = memory_estimate(cfg, on_gpu), available_memory()
    if have is not None and need > have:
        raise UsageError(f"this run needs at least {gb(need)} of memory (an estimate) but {gb(have)} are "
                         f"available; make it smaller (--p, --n, --n-train, --batch-size, --snapshot-every)")
    folder = existing_folder(out)
    # From the second save on, the last checkpoint and the temporary file of the next one are
    # both on disk: two checkpoints, less what a file at --out (resumed or replaced) holds now
    # (with --finish that file stays until the run is finished, beside the two).
    size = checkpoint_bytes(cfg)
    need = 2 * size - (os.path.getsize(out) if os.path.isfile(out) and not finish else 0)
    try:
        disk = shutil.disk_usage(folder)
    except OSError:
        return
    if disk.total and need > disk.free:     # (pseudo filesystems such as /proc have no size: lock_output finds them)
        raise UsageError(f"the checkpoint will take {gb(size)}, and {gb(need)} free while a save replaces the last "
                         f"one, but {folder} has {gb(disk.free)} free; free some space or choose another --out")


def peak_memory_mb():
    """This process's peak resident memory (Linux reports kilobytes), or nan elsewhere."""
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except (ImportError, AttributeError):
        return float("nan")
