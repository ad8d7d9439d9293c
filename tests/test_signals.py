"""Nothing trained is lost: ``scratchnet train`` in a real process, stopped by a signal.

Ctrl-C (SIGINT), SIGTERM and SIGHUP after the first epoch keep what was trained wherever they
land — in the engine, in a log line, with stdout a full pipe nobody reads — and the outputs are
written before the exit (130 for SIGINT, 128 + the signal's number for the others).  SIGKILL
while the outputs are being written leaves the old file or the complete new one.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from scratchnet.core.model import Model

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

TRAIN = [sys.executable, "-m", "scratchnet", "train", "--engine", "numpy",
         "--epochs", "3000000", "--save", "m.json", "--history", "h.csv"]
TIMEOUT = 60


def start(tmp_path, *flags, stdout=subprocess.PIPE):
    return subprocess.Popen([*TRAIN, *flags], cwd=tmp_path, stdout=stdout,
                            stderr=subprocess.PIPE, text=True)


def wait_for_line(p, prefix: str) -> str:
    """Read stdout until a line starting with ``prefix`` (the run is past its first epoch)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and p.poll() is not None:
            break
    p.kill()
    raise AssertionError(f"no line starting with {prefix!r}: {p.stderr.read()}")


def finish(p) -> tuple[int, str]:
    try:
        _, err = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("the process did not exit after the signal")
    return p.returncode, err


def history_rows(path) -> list[list[str]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["epoch", "train_loss", "test_loss", "train_acc", "test_acc"]
    return rows[1:]


def assert_kept(tmp_path, err: str) -> int:
    """Both files exist, load, and agree on the number of epochs kept (at least one)."""
    assert "Traceback" not in err, err
    model = Model.load(tmp_path / "m.json")
    assert np.all(np.isfinite(model.w))
    rows = history_rows(tmp_path / "h.csv")
    kept = model.final["epochs"]
    assert kept >= 1 and model.final["stopped"] == "interrupted"
    assert len(rows) == kept, (len(rows), kept)  # one record per epoch kept
    assert [int(r[0]) for r in rows] == list(range(kept))
    assert all(np.isfinite(float(v)) for r in rows for v in r[1:])
    assert f"interrupted after {kept} epochs" in err
    return kept


def test_sigint_in_the_engine_keeps_the_finished_slices(tmp_path):
    p = start(tmp_path, "--log-every", "1000000")  # one log line: the rest is the engine
    wait_for_line(p, "epoch       0")  # the first slice of 1000 epochs is done
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    code, err = finish(p)
    assert code == 130
    kept = assert_kept(tmp_path, err)
    assert kept % 1000 == 0  # whole slices only: the one in flight was dropped


def test_sigint_during_the_log_lines(tmp_path):
    p = start(tmp_path, "--log-every", "1")  # a slice per epoch: mostly printing
    for _ in range(50):
        wait_for_line(p, "epoch")
    p.send_signal(signal.SIGINT)
    code, err = finish(p)
    assert code == 130
    assert_kept(tmp_path, err) >= 50


def test_sigint_with_stdout_a_full_pipe(tmp_path):
    r, w = os.pipe()  # nobody reads: the log lines block once the pipe is full
    try:
        p = start(tmp_path, "--log-every", "1", stdout=w)
        os.close(w)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:  # wait until the pipe is full and the run blocked
            time.sleep(0.3)
            if _pipe_full(r):
                break
        p.send_signal(signal.SIGINT)
        code, err = finish(p)
    finally:
        os.close(r)
    assert code == 130
    assert_kept(tmp_path, err) >= 100


def _pipe_full(fd: int) -> bool:
    """True when the pipe holds at least 60 KiB (Linux pipes take 64 KiB by default)."""
    import fcntl
    import termios

    buf = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return int.from_bytes(buf, sys.byteorder) >= 60_000


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_take_the_path_of_ctrl_c(tmp_path, sig, code):
    p = start(tmp_path, "--log-every", "1000")
    wait_for_line(p, "epoch    1000")
    p.send_signal(sig)
    got, err = finish(p)
    assert got == code
    assert assert_kept(tmp_path, err) >= 1000


def test_sigkill_while_writing_leaves_the_old_file_or_the_new_one(tmp_path):
    """SIGTERM starts the writing of the outputs; SIGKILL follows at a few delays.  Every
    time, each output is the old content or a complete new file."""
    for delay in (0.0, 0.002, 0.01, 0.03):
        (tmp_path / "h.csv").write_text("old history\n")
        (tmp_path / "m.json").write_text('{"old": true}\n')
        p = start(tmp_path, "--log-every", "1000")
        wait_for_line(p, "epoch    2000")
        p.send_signal(signal.SIGTERM)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=TIMEOUT)
        text = (tmp_path / "h.csv").read_text()
        if text != "old history\n":
            rows = history_rows(tmp_path / "h.csv")
            assert [int(r[0]) for r in rows] == list(range(len(rows))) and len(rows) >= 2000
        m = (tmp_path / "m.json").read_text()
        if m != '{"old": true}\n':
            assert np.all(np.isfinite(Model.load(tmp_path / "m.json").w))


