"""`scratchnet ps5 --notebook`: report.ipynb redoes the steps with the Python API; executed
here with nbclient, its numbers must equal summary.json's."""
import importlib.util
import json
import os
import re

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sympy")
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from scratchnet.cli import main  # noqa: E402


def test_notebook_executes_and_agrees_with_the_summary(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["ps5", "--epochs", "300", "--lr", "1e-2", "--torch-epochs", "0",
                 "--aux-epochs", "0", "--out", str(out), "--quiet", "--notebook"]) == 0
    capsys.readouterr()
    path = out / "report.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(out)}})
    client.execute()
    texts = ["".join(o.get("text", "") for o in c.get("outputs", []))
             for c in nb.cells if c.cell_type == "code"]
    assert "the notebook agrees with summary.json" in texts[-1]
    every = "\n".join(texts)  # Questions 3 and 4 are redone too
    assert "saturated hidden units: raw inputs" in every and "diverged" in every
    if importlib.util.find_spec("torch") is not None:
        diff = re.search(r"largest weight difference (\S+)", every)
        assert diff and float(diff.group(1)) < 1e-9
    line = next(t for t in texts[-1].splitlines() if t.startswith("{"))
    got = json.loads(line)
    with open(out / "summary.json") as fh:
        s = json.load(fh)
    assert got["report"]["train_loss"] == s["final"]["train_loss"]
    assert got["notebook"]["train_loss"] == pytest.approx(s["final"]["train_loss"], rel=1e-9)
    assert got["notebook"]["test_acc"] == pytest.approx(s["final"]["test_acc"])
    assert got["notebook"]["floor"] == pytest.approx(s["student"]["floor"], rel=1e-12)
    assert "epochs=300" in nb.cells[1].source and "lr=0.01" in nb.cells[1].source
    assert "report.ipynb" in s["files"] and os.path.getsize(path) > 1000
