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
         "softmax_map.png", "kernels.png", "learned_kernels.png", "model.json", "history.csv", "summary.json",
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
    """torch missing (trust.twin imports it only when it trains): the section says so, the
    rest is built."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    config = TrainConfig(epochs=200, lr=1e-2, log_every=0)
    rep = build_report(config, str(tmp_path / "a"), ReportOptions(aux_epochs=50))
    assert "PyTorch is not installed" in rep.summary["torch"]["skipped"]
    page = (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert "The PyTorch comparison was skipped" in page
    assert not (tmp_path / "a" / "torch_losses.png").exists()
    assert (tmp_path / "a" / "decision_map.png").exists()
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


# ---- issue 13: the report as a teaching document ------------------------------------------


def _page(out):
    with open(os.path.join(out, "report.html"), encoding="utf-8") as fh:
        return fh.read()


def test_student_panel_floor_and_both_thresholds(report):
    """The loss floor computed from the data, and the faithful run's accuracy at the
    standardized midpoint (= always class 1) and at 0.5 on the raw output."""
    from scratchnet.core.backprop import predict
    from scratchnet.training.train import prepare

    rep, out, config = report
    st = rep.summary["student"]
    prep = prepare(replace(config, faithful=True))
    y = prep.problem.y_train[:, 0]
    assert np.all(np.isin(np.round(y, 6), np.round(np.unique(y), 6))) and np.unique(y).size == 2
    expected = 0.5 * np.sum(np.minimum(y, 0.0) ** 2 + np.maximum(y - 1.0, 0.0) ** 2)
    assert st["floor"] == pytest.approx(expected, rel=1e-12)
    assert st["floor_rows"] == int(np.sum(y < 0))
    assert st["floor"] > 15  # ≈ 37 rows × ½·1.04² on the stand-in data
    assert min(h for h in rep.summary["student"]["ours"].values()) >= st["floor"] - 1e-9
    faithful = train(replace(config, faithful=True, log_every=0))
    P = faithful.prepared.problem
    for rows, lab, i in ((P.x_train, P.l_train, 0), (P.x_test, P.l_test, 1)):
        out_ = predict(faithful.prepared.layout, faithful.model.w, rows)[:, 0]
        assert st["acc_half"][i] == pytest.approx(np.mean((out_ > 0.5) == (lab == 1)))
        assert st["acc_midpoint"][i] == pytest.approx(np.mean(lab == 1))  # always class 1
    assert st["acc_midpoint"][0] == pytest.approx(faithful.final["train_acc"])
    page = _page(out)
    assert "The problem set's numbers, explained" in page and "synthetic stand-in" in page
    assert f"{st['floor']:.4g}" in page and f"{st['acc_half'][1]:.3f}" in page
    learned = st["acc_half"][0] > st["always_class_1"][0]  # the page claims it only then
    assert ("it did learn the classes" in page) == learned
    assert ("has not learned the classes yet" in page) == (not learned)
    assert os.path.getsize(os.path.join(out, "student_losses.png")) > 0
    assert os.path.getsize(os.path.join(out, "student_map.png")) > 0


def test_per_row_losses_worked_step_and_no_trivia(report):
    rep, out, config = report
    page = _page(out)
    f = rep.summary["final"]
    assert rep.summary["per_row"]["train_loss"] == pytest.approx(f["train_loss"] / 80)
    assert rep.summary["per_row"]["test_loss"] == pytest.approx(f["test_loss"] / 20)
    assert format(f["test_loss"] / 20, ".4g") in page
    assert "One step worked in numbers" in page and "w after one step" in page
    for trivia in ("of the 29 weights are biases", "Largest |weight|", "sum to 1 within",
                   "timings</h2>", "PS5, done right"):
        assert trivia not in page
    assert "<h1>Problem set 5: a 2-7-1 network" in page
    assert "<a href='model.json'>" in page  # the files table links every file
    assert "MSELoss(reduction='sum')" in page and page.count("<li>") >= 5  # five differences
    assert "6.56 at its lowest" in page  # Question 3's printed test loss, explained
    assert "timings" in rep.summary  # kept in summary.json


def test_question4_experiments_vary_each_concept(report):
    rep, out, config = report
    q4 = rep.summary["q4"]
    lr = q4["learning_rates"]
    assert lr["output"] == "identity" and len(lr["final_test_loss"]) == len(lr["lrs"])
    assert any(lr["diverged"]), "the largest η must diverge with a linear output"
    assert q4["activation"]["seeds"] == 10 and 0 <= q4["activation"]["binomial_se"] < 0.2
    assert q4["bias"]["n_biases"] == 8 and 0 <= q4["bias"]["test_acc"] <= 1
    v = q4["vanishing"]
    assert v["saturated_raw"][0] > 0.9 > 0.2 > v["saturated_standardized"][0]
    assert q4["softmax"]["sigmoid_vs_two_class_softmax"] < 1e-15
    assert set(q4["augmentation_runs"]) >= {"on", "off", "sigma"}


def test_test_loss_rise_is_found():
    from scratchnet.report.build import test_loss_rise

    r = test_loss_rise([3.0, 2.0, 2.2, 2.5, 1.0])
    assert r == {"from_epoch": 1, "from": 2.0, "to_epoch": 3, "to": 2.5}
    assert test_loss_rise([3.0, 2.0, 1.0]) is None


def test_divergence_epoch_is_one_absolute_count(tmp_path, capsys):
    """The segments of train_with_snapshots count from their own start: the report says the
    absolute epoch in stderr, summary.json and report.html alike."""
    out = tmp_path / "div"
    code = main(["ps5", "--epochs", "400", "--lr", "5", "--output", "identity",
                 "--torch-epochs", "0", "--aux-epochs", "0", "--out", str(out), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    s = strict_json(out / "summary.json")
    t, kept = s["diverged_at"], s["kept_epoch"]
    assert 0 < kept <= t < 400 and s["final"]["epochs"] == kept
    whole = None
    try:
        train(TrainConfig(epochs=400, lr=5, output="identity", log_every=0))
    except Exception as e:  # DivergedError
        whole, whole_len = str(e), len(e.result.history)
    assert whole is not None and f"at epoch {t} " in whole  # one call agrees
    assert f"training diverged at epoch {t} " in err
    assert f"training diverged at epoch {t} " in _page(str(out))
    with open(out / "history.csv") as fh:
        assert len(fh.read().strip().splitlines()) == 1 + whole_len  # header + train()'s


def test_learned_kernels_from_the_digits_cnn(report):
    rep, out, _ = report
    lk = rep.summary["q4"]["learned_kernels"]
    assert lk["epochs"] >= 1 and lk["kernels"] == 32 and lk["test_acc"] > 0.5
    page = _page(out)
    assert "<code>scratchnet demo digits</code>" in page and "alt=\"learned kernels\"" in page
    assert f"test accuracy {lk['test_acc']:.3f} on {lk['n_test']} digits" in page


def test_an_interrupt_in_the_side_experiments_keeps_what_finished(tmp_path):
    """Ctrl-C (a KeyboardInterrupt, as every handled signal becomes) while the learning rates
    are compared: the run's files, Questions 1–2 and the Q4 parts already measured are
    written, the page and summary.json say interrupted, the code is 130."""
    def status(step):
        if step == "learning rates":
            raise KeyboardInterrupt

    out = tmp_path / "i"
    rep = build_report(TrainConfig(epochs=300, log_every=0), str(out),
                       ReportOptions(torch_epochs=0, aux_epochs=100, status=status))
    s = strict_json(out / "summary.json")
    assert rep.code == 130 and s["interrupted"] is True
    assert s["interrupted_during"] == "learning rates" and s["epochs_done"] == 300
    assert "monitor" in s["q4"] and "learning_rates" not in s["q4"]
    for name in ("model.json", "history.csv", "losses.png", "decision_map.png", "monitor.png"):
        assert (out / name).exists(), name
    assert not (out / "learning_rates.png").exists()
    assert "interrupted while learning rates" in _page(str(out))


def test_ps5_interrupted_while_training_writes_the_epochs_done(tmp_path):
    """SIGTERM in a real process once training has begun: exit 143, and one epoch count in
    stderr, summary.json, history.csv, model.json and report.html."""
    import signal

    cmd = [sys.executable, "-m", "scratchnet", "ps5", "--engine", "numpy", "--epochs",
           "3000000", "--log-every", "1000", "--verbose", "--quiet", "--torch-epochs", "0",
           "--aux-epochs", "0", "--out", "rep"]
    p = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().startswith("epoch ")  # training has begun
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 128 + signal.SIGTERM and "Traceback" not in err
    s = strict_json(tmp_path / "rep" / "summary.json")
    n = s["final"]["epochs"]
    assert s["interrupted"] is True and s["epochs_done"] == n and 1 <= n < 3000000
    assert f"kept {n} epochs" in err
    assert Model.load(tmp_path / "rep" / "model.json").final["epochs"] == n
    with open(tmp_path / "rep" / "history.csv") as fh:
        assert len(fh.read().strip().splitlines()) == 1 + n
    assert f"interrupted after {n} epochs" in _page(str(tmp_path / "rep"))


def test_exercise_mode_hides_solutions(tmp_path):
    out = tmp_path / "ex"
    rep = build_report(TrainConfig(epochs=200, lr=1e-2, log_every=0), str(out),
                       ReportOptions(torch_epochs=0, aux_epochs=30, exercise=True))
    assert rep.code == 0
    page = _page(str(out))
    assert "<script" not in page
    assert page.count("<details class='solution'>") >= 9 + 2  # Q4 answers, derivation, step
    derivation = page.index("show the derivation")
    assert page.index("<details class='solution'>") < derivation < page.index("All 29")


def test_print_stylesheet_and_pdf(report, tmp_path):
    rep, out, config = report
    page = _page(out)
    assert "@media print" in page and "break-inside:avoid" in page
    from scratchnet.report.build import find_chromium, write_pdf

    if find_chromium() is None:
        pytest.skip("Chromium is not installed (make browser)")
    pdf = write_pdf(out)
    with open(pdf, "rb") as fh:
        data = fh.read()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", data))
    assert 4 <= pages <= 14, pages


def test_inline_math_keeps_the_sentence_and_writes_exponents():
    from scratchnet.report.html import prose

    out = prose("∂E/∂w_k = Σ_n ∂E_n/∂w_k. Unit H_2.3 uses S(α) = 1 / (1 + e^(−α)).")
    assert "<mi>k</mi></msub></math>." in out and "<mi>k.</mi>" not in out
    assert "<mi>2.3</mi>" in out  # a dot between digits stays in the subscript
    assert "<msup><mi>e</mi><mrow><mo>−</mo><mi>α</mi></mrow></msup>" in out
    assert "e^(" not in out


def test_the_problem_sets_map_is_its_raw_output_on_a_self_standardized_grid(report):
    """The student's map: the --faithful network's raw sigmoid output (the problem set's
    y_pred), the grid standardized with its own mean and std, not the training statistics."""
    from scratchnet.core.backprop import predict
    from scratchnet.report.experiments import grid_standardized_model
    from scratchnet.report.plots import grid_axes

    rep, out, config = report
    faithful = train(replace(config, faithful=True, log_every=0))
    g1, g2 = grid_axes(faithful.prepared.dataset.X, 20)
    m = grid_standardized_model(faithful.model, g1, g2)
    xx, yy = np.meshgrid(g1, g2)
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    y_pred = predict(faithful.prepared.layout, faithful.model.w,
                     (grid - grid.mean(axis=0)) / grid.std(axis=0))[:, 0]
    np.testing.assert_allclose(m.predict_proba(grid)[:, 1], y_pred, rtol=0, atol=1e-12)
    assert np.any(y_pred < 0.5) and np.any(y_pred > 0.5)  # a border, as the problem set saw
    st = rep.summary["student"]
    assert st["test_floor"] == pytest.approx(
        0.5 * np.sum(np.minimum(faithful.prepared.problem.y_test, 0.0) ** 2), rel=1e-12)


def test_the_page_tells_the_truth(report):
    """Issue 13's wording: per-row losses beside the sums, E_n per row in Question 4, the
    doctor's five differences, the rise of the test loss, one epoch count for the compared
    maps, no timing in the student's view, augmentation on and off side by side."""
    rep, out, config = report
    page, s = _page(out), rep.summary
    assert "test loss E (20 rows)" in page and page.count("<th>per row</th>") >= 2
    assert "E = ½ Σᵢ (yᵢ − ŷᵢ)² per row" not in page  # E means one thing
    assert "This run's loss of one row is <math>" in page
    assert "--ps5-q3</code> names each of the five" in page
    assert "names the first two" not in page
    rise = s.get("test_loss_rise")
    if rise and rise["to"] > 1.01 * rise["from"]:
        assert f"from {rise['from']:.4g} at epoch {rise['from_epoch']}" in page
    t = s["torch"]
    if "epochs" in t:
        assert f"scratchnet after the same {t['epochs']} epochs" in page
        assert f"PyTorch twin after {t['epochs']} epochs" in page
        assert f"({t['seconds']:.1f} s)" not in page
    for name in ("augmentation_map.png", "augmentation_off_map.png"):
        assert name in s["files"] and os.path.getsize(os.path.join(out, name)) > 0
    assert "standardized units: they multiply the standardized inputs" in page
    own = os.path.getsize(os.path.join(out, "report.html")) / 1024  # the Files table: sizes
    assert f"<code>report.html</code></a></td><td>{own:.1f} kB (this page)" in page
    assert "\x00" not in page


def test_activation_verdict_weighs_the_gap_against_the_seed_spread(report):
    from scratchnet.report.html import _verdict

    same = _verdict({"test_acc_mean": 0.655, "test_acc_std": 0.042},
                    {"test_acc_mean": 0.650, "test_acc_std": 0.0})
    apart = _verdict({"test_acc_mean": 0.90, "test_acc_std": 0.02},
                     {"test_acc_mean": 0.65, "test_acc_std": 0.03})
    assert "cannot be told apart" in same and "more than the spread (0.036)" in apart
    a = report[0].summary["q4"]["activation"]
    assert _verdict(a[report[2].activation], a["identity"]) in _page(report[1])


def test_the_problem_sets_panel_is_for_its_sigmoid_output_only(tmp_path):
    """With a linear output the midpoint, the floor and 'always class 1' do not hold: no
    panel, no link to it."""
    rep = build_report(TrainConfig(epochs=200, output="identity", log_every=0),
                       str(tmp_path / "lin"), ReportOptions(torch_epochs=0, aux_epochs=0))
    page = _page(str(tmp_path / "lin"))
    assert rep.code == 0 and "student" not in rep.summary
    assert "id='student'" not in page and "href='#student'" not in page
