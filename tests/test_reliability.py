"""The CLI's contract under bad input (issue 12), held three ways.

* Hypothesis generates CSV contents, model files and flag values and runs
  ``scratchnet.cli.main`` in process: every run ends with exit code 0, or with exit code 2 and
  exactly one line on stderr (no traceback); output files are absent or complete and loadable.
  pytest turns every warning into an error, so a numpy RuntimeWarning fails these tests too.
* A corpus replays every case listed in issue 12, each with the words its message must hold.
* SIGKILL during atomic writes: the target holds the old content or the new one, never a mix.

The Hypothesis profile is fixed (derandomized, few examples, no deadline, no database), so CI
runs the same examples every time, quickly.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scratchnet.cli import main
from scratchnet.core import io as sio
from scratchnet.core.data import bundled_csv
from scratchnet.core.errors import OutputError
from scratchnet.core.model import Model

settings.register_profile(
    "reliability", derandomize=True, max_examples=40, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large])
settings.register_profile(  # SCRATCHNET_HYPOTHESIS=long: a deeper, random search by hand
    "long", parent=settings.get_profile("reliability"), derandomize=False, max_examples=400)
PROFILE = settings.get_profile("long" if os.environ.get("SCRATCHNET_HYPOTHESIS") == "long"
                               else "reliability")


def run(capsys, *argv):
    """(exit code, stdout, stderr) of ``scratchnet argv`` in this process."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse refuses a flag
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_contract(code, err, *must):
    """Exit 0, or exit 2 with exactly one line on stderr, no traceback, naming ``must``."""
    assert "Traceback" not in err and "Warning" not in err, err
    if code == 0:
        return
    assert code == 2, (code, err)
    assert err.count("\n") == 1 and err.endswith("\n"), err
    for m in must:
        assert m in err, (m, err)


def assert_model_ok_or_absent(path):
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        assert "NaN" not in text and "Infinity" not in text
        m = Model.load(path)
        assert np.isfinite(m.w).all()


def assert_csv_ok_or_absent(path, columns=None):
    if os.path.exists(path):
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        assert rows and all(len(r) == len(rows[0]) for r in rows)
        if columns:
            assert rows[0][:len(columns)] == list(columns)


# ---- Hypothesis: CSV contents -----------------------------------------------------------------
CELLS = st.one_of(
    st.integers(-3, 3).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "abc", "1e300", "-1.7e308", "1e-320", "0x10", "1_0", "nan",
                     "\x00", "é", '"1"', "1,5", "9" * 200_000]),
)


@st.composite
def csv_files(draw):
    header = ["x_1", "x_2", "classification"]
    header = draw(st.sampled_from([header, header + ["note"], ["x_1", "x_1", "classification"],
                                   ["x_1", "classification"], header]))
    n = draw(st.integers(0, 30))
    rows = []
    bad_rows = draw(st.sampled_from([0, 0, 1, 3]))  # how many rows may be damaged
    for i in range(n):
        if draw(st.integers(0, 9)) >= bad_rows:  # a well-formed row (Hypothesis favours 0)
            rows.append([repr(float(i)), repr(float((i * 7) % 5)), str(i % 2)]
                        + ["t"] * (len(header) - 3))
        else:
            rows.append(draw(st.lists(CELLS, min_size=len(header) - 1,
                                      max_size=len(header) + 1)))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(",".join(r) for r in [header] + rows) + draw(st.sampled_from([eol, ""]))
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 9)) == 9:
        data = data.replace(b"1", b"\xff", 1)  # not UTF-8
    return data


@settings(PROFILE)
@given(data=csv_files())
def test_any_csv_is_trained_on_or_refused_in_one_line(capsys, data):
    with tempfile.TemporaryDirectory() as d:
        p, m, h = (os.path.join(d, n) for n in ("d.csv", "m.json", "h.csv"))
        with open(p, "wb") as fh:
            fh.write(data)
        code, _, err = run(capsys, "train", "--data", p, "--epochs", 5, "--quiet",
                           "--save", m, "--history", h)
        event(f"exit {code}")  # --hypothesis-show-statistics: both outcomes are exercised
        assert_contract(code, err)
        assert code == 0 or p in err or "--test-size" in err  # the file, or the option
        assert_model_ok_or_absent(m)
        assert_csv_ok_or_absent(h, ["epoch", "train_loss"])
        if code == 0:
            assert os.path.exists(m) and os.path.exists(h)


