import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from scratchnet.cli import main
from scratchnet.core.model import Model


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse rejects a flag
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def read_rows(path):
    return list(csv.DictReader(path.read_text().splitlines()))


def test_train_then_predict_end_to_end(tmp_path, capsys):
    m, h, preds = tmp_path / "m.json", tmp_path / "h.csv", tmp_path / "p.csv"
    code, out, _ = run(capsys, "train", "--epochs", "300", "--lr", "0.05", "--log-every", "100",
                       "--save", str(m), "--history", str(h))
    assert code == 0
    assert "epoch       0  train loss" in out and "epoch     200" in out
    assert "final (300 epochs" in out and "test acc" in out
    rows = read_rows(h)
    assert len(rows) == 300 and float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    model = Model.load(str(m))
    assert model.layout.sizes == (2, 7, 1)

    from scratchnet.core.data import bundled_csv

    code, out, _ = run(capsys, "predict", "--model", str(m), "--data", bundled_csv("ps5"),
                       "--out", str(preds))
    assert code == 0 and "accuracy" in out
    got = read_rows(preds)
    assert len(got) == 100 and {"probability", "prediction"} <= set(got[0])
    X = np.array([[float(r["x_1"]), float(r["x_2"])] for r in got])
    np.testing.assert_allclose([float(r["probability"]) for r in got],
                               model.predict_proba(X)[:, 1], rtol=1e-5)


def test_predict_without_target_column(tmp_path, capsys):
    m = tmp_path / "m.json"
    assert run(capsys, "train", "--epochs", "5", "--quiet", "--save", str(m))[0] == 0
    data = tmp_path / "new.csv"
    data.write_text("x_1,x_2\n-5,100\n-4.5,-300\n")
    code, out, err = run(capsys, "predict", "--model", str(m), "--data", str(data))
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == "x_1,x_2,probability,prediction" and len(lines) == 3
    assert "accuracy" not in err


@pytest.mark.parametrize("argv,pattern", [
    (["train", "--data", "missing.csv"], "missing.csv: no such file"),
    (["train", "--lr", "abc"], "argument --lr: 'abc' is not a number"),
    (["train", "--lr", "-1"], "must be a positive number"),
    (["train", "--hidden", "7,x"], "argument --hidden"),
    (["train", "--test-size", "1.5"], "between 0 and 1"),
    (["train", "--data", "spiral", "--n-classes", "3"], "--output softmax"),
    (["predict", "--model", "nope.json", "--data", "x.csv"], "nope.json: no such file"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, pattern):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert pattern in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_bad_csv_values_through_the_cli(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("x_1,x_2,classification\n1,2,0\n2,oops,1\n3,4,0\n")
    code, _, err = run(capsys, "train", "--data", str(p))
    assert code == 2
    assert err.strip() == f"scratchnet: {p} row 3, column x_2: 'oops' is not a number"


def test_divergence_exit_code_and_partial_history_saved(tmp_path, capsys):
    h, m = tmp_path / "h.csv", tmp_path / "m.json"
    code, out, err = run(capsys, "train", "--output", "identity", "--lr", "5", "--epochs",
                         "2000", "--history", str(h), "--save", str(m), "--engine", "numpy")
    assert code == 2 and "diverged at epoch" in err
    rows = read_rows(h)
    assert 0 < len(rows) < 2000
    assert json.loads(m.read_text())["final"]["stopped"] == "diverged"


def test_python_dash_m_and_version():
    r = subprocess.run([sys.executable, "-m", "scratchnet", "train", "--epochs", "3",
                        "--quiet"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "final (3 epochs" in r.stdout
    r = subprocess.run([sys.executable, "-m", "scratchnet", "--data"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.parametrize("argv", [
    ["train", "--epochs", "2", "--quiet", "--save", "/nonexistent-dir/m.json"],
    ["diagram", "--hidden", "3", "--out", "/nonexistent-dir/net.png"],
])
def test_unwritable_output_is_one_line_and_exit_code_2(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "/nonexistent-dir/" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
