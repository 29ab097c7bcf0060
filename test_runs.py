"""Tests of training and of run safety: grokking end to end, resume bit-identical, every bad
input one line and exit 2, nothing saved lost or replaced unasked (paths, locks, disk,
signals, nan), and a crash never taken for a result (checkpoint.run_state, --finish, make
interrupted and continued).
"""
import errno
import json
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

import checkpoint
import minigrok as mg
import tasks

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------- training end to end
SMALL = ["--task", "add", "--p", "41", "--frac-train", "0.35", "--d-model", "64", "--n-heads", "4",
         "--d-mlp", "256", "--lr", "5e-3", "--weight-decay", "2.0", "--eval-every", "10"]


def small_cfg(**kw):
    args = mg.make_parser().parse_args(SMALL + [x for k, v in kw.items() for x in (f"--{k.replace('_', '-')}", str(v))])
    return mg.config_from_args(args)


def test_both_engines_train_to_the_same_losses(tmp_path):
    # float64: Adam divides each gradient by its own running size, so in float32 the engines'
    # ~1e-7 rounding differences grow to ~1e-3 in the loss within 30 epochs; in float64 they stay tiny
    histories = {}
    for name in mg.ENGINES:
        cfg = small_cfg(epochs=30, engine=name, dtype="float64")
        _, histories[name], code = mg.train(cfg, str(tmp_path / f"{name}.npz"), verbose=False)
        assert code == 0
    fast_h, plain_h = histories["fast"], histories["plain"]
    assert fast_h["epoch"] == plain_h["epoch"]
    np.testing.assert_allclose(fast_h["train_loss"], plain_h["train_loss"], rtol=1e-9)
    np.testing.assert_allclose(fast_h["test_loss"], plain_h["test_loss"], rtol=1e-9)
    assert fast_h["train_loss"][-1] < 0.75 * fast_h["train_loss"][0]     # and it did train (seen: 3.79 -> 2.18)


@pytest.mark.slow
def test_small_model_groks(tmp_path):
    # (this setting groked on each of seeds 0-3, by epoch 1,970 at the latest; the test runs seed 0)
    cfg = small_cfg(epochs=3000)
    _, history, code = mg.train(cfg, str(tmp_path / "g.npz"), verbose=False, stop_at=0.99)
    assert code == 0
    ms = mg.milestones(history)
    assert ms["train_acc_100"] and ms["test_acc_99"], ms
    assert ms["test_acc_99"][0] >= 5 * ms["train_acc_100"][0], ms
    # memorised, not generalised: at the epoch train accuracy hit 100%, most of the test set
    # was still wrong (at p = 41 some test pairs come right early: seeds 0-3 were at 5-20%)
    i = history["epoch"].index(ms["train_acc_100"][0])
    assert history["test_acc"][i] < 0.25


def test_same_seed_same_result_and_resume_is_bit_identical(tmp_path):
    a, b, c = (str(tmp_path / n) for n in ("a.npz", "b.npz", "c.npz"))
    pa, ha, _ = mg.train(small_cfg(epochs=60, snapshot_every=20), a, verbose=False)
    pb, hb, _ = mg.train(small_cfg(epochs=60, snapshot_every=20), b, verbose=False)
    for k in pa:
        assert np.array_equal(pa[k], pb[k]), k
    mg.train(small_cfg(epochs=25, snapshot_every=20), c, verbose=False)
    pc, hc, _ = mg.train(small_cfg(epochs=60, snapshot_every=20), c, resume=True, verbose=False)
    ka, kc = checkpoint.load_checkpoint(a), checkpoint.load_checkpoint(c)
    for k in pa:
        assert np.array_equal(ka["params"][k], kc["params"][k]), k
        assert np.array_equal(ka["opt"]["m"][k], kc["opt"]["m"][k]), k
        assert np.array_equal(ka["opt"]["v"][k], kc["opt"]["v"][k]), k
    assert [e for e, _ in ka["snapshots"]] == [e for e, _ in kc["snapshots"]] == [0, 20, 40, 60]
    # the first part ended at epoch 25, not a multiple of --eval-every 10, with an evaluation
    # there; the uninterrupted run has none, and neither has the resumed history: row by row
    # the same, but for the wall times
    ha, hc = ka["history"], kc["history"]
    assert ha["epoch"] == [0, 10, 20, 30, 40, 50, 60] and set(hc) == set(ha)
    for k in ha:
        if k != "wall_s":
            assert hc[k] == ha[k], k


def test_minibatch_resume_is_bit_identical(tmp_path):
    a, c = str(tmp_path / "a.npz"), str(tmp_path / "c.npz")
    pa, _, _ = mg.train(small_cfg(epochs=12, batch_size=50), a, verbose=False)
    mg.train(small_cfg(epochs=5, batch_size=50), c, verbose=False)
    pc, _, _ = mg.train(small_cfg(epochs=12, batch_size=50), c, resume=True, verbose=False)
    for k in pa:
        assert np.array_equal(pa[k], pc[k]), k


def test_atomic_save_survives_a_kill_mid_write(tmp_path):
    path = tmp_path / "ck.npz"
    cfg = small_cfg(epochs=5)
    mg.train(cfg, str(path), verbose=False)
    before = checkpoint.load_checkpoint(str(path))["params"]
    # A child keeps rewriting the checkpoint with big snapshots; kill it at random moments.
    code = ("import checkpoint, numpy as np, sys\n"
            "ck = checkpoint.load_checkpoint(sys.argv[1])\n"
            "snaps = [(i, {k: v + 1 for k, v in ck['params'].items()}) for i in range(300)]\n"
            "print('ready', flush=True)\n"
            "while True:\n"
            "    checkpoint.save_checkpoint(sys.argv[1], ck['config'], ck['params'], ck['opt'], ck['history'], snaps, 5, 0.0)\n")
    for delay in (0.05, 0.2, 0.35):
        child = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=HERE, stdout=subprocess.PIPE)
        child.stdout.readline()
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        after = checkpoint.load_checkpoint(str(path))     # whole, old or new, never half-written
        for k in before:
            assert np.array_equal(after["params"][k], before[k])