# ---- Hypothesis: model files -------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dict():
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "m.json")
        assert main(["train", "--epochs", "20", "--quiet", "--save", p]) == 0
        with open(p, encoding="utf-8") as fh:
            return json.load(fh)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=8)
FIELDS = ["format", "version", "layout", "layout.sizes", "layout.sizes.1", "layout.activations",
          "layout.activations.0", "layout.output", "layout.input_names", "loss", "x_scaler",
          "x_scaler.mean", "x_scaler.std.1", "y_scaler", "classes", "classes.0", "target",
          "w", "w.3", "config", "final"]


def set_field(d, path, value):
    """Set ``a.b.1`` in nested dicts and lists; a path that no longer exists (an earlier edit
    replaced a parent) is left alone."""
    for k in path.split("."):
        if isinstance(d, list) and not (k.isdigit() and int(k) < len(d)):
            return
        if not isinstance(d, (dict, list)):
            return
        parent, key = d, int(k) if isinstance(d, list) else k
        d = d[key] if isinstance(d, list) else d.setdefault(key, {})
    parent[key] = value


@settings(PROFILE)
@given(edits=st.lists(st.tuples(st.sampled_from(FIELDS), JSON_VALUES), max_size=3),
       bom=st.booleans())
def test_any_model_file_predicts_or_is_refused_naming_the_file(capsys, model_dict, edits, bom):
    import copy

    d = copy.deepcopy(model_dict)
    for path, value in edits:
        set_field(d, path, value)
    with tempfile.TemporaryDirectory() as tmp:
        p, out = os.path.join(tmp, "m.json"), os.path.join(tmp, "p.csv")
        with open(p, "wb") as fh:
            fh.write((b"\xef\xbb\xbf" if bom else b"") + json.dumps(d).encode())
        code, _, err = run(capsys, "predict", "--model", p, "--data", bundled_csv("ps5"),
                           "--out", out)
        event(f"exit {code}")
        assert_contract(code, err, p)
        assert "--" not in err  # never a flag the user did not give
        assert (code == 0) == os.path.exists(out)
        assert_csv_ok_or_absent(out, ["x_1", "x_2", "classification"])


@settings(PROFILE)
@given(data=csv_files(), names=st.sampled_from([None, "x_1,x_2", "x_1,x_1", "x_2", ",", "x_1,"]),
       target=st.sampled_from([None, "", "classification", "x_1", "nope"]))
def test_any_csv_is_predicted_or_refused_in_one_line(capsys, model_dict, data, names, target):
    with tempfile.TemporaryDirectory() as d:
        p, m, out = (os.path.join(d, n) for n in ("d.csv", "m.json", "p.csv"))
        with open(p, "wb") as fh:
            fh.write(data)
        with open(m, "w", encoding="utf-8") as fh:
            json.dump(model_dict, fh)
        code, _, err = run(capsys, "predict", "--model", m, "--data", p, "--out", out)
        event(f"predict exit {code}")
        assert_contract(code, err, p)
        assert (code == 0) == os.path.exists(out)
        assert_csv_ok_or_absent(out)
        # the same file for training, with column choices a user might type
        flags = (["--features", names] if names is not None else []) + \
            (["--target", target] if target is not None else [])
        code, _, err = run(capsys, "train", "--data", p, "--epochs", 3, "--quiet", *flags)
        assert_contract(code, err)


