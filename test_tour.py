"""Tests of the tour (tour.ipynb, run by tour.py): it runs top to bottom without an error, and
the outputs committed with it are the ones the current code and zoo give (after a change to
analysis.py or the zoo, `make tour` and commit the notebook). Needs requirements-tour.txt
(`make .venv/tour`, part of `make test`); skipped without nbclient, except on CI."""
import copy
import os

import pytest

if not os.environ.get("CI"):
    pytest.importorskip("nbclient")
import nbformat  # noqa: E402

import tour  # noqa: E402


def committed():
    return nbformat.read(tour.NOTEBOOK, as_version=4)


@pytest.mark.slow
def test_tour_runs_and_shows_what_is_committed(tmp_path):
    """A copy of the notebook runs in a fresh kernel without an error (nbclient raises on the
    first), and every code cell shows the committed text and as many pictures."""
    nb = committed()
    fresh = tour.execute(copy.deepcopy(nb))
    nbformat.write(fresh, tmp_path / "tour.ipynb")                # the run, to look at when it fails
    assert not tour.differences(nb, fresh), (f"tour.ipynb's outputs are not the code's (run `make tour` and "
                                             f"commit it; this run: {tmp_path / 'tour.ipynb'}):\n"
                                             + "\n".join(tour.differences(nb, fresh)))


def test_committed_with_its_outputs():
    """Every code cell was run, in order, and the notebook stays small enough to read on GitHub."""
    nb = committed()
    cells = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1))
    assert sum(s["pictures"] for s in tour.shown(nb).values()) >= 10
    assert all("execution" not in c.metadata for c in cells)        # no timings: a rerun changes nothing
    assert os.path.getsize(tour.NOTEBOOK) < 1.5e6


def test_differences_see_a_change():
    """The check is not blind: another number printed, a picture lost or a cell added is
    reported; a memory address or stdout in two pieces is not."""
    nb = committed()
    assert tour.differences(nb, copy.deepcopy(nb)) == []
    i, cell = next((i, c) for i, c in enumerate(nb.cells)
                   if c.cell_type == "code" and any(o.output_type == "stream" for o in c.outputs))
    stream = next(o for o in cell.outputs if o.output_type == "stream")

    changed = copy.deepcopy(nb)
    other = next(o for o in changed.cells[i].outputs if o.output_type == "stream")
    other.text = stream.text.replace("%", " %", 1) + "1"
    assert len(tour.differences(nb, changed)) == 1

    j = next(j for j, c in enumerate(nb.cells) if c.cell_type == "code" and tour.shown(nb)[c.id]["pictures"])
    lost = copy.deepcopy(nb)
    for o in lost.cells[j].outputs:
        if "image/png" in o.get("data", {}):
            del o.data["image/png"]
    assert "picture" in tour.differences(nb, lost)[0]

    added = copy.deepcopy(nb)
    added.cells.append(nbformat.v4.new_code_cell("1", id="extra"))
    assert tour.differences(nb, added)

    same = copy.deepcopy(nb)
    split = next(o for o in same.cells[i].outputs if o.output_type == "stream")
    half = len(stream.text) // 2
    split.text = stream.text[:half]
    same.cells[i].outputs.append(nbformat.v4.new_output("stream", name=stream.name, text=stream.text[half:]))
    same.cells[i].outputs.append(nbformat.v4.new_output("execute_result", {"text/plain": "<object at 0x7f3a>"}))
    nb.cells[i].outputs.append(nbformat.v4.new_output("execute_result", {"text/plain": "<object at 0x55d1>"}))
    assert tour.differences(nb, same) == []