def run_cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=HERE)
    return subprocess.run([sys.executable, os.path.join(HERE, "minigrok.py"), *args],
                          cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


BAD_INPUTS = [
    (["--task", "mul"], "unknown task"),
    (["--p", "1"], "--p must be"),
    (["--frac-train", "1.5"], "--frac-train must be"),
    (["--frac-train", "0"], "--frac-train must be"),
    (["--p", "11", "--n-train", "500"], "--n-train must be"),
    (["--d-model", "0"], "--d-model must be"),
    (["--d-mlp", "-3"], "--d-mlp must be"),
    (["--epochs", "0"], "--epochs must be"),
    (["--d-model", "30", "--n-heads", "4"], "must divide"),
    (["--d-model", "32", "--n-heads", "4", "--d-head", "5"], "must equal"),
    (["--task", "max", "--n", "3", "--n-train", "100"], "--n-train + --n-test"),
    (["--lr", "abc"], "invalid float"),
    (["--device", "gpu"], "--device gpu needs"),
]


@pytest.mark.parametrize("args,message", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_and_keeps_the_checkpoint(tmp_path, args, message):
    out = tmp_path / "keep.npz"
    out.write_bytes(b"precious")
    epochs = [] if "--epochs" in args else ["--epochs", "1"]
    r = run_cli(*args, *epochs, "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [l for l in r.stderr.splitlines() if not l.startswith("minigrok: no working GPU")]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert out.read_bytes() == b"precious"


def test_missing_corrupt_and_mismatched_checkpoints(tmp_path):
    r = run_cli(*SMALL, "--epochs", "2", "--resume", "--out", str(tmp_path / "none.npz"), cwd=tmp_path)
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    r = run_cli(*SMALL, "--epochs", "2", "--resume", "--out", str(bad), cwd=tmp_path)
    assert r.returncode == 2 and "is not a minigrok checkpoint (not an .npz archive)" in r.stderr
    assert bad.read_bytes() == b"not a zip"
    good = tmp_path / "good.npz"
    assert run_cli(*SMALL, "--epochs", "2", "--out", str(good), "--quiet", cwd=tmp_path).returncode == 0
    before = good.read_bytes()
    r = run_cli(*SMALL, "--epochs", "4", "--lr", "3e-2", "--resume", "--out", str(good), "--device", "cpu", cwd=tmp_path)
    assert r.returncode == 2 and "lr=" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert good.read_bytes() == before


def test_cli_run_writes_checkpoint_curve_and_summary(tmp_path):
    r = run_cli(*SMALL, "--epochs", "30", "--device", "cpu", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "train accuracy 100%" in r.stdout and "test accuracy 99%" in r.stdout
    assert (tmp_path / "runs" / "add.npz").exists() and (tmp_path / "runs" / "add.png").stat().st_size > 10000
    cfg, params, history = mg.load(str(tmp_path / "runs" / "add.npz"))
    assert cfg.p == 41 and params["W_E"].shape == (42, 64) and history["epoch"][-1] == 30


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    path = str(tmp_path / "n.npz")
    mg.train(small_cfg(epochs=10), path, verbose=False)
    good = checkpoint.load_checkpoint(path)["params"]
    cfg = small_cfg(epochs=20, lr=1e30)            # explodes at once
    _, _, code = mg.train(cfg, path, resume=False, verbose=False)
    assert code == 1
    kept = checkpoint.load_checkpoint(path)["params"]
    for k in good:
        assert np.array_equal(kept[k], good[k])


# ---------------------------------------------------------------- nothing lost, nothing overwritten
# main() in this process (fast: no interpreter start), except where a signal or a second
# process is the point. TINY trains an epoch in about a millisecond.
TINY = ["--task", "add", "--p", "23", "--d-model", "16", "--n-heads", "2", "--d-mlp", "32", "--eval-every", "10",
        "--device", "cpu", "--quiet"]


def main_here(capsys, *args):
    """minigrok.main(args) in this process -> (exit code, stdout, the lines on stderr)."""
    code = mg.main([*TINY, *args])
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def one_line(lines, *words):
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def leftovers(folder):
    """Temporary and lock files in a folder: there should be none once a run has ended."""
    return sorted(n for n in os.listdir(folder) if n.endswith((".tmp", ".lock")))


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if main() gets as far as building the data."""
    def refuse(cfg):
        raise AssertionError("training started")
    monkeypatch.setattr(tasks, "make_data", refuse)


def ck_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def test_bad_output_paths_are_refused_before_training(tmp_path, capsys, no_training):
    real = tmp_path / "real.npz"
    real.write_bytes(b"a run's checkpoint")
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    readonly = tmp_path / "ro.npz"
    readonly.write_bytes(b"kept")
    readonly.chmod(0o444)                      # refused by its mode bits even as root, whom access() lets write
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)                            # a special file, as /dev/null is
    (tmp_path / "dir.png").mkdir()             # the curve's path of dir.npz
    (tmp_path / "afile").write_text("x")
    cases = [("", "--out is empty"), (str(tmp_path / "x.png"), "own curve"), (str(tmp_path), "is a directory"),
             (str(link), "symbolic link"), (str(readonly), "read-only"), (str(fifo), "not a regular file"),
             (str(tmp_path / "dir.npz"), "the curve's path"), (str(tmp_path / "afile" / "x.npz"), "not a folder")]
    if os.path.isdir("/proc/self"):            # Linux: a folder nobody can write in, root included
        cases.append(("/proc/minigrok-test/x.npz", "cannot create the folder"))
        cases.append(("/proc/x.npz", "cannot write in /proc"))
    for out, words in cases:
        for extra in ([], ["--overwrite"], ["--resume"]):
            code, _, err = main_here(capsys, "--epochs", "3", "--out", out, *extra)
            assert code == 2, (out, extra, err)
            # nothing to resume there: said before any folder is made
            one_line(err, "does not exist" if extra == ["--resume"] and out.startswith("/proc/") else words)
    assert link.is_symlink() and ck_bytes(real) == b"a run's checkpoint"
    assert ck_bytes(readonly) == b"kept" and readonly.stat().st_mode & 0o777 == 0o444
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not (tmp_path / "x.png").exists() and leftovers(tmp_path) == []


def test_a_fresh_run_never_replaces_an_existing_checkpoint(tmp_path, capsys):
    out = str(tmp_path / "a.npz")
    assert main_here(capsys, "--epochs", "4", "--out", out)[0] == 0
    before = ck_bytes(out)
    # the same run again, another run, and a file that is no checkpoint: refused, untouched
    for args, words in ((["--epochs", "4"], ["already holds this run, finished"]),
                        (["--epochs", "8", "--save-every", "2"], ["already holds this run, finished at epoch 4", "give more --epochs"]),
                        (["--epochs", "4", "--lr", "1e-2"], ["another run", "lr=0.005 there, 0.01 here"])):
        code, _, err = main_here(capsys, *args, "--out", out)
        assert code == 2
        one_line(err, *words, "--resume", "--overwrite", "another --out")
        assert ck_bytes(out) == before
    other = tmp_path / "notes.npz"
    other.write_text("my notes")
    code, _, err = main_here(capsys, "--epochs", "4", "--out", str(other))
    assert code == 2 and other.read_text() == "my notes"
    one_line(err, "not a minigrok checkpoint", "--overwrite")
    # --resume of the finished run: nothing to do; past its --epochs, or with --overwrite: refused
    code, stdout, err = main_here(capsys, "--epochs", "4", "--out", out, "--resume")
    assert code == 0 and "already complete" in stdout and err == [] and ck_bytes(out) == before
    code, _, err = main_here(capsys, "--epochs", "3", "--out", out, "--resume")
    assert code == 2 and ck_bytes(out) == before
    one_line(err, "past --epochs 3")
    code, _, err = main_here(capsys, "--epochs", "4", "--out", out, "--resume", "--overwrite")
    assert code == 2
    one_line(err, "give one of them")
    # --overwrite replaces it with the run asked for
    assert main_here(capsys, "--epochs", "4", "--lr", "1e-2", "--out", out, "--overwrite")[0] == 0
    assert mg.load(out)[0].lr == 1e-2 and leftovers(tmp_path) == []


def test_the_default_output_is_not_replaced_by_a_second_default_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main_here(capsys, "--epochs", "2")[0] == 0
    before = ck_bytes("runs/add.npz")
    code, _, err = main_here(capsys, "--epochs", "2")
    assert code == 2 and ck_bytes("runs/add.npz") == before
    one_line(err, "runs/add.npz already holds this run")


# A child process running minigrok.main with one of its functions wrapped: on the
# `after`-th call the wrapper sends the process `sig` (none: prints 'ready' and waits for a
# line on stdin), then calls the real function. The signal comes at a known moment.
HOOKED_CHILD = """
import os, signal, sys
import minigrok as mg
where, name, sig, after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
owner = {"tasks": mg.tasks, "mg": mg, "checkpoint": mg.checkpoint}[where]
real, calls = getattr(owner, name), [0]
def hooked(*a, **k):
    calls[0] += 1
    if calls[0] == after:
        if sig == "none":
            print("ready", flush=True)
            sys.stdin.readline()
        else:
            os.kill(os.getpid(), getattr(signal, sig))
    return real(*a, **k)
setattr(owner, name, hooked)
sys.exit(mg.main(sys.argv[5:]))
"""


def hooked_child(where, name, sig, after, *args, cwd):
    env = dict(os.environ, PYTHONPATH=HERE)
    return subprocess.Popen([sys.executable, "-c", HOOKED_CHILD, where, name, sig, str(after), *TINY, *args],
                            cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_second_run_on_the_same_output_fails_at_once(tmp_path, capsys):
    out = str(tmp_path / "busy.npz")
    first = hooked_child("mg", "evaluate", "none", 1, "--epochs", "3", "--out", out, cwd=tmp_path)
    try:
        assert first.stdout.readline() == "ready\n"           # the first run holds the lock, evaluating
        t0 = time.perf_counter()
        for extra in ([], ["--overwrite"], ["--lr", "1e-2"]):
            code, _, err = main_here(capsys, "--epochs", "3", "--out", out, *extra)
            assert code == 2
            one_line(err, f"another minigrok run (pid {first.pid}) is writing {out}")
        assert time.perf_counter() - t0 < 5
        first.stdin.write("\n")
        first.stdin.flush()
        assert first.wait(timeout=60) == 0, first.stderr.read()
    finally:
        first.kill()
        first.wait()
    assert mg.load(out)[0].lr == 5e-3 and leftovers(tmp_path) == []


def failing_savez(fail_on):
    """np.savez that writes part of the file and then fails with ENOSPC on call `fail_on`."""
    real, calls = np.savez, [0]

    def savez(f, **arrays):
        calls[0] += 1
        if calls[0] == fail_on:
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(f, **arrays)
    return savez


def test_a_full_disk_at_a_save_keeps_the_last_checkpoint_and_no_temporary(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "full.npz")
    monkeypatch.setattr(np, "savez", failing_savez(fail_on=2))
    code, _, err = main_here(capsys, "--epochs", "6", "--save-every", "3", "--out", out)
    assert code == 1
    one_line(err, "could not write the checkpoint", "at epoch 6", "No space left on device",
             f"its last checkpoint, {out} at epoch 3, is kept")
    assert checkpoint.load_checkpoint(out)["epoch"] == 3 and leftovers(tmp_path) == []
    # the first save failing: nothing of this run to keep
    monkeypatch.setattr(np, "savez", failing_savez(fail_on=1))
    code, _, err = main_here(capsys, "--epochs", "6", "--save-every", "3", "--out", str(tmp_path / "none.npz"))
    assert code == 1 and not (tmp_path / "none.npz").exists() and leftovers(tmp_path) == []
    one_line(err, "No space left on device", "nothing was saved")


def test_a_disk_too_small_for_the_checkpoint_is_refused_up_front(tmp_path, capsys, monkeypatch, no_training):
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    code, _, err = main_here(capsys, "--epochs", "3", "--out", str(tmp_path / "a.npz"))
    assert code == 2
    one_line(err, "the checkpoint will take", "free")


def test_temporary_files_of_a_killed_save_are_removed_by_the_next_run(tmp_path, capsys):
    out = str(tmp_path / "k.npz")
    assert main_here(capsys, "--epochs", "3", "--out", out)[0] == 0
    # a save killed mid-write (kill -9: no clean-up runs) leaves its temporary file
    code = ("import checkpoint, sys, time\n"
            "def write(f):\n"
            "    f.write(b'half a checkpoint'); f.flush(); print('ready', flush=True); time.sleep(60)\n"
            "checkpoint.write_atomically(sys.argv[1], write)\n")
    child = subprocess.Popen([sys.executable, "-c", code, out], cwd=HERE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    child.kill()
    child.wait()
    orphans = checkpoint.temporaries(out)
    assert len(orphans) == 1 and open(orphans[0], "rb").read() == b"half a checkpoint"
    stranger = tmp_path / ".other.npz.0123abcd.tmp"           # another output's: not ours to remove
    stranger.write_text("x")
    code, _, err = main_here(capsys, "--epochs", "5", "--out", out, "--resume")
    assert code == 0 and checkpoint.temporaries(out) == [] and stranger.exists()
    one_line(err, "removed 1 temporary file", os.path.basename(orphans[0]))
    assert checkpoint.load_checkpoint(out)["epoch"] == 5


@pytest.mark.parametrize("where,name,after,resume", [
    ("tasks", "make_data", 1, False),          # building the data
    ("mg", "evaluate", 1, False),              # the first evaluation
    ("checkpoint", "load_checkpoint", 1, True),        # loading the checkpoint to resume
])
def test_sigint_before_the_first_epoch_is_one_line_and_leaves_everything_as_it_was(tmp_path, where, name, after, resume):
    out = str(tmp_path / "s.npz")
    if resume:
        mg.train(mg.config_from_args(mg.make_parser().parse_args(TINY + ["--epochs", "3"])), out, verbose=False)
    before = ck_bytes(out) if resume else None
    child = hooked_child(where, name, "SIGINT", after, "--epochs", "6" if resume else "3", "--out", out,
                         *(["--resume"] if resume else []), cwd=tmp_path)
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr
    one_line(stderr.strip().splitlines(), "interrupted (SIGINT) before an epoch was completed; nothing was saved")
    assert (ck_bytes(out) == before) if resume else not os.path.exists(out)
    assert leftovers(tmp_path) == []


def test_sigterm_while_plotting_keeps_the_checkpoint_and_writes_no_half_curve(tmp_path):
    out = str(tmp_path / "p.npz")
    child = hooked_child("mg", "plot_history", "SIGTERM", 1, "--epochs", "3", "--out", out, cwd=tmp_path)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 143
    one_line(stderr.strip().splitlines(), "interrupted (SIGTERM) after training", f"the checkpoint {out} is saved")
    assert checkpoint.load_checkpoint(out)["epoch"] == 3 and not (tmp_path / "p.png").exists() and leftovers(tmp_path) == []


def assert_same_run(a, b):
    """Two checkpoints hold the same run: weights, AdamW state, snapshots and history rows
    bit for bit, all but the wall times."""
    ka, kb = checkpoint.load_checkpoint(a), checkpoint.load_checkpoint(b)
    assert ka["epoch"] == kb["epoch"] and ka["opt"]["step"] == kb["opt"]["step"]
    for k in ka["params"]:
        assert np.array_equal(ka["params"][k], kb["params"][k]), k
        assert np.array_equal(ka["opt"]["m"][k], kb["opt"]["m"][k]), k
        assert np.array_equal(ka["opt"]["v"][k], kb["opt"]["v"][k]), k
    assert [e for e, _ in ka["snapshots"]] == [e for e, _ in kb["snapshots"]]
    for (_, sa), (_, sb) in zip(ka["snapshots"], kb["snapshots"]):
        assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    ha, hb = ka["history"], kb["history"]
    assert set(ha) == set(hb)
    for k in ha:
        if k != "wall_s":
            assert ha[k] == hb[k], k
    return ka


def test_sigterm_between_evaluations_saves_and_resumes_row_for_row(tmp_path, capsys):
    whole, cut = str(tmp_path / "whole.npz"), str(tmp_path / "cut.npz")
    flags = ["--epochs", "30", "--snapshot-every", "4", "--batch-size", "50"]
    assert main_here(capsys, *flags, "--out", whole)[0] == 0
    # SIGTERM during epoch 13 (eval every 10): the epoch ends, is saved, and no evaluation is added
    child = hooked_child("mg", "train_epoch", "SIGTERM", 13, *flags, "--out", cut, cwd=tmp_path)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 143
    one_line(stderr.strip().splitlines(), "interrupted (SIGTERM) at epoch 13", "--resume")
    ck = checkpoint.load_checkpoint(cut)
    assert ck["epoch"] == 13 and ck["history"]["epoch"] == [0, 10]
    assert main_here(capsys, *flags, "--out", cut, "--resume")[0] == 0
    ck = assert_same_run(whole, cut)
    assert ck["history"]["epoch"] == [0, 10, 20, 30] and [e for e, _ in ck["snapshots"]] == [0, 4, 8, 12, 16, 20, 24, 28]


def test_resume_past_a_final_epoch_off_the_evaluation_grid_is_row_for_row(tmp_path, capsys):
    whole, part = str(tmp_path / "whole.npz"), str(tmp_path / "part.npz")
    assert main_here(capsys, "--epochs", "40", "--out", whole)[0] == 0
    assert main_here(capsys, "--epochs", "15", "--out", part)[0] == 0       # evaluated at 15 as its last epoch
    assert mg.load(part)[2]["epoch"] == [0, 10, 15]
    assert main_here(capsys, "--epochs", "27", "--out", part, "--resume")[0] == 0
    assert mg.load(part)[2]["epoch"] == [0, 10, 20, 27]
    assert main_here(capsys, "--epochs", "40", "--out", part, "--resume", "--save-every", "7")[0] == 0
    assert_same_run(whole, part)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nonfinite_weights_stop_the_run_before_they_are_saved(tmp_path, capsys, monkeypatch):
    # --lr 1e39 is finite, but not in float32: the first update makes the weights inf.
    # Over another run's checkpoint (--overwrite): that one stays, and is not named.
    out = str(tmp_path / "x.npz")
    assert main_here(capsys, "--epochs", "2", "--out", out)[0] == 0
    before = ck_bytes(out)
    code, _, err = main_here(capsys, "--epochs", "5", "--lr", "1e39", "--out", out, "--overwrite")
    assert code == 1 and ck_bytes(out) == before
    line = one_line(err, "the weights became nan or inf at epoch 1", "nothing was saved")
    assert out not in line
    # finite loss, weights poisoned after the update of epoch 5: the checkpoint of epoch 4 stays, named
    real = mg.train_epoch

    def poisoned(params, opt, tokens, targets, cfg, epoch, *rest):
        loss = real(params, opt, tokens, targets, cfg, epoch, *rest)
        if epoch == 4:                         # the 5th epoch
            params["W_in"][0, 0] = np.nan
        return loss
    monkeypatch.setattr(mg, "train_epoch", poisoned)
    out = str(tmp_path / "y.npz")
    code, _, err = main_here(capsys, "--epochs", "8", "--save-every", "2", "--out", out)
    assert code == 1
    one_line(err, "the weights became nan or inf at epoch 5", f"its last checkpoint, {out} at epoch 4, is kept")
    ck = checkpoint.load_checkpoint(out)
    assert ck["epoch"] == 4 and all(np.isfinite(v).all() for v in ck["params"].values())
    # resumed at 4 and poisoned before its first save: the checkpoint it resumed from is named
    code, _, err = main_here(capsys, "--epochs", "8", "--save-every", "2", "--out", out, "--resume")
    assert code == 1 and checkpoint.load_checkpoint(out)["epoch"] == 4
    one_line(err, f"{out} is kept as it was resumed (epoch 4)")


@pytest.mark.parametrize("args,message", [
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--data-seed", "-3"], "--data-seed must be >= 0"),
    (["--lr", "inf"], "--lr must be positive and finite"),
    (["--weight-decay", "inf"], "--weight-decay must be >= 0 and finite"),
    (["--stop-at", "0"], "--stop-at must be"),
    (["--stop-at", "1.5"], "--stop-at must be"),
    (["--stop-at", "nan"], "--stop-at must be"),
    (["--task", "max", "--n", "7000"], "--n must be at most 6208"),
    (["--p", "100000"], "needs at least"),                    # p*p = 1e10 pairs: petabytes
    (["--task", "sort", "--n", "6000", "--n-heads", "16", "--n-train", "100", "--n-test", "100"], "needs at least"),  # QK table: 110 GB
])
def test_more_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message, no_training):
    code, _, err = main_here(capsys, "--epochs", "2", "--out", str(tmp_path / "b.npz"), *args)
    assert code == 2
    one_line(err, message)
    assert os.listdir(tmp_path) == []


MEASURE_PEAK = """
import resource, sys
import minigrok as mg
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
mg.main(sys.argv[1:])
print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.slow
@pytest.mark.parametrize("flags", [["--p", "300", "--epochs", "2"],
                                   ["--task", "sort", "--n-train", "20000", "--batch-size", "0", "--epochs", "1"]])
def test_memory_estimate_is_a_lower_bound_of_a_measured_peak(tmp_path, flags):
    """The estimate refuses runs up front, so it must not exceed what a run uses (its peak
    resident memory, measured), and it must count most of it: the arrays it counts are the
    ones that grow with the run (seen: the peak above the interpreter's 1.1-1.8 times it)."""
    cfg = mg.config_from_args(mg.make_parser().parse_args(flags))
    out = str(tmp_path / "m.npz")
    done = subprocess.run([sys.executable, "-c", MEASURE_PEAK, *flags, "--device", "cpu", "--quiet", "--out", out],
                          cwd=HERE, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=HERE))
    base, peak = (int(x) * 1024 for x in done.stdout.split()[-2:])     # Linux reports kilobytes
    estimate = checkpoint.memory_estimate(cfg)
    assert estimate < peak and peak - base < 3 * estimate, (estimate / 2**20, base / 2**20, peak / 2**20)


def test_a_checkpoint_whose_config_does_not_match_its_weights_is_refused(tmp_path, capsys):
    out = str(tmp_path / "m.npz")
    assert main_here(capsys, "--epochs", "2", "--out", out)[0] == 0
    with np.load(out) as z:
        arrays = {k: z[k] for k in z.files}
    raw = json.loads(str(arrays["config"]))
    raw["d_mlp"] = 64                                          # the weights have 32
    arrays["config"] = np.array(json.dumps(raw))
    np.savez(out, **arrays)
    with pytest.raises(mg.UsageError, match="does not match the weights"):
        mg.load(out)
    code, _, err = main_here(capsys, "--epochs", "4", "--d-mlp", "64", "--out", out, "--resume")
    assert code == 2
    one_line(err, "W_in [16, 64] float32, but it is [16, 32] float32")


def passes_every_check(capsys, *args):
    """main(args) gets as far as building the data (no_training fails it there)."""
    with pytest.raises(AssertionError, match="training started"):
        mg.main([*TINY, *args])
    capsys.readouterr()


def test_a_fresh_run_never_replaces_a_file_at_the_curves_path(tmp_path, capsys, monkeypatch):
    out, png = tmp_path / "report.npz", tmp_path / "report.png"
    png.write_text("mine")
    code, _, err = main_here(capsys, "--epochs", "3", "--out", str(out))
    assert code == 2 and png.read_text() == "mine" and not out.exists()
    one_line(err, f"the curve's path {png} holds a file", "--overwrite", "another --out")
    # without .npz two outputs would share a curve (a and a.npz: a.png): refused
    code, _, err = main_here(capsys, "--epochs", "3", "--out", str(tmp_path / "report"))
    assert code == 2
    one_line(err, "must end in .npz", f"{tmp_path / 'report'}.npz")
    assert checkpoint.plot_path("a.b.npz") == "a.b.png" and checkpoint.plot_path("runs/add.npz") == "runs/add.png"
    # --overwrite replaces it with the run's curve
    assert main_here(capsys, "--epochs", "3", "--out", str(out), "--overwrite")[0] == 0
    assert png.read_bytes().startswith(b"\x89PNG") and leftovers(tmp_path) == []


def test_a_folder_that_cannot_take_a_save_is_refused_before_training(tmp_path, capsys, monkeypatch, no_training):
    """A trial save (a temporary file named as a save's, created, renamed, removed) before
    training: a folder out of inodes, or where a rename fails, stops the run at once, and
    the file at --out is not touched."""
    out = tmp_path / "full.npz"
    out.write_bytes(b"someone's file")
    real_open, real_replace = os.open, os.replace

    def no_inodes(path, flags, *rest, **kw):
        if str(path).endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, flags, *rest, **kw)

    def no_rename(src, dst):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))
    for name, fake, words in (("open", no_inodes, "No space left on device"),
                              ("replace", no_rename, "Operation not permitted")):
        with monkeypatch.context() as m:
            m.setattr(os, name, fake)
            code, _, err = main_here(capsys, "--epochs", "3", "--out", str(out), "--overwrite")
        assert code == 2 and out.read_bytes() == b"someone's file"
        one_line(err, f"cannot write in {tmp_path}", "trial save", words)
        assert leftovers(tmp_path) == []
    # names whose temporary files (14 bytes longer) do not fit, and whose lock does or does not
    limit = checkpoint.name_max(str(tmp_path))
    for n in (limit - 13, limit - 4, limit + 5):
        code, _, err = main_here(capsys, "--epochs", "3", "--out", str(tmp_path / ("n" * (n - 4) + ".npz")))
        assert code == 2
        one_line(err, "the file name is too long", f"({n} bytes", f"at most {limit - 14} bytes")
    assert leftovers(tmp_path) == []
    passes_every_check(capsys, "--epochs", "3", "--out", str(tmp_path / ("n" * (limit - 18) + ".npz")))


