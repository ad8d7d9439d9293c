import csv
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sympy")
pytest.importorskip("daft")

from scratchnet.cli import main  # noqa: E402
from scratchnet.core.model import Model  # noqa: E402
from scratchnet.report.build import (ReportOptions, build_report, snapshot_epochs,  # noqa: E402
                               train_with_snapshots)
from scratchnet.training.train import TrainConfig, train  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None
PNG = b"\x89PNG\r\n\x1a\n"
FILES = ["data.png", "network.png", "network.svg", "derivation.md", "losses.png",
         "decision_map.png", "hidden_units.png", "monitor.png", "learning_rates.png",
         "softmax_map.png", "kernels.png", "model.json", "history.csv", "summary.json",
         "report.html"]
TORCH_FILES = ["torch_losses.png", "torch_decision_map.png"]


def strict_json(path):
    def no_nan(x):
        raise ValueError(f"{path}: {x} is not valid JSON")

    with open(path, encoding="utf-8") as fh:
        return json.load(fh, parse_constant=no_nan)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("ps5") / "ps5-report"
    config = TrainConfig(epochs=1500, lr=1e-2, log_every=500)
    rep = build_report(config, str(out), ReportOptions(torch_epochs=300, aux_epochs=300))
    return rep, str(out), config


def test_every_file_is_written_and_valid(report):
    rep, out, config = report
    assert rep.code == 0
    expected = FILES + (TORCH_FILES if HAS_TORCH else [])
    for name in expected:
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    for name in expected:
        if name.endswith(".png"):
            with open(os.path.join(out, name), "rb") as fh:
                assert fh.read(8) == PNG, name
    assert ET.parse(os.path.join(out, "network.svg")).getroot().tag.endswith("svg")
    model = Model.load(os.path.join(out, "model.json"))
    assert model.layout.describe() == "2-7-1"
    with open(os.path.join(out, "history.csv"), newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["epoch", "train_loss", "test_loss", "train_acc", "test_acc"]
    assert len(rows) == 1 + config.epochs
    with open(os.path.join(out, "derivation.md"), encoding="utf-8") as fh:
        md = fh.read()
    assert len(re.findall(r"^- \*\*w\d+: ", md, flags=re.M)) == 29


def test_summary(report):
    rep, out, config = report
    s = strict_json(os.path.join(out, "summary.json"))
    for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
        assert np.isfinite(s["final"][key])
    assert s["final"]["epochs"] == config.epochs
    assert s["config"]["lr"] == config.lr and s["config"]["epochs"] == config.epochs
    assert s["training_seconds"] > 0
    cm_train, cm_test = np.array(s["confusion"]["train"]), np.array(s["confusion"]["test"])
    assert cm_train.sum() == 80 and cm_test.sum() == 20
    assert np.trace(cm_test) / 20 == pytest.approx(s["final"]["test_acc"])
    assert s["derivation"]["max_abs_diff_vs_engine"] < 1e-10
    assert s["q4"]["gradient_check"]["max_abs_diff"] < 1e-5
    assert len(s["q4"]["learning_rates"]["lrs"]) >= 5
    assert 0 <= s["q4"]["augmentation"]["unchanged_share"] <= 1
    assert s["q4"]["softmax"]["max_abs_sum_minus_1"] < 1e-12
    assert sorted(s["files"]) == sorted(set(s["files"]))
    assert set(FILES) <= set(s["files"])
    for step in ("training", "figures", "derivation", "html"):
        assert step in s["timings"]
    assert "errors" not in s  # every side measurement of Question 4 ran


def test_report_html_is_self_contained(report):
    rep, out, config = report
    with open(os.path.join(out, "report.html"), encoding="utf-8") as fh:
        page = fh.read()
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "<link" not in page  # nothing to fetch, no CDN
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    imgs = re.findall(r'<img src="([^"]+)"', page)
    assert len(imgs) >= 11 and all(i.startswith("data:image/") for i in imgs)
    assert page.count("<math") >= 40  # the derivation, as MathML
    for q in ("Question 1", "Question 2", "Question 3", "Question 4"):
        assert q in page
    for concept in ("Activation function", "Backpropagation", "Learning rate",
                    "Vanishing gradients", "Weights and biases", "Loss", "Softmax",
                    "Convolution kernels and pooling", "Data augmentation"):
        assert f"<h3>{concept}</h3>" in page


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
def test_the_twin_is_the_same_network(report):
    rep, out, config = report
    t = rep.summary["torch"]
    assert t["epochs"] == 300
    assert t["max_abs_weight_diff"] < 1e-9
    assert t["max_abs_train_loss_diff"] < 1e-9
    assert t["max_abs_map_diff"] < 1e-9


def test_snapshots_give_the_numbers_of_one_call():
    config = TrainConfig(epochs=700, lr=1e-2, log_every=0)
    marks = snapshot_epochs(700, 12, extra=(300,))
    assert marks[0] == 0 and marks[-1] == 700 and 300 in marks
    result, snaps = train_with_snapshots(config, marks)
    whole = train(config)
    np.testing.assert_array_equal(result.history.train_loss, whole.history.train_loss)
    np.testing.assert_array_equal(result.history.test_acc, whole.history.test_acc)
    np.testing.assert_array_equal(result.model.w, whole.model.w)
    assert sorted(snaps) == marks
    np.testing.assert_array_equal(snaps[700], whole.model.w)
    part = train(replace(config, epochs=300))
    np.testing.assert_array_equal(snaps[300], part.model.w)


def test_report_builds_without_the_twin(tmp_path, monkeypatch):
    """torch missing, or scratchnet.trust.twin missing: the section says so, the rest is built."""
    import scratchnet.trust

    monkeypatch.setitem(sys.modules, "scratchnet.trust.twin", None)  # import → ImportError
    monkeypatch.delattr(scratchnet.trust, "twin", raising=False)
    config = TrainConfig(epochs=200, lr=1e-2, log_every=0)
    rep = build_report(config, str(tmp_path / "a"), ReportOptions(aux_epochs=50))
    assert "not available" in rep.summary["torch"]["skipped"]
    page = (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert "The PyTorch comparison was skipped" in page
    assert not (tmp_path / "a" / "torch_losses.png").exists()
    assert (tmp_path / "a" / "decision_map.png").exists()

    monkeypatch.delitem(sys.modules, "scratchnet.trust.twin")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    rep = build_report(config, str(tmp_path / "b"), ReportOptions(aux_epochs=0))
    assert "PyTorch is not installed" in rep.summary["torch"]["skipped"]
    assert "learning_rates" not in rep.summary["q4"]


def test_diverged_training_still_reports(tmp_path):
    config = TrainConfig(epochs=300, lr=5.0, output="identity", log_every=0)
    rep = build_report(config, str(tmp_path / "d"), ReportOptions(torch_epochs=0,
                                                                  aux_epochs=0))
    assert rep.code == 2 and "diverged" in rep.summary["diverged"]
    assert rep.summary["final"]["epochs"] < 300
    page = (tmp_path / "d" / "report.html").read_text(encoding="utf-8")
    assert "training diverged" in page


def test_a_failing_side_measurement_is_reported_not_fatal(tmp_path, monkeypatch, capsys):
    import scratchnet.report.build as report

    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(report, "softmax_example", broken)
    rep = build_report(TrainConfig(epochs=100, log_every=0), str(tmp_path / "f"),
                       ReportOptions(torch_epochs=0, aux_epochs=0))
    assert rep.code == 0
    assert rep.summary["errors"] == {"softmax example": "RuntimeError: boom"}
    assert "softmax example failed" in capsys.readouterr().err
    page = (tmp_path / "f" / "report.html").read_text(encoding="utf-8")
    assert "Not measured: it failed (RuntimeError: boom)" in page
    assert (tmp_path / "f" / "summary.json").exists()


def test_three_class_data(tmp_path):
    config = TrainConfig(data="gaussians", n_classes=3, output="softmax", loss="ce", lr=1e-3,
                         epochs=300, log_every=0)
    rep = build_report(config, str(tmp_path / "g"), ReportOptions(torch_epochs=0,
                                                                  aux_epochs=50))
    assert rep.code == 0 and rep.summary["layout"] == "2-7-3"
    assert np.array(rep.summary["confusion"]["test"]).shape == (3, 3)


def test_ps5_command(tmp_path, capsys):
    out = tmp_path / "rep"
    code = main(["ps5", "--epochs", "300", "--lr", "1e-2", "--torch-epochs", "0",
                 "--aux-epochs", "50", "--out", str(out), "--quiet"])
    assert code == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("scratchnet ps5: ") and str(out / "report.html") in line
    assert (out / "report.html").exists() and (out / "summary.json").exists()


def test_make_run_from_a_fresh_clone(tmp_path):
    """`make run` = `python -m scratchnet ps5 --out ps5-report`, from a clone of the committed
    tree (shorter here; the numba cache is left out so nothing compiles)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if shutil.which("git") is None or not os.path.isdir(os.path.join(root, ".git")):
        pytest.skip("not a git checkout")
    with open(os.path.join(root, "Makefile")) as fh:
        makefile = fh.read()
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "-m scratchnet ps5 --out ps5-report" in recipe
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", root, str(clone)], check=True, timeout=120)
    env = dict(os.environ, PYTHONPATH=str(clone / "src"), SCRATCHNET_NO_NUMBA="1")
    proc = subprocess.run(
        [sys.executable, "-m", "scratchnet", "ps5", "--out", "ps5-report", "--epochs", "200",
         "--torch-epochs", "0", "--aux-epochs", "50", "--quiet"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "ps5-report/report.html" in proc.stdout
    assert (clone / "ps5-report" / "report.html").stat().st_size > 10_000