# ---- Hypothesis: flag values -------------------------------------------------------------------
NUMBER_TEXT = st.one_of(
    st.sampled_from(["0", "-1", "1e308", "1e400", "-1e400", "nan", "inf", "-inf", "", " ",
                     "abc", "1e-320", "4294967296", "99999999999", "0.5", "3", "7,", ",7",
                     "7,,3", "1e10"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**12, 10**12).map(str))
SMALL_FLAGS = ["--lr", "--seed", "--split-seed", "--test-size", "--noise", "--l2", "--l1",
               "--jitter", "--gamma", "--lr-min", "--momentum", "--beta1", "--beta2", "--rho",
               "--eps", "--patience", "--step-size", "--log-every"]


@settings(PROFILE)
@given(flags=st.lists(st.tuples(st.sampled_from(SMALL_FLAGS), NUMBER_TEXT), min_size=1,
                      max_size=3),
       extra=st.sampled_from([[], ["--optimizer", "adam"], ["--schedule", "cosine"],
                              ["--schedule", "exponential"], ["--data", "moons"]]))
def test_any_flag_value_trains_or_is_refused_in_one_line(capsys, flags, extra):
    with tempfile.TemporaryDirectory() as d:
        m = os.path.join(d, "m.json")
        argv = ["train", "--epochs", 5, "--quiet", "--save", m, *extra]
        for f, v in flags:
            argv += [f"{f}={v}"]
        code, _, err = run(capsys, *argv)
        event(f"exit {code}")
        assert_contract(code, err)  # argparse's refusals are one line too
        assert_model_ok_or_absent(m)


# ---- the corpus: every case of issue 12 -----------------------------------------------------------
# (argv, the words the one-line message must hold); "{d}" is a temporary folder holding
# good.csv (a valid data set) and whatever the case writes first.
GOOD = "x_1,x_2,classification\n" + "".join(f"{i % 7},{(i * 3) % 11},{i % 2}\n"
                                             for i in range(40))
TRAIN = ["train", "--epochs", "5", "--quiet"]
CORPUS = {
    # 4: output paths are checked before training, naming the option and the path
    "save-in-missing-folder": (TRAIN + ["--save", "{d}/nodir/m.json", "--history", "{d}/h.csv"],
                               ["--save", "nodir/m.json", "does not exist"]),
    "save-a-folder": (TRAIN + ["--save", "{d}"], ["--save", "folder"]),
    "history-in-missing-folder": (TRAIN + ["--history", "{d}/no/h.csv"], ["--history"]),
    "predict-out-missing-folder": (["predict", "--model", "{d}/m.json", "--data", "{d}/good.csv",
                                    "--out", "{d}/no/p.csv"], ["--out", "no/p.csv"]),
    "sweep-out-missing-folder": (["sweep", "--hidden", "3", "--seeds", "0:2", "--epochs", "5",
                                  "--quiet", "--out", "{d}/no/s.csv"], ["--out", "no/s.csv"]),
    "ps5-out-a-file": (["ps5", "--epochs", "5", "--out", "{d}/good.csv"],
                       ["--out", "good.csv is a file, not a folder"]),
    "demo-out-a-file": (["demo", "vanishing", "--epochs", "2", "--out", "{d}/good.csv"],
                        ["--out", "good.csv is a file, not a folder"]),
    "compare-out-missing-folder": (["compare", "--epochs", "5", "--out", "{d}/no/c.png"],
                                   ["--out", "no/c.png", "does not exist"]),
    "derive-out-missing-folder": (["derive", "--out", "{d}/no/d.md"], ["--out", "no/d.md"]),
    # 7: CSV and model-file cases
    "csv-field-over-131072": ("long.csv", ["long.csv", "row 3, column x_2", "131,072"]),
    "model-nested-200000-deep": ("deep.json", ["deep.json", "nested too deeply"]),
    "model-classes-wrong-length": ("classes.json", ["classes.json", '"classes"', "has 3 labels"]),
    "model-scaler-wrong-length": ("scaler.json", ["scaler.json", '"x_scaler.mean"']),
    "model-float-layer-size": ("sizes.json", ["sizes.json", '"layout.sizes[1]"',
                                              "whole number"]),
    "sweep-file-nul": ("nul", []),
    "sweep-file-non-utf8": ("latin1", []),
    "sweep-file-garbage": ("garbage", []),
    # 9: extreme data is a data error naming the column
    "data-1e300": ("big.csv", ["column x_1", "too large to standardize"]),
    "data-1.7e308": ("huge.csv", ["column x_1", "too large to standardize"]),
    "data-subnormal": ("tiny.csv", ["column x_1", "too little to standardize"]),
    # 11: silently accepted input
    "duplicate-csv-header": ("dup.csv", ["column 'x_1' appears twice"]),
    "features-twice": (TRAIN + ["--data", "{d}/good.csv", "--features", "x_1,x_1"],
                       ["x_1"]),
    "target-empty": (TRAIN + ["--data", "{d}/good.csv", "--target", ""], ["target"]),
    "save-empty": (TRAIN + ["--save", ""], ["--save"]),
    # 12: messages
    "save-dev-full": (TRAIN + ["--save", "/dev/full"], ["/dev/full"]),
    # the options engineer's flag cases (item 7 and 11), replayed here too
    "seed-negative": (TRAIN + ["--seed", "-1"], ["--seed"]),
    "seed-2**32": (TRAIN + ["--seed", "4294967296"], ["--seed"]),
    "split-seed-negative": (TRAIN + ["--split-seed", "-1"], ["--split-seed"]),
    "data-seed-negative": (TRAIN + ["--data", "moons", "--data-seed", "-1"], ["--data-seed"]),
    "demo-seed-negative": (["demo", "vanishing", "--seed", "-1", "--epochs", "2"], ["--seed"]),
    "n-samples-0": (TRAIN + ["--data", "moons", "--n-samples", "0"], ["--n-samples"]),
    "epochs-0-monitor": (["train", "--epochs", "0", "--monitor", "--quiet"], []),
    "gamma-overflow": (TRAIN + ["--schedule", "exponential", "--gamma", "1e400"], ["--gamma"]),
    "time-limit-overflow": (["doctor", "--quick", "--time-limit", "1e400"], ["--time-limit"]),
    # "--epochs 1e10" is no longer refused: the options engineer bounded the history's memory
    # (training/options.py, run.HISTORY_BUDGET), so it is a valid (very long) run, held by
    # tests/test_options.py; replaying it here would train for hours.
    # compare and the CNN demo keep every epoch's numbers: checked against memory up front
    "compare-epochs-1e10": (["compare", "--epochs", "1e10"], ["--epochs", "GB of memory"]),
    "demo-digits-epochs-1e12": (["demo", "digits", "--epochs", "1000000000000"],
                                ["--epochs", "GB of memory"]),
    "test-size-too-few-rows": (TRAIN + ["--data", "{d}/two.csv"],
                               ["--test-size: 0.2", "too few of the 2 rows"]),
    "hidden-1e11": (TRAIN + ["--hidden", "100000000000"], ["--hidden"]),
    "n-samples-huge": (TRAIN + ["--data", "moons", "--n-samples", "100000000000"],
                       ["--n-samples"]),
    "sweep-seeds-huge": (["sweep", "--hidden", "3", "--seeds", "0:99999999999", "--epochs", "5",
                          "--quiet", "--out", "{d}/s.csv"], ["--seeds"]),
    "noise-nan": (TRAIN + ["--data", "moons", "--noise", "nan"], ["--noise"]),
    "l2-huge": (TRAIN + ["--l2", "1e300"], []),
    "jitter-huge": (TRAIN + ["--jitter", "1e300"], []),
    "hidden-7,,3": (TRAIN + ["--hidden", "7,,3"], ["--hidden"]),
    "hidden-7,": (TRAIN + ["--hidden", "7,"], ["--hidden"]),
    "hidden-,7": (TRAIN + ["--hidden", ",7"], ["--hidden"]),
    "lr-min-above-lr": (TRAIN + ["--schedule", "cosine", "--lr", "0.01", "--lr-min", "0.1"],
                        ["--lr-min"]),
    # sweep's list flags: an empty entry is refused, not dropped
    "sweep-hidden-7,,3": (["sweep", "--hidden", "7,,3", "--seeds", "0:2", "--epochs", "5",
                           "--quiet", "--out", "{d}/s.csv"], ["--hidden: '7,,3'", "empty entry"]),
    "sweep-lr-0.1,": (["sweep", "--lr", "0.1,", "--seeds", "0:2", "--epochs", "5", "--quiet",
                       "--out", "{d}/s.csv"], ["--lr: '0.1,'", "empty entry"]),
    "sweep-seeds-,3": (["sweep", "--seeds", ",3", "--epochs", "5", "--quiet", "--out",
                        "{d}/s.csv"], ["--seeds: ',3'", "empty entry"]),
}
# the options engineer's cases that are still failing are listed in the report to the lead


def write_case_files(d: str, model: dict) -> None:
    files = {
        "good.csv": GOOD,
        "long.csv": "x_1,x_2,classification\n1,2,0\n3," + "7" * 140_000 + ",1\n",
        "big.csv": "x_1,x_2,classification\n" + "".join(f"{(i + 1) * 1e300!r},{i},{i % 2}\n"
                                                        for i in range(10)),
        "huge.csv": "x_1,x_2,classification\n1.7e308,0,0\n-1.7e308,1,1\n0,2,0\n1,3,1\n",
        "tiny.csv": "x_1,x_2,classification\n" + "".join(f"{(i + 1) * 1e-320!r},{i},{i % 2}\n"
                                                         for i in range(10)),
        "dup.csv": "x_1,x_2,x_1,classification\n1,2,3,0\n4,5,6,1\n",
        "two.csv": "x_1,x_2,classification\n1,2,0\n3,5,1\n",
        "deep.json": "[" * 200_000 + "]" * 200_000,
    }
    for name, text in files.items():
        with open(os.path.join(d, name), "w", encoding="utf-8") as fh:
            fh.write(text)
    for name, change in (("classes.json", lambda m: m.update(classes=[0, 1, 2])),
                         ("scaler.json", lambda m: m["x_scaler"].update(mean=[0.0])),
                         ("sizes.json", lambda m: m["layout"].update(sizes=[2, 7.5, 1]))):
        m = json.loads(json.dumps(model))
        change(m)
        with open(os.path.join(d, name), "w", encoding="utf-8") as fh:
            json.dump(m, fh)
    with open(os.path.join(d, "m.json"), "w", encoding="utf-8") as fh:
        json.dump(model, fh)


SWEEP = ["sweep", "--hidden", "3", "--lr", "0.01", "--seeds", "0:4", "--epochs", "5",
         "--quiet", "--chunk-size", "2"]


@pytest.mark.parametrize("case", list(CORPUS))
def test_issue_12_corpus(capsys, tmp_path, model_dict, case):
    d = str(tmp_path)
    write_case_files(d, model_dict)
    argv, must = CORPUS[case]
    if argv[0] == "compare":  # compare refuses first without PyTorch
        pytest.importorskip("torch")
    if case.startswith("sweep-file-"):
        out = os.path.join(d, "s.csv")
        assert run(capsys, *SWEEP, "--out", out)[0] == 0
        with open(out, "rb") as fh:
            clean = fh.read()
        bad = {"nul": b"3,0.01,\x00\x00\x00\n", "latin1": "3,0.01,\xe9\n".encode("latin-1"),
               "garbage": b"!!garbage!!\n"}[argv]
        with open(out, "wb") as fh:
            fh.write(clean[:len(clean) // 2] + bad + clean[len(clean) // 2:])
        code, _, err = run(capsys, *SWEEP, "--out", out)
        assert code == 0 and "warning" in err and "Traceback" not in err
        with open(out, "rb") as fh:
            assert fh.read() == clean
        return
    if isinstance(argv, str):  # a data or model file
        path = os.path.join(d, argv)
        argv = (["predict", "--model", path, "--data", bundled_csv("ps5")]
                if argv.endswith(".json") else TRAIN + ["--data", path])
    argv = [a.replace("{d}", d) for a in argv]

    def too_long(signum, frame):  # a case that trains instead of refusing must not hang CI
        raise TimeoutError(f"{case}: still running after 120 s")

    old = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(120)
    try:
        code, out, err = run(capsys, *argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    if case in ("epochs-0-monitor", "l2-huge", "jitter-huge"):
        assert_contract(code, err)  # a clean run or a one-line refusal, either is fine
        return
    assert code == 2, (code, err)
    assert_contract(code, err, *must)
    if case == "save-in-missing-folder":
        assert not os.path.exists(os.path.join(d, "h.csv"))  # refused before training


def test_diverged_run_never_saves_infinite_weights(capsys, tmp_path):
    """Issue 12 item 5: --lr 1e308 saturates the sigmoid while w becomes inf."""
    m = tmp_path / "m.json"
    code, _, err = run(capsys, "train", "--lr", "1e308", "--epochs", "50", "--quiet",
                       "--save", m)
    assert code in (0, 2) and "Traceback" not in err
    assert_model_ok_or_absent(str(m))


def _predict(m, data_arg, stdin=None):
    return subprocess.run([sys.executable, "-m", "scratchnet", "predict", "--model", str(m),
                           "--data", data_arg], input=stdin, capture_output=True, timeout=120)


def test_predict_reads_a_pipe_once(tmp_path):
    """Issue 12 item 7: ``--data /dev/stdin`` (a pipe) and a named pipe are read once, and
    print byte for byte what the same CSV as a file prints (rows echoed, columns added)."""
    m = tmp_path / "m.json"
    assert main(["train", "--epochs", "5", "--quiet", "--save", str(m)]) == 0
    with open(bundled_csv("ps5"), "rb") as fh:
        data = fh.read()
    features_only = b"x_1,x_2\n1,2\n-0.5,3e-1\n"  # no target column: no accuracy line
    (tmp_path / "f.csv").write_bytes(features_only)
    for text, path in ((data, bundled_csv("ps5")), (features_only, str(tmp_path / "f.csv"))):
        piped, from_file = _predict(m, "/dev/stdin", text), _predict(m, path)
        assert piped.returncode == from_file.returncode == 0, piped.stderr
        assert piped.stdout == from_file.stdout and piped.stderr == from_file.stderr
    lines = piped.stdout.decode().splitlines()
    assert lines[0] == "x_1,x_2,probability,prediction" and lines[1].startswith("1,2,")
    assert lines[2].startswith("-0.5,3e-1,") and len(lines) == 3 and not piped.stderr
    r = _predict(m, "/dev/stdin", data)
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 101 and lines[0].endswith("probability,prediction")
    assert b"accuracy" in r.stderr and b"Warning" not in r.stderr
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # a named pipe: opened once, so one writer is enough
    p = subprocess.Popen([sys.executable, "-m", "scratchnet", "predict", "--model", str(m),
                          "--data", str(fifo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while True:  # the write end opens once predict holds the read end (no hang if it died)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read()
            time.sleep(0.05)
    os.write(fd, data)  # ~2 KB: within the pipe's buffer
    os.close(fd)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0 and out == r.stdout and err == r.stderr, err
    r = subprocess.run([sys.executable, "-m", "scratchnet", "train", "--data", "/dev/stdin",
                        "--epochs", "5", "--quiet"], input=data, capture_output=True,
                       timeout=120)
    assert r.returncode == 0 and b"final (5 epochs" in r.stdout and not r.stderr, r.stderr


def test_predict_names_the_row_of_a_non_finite_output(capsys, tmp_path, monkeypatch):
    """A model whose output is not finite for some input row: one line naming the row (the
    CSV's row 3 is the second data row), nothing written to --out."""
    m, p = tmp_path / "m.json", tmp_path / "p.csv"
    assert main(["train", "--epochs", "5", "--quiet", "--save", str(m)]) == 0
    real = Model.predict_proba

    def predict_proba(self, X):
        proba = real(self, X)
        proba[1, 0] = np.nan
        return proba

    monkeypatch.setattr(Model, "predict_proba", predict_proba)
    code, out, err = run(capsys, "predict", "--model", m, "--data", bundled_csv("ps5"),
                         "--out", p)
    assert_contract(code, err, "row 3", "not a finite number")
    assert code == 2 and not p.exists() and out == ""


def test_gradcheck_without_autograd_does_not_claim_torch_is_missing(capsys):
    code, out, _ = run(capsys, "gradcheck", "--no-autograd", "--epochs", "0")
    assert code == 0 and "autograd skipped" in out and "not installed" not in out


# ---- atomic writes ------------------------------------------------------------------------
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with sio.atomic_write(str(p)) as fh:
            fh.write("new, half")
            raise RuntimeError("boom")
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]
    with pytest.raises(OutputError, match=r"non-finite number at a\.b\[1\]"):
        sio.write_json(str(p), {"a": {"b": [1.0, float("nan")]}})
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]
    sio.write_json(str(p), {"a": 1})
    assert json.loads(p.read_text()) == {"a": 1}
    assert oct(os.stat(p).st_mode & 0o777) != oct(0o600)  # a normal file's permissions


@pytest.mark.parametrize("path,pattern", [
    ("", r"^--save: an empty path"),
    ("{d}", r"^--save {d}: is a folder"),
    ("{d}/no/m.json", r"^--save {d}/no/m.json: folder '{d}/no' does not exist"),
    ("{d}/f.txt/m.json", r"folder '{d}/f.txt' is not a folder"),
])
def test_check_writable_names_the_option_and_the_path(tmp_path, path, pattern):
    d = str(tmp_path)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(OutputError, match=pattern.replace("{d}", d)):
        sio.check_writable(path.replace("{d}", d), "--save")
    sio.check_writable(str(tmp_path / "ok.json"), "--save")  # fine, and nothing left behind
    assert sorted(os.listdir(tmp_path)) == ["f.txt"]


def test_dev_full_names_the_path():
    with pytest.raises(OutputError, match="^/dev/full: cannot write"):
        sio.write_text("/dev/full", "x" * 100_000)


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from scratchnet.core import io
    from scratchnet.core.model import Model
    from scratchnet.core.network import Layout
    path, kind = sys.argv[1], sys.argv[2]
    import signal
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))  # as the CLI: an exception
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        if kind == "text":
            io.write_text(path, (f"{i}\\n" * 300_000) + "end\\n")
        elif kind == "csv":
            io.write_csv(path, ["epoch", "loss"], ([t, i] for t in range(200_000)))
        else:
            L = Layout.build(2, (300, 400), 1)  # beyond INLINE_MAX: safetensors + JSON
            Model(L, np.full(L.n_params, float(i))).save(path)
""")


def complete(path, kind):
    if kind == "text":
        with open(path) as fh:
            lines = fh.read().splitlines()
        return lines[-1] == "end" and len(set(lines[:-1])) == 1 and len(lines) == 300_001
    if kind == "csv":
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        return len(rows) == 200_001 and len({r[1] for r in rows[1:]}) == 1
    m = Model.load(path)
    return np.all(m.w == m.w[0])


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
@pytest.mark.parametrize("kind", ["text", "csv", "model"])
def test_a_kill_during_writes_leaves_old_or_new_never_a_mix(tmp_path, kind, sig):
    path = str(tmp_path / ("out.json" if kind == "model" else "out.txt"))
    rng = np.random.default_rng(0)
    for attempt in range(3):
        p = subprocess.Popen([sys.executable, "-c", WRITER, path, kind], stdout=subprocess.PIPE)
        assert p.stdout.readline() == b"ready\n"
        time.sleep(0.3 + rng.uniform(0, 0.7))
        p.send_signal(sig)
        p.wait()
        p.stdout.close()
        if os.path.exists(path):
            assert complete(path, kind), f"attempt {attempt}: a mixed or partial file"
        if sig == signal.SIGTERM:  # an exception unwinds the write: no temporary left
            assert p.returncode == 143
            assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_writing_through_a_symlink_replaces_its_target(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    sio.write_json(str(link), {"a": 1})
    assert link.is_symlink() and json.loads(real.read_text()) == {"a": 1}


def test_check_folder_creates_parents_but_refuses_files(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    sio.check_folder(str(tmp_path / "new" / "deeper"), "--out")  # created later, with parents
    sio.check_folder(str(tmp_path), "--out")
    with pytest.raises(OutputError, match=r"^--out .*f\.txt: .*f\.txt is a file, not a folder"):
        sio.check_folder(str(tmp_path / "f.txt"), "--out")
    with pytest.raises(OutputError, match=r"f\.txt is a file, not a folder"):
        sio.check_folder(str(tmp_path / "f.txt" / "sub"), "--out")
    with pytest.raises(OutputError, match="^--out: an empty path"):
        sio.check_folder("", "--out")
    assert sorted(os.listdir(tmp_path)) == ["f.txt"]  # nothing created, nothing left behind
