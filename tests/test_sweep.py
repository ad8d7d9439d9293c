"""scratchnet.sweep and `scratchnet sweep` in process: the grid, the rows, resuming, the
summary, the plots — and that neither Dask nor matplotlib is imported unless asked for."""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from scratchnet.cli import main
from scratchnet.core.errors import ScratchnetError
from scratchnet.sweep import (COLUMNS, curves_path, make_chunks, parse_hidden, parse_lrs,
                              parse_seeds, read_curves, read_rows, run_sweep, summarize)
from scratchnet.training.train import TrainConfig, train

GRID = dict(hiddens=[(3,), (4, 2)], lrs=[1e-3, 1e-2], seeds=list(range(5)))


def config(**kw):
    return TrainConfig(**{"epochs": 60, "engine": "numpy", **kw})


def sorted_rows(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], sorted(rows[1:])


def test_parse_the_grid_flags():
    assert parse_seeds("0:3,10") == [0, 1, 2, 10]
    assert parse_seeds("7") == [7]
    assert parse_hidden("3,7,15") == [(3,), (7,), (15,)]
    assert parse_hidden("3, 16x8") == [(3,), (16, 8)]
    assert parse_lrs("1e-4,1e-3") == [1e-4, 1e-3]
    for bad, fn in [("5:5", parse_seeds), ("a:3", parse_seeds), ("1,1", parse_seeds),
                    ("3,0", parse_hidden), ("16y8", parse_hidden), ("0.1,-1", parse_lrs)]:
        with pytest.raises(ScratchnetError):
            fn(bad)


def test_chunks_cover_the_grid_and_keep_their_content_when_some_are_done():
    chunks = make_chunks(GRID["hiddens"], GRID["lrs"], GRID["seeds"], chunk_size=4)
    keys = [k for c in chunks for k in c.keys()]
    assert len(keys) == len(set(keys)) == 2 * 2 * 5
    assert all(len(set(c.hidden for _ in c.seeds)) == 1 and len(c.seeds) <= 4 for c in chunks)
    done = set(chunks[1].keys()) | {chunks[2].keys()[0]}
    again = make_chunks(GRID["hiddens"], GRID["lrs"], GRID["seeds"], 4, done)
    assert [k for c in again for k in c.keys()] == [k for k in keys if k not in done]
    assert again[1].keys() == chunks[2].keys()[1:]  # a chunk is not refilled from the next


def test_rows_are_the_networks_train_would_produce(tmp_path):
    out = str(tmp_path / "s.csv")
    run = run_sweep(config(), **GRID, out=out, chunk_size=4)
    assert run.trained == 20 and run.skipped == 0 and len(run.rows) == 20
    row = next(r for r in read_rows(out) if (r["hidden"], r["lr"], r["seed"]) == ("4x2", 1e-2, 3))
    ref = train(config(hidden=(4, 2), lr=1e-2, seed=3))
    for m in ("train_loss", "test_loss", "train_acc", "test_acc"):
        assert row[m] == pytest.approx(ref.final[m], rel=1e-10, abs=1e-12)
    best = int(np.argmin(ref.history.test_loss))
    assert row["best_epoch"] == best
    assert row["best_test_loss"] == pytest.approx(ref.history.test_loss[best], rel=1e-10)
    assert row["epochs"] == 60 and row["diverged_at"] == -1
    # the curves file holds the same history, subsampled to at most 100 points: a plain
    # .npy, one record per network, that numpy reads without pickle
    recs = np.load(curves_path(out), allow_pickle=False)
    assert len(recs) == 20 and recs.dtype.names == ("hidden", "lr", "seed", "setup", "epochs",
                                                     "train", "test")
    (curve,) = recs[(recs["hidden"] == b"4x2") & (recs["lr"] == 1e-2) & (recs["seed"] == 3)]
    assert curve["epochs"].tolist() == list(range(60))
    assert curve["setup"].decode() == row["setup"]
    np.testing.assert_allclose(curve["test"], ref.history.test_loss, rtol=1e-10)
    np.testing.assert_allclose(curve["train"], ref.history.train_loss, rtol=1e-10)
    assert [(r["hidden"], r["lr"], r["seed"]) for r in run.rows] == \
        [(h.decode(), lr, seed) for h, lr, seed in recs[["hidden", "lr", "seed"]].tolist()]


