"""python -m study: the study's command line (see __init__.py)."""
import glob
import os
import sys

import arrays
import checkpoint
import minigrok as mg
from .addition import analyse_add
from .maximum import analyse_max
from .median_sort import analyse_median_or_sort
from .report import write_report, write_study_md
from .width import width_sweep

DRIVERS = {
    "add": analyse_add,
    "max": analyse_max,
    "median": analyse_median_or_sort,
    "sort": analyse_median_or_sort,
}
USAGE = (
    "study: usage: python -m study {add,max,median,sort} CHECKPOINT.npz [OUT_DIR] [--findings-only]"
    " [--untrained] [--claims-only] | width RUN.npz ... | report (OUT_DIR defaults to"
    " figures/<checkpoint name>; --findings-only: findings.json without the figures; --untrained:"
    " the same measures on the run's initial weights; --claims-only: without the analyses beyond"
    " the study's claims)"
)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    draw, untrained = "--findings-only" not in argv, "--untrained" in argv
    extensions = "--claims-only" not in argv
    argv = [a for a in argv if a not in ("--findings-only", "--untrained", "--claims-only")]
    try:
        if argv[:1] == ["width"] and len(argv) > 1:
            for path in argv[1:]:
                checkpoint.require_finished(path)       # a run interrupted on its way is no result
            width_sweep(argv[1:], "figures/width", draw)
            print(f"figures/width/{'width_sweep.png and ' * draw}findings.json")
            return 0
        if argv == ["report"]:
            print(f"figures/REPORT.md and figures/findings.json: {write_report()}")
            write_study_md()            # STUDY.md's numbers, from its template and the findings
            print("STUDY.md")
            return 0
        if len(argv) not in (2, 3) or argv[0] not in DRIVERS:
            print(USAGE, file=sys.stderr)
            return 2
        out_dir = (
            argv[2]
            if len(argv) == 3
            else os.path.join("figures", os.path.splitext(os.path.basename(argv[1]))[0])
        )
        checkpoint.check_task(argv[1], argv[0], f"python -m study {argv[0]}")
        checkpoint.require_finished(argv[1])
        arrays.keep_freed_memory()  # the analyses' large temporaries reuse memory, as training's do
        before = {old: os.stat(old).st_mtime_ns
                  for old in glob.glob(os.path.join(out_dir, "*.png"))}
        DRIVERS[argv[0]](argv[1], out_dir, draw, untrained, extensions)
    except mg.UsageError as e:
        print(f"study: error: {e}", file=sys.stderr)
        return 2
    # a figure from an earlier run that this one did not draw again would not match findings.json
    for old, mtime in before.items():
        if os.path.exists(old) and os.stat(old).st_mtime_ns == mtime:
            os.remove(old)
    print(f"{'figures and ' * draw}findings.json in {out_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
