"""The width sweep (claim 12): per task, width and seed the final test loss, whether it
converged, and the epoch it generalised; per seed the width the claim's rule reads as best."""
import json
import os

import numpy as np

import analysis as an
import minigrok as mg
from .claims import GROKKED
from .common import plain
from .plots import plot_width_sweep, png




def converged(history, last=0.2, change=0.25):
    """Has the test loss settled? It changed by at most `change` (relative) over the last
    `last` fraction of the run's evaluations."""
    loss = np.array(history["test_loss"])
    i = max(
        0, min(int(len(loss) * (1 - last)), len(loss) - 2)
    )  # the evaluation where the last fifth starts
    return bool(abs(np.log(loss[-1]) - np.log(loss[i])) <= np.log(1 + change))


def width_sweep(paths, out_dir, draw=True):
    """Per task, width and seed: final test loss, whether it converged, and the epoch it
    generalised (time-to-grok); per seed the width with the lowest final test loss (claim 12's
    reading) and, beside it, the lowest among the runs that converged (revision 2's)."""
    os.makedirs(out_dir, exist_ok=True)
    figs = out_dir if draw else None
    runs = {}
    for path in paths:
        cfg, _, history = mg.load(path)
        runs.setdefault(cfg.task, {})[(cfg.d_model, cfg.seed)] = {
            "final_test_loss": history["test_loss"][-1],
            "converged": converged(history),
            "time_to_grok": an.first_epoch(history, "test_acc", GROKKED[cfg.task]),
            "epochs": history["epoch"][-1],
        }
    found = {}
    for task, by in sorted(runs.items()):
        widths, seeds = sorted({w for w, _ in by}), sorted({s for _, s in by})
        best = {}
        for s in seeds:
            ok = {
                w: by[(w, s)]["final_test_loss"]
                for w in widths
                if (w, s) in by and by[(w, s)]["converged"]
            }
            best[str(s)] = min(ok, key=ok.get) if ok else None
        found[task] = {
            "widths": widths,
            "seeds": seeds,
            "grokked_at_test_acc": GROKKED[task],
            "runs": {f"d{w}_s{s}": v for (w, s), v in sorted(by.items())},
            "best_width_per_seed": best,
            "lowest_loss_width_per_seed": {
                str(s): min((w for w in widths if (w, s) in by),
                            key=lambda w: by[(w, s)]["final_test_loss"])
                for s in seeds
            },
        }
    plot_width_sweep(runs, GROKKED, {t: found[t]["lowest_loss_width_per_seed"] for t in found},
                     png(figs, "width_sweep"))
    found = plain(found)
    with open(f"{out_dir}/findings.json", "w") as f:
        json.dump({"runs": list(paths), "measured": found}, f, indent=1)
    return found
