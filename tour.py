"""tour.py: runs tour.ipynb, the tour of the zoo's models with analysis.py's helpers, and checks it.

    python tour.py run       # run the notebook top to bottom and write its outputs back (make tour)
    python tour.py check     # run a copy; fail if a cell raises or shows other text than the committed one

tour.ipynb is committed with its outputs, so that it reads with its figures on GitHub. After
a change to analysis.py, minigrok.py or the zoo, `make tour` writes the new outputs and the
notebook is committed again; test_tour.py runs the check, so outputs that are no longer what
the code gives fail `make test`. Compared per code cell: the printed text (streams), the
text of displayed values (text/plain), with memory addresses masked, and how many pictures
it shows (the PNG bytes depend on matplotlib's and FreeType's versions, so they are not).

The kernel is the Jupyter kernel 'python3' of the interpreter running this file: in .venv,
`make .venv/tour` installs nbclient, nbformat and ipykernel (requirements-tour.txt) and
registers .venv's python as that kernel (`ipykernel install --sys-prefix`), which Jupyter
finds before any of the user's or the system's inside a virtualenv. Builds on nbclient and
nbformat; the notebook itself uses analysis.py, minigrok.py and tasks.py.
"""
import argparse
import copy
import difflib
import os
import re
import sys

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.abspath(__file__))
NOTEBOOK = os.path.join(ROOT, "tour.ipynb")
CELL_TIMEOUT = 300          # seconds for one cell; the whole notebook takes well under a minute
# what may differ from run to run without the code having changed
NOISE = ((re.compile(r"0x[0-9a-fA-F]+"), "0x..."),                                      # memory addresses
         (re.compile(r"^Matplotlib is building the font cache.*\n?", re.M), ""))       # first use on a machine


def execute(nb):
    """Run the notebook nb (an nbformat node) top to bottom, in place, in a fresh kernel with
    the repository as the working directory. A cell that raises stops it: nbclient's
    CellExecutionError, with the cell and its traceback. Returns nb."""
    NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT, record_timing=False, coalesce_streams=True,
                   extra_arguments=["--log-level=ERROR"],   # not its warning that local TCP is unencrypted
                   resources={"metadata": {"path": ROOT}}).execute()
    return nb


def _normalised(text):
    for pattern, replacement in NOISE:
        text = pattern.sub(replacement, text)
    return text


def shown(nb):
    """What each code cell shows, by cell id: {"stdout", "stderr", "text/plain"} (normalised
    text, each stream joined) and "pictures" (how many PNGs)."""
    out = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        s = {"stdout": "", "stderr": "", "text/plain": "", "pictures": 0}
        for o in cell.get("outputs", []):
            if o.output_type == "stream":
                s[o.name] += o.text
            elif o.output_type in ("display_data", "execute_result"):
                s["text/plain"] += o.data.get("text/plain", "") + "\n"
                s["pictures"] += "image/png" in o.data
            elif o.output_type == "error":
                s["stderr"] += f"{o.ename}: {o.evalue}\n"
        out[cell.get("id", f"cell {i}")] = {k: _normalised(v) if isinstance(v, str) else v for k, v in s.items()}
    return out


def differences(committed, fresh):
    """How the outputs of fresh differ from those of committed (two runs of the same
    notebook), as readable lines; [] when every code cell shows the same."""
    old, new = shown(committed), shown(fresh)
    if list(old) != list(new):
        return [f"the code cells differ: committed {list(old)}, run {list(new)}"]
    lines = []
    for cell, was in old.items():
        for key, before in was.items():
            after = new[cell][key]
            if before == after:
                continue
            if key == "pictures":
                lines.append(f"cell {cell}: {before} picture(s) committed, {after} now")
            else:
                diff = difflib.unified_diff(before.splitlines(), after.splitlines(), "committed", "now", lineterm="")
                lines.append(f"cell {cell}, {key}:\n" + "\n".join(diff))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("run", "check"),
                        help="run: write the outputs into tour.ipynb; check: compare a fresh run with them")
    args = parser.parse_args(argv)
    committed = nbformat.read(NOTEBOOK, as_version=4)
    fresh = execute(copy.deepcopy(committed))
    if args.command == "run":
        nbformat.write(fresh, NOTEBOOK)
        print(f"{os.path.relpath(NOTEBOOK)}: {len(fresh.cells)} cells run, outputs written "
              f"({os.path.getsize(NOTEBOOK) / 1e6:.2f} MB); commit it")
        return 0
    lines = differences(committed, fresh)
    print("\n".join(lines) if lines else "tour.ipynb: the committed outputs are the ones the code gives")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