# ---- demo and compare: a real signal, sent by the process to itself at a chosen moment ------
# ``scratchnet.cli.main`` installs the handlers (SIGTERM and SIGHUP take the path of Ctrl-C);
# a hook sends the signal from inside the engine or the twin, so the moment is exact and each
# test takes a few seconds.
def kill_self(sig):
    os.kill(os.getpid(), sig)  # the handler runs here: KeyboardInterrupt from this line


def one_scratchnet_line(err: str, text: str) -> None:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("scratchnet:")]
    assert len(lines) == 1 and text in lines[0], err


def test_demo_learning_rate_keeps_the_finished_curves(tmp_path, capsys, monkeypatch):
    """SIGTERM while the third η trains: the first two curves are drawn, the exit is 143."""
    from scratchnet.cli import main
    from scratchnet.report import demos
    from scratchnet.training import train as train_mod

    calls = []
    real = train_mod.engine_for

    def engine_for(config, prep):
        engine = real(config, prep)
        calls.append(config.lr)
        if len(calls) == 3:  # the third η: stopped in its first slice
            epochs = engine.epochs
            engine.epochs = lambda *a: (kill_self(signal.SIGTERM), epochs(*a))[1]
        return engine

    monkeypatch.setattr(train_mod, "engine_for", engine_for)
    seen = {}
    real_lr_result = demos._lr_result
    monkeypatch.setattr(demos, "_lr_result",
                        lambda curves, *a: seen.update(curves) or real_lr_result(curves, *a))
    code = main(["demo", "learning-rate", "--epochs", "300", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 143
    one_scratchnet_line(err, "interrupted at epoch 0 of η = 0.003 (2 of 5 finished, kept)")
    assert calls == [1e-4, 1e-3, 3e-3]  # nothing trained after the signal
    assert sorted(seen) == [1e-4, 1e-3] and all(len(c) == 300 for c in seen.values())
    assert (tmp_path / "learning-rate.png").read_bytes()[:4] == b"\x89PNG"
    assert "η = 0.001" in err and "wrote" in err and out == ""  # the summary on stderr


def test_demo_digits_keeps_the_epochs_so_far(tmp_path, capsys, monkeypatch):
    """Ctrl-C in the CNN's third epoch: two epochs kept, figures drawn, exit 130."""
    from scratchnet.cli import main
    from scratchnet.cnn import net

    real = net._CNNEngine.epochs

    def epochs(self, theta, start, stop, out):
        if start == 2:
            kill_self(signal.SIGINT)
        return real(self, theta, start, stop, out)

    monkeypatch.setattr(net._CNNEngine, "epochs", epochs)
    code = main(["demo", "digits", "--epochs", "30", "--out", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 130
    one_scratchnet_line(err, "interrupted at epoch 2 of 30")
    assert "2 epochs in" in err
    for name in ("digits-kernels.png", "digits-feature-maps.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("where,sig,code,kept", [("twin", signal.SIGHUP, 129, 400),
                                                 ("engine", signal.SIGTERM, 143, 300)])
def test_compare_keeps_the_checkpoints_both_reached(tmp_path, capsys, monkeypatch, where, sig,
                                                    code, kept):
    """A signal in the twin's segment 400→500 keeps 0..400; one in the engine's 300→400
    keeps 0..300 (the engine's slice in flight is dropped by the Run)."""
    pytest.importorskip("torch")
    from scratchnet.cli import main
    from scratchnet.training import train as train_mod
    from scratchnet.trust import twin

    if where == "twin":
        real = twin._TwinSteps.run

        def run(self, start, stop, wanted=frozenset()):
            if start == 400:
                kill_self(sig)
            return real(self, start, stop, wanted)

        monkeypatch.setattr(twin._TwinSteps, "run", run)
    else:
        real_epochs = train_mod.run_epochs
        calls = []

        def run_epochs(*a):
            calls.append(1)
            if len(calls) == 4:  # the engine's fourth segment, 300 → 400
                kill_self(sig)
            return real_epochs(*a)

        monkeypatch.setattr(train_mod, "run_epochs", run_epochs)
    fig = tmp_path / "c.png"
    got = main(["compare", "--engine", "numpy", "--epochs", "1000", "--out", str(fig)])
    out, err = capsys.readouterr()
    assert got == code
    one_scratchnet_line(err, f"interrupted at epoch {kept} of 1000")
    rows = [ln.split()[0] for ln in err.splitlines() if ln.strip()[:1].isdigit()]
    assert rows == [str(m) for m in range(0, kept + 1, 100)]  # every checkpoint both reached
    assert f"after {kept} epochs" in err and "agree" in err and out == ""
    assert fig.read_bytes()[:4] == b"\x89PNG"


# ---- sweep: a real process stopped by a signal, then resumed -----------------------------
SWEEP = [sys.executable, "-m", "scratchnet", "sweep", "--engine", "numpy", "--hidden", "3,7",
         "--lr", "0.01", "--seeds", "0:24", "--epochs", "4000", "--chunk-size", "4",
         "--record-every", "100", "--quiet", "--out"]


def _data_rows(path) -> int:
    try:
        with open(path, encoding="utf-8") as fh:
            return sum(1 for line in fh if line.endswith("\n")) - 1  # the header
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_a_sweep_stopped_by_a_signal_resumes_to_the_clean_file(tmp_path, sig, code):
    """SIGTERM (the path of Ctrl-C) or SIGKILL after some chunks: rerunning the command
    trains only what is missing and ends with the bytes of an uninterrupted sweep."""
    clean = subprocess.run([*SWEEP, "clean.csv"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr
    p = subprocess.Popen([*SWEEP, "part.csv"], cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT
    while _data_rows(tmp_path / "part.csv") < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert p.poll() is None, "the sweep ended before the signal: make it longer"
    p.send_signal(sig)
    got, err = finish(p)
    assert got == code and "Traceback" not in err, err
    done = _data_rows(tmp_path / "part.csv")
    assert 8 <= done < 48  # what finished is on disk, and the sweep was cut short
    resumed = subprocess.run([*SWEEP, "part.csv"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0 and "Traceback" not in resumed.stderr, resumed.stderr
    for a, b in (("part.csv", "clean.csv"), ("part.curves.npy", "clean.curves.npy")):
        assert (tmp_path / a).read_bytes() == (tmp_path / b).read_bytes(), a


@pytest.mark.parametrize("at_run,where", [(2, "during the check run"),
                                          (7, "while measuring the differences' effects")])
def test_doctor_reports_what_it_saw_and_trains_no_further(capsys, monkeypatch, at_run, where):
    """Ctrl-C in the check run (the 2nd run: a pilot is the 1st), or in the 7th run, the
    second difference's (after two timing pilots, the right setup and the first difference):
    the findings so far are printed, one info finding says so, nothing more is trained, one
    'scratchnet: interrupted' line, exit 130."""
    from scratchnet.cli import main
    from scratchnet.training import train as train_mod

    calls = []
    real = train_mod.engine_for

    def engine_for(config, prep):
        engine = real(config, prep)
        calls.append(config.epochs)
        if len(calls) == at_run:
            epochs = engine.epochs
            engine.epochs = lambda w, start, *a: (
                kill_self(signal.SIGINT) if start >= 1000 else None, epochs(w, start, *a))[1]
        return engine

    monkeypatch.setattr(train_mod, "engine_for", engine_for)
    code = main(["doctor", "--data", "ps5", "--ps5-q3", "--check-epochs", "3000",
                 "--time-limit", "60", "--json"])
    out, err = capsys.readouterr()
    assert code == 130
    one_scratchnet_line(err, "interrupted after")
    assert len(calls) == at_run  # nothing trained after the signal
    found = {f["id"]: f for f in json.loads(out)["findings"]}
    assert where in found["interrupted"]["saw"]
    assert "init-not-shared" in found and "loss-scale-differs" in found  # the static ones
    measured = [f for f in found.values() if f["effect"]]
    assert len(measured) == (0 if at_run == 2 else 1)  # the first difference was measured


def _signal_in_run(monkeypatch, at_run: int, sig, at_epoch: int = 0):
    """Send ``sig`` from inside the engine of the ``at_run``-th training run, when its slice
    from ``at_epoch`` starts; returns the list of the runs started."""
    from scratchnet.training import train as train_mod

    calls = []
    real = train_mod.engine_for

    def engine_for(config, prep):
        engine = real(config, prep)
        calls.append(config)
        if len(calls) == at_run:
            epochs = engine.epochs
            engine.epochs = lambda w, start, *a: (
                kill_self(sig) if start >= at_epoch else None, epochs(w, start, *a))[1]
        return engine

    monkeypatch.setattr(train_mod, "engine_for", engine_for)
    return calls


def test_demo_vanishing_keeps_the_finished_setups(tmp_path, capsys, monkeypatch):
    """SIGHUP in the third of the four setups: two setups drawn, nothing trained after it."""
    from scratchnet.cli import main

    calls = _signal_in_run(monkeypatch, 3, signal.SIGHUP)
    code = main(["demo", "vanishing", "--epochs", "20", "--depth", "3", "--out",
                 str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 129 and len(calls) == 3
    one_scratchnet_line(err, "interrupted at epoch 0 of tanh, Xavier weights (2 of 4 finished")
    for name in ("vanishing.png", "gradients.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_demo_softmax_keeps_the_epochs_so_far(tmp_path, capsys, monkeypatch):
    """Ctrl-C in the softmax demo's second slice of 1000 epochs: the first 1000 are drawn."""
    from scratchnet.cli import main

    _signal_in_run(monkeypatch, 1, signal.SIGINT, at_epoch=1000)
    code = main(["demo", "softmax", "--epochs", "3000", "--out", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 130
    one_scratchnet_line(err, "interrupted at epoch 1000 of 3000")
    assert (tmp_path / "softmax.png").read_bytes()[:4] == b"\x89PNG"