def test_a_file_of_another_user_in_a_sticky_folder_is_refused(tmp_path, capsys, monkeypatch, no_training):
    """In a folder with the sticky bit (as /tmp) a file of another user may be writable
    (0666) but not renamed over, which every save does: refused before training. Tested as
    a user who is not root (os.geteuid made to say so)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    out = shared / "theirs.npz"
    out.write_bytes(b"their checkpoint")
    out.chmod(0o666)
    os.chown(out, 4242, 4242)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for extra in (["--overwrite"], ["--resume"]):
        code, _, err = main_here(capsys, "--epochs", "3", "--out", str(out), *extra)
        assert code == 2 and out.read_bytes() == b"their checkpoint"
        one_line(err, f"--out {out} belongs to another user (uid 4242)", "sticky bit", "another --out")
    assert leftovers(shared) == []
    st = os.stat(out)
    for euid, problem in ((4242, False), (os.stat(shared).st_uid, False), (0, False), (1000, True)):
        monkeypatch.setattr(os, "geteuid", lambda: euid)          # the file's owner, the folder's, root
        assert (checkpoint.sticky_problem(str(out), st) is not None) == problem, euid
    shared.chmod(0o777)                                            # no sticky bit: anyone who may write, may rename
    assert checkpoint.sticky_problem(str(out), st) is None


@pytest.mark.parametrize("content,words", [
    (b"my notes\n", "not an .npz archive"),
    (b"", "it is empty"),
    (b"\x93NUMPY", "a .npy array"),
    (None, "an .npz archive without minigrok's 'format' entry"),   # an archive of something else
])
def test_a_file_that_is_no_checkpoint_is_named_so(tmp_path, capsys, content, words):
    path = tmp_path / "notes.npz"
    if content is None:
        np.savez(path, x=np.zeros(3))
    elif content.startswith(b"\x93"):
        np.save(tmp_path / "a.npy", np.zeros(3))
        path.write_bytes((tmp_path / "a.npy").read_bytes())
    else:
        path.write_bytes(content)
    with pytest.raises(mg.UsageError, match=f"{path} is not a minigrok checkpoint") as e:
        mg.load(str(path))
    assert words in str(e.value) and "pickle" not in str(e.value)
    code, _, err = main_here(capsys, "--epochs", "3", "--out", str(path), "--resume")
    assert code == 2 and "pickle" not in err[0]
    one_line(err, f"{path} is not a minigrok checkpoint ({words}")


def test_frac_train_too_small_names_frac_train(tmp_path, capsys, no_training):
    code, _, err = main_here(capsys, "--epochs", "3", "--frac-train", "0.001", "--out", str(tmp_path / "f.npz"))
    assert code == 2
    line = one_line(err, "--frac-train 0.001 gives 0 of the 529 pairs (p=23)")
    assert "--n-train must" not in line


def test_sigint_before_the_output_is_known_names_no_output(tmp_path, capsys, monkeypatch):
    def interrupted(args):
        raise checkpoint.Interrupted(signal.SIGINT)
    monkeypatch.setattr(mg, "config_from_args", interrupted)
    code, _, err = main_here(capsys, "--epochs", "3", "--out", str(tmp_path / "r.npz"), "--resume")
    assert code == 130
    line = one_line(err, "interrupted (SIGINT) before an epoch was completed; nothing was saved")
    assert "None" not in line


def test_sigterm_while_redrawing_a_complete_runs_curve_says_nothing_was_trained(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "c.npz")
    assert main_here(capsys, "--epochs", "3", "--out", out)[0] == 0
    before = ck_bytes(out)

    def interrupted(*args):
        raise checkpoint.Interrupted(signal.SIGTERM)
    monkeypatch.setattr(mg, "plot_history", interrupted)
    code, stdout, err = main_here(capsys, "--epochs", "3", "--out", out, "--resume")
    assert code == 143 and "nothing to train" in stdout and ck_bytes(out) == before
    line = one_line(err, "interrupted (SIGTERM) while redrawing the curve, with nothing to train", f"{out} is as it was")
    assert "after training" not in line


def test_a_refused_resume_creates_no_folder(tmp_path, capsys, no_training):
    code, _, err = main_here(capsys, "--epochs", "3", "--out", str(tmp_path / "new" / "sub" / "x.npz"), "--resume")
    assert code == 2 and os.listdir(tmp_path) == []
    one_line(err, "does not exist")


def test_the_disk_must_hold_two_checkpoints_while_a_save_replaces_one(tmp_path, capsys, monkeypatch, no_training):
    """From the second save on, the last checkpoint and the next one's temporary file are on
    disk together; a file at --out that the run replaces counts as space it frees."""
    cfg = mg.config_from_args(mg.make_parser().parse_args([*TINY, "--epochs", "3"]))
    size = checkpoint.checkpoint_bytes(cfg)
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 3 * size // 2))
    out = tmp_path / "d.npz"
    code, _, err = main_here(capsys, "--epochs", "3", "--out", str(out))
    assert code == 2
    one_line(err, "while a save replaces the last one", "free")
    out.write_bytes(b"x" * size)                                   # replaced by this run: its space is freed
    passes_every_check(capsys, "--epochs", "3", "--out", str(out), "--overwrite")


def test_export_replaces_nothing_unasked(tmp_path, capsys):
    pytest.importorskip("torch")
    import interop
    ck = str(tmp_path / "m.npz")
    assert main_here(capsys, "--epochs", "2", "--out", ck)[0] == 0
    before = ck_bytes(ck)
    pt, js = tmp_path / "m_tl.pt", tmp_path / "m_tl.json"
    for args, words in (([ck, ck], "the checkpoint being exported"), ([ck, ck, "--overwrite"], "being exported"),
                        ([ck, str(tmp_path / "m.json")], "ends in .json")):
        assert interop.main(["export", *args]) == 2
        one_line(capsys.readouterr().err.strip().splitlines(), "interop: error:", words)
    assert ck_bytes(ck) == before
    for existing in (pt, js):
        existing.write_text("mine")
        assert interop.main(["export", ck, str(pt)]) == 2
        one_line(capsys.readouterr().err.strip().splitlines(), f"{existing} exists", "--overwrite")
        assert existing.read_text() == "mine"
        existing.unlink()
    pt.write_text("mine")
    assert interop.main(["export", ck, str(pt), "--overwrite"]) == 0
    assert pt.read_bytes() != b"mine" and json.loads(js.read_text())["d_model"] == 16
    assert ck_bytes(ck) == before and leftovers(tmp_path) == []


# ---------------------------------------------------------------- a crash never becomes a result
def test_a_checkpoint_says_whether_its_run_finished(tmp_path, capsys):
    out = str(tmp_path / "a.npz")
    assert main_here(capsys, "--epochs", "20", "--save-every", "5", "--out", out)[0] == 0
    state = mg.run_state(out)
    assert state.finished and state.epoch == 20 and math.isnan(state.stop_at)
    # the same run stopped on its way (as a kill after the save at epoch 5 leaves it)
    ck = checkpoint.load_checkpoint(out)
    cut = str(tmp_path / "cut.npz")
    checkpoint.save_checkpoint(cut, ck["config"], ck["params"], ck["opt"], ck["history"], [], 5, 0.0, False)
    state = mg.run_state(cut)
    assert not state.finished and state.epoch == 5
    assert checkpoint.load_checkpoint(cut)["finished"] is False
    # load() refuses it in one line naming the command that finishes it; that command does
    with pytest.raises(mg.UsageError) as e:
        mg.load(cut)
    assert "unfinished run (saved at epoch 5 of 20)" in str(e.value)
    command = str(e.value).split("finish it with: ")[1].split()
    assert command[:2] == ["python", "minigrok.py"] and command[-2:] == [cut, "--resume"]
    args = mg.make_parser().parse_args(command[2:])
    assert mg.config_from_args(args) == ck["config"] and args.resume
    assert mg.load(cut, unfinished=True)[0] == ck["config"]
    # stopped by --stop-at: finished, and says with which
    stopped, history = str(tmp_path / "stopped.npz"), mg.load(out)[2]
    acc = max(history["test_acc"][1:])                  # reached at some evaluation before epoch 20
    assert main_here(capsys, "--epochs", "20", "--stop-at", str(acc), "--save-every", "5", "--out", stopped)[0] == 0
    state = mg.run_state(stopped)
    assert state.finished and state.epoch == history["epoch"][history["test_acc"].index(acc)] and state.stop_at == acc


@pytest.mark.parametrize("extra", [[], ["--task", "sort", "--n", "12", "--n-train", "200", "--n-test", "40",
                                        "--augment", "--d-model", "24", "--n-heads", "3", "--dtype", "float64"],
                                   ["--preset", "nanda", "--epochs", "20000", "--snapshot-every", "250"],
                                   ["--task", "median", "--d-model", "64", "--lr", "3e-4", "--engine", "plain"]])
def test_config_flags_give_back_the_config(extra):
    cfg = mg.config_from_args(mg.make_parser().parse_args(extra))
    assert mg.config_from_args(mg.make_parser().parse_args(mg.config_flags(cfg))) == cfg


def test_out_holding_an_unfinished_run_says_so_and_points_at_resume(tmp_path, capsys):
    out = str(tmp_path / "a.npz")
    assert main_here(capsys, "--epochs", "10", "--out", out)[0] == 0
    ck = checkpoint.load_checkpoint(out)
    checkpoint.save_checkpoint(out, ck["config"], ck["params"], ck["opt"], ck["history"], [], 10, 0.0, False)
    before = ck_bytes(out)
    for extra, words in (([], ["already holds this run, unfinished: saved at epoch 10 of 10"]),
                         (["--lr", "1e-2"], ["another run", "unfinished: saved at epoch 10 of 10"])):
        code, _, err = main_here(capsys, "--epochs", "10", *extra, "--out", out)
        assert code == 2 and ck_bytes(out) == before
        one_line(err, *words, "--resume")


def test_finish_starts_continues_and_then_leaves_a_run(tmp_path, capsys):
    """--finish trains into NAME.unfinished.npz and renames it onto --out once finished; run
    again it continues an unfinished run (bit-identical) and leaves a finished one alone."""
    whole, out = str(tmp_path / "whole.npz"), str(tmp_path / "a.npz")
    partial = str(tmp_path / "a.unfinished.npz")
    flags = ["--epochs", "30", "--snapshot-every", "4", "--batch-size", "50"]
    assert main_here(capsys, *flags, "--out", whole)[0] == 0
    # SIGTERM during epoch 13: the run is kept beside --out, which does not exist yet
    child = hooked_child("mg", "train_epoch", "SIGTERM", 13, *flags, "--finish", "--out", out, cwd=tmp_path)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 143, stderr
    one_line(stderr.strip().splitlines(), f"saved {partial}", "--finish")
    assert not os.path.exists(out) and mg.run_state(partial).epoch == 13
    # the study (any analysis) refuses both names, with the command that finishes the run
    for path in (partial, out):
        with pytest.raises(mg.UsageError) as e:
            mg.load(path)
        assert "unfinished" in str(e.value) and f"--finish --out {out}" in str(e.value)
    # a plain run on --out is told where the unfinished one is
    code, _, err = main_here(capsys, *flags, "--out", out)
    assert code == 2
    one_line(err, f"an unfinished run of --out {out} is at {partial}", "--finish")
    code, stdout, _ = main_here(capsys, *flags, "--finish", "--out", out)
    assert code == 0 and f"continuing {partial} from epoch 13" in stdout
    assert not os.path.exists(partial) and mg.run_state(out).finished
    assert_same_run(whole, out)
    before = ck_bytes(out)
    code, stdout, _ = main_here(capsys, *flags, "--finish", "--out", out)
    assert code == 0 and "is finished (30 epochs); nothing to train" in stdout and ck_bytes(out) == before
    # more --epochs continue the finished run, beside it until they are done
    code, stdout, _ = main_here(capsys, "--epochs", "40", *flags[2:], "--finish", "--out", out)
    assert code == 0 and f"continuing {out} from epoch 30" in stdout and mg.run_state(out).epoch == 40
    code, _, err = main_here(capsys, *flags, "--finish", "--resume", "--out", out)
    assert code == 2
    one_line(err, "without --resume and --overwrite")
    assert leftovers(tmp_path) == []




# make, interrupted: runs in a copy of the Makefile and code in a temporary folder, with a
# short Nanda run (NANDA_EPOCHS, SAVE_EVERY) so that a periodic save comes within a second.
MAKE_FLAGS = ["NANDA_EPOCHS=60", "SAVE_EVERY=10", f"PY={sys.executable}"]
NANDA = "runs/add_nanda_s{}.npz"


def make_folder(tmp_path):
    """A folder make can train in: the Makefile, the code, and a .venv it takes as made."""
    folder = tmp_path / "repo"
    folder.mkdir()
    for name in ("Makefile", "minigrok.py", "fast.py", "tasks.py", "config.py", "arrays.py", "checkpoint.py",
                 "analysis.py", "requirements.txt"):
        shutil.copy2(os.path.join(HERE, name), folder / name)
    shutil.copytree(os.path.join(HERE, "study"), folder / "study", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / ".venv").mkdir()
    (folder / ".venv" / "ready").touch()
    return folder


def run_make(folder, *targets, start=False):
    args = ["make", "-s", *MAKE_FLAGS, *targets]
    if start:                # its own process group, as a shell gives a job: Ctrl-C reaches all of it
        return subprocess.Popen(args, cwd=folder, start_new_session=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    return subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=300)


def wait_for_saves(folder, names, child):
    """Wait until each run has written its unfinished checkpoint (its first periodic save)."""
    t0 = time.time()
    while not all((folder / n.replace(".npz", ".unfinished.npz")).exists() for n in names):
        assert child.poll() is None and time.time() - t0 < 120, child.communicate()[0]
        time.sleep(0.02)


def training_pids(folder):
    """The minigrok processes training in `folder`."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            if b"minigrok.py" in cmd and os.readlink(f"/proc/{pid}/cwd") == str(folder):
                pids.append(int(pid))
        except OSError:
            pass
    return pids