def test_resume_after_interruption_writes_the_same_file(tmp_path):
    full, part = str(tmp_path / "full.csv"), str(tmp_path / "part.csv")
    run_sweep(config(), **GRID, out=full, chunk_size=3)
    seen = []

    def stop_after_two(result):
        seen.append(result)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(config(), **GRID, out=part, chunk_size=3, on_chunk=stop_after_two)
    assert len(read_rows(part)) == 6
    with open(part, "a") as fh:  # and a line torn by a kill in the middle of a write
        fh.write("3,0.01,4,60,0.5")
    run = run_sweep(config(), **GRID, out=part, chunk_size=3)
    assert run.skipped == 6 and run.trained == 14
    assert sorted_rows(part) == sorted_rows(full)
    for a, b in ((part, full), (curves_path(part), curves_path(full))):  # byte for byte
        with open(a, "rb") as fa, open(b, "rb") as fb:
            assert fa.read() == fb.read()
    assert run.rows == read_rows(full)  # in the grid's order, as the file
    again = run_sweep(config(), **GRID, out=part, chunk_size=3)  # nothing left to do
    assert again.trained == 0 and sorted_rows(part) == sorted_rows(full)


def test_resume_refuses_another_setup_and_other_files(tmp_path):
    out = str(tmp_path / "s.csv")
    run_sweep(config(), [(3,)], [1e-3], [0, 1], out=out)
    with pytest.raises(ScratchnetError, match="another setup"):
        run_sweep(config(epochs=61), [(3,)], [1e-3], [0, 1], out=out)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ScratchnetError, match="not a sweep file"):
        run_sweep(config(), [(3,)], [1e-3], [0], out=str(other))


def test_summary_is_the_spread_across_seeds():
    rows = [{"hidden": "7", "lr": 0.1, "seed": s, "test_acc": a, "test_loss": 1.0 - a,
             "best_epoch": 10 * s, "diverged_at": -1 if s else 5}
            for s, a in enumerate([0.5, 0.7, 0.8, 0.9])]
    (st,) = summarize(rows)
    acc = np.array([0.5, 0.7, 0.8, 0.9])
    assert st["runs"] == 4 and st["diverged"] == 1
    assert st["acc_mean"] == pytest.approx(acc.mean())
    assert st["acc_std"] == pytest.approx(acc.std(ddof=1))
    assert st["acc_q25"] == pytest.approx(np.quantile(acc, 0.25))
    assert st["loss_median"] == pytest.approx(np.median(1 - acc))
    assert st["best_epoch_median"] == 15


def test_cli_sweep_summary_and_plots(tmp_path, capsys):
    out, plots = tmp_path / "s.csv", tmp_path / "plots"
    code = main(["sweep", "--seeds", "0:4", "--hidden", "3,4x2", "--lr", "1e-3,1e-2",
                 "--epochs", "40", "--engine", "numpy", "--out", str(out), "--plots",
                 str(plots)])
    text = capsys.readouterr().out
    assert code == 0
    assert "16 networks trained in process" in text and "0 already in" in text
    assert len([ln for ln in text.splitlines() if ln.strip().startswith(("3 ", "4x2 "))]) == 4
    assert sorted(os.listdir(plots)) == ["sweep_loss_bands.png", "sweep_test_loss_hist.png"]
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 16
    assert {(r["hidden"], float(r["lr"])) for r in rows} == {
        (h, lr) for h in ("3", "4x2") for lr in (1e-3, 1e-2)}
    assert main(["sweep", "--seeds", "0:4", "--hidden", "3,4x2", "--lr", "1e-3,1e-2",
                 "--epochs", "40", "--out", str(out), "--quiet"]) == 0  # resumed: all done
    assert len(read_rows(str(out))) == 16


def test_cli_sweep_errors_are_one_line(tmp_path, capsys):
    assert main(["sweep", "--seeds", "3:1", "--out", str(tmp_path / "s.csv")]) == 2
    assert "--seeds: empty range" in capsys.readouterr().err
    assert main(["sweep", "--optimizer", "adam", "--epochs", "5", "--out",
                 str(tmp_path / "s.csv")]) == 2
    assert "full-batch gradient descent" in capsys.readouterr().err


def test_sweep_without_scheduler_imports_neither_dask_nor_matplotlib(tmp_path):
    code = (
        "import sys\n"
        "from scratchnet.cli import main\n"
        "assert main(['sweep', '--seeds', '0:2', '--epochs', '5', '--engine', 'numpy',\n"
        f"             '--quiet', '--out', {str(tmp_path / 's.csv')!r}]) == 0\n"
        "heavy = [m for m in ('dask', 'distributed', 'matplotlib', 'sklearn')\n"
        "         if m in sys.modules]\n"
        "assert not heavy, heavy\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_progress_counts_networks_up_to_the_grid_and_ints_are_architectures(tmp_path):
    seen = []
    run = run_sweep(config(), [3, (4, 2)], [1e-2], range(3), out=str(tmp_path / "s.csv"),
                    chunk_size=2, progress=lambda done, total: seen.append((done, total)))
    assert {r["hidden"] for r in run.rows} == {"3", "4x2"} and len(run.rows) == 6
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))  # never goes back


# ---- the files keep their integrity (issue 12 item 10) -------------------------------------
SMALL = dict(hiddens=[(3,)], lrs=[1e-3, 1e-2], seeds=[0, 1, 2])