def check_interrupted_then_finished(folder, names, reference):
    """After an interruption: every run unfinished and refused by the study; make does not
    call it up to date, and a second make continues each one to the uninterrupted run."""
    for name in names:
        partial = name.replace(".npz", ".unfinished.npz")
        assert not (folder / name).exists() and not mg.run_state(str(folder / partial)).finished
        done = subprocess.run([sys.executable, "-m", "study", "add", partial, "out", "--findings-only"], cwd=folder,
                              capture_output=True, text=True)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        one_line(done.stderr.strip().splitlines(), "unfinished run", f"--finish --out {name}")
        assert not (folder / "out").exists()
    assert subprocess.run(["make", "-q", *MAKE_FLAGS, *names], cwd=folder).returncode == 1
    epochs = {n: mg.run_state(str(folder / n.replace(".npz", ".unfinished.npz"))).epoch for n in names}
    done = run_make(folder, "-j2", *names)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in names:
        assert f"continuing {name.replace('.npz', '.unfinished.npz')} from epoch {epochs[name]}" in done.stdout
        assert mg.run_state(str(folder / name)).finished
        assert not (folder / name.replace(".npz", ".unfinished.npz")).exists()
        assert_same_run(str(reference / name), str(folder / name))
    assert subprocess.run(["make", "-q", *MAKE_FLAGS, *names], cwd=folder).returncode == 0


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The two short Nanda runs trained by make without interruption."""
    folder = make_folder(tmp_path_factory.mktemp("whole"))
    done = run_make(folder, "-j2", NANDA.format(0), NANDA.format(1))
    assert done.returncode == 0, done.stdout + done.stderr
    return folder


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_finishes_a_run_whose_training_was_killed(tmp_path, uninterrupted):
    folder, name = make_folder(tmp_path), NANDA.format(0)
    child = run_make(folder, name, start=True)
    wait_for_saves(folder, [name], child)
    (pid,) = training_pids(folder)
    os.kill(pid, signal.SIGKILL)            # what an out-of-memory kill or a power cut does
    child.communicate(timeout=60)
    assert child.returncode != 0
    check_interrupted_then_finished(folder, [name], uninterrupted)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupted_make_j2_keeps_every_job_and_the_next_make_finishes(tmp_path, uninterrupted, sig):
    """Ctrl-C reaches make and its jobs (the terminal signals the process group); SIGTERM
    reaches make alone, which passes it on to its jobs."""
    folder, names = make_folder(tmp_path), [NANDA.format(0), NANDA.format(1)]
    child = run_make(folder, "-j2", *names, start=True)
    wait_for_saves(folder, names, child)
    if sig == "SIGINT":
        os.killpg(child.pid, signal.SIGINT)
    else:
        os.kill(child.pid, signal.SIGTERM)
    child.communicate(timeout=60)
    assert child.returncode != 0 and training_pids(folder) == []
    check_interrupted_then_finished(folder, names, uninterrupted)


def test_finish_refuses_another_run_and_restarts_one_other_code_trained(tmp_path, capsys):
    out, partial = str(tmp_path / "a.npz"), str(tmp_path / "a.unfinished.npz")
    flags = ["--epochs", "20", "--save-every", "5"]
    # an unfinished run of other flags at the unfinished path, or a finished one at --out: refused, untouched
    assert main_here(capsys, *flags, "--lr", "1e-2", "--out", partial)[0] == 0
    before = ck_bytes(partial)
    code, _, err = main_here(capsys, *flags, "--finish", "--out", out)
    assert code == 2 and ck_bytes(partial) == before
    one_line(err, f"--finish: {partial} holds another run", "lr=0.01 there, 0.005 here")
    os.remove(partial)
    assert main_here(capsys, *flags, "--lr", "1e-2", "--out", out)[0] == 0
    before = ck_bytes(out)
    code, _, err = main_here(capsys, *flags, "--finish", "--out", out)
    assert code == 2 and ck_bytes(out) == before
    one_line(err, f"--finish: {out} holds another run")
    # an unfinished run of these flags that other code trained is not continued: it starts again
    os.remove(out)
    os.remove(checkpoint.plot_path(out))
    whole = str(tmp_path / "whole.npz")
    assert main_here(capsys, *flags, "--out", whole)[0] == 0
    ck = checkpoint.load_checkpoint(whole)
    checkpoint.save_checkpoint(partial, ck["config"], ck["params"], ck["opt"], ck["history"], [], 10, 0.0, False)
    with np.load(partial) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["code"] = np.array("0" * 64)                     # as if other code had saved it
    np.savez(partial, **arrays)
    code, stdout, err = main_here(capsys, *flags, "--finish", "--out", out)
    assert code == 0 and "continuing" not in stdout
    one_line(err, f"{partial} was trained by other code", "training again")
    assert_same_run(whole, out)


def test_finish_completes_a_checkpoint_that_reached_stop_at_before_it_said_so(tmp_path, capsys):
    """A checkpoint written before checkpoints said whether they finished, by a run stopped
    at --stop-at, reads as unfinished; --finish with the same --stop-at marks it finished
    without training and puts it at --out, where load() takes it."""
    out = str(tmp_path / "a.npz")
    history = mg.load(str(_trained(tmp_path, capsys)))[2]
    acc = max(history["test_acc"][1:])
    old = str(tmp_path / "old.npz")
    assert main_here(capsys, "--epochs", "20", "--stop-at", str(acc), "--out", old)[0] == 0
    with np.load(old) as z:                                   # as a version that did not say so wrote it
        arrays = {k: z[k] for k in z.files if k not in ("finished", "stop_at")}
    np.savez(out, **arrays)
    assert not checkpoint.run_state(out).finished
    code, stdout, _ = main_here(capsys, "--epochs", "20", "--stop-at", str(acc), "--finish", "--out", out)
    assert code == 0 and "nothing to train" in stdout
    assert checkpoint.run_state(out).finished and mg.load(out)[2]["epoch"] == mg.load(old)[2]["epoch"]
    # written by other code (or before checkpoints recorded theirs): trained again, beside it
    arrays.pop("code")
    np.savez(out, **arrays)
    code, stdout, err = main_here(capsys, "--epochs", "20", "--stop-at", str(acc), "--finish", "--out", out)
    assert code == 0 and "nothing to train" not in stdout
    one_line(err, f"{out} was trained by other code", "training again, beside it")
    assert_same_run(old, out)


def _trained(tmp_path, capsys):
    path = tmp_path / "base.npz"
    assert main_here(capsys, "--epochs", "20", "--out", str(path))[0] == 0
    return path


def test_a_signal_in_the_last_epoch_still_puts_the_finished_run_at_out(tmp_path):
    out = tmp_path / "a.npz"
    child = hooked_child("mg", "train_epoch", "SIGTERM", 12, "--epochs", "12", "--finish", "--out", str(out),
                         cwd=tmp_path)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 143, stderr
    assert out.exists() and checkpoint.run_state(str(out)).finished
    assert not (tmp_path / "a.unfinished.npz").exists()


# ---------------------------------------------------------------- the model zoo
ZOO = os.path.join(HERE, "zoo")


def zoo_sums():
    with open(os.path.join(ZOO, "SHA256SUMS")) as f:
        return dict(reversed(line.split()) for line in f if line.strip())


def test_the_zoo_files_match_their_sums_load_and_give_their_recorded_accuracy():
    """Each zoo file is the one its sum names; load() reads it like any checkpoint (finished,
    no AdamW state); the test set scores the accuracy its history recorded at the end."""
    import hashlib
    sums = zoo_sums()
    assert sorted(sums) == ["add.npz", "add_nanda.npz", "max.npz", "median.npz", "sort.npz"]
    for name, digest in sums.items():
        path = os.path.join(ZOO, name)
        with open(path, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, name
        ck = checkpoint.load_checkpoint(path)
        assert ck["finished"] and ck["opt"] is None and ck["config"].seed == 0
        cfg, params, history = mg.load(path)
        data = tasks.make_data(cfg)
        tokens, targets = data.evals["test"]
        acc = mg.evaluate(params, tokens, targets, data.n_read, data.decode)["acc"]
        assert abs(acc - history["test_acc"][-1]) <= 2 / targets.size, (name, acc, history["test_acc"][-1])
    snapshots = checkpoint.load_checkpoint(os.path.join(ZOO, "add_nanda.npz"))["snapshots"]
    assert [e for e, _ in snapshots] == list(range(0, 20001, 1000))
    total = sum(os.path.getsize(os.path.join(ZOO, n)) for n in sums)
    assert total < 26 * 2**20, total


def test_a_zoo_file_cannot_be_resumed(tmp_path, capsys):
    out = str(tmp_path / "a.npz")
    assert main_here(capsys, "--epochs", "10", "--out", out)[0] == 0
    checkpoint.slim(out, str(tmp_path / "slim.npz"))
    code, _, err = main_here(capsys, "--epochs", "20", "--out", str(tmp_path / "slim.npz"), "--resume")
    assert code == 2
    one_line(err, "keeps no AdamW state")
    assert mg.load(str(tmp_path / "slim.npz"))[1]["W_E"].tolist() == mg.load(out)[1]["W_E"].tolist()