def clean_sweep(tmp_path):
    full = str(tmp_path / "clean.csv")
    run_sweep(config(epochs=20), **SMALL, out=full, chunk_size=2)
    with open(full, "rb") as fh, open(curves_path(full), "rb") as gh:
        return fh.read(), gh.read()


@pytest.mark.parametrize("damage", ["duplicate", "cut", "nul", "latin1", "garbage", "curve_cut",
                                    "nan_loss", "reordered"])
def test_damaged_rows_are_set_aside_and_rerun_to_the_clean_file(tmp_path, damage):
    clean, clean_curves = clean_sweep(tmp_path)
    out = str(tmp_path / "s.csv")
    with open(out, "wb") as fh:
        fh.write(clean)
    with open(curves_path(out), "wb") as fh:
        fh.write(clean_curves)
    lines = clean.split(b"\n")  # header, 6 rows, ''
    if damage == "duplicate":
        lines.insert(3, lines[2])
    elif damage == "cut":
        lines[4] = lines[4][:17]
    elif damage == "nul":
        lines[2] = lines[2][:5] + b"\0\0\0" + lines[2][8:]
    elif damage == "latin1":
        lines[3] = lines[3].replace(b"3,", "\xe9,".encode("latin-1"), 1)
    elif damage == "garbage":
        lines.insert(5, b"garbage,,,")
    elif damage == "nan_loss":
        f = lines[1].split(b",")
        f[4] = b"nan"
        lines[1] = b",".join(f)
    elif damage == "reordered":
        lines[1:7] = lines[1:7][::-1]
    if damage == "curve_cut":
        with open(curves_path(out), "wb") as fh:
            fh.write(clean_curves[:len(clean_curves) * 2 // 3])
    else:
        with open(out, "wb") as fh:
            fh.write(b"\n".join(lines))
    warnings_seen = []
    run = run_sweep(config(epochs=20), **SMALL, out=out, chunk_size=2,
                    warn=warnings_seen.append)
    with open(out, "rb") as fh, open(curves_path(out), "rb") as gh:
        assert fh.read() == clean and gh.read() == clean_curves  # byte for byte
    if damage == "reordered":
        assert run.trained == 0 and not warnings_seen
    else:  # an extra garbage line damages no network: nothing to train again
        assert (run.trained == 0) == (damage == "garbage") and len(warnings_seen) == 1
        assert "trained again" in warnings_seen[0]


def test_damaged_lines_are_kept_aside_for_inspection(tmp_path, capsys):
    out = str(tmp_path / "s.csv")
    run_sweep(config(epochs=20), **SMALL, out=out, chunk_size=2)
    with open(out, "ab") as fh:
        fh.write(b"3,0.01,\x00\x00,garbage\n")
    run_sweep(config(epochs=20), **SMALL, out=out, chunk_size=2)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scratchnet: warning:" in err and "NUL" in err
    with open(out + ".set-aside.txt", "rb") as fh:
        kept = fh.read()
    assert b"garbage" in kept and b"NUL bytes" in kept
    assert len(read_rows(out)) == 6


def test_a_second_sweep_on_the_same_out_is_refused_with_the_holder(tmp_path):
    out = str(tmp_path / "s.csv")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open(out + ".lock", "w") as fh:
            import json
            import socket

            json.dump({"pid": holder.pid, "host": socket.gethostname(),
                       "started": "2026-12-01T08:00:00+0000"}, fh)
        with pytest.raises(ScratchnetError, match=rf"another sweep is writing it \(pid "
                           rf"{holder.pid} on .*started 2026-12-01"):
            run_sweep(config(epochs=20), **SMALL, out=out)
        assert not os.path.exists(out)
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and taken over; released at the end
    run = run_sweep(config(epochs=20), **SMALL, out=out)
    assert run.trained == 6 and not os.path.exists(out + ".lock")


def test_the_lock_is_released_on_error_and_interrupt(tmp_path):
    out = str(tmp_path / "s.csv")

    def stop(result):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(config(epochs=20), **SMALL, out=out, chunk_size=2, on_chunk=stop)
    assert not os.path.exists(out + ".lock")
    with pytest.raises(ScratchnetError, match="another setup"):
        run_sweep(config(epochs=21), **SMALL, out=out, chunk_size=2)
    assert not os.path.exists(out + ".lock")


@pytest.mark.parametrize("text,pattern", [
    ("0:99999999999", "leaves 0"),
    ("0:20000000", "more than 10,000,000 seeds"),
    ("0:6000000,10000000:16000000", "more than 10,000,000 seeds"),
    ("-1:3", "leaves 0"),
    ("4294967296", "leaves 0"),
    ("5:5", "empty range"),
])
def test_seeds_are_checked_before_the_list_is_built(text, pattern):
    with pytest.raises(ScratchnetError, match=pattern):
        parse_seeds(text)
    assert parse_seeds("0:3,7,4294967295") == [0, 1, 2, 7, 4294967295]
