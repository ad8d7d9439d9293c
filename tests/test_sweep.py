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
    assert main(["sweep", "--batch-size", "4", "--epochs", "5", "--out",
                 str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--batch-size" in err
    assert not os.path.exists(tmp_path / "s.csv")


@pytest.mark.parametrize("options", [dict(optimizer="momentum", l2=1e-3),
                                     dict(optimizer="adam")])
def test_what_the_ensembles_train_a_sweep_passes_through(tmp_path, options):
    """optimizer, l2, l1 go to train_ensemble untouched; another value is another setup."""
    out = str(tmp_path / "s.csv")
    run = run_sweep(config(epochs=30, **options), [(3,)], [1e-2], [0, 4], out=out)
    ref = train(config(epochs=30, hidden=(3,), lr=1e-2, seed=4, **options))
    (row,) = [r for r in run.rows if r["seed"] == 4]
    for m in ("train_loss", "test_loss"):
        assert row[m] == pytest.approx(ref.final[m], rel=1e-9, abs=1e-12)
    with pytest.raises(ScratchnetError, match="another setup"):
        run_sweep(config(epochs=30), [(3,)], [1e-2], [0, 4], out=out)


def test_sweep_without_scheduler_imports_neither_dask_nor_matplotlib(tmp_path):
    code = (
        "import sys\n"
        "from scratchnet.cli import main\n"
        "assert main(['sweep', '--seeds', '0:2', '--epochs', '5', '--engine', 'numpy',\n"
        f"             '--quiet', '--out', {str(tmp_path / 's.csv')!r}]) == 0\n"
        "heavy = [m for m in ('dask', 'distributed', 'matplotlib', 'sklearn')\n"
        "         if m in sys.modules]\n"
        "assert not heavy, heavy\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
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


# ---- the curves file: records appended block by block (issue 15 item 3) --------------------
def write_bytes(path, data):
    with open(path, "wb") as fh:
        fh.write(data)


@pytest.mark.parametrize("damage", ["stale_count", "bad_record", "bad_setup_bytes"])
def test_damaged_curve_records_are_handled_like_torn_lines(tmp_path, damage):
    from scratchnet.sweepfile import npy_header, read_npy_header

    clean, clean_curves = clean_sweep(tmp_path)
    out = str(tmp_path / "s.csv")
    write_bytes(out, clean)
    with open(str(tmp_path / "clean.curves.npy"), "rb") as fh:
        dtype, count, start = read_npy_header(fh, "x")
    assert count == 6 and len(clean_curves) == start + 6 * dtype.itemsize
    data = bytearray(clean_curves)
    if damage == "stale_count":  # killed between a block and the header that counts it
        data[:start] = npy_header(dtype, 4)
    elif damage == "bad_record":  # record 3's architecture overwritten
        data[start + 2 * dtype.itemsize:start + 2 * dtype.itemsize + 4] = b"\xff?x\x00"
    else:  # record 5's setup hash is not one
        off = start + 4 * dtype.itemsize + dtype.fields["setup"][1]
        data[off:off + 10] = b"ZZZZZZZZZZ"
    write_bytes(curves_path(out), bytes(data))
    warnings_seen = []
    run = run_sweep(config(epochs=20), **SMALL, out=out, chunk_size=2,
                    warn=warnings_seen.append)
    with open(out, "rb") as fh, open(curves_path(out), "rb") as gh:
        assert fh.read() == clean and gh.read() == clean_curves  # byte for byte
    if damage == "stale_count":  # all six records are whole: nothing to train again
        assert run.trained == 0 and not warnings_seen
    else:
        assert run.trained == 1 and len(warnings_seen) == 1
        assert "set aside" in warnings_seen[0] and "trained again" in warnings_seen[0]
        with open(out + ".set-aside.txt", "rb") as fh:
            assert b"record" in fh.read()


def test_a_curves_file_that_is_not_one_is_refused(tmp_path):
    out = str(tmp_path / "s.csv")
    run_sweep(config(epochs=20), **SMALL, out=out)
    write_bytes(curves_path(out), b"hidden,lr,seed,setup,train@0\n")  # an old text file
    with pytest.raises(ScratchnetError, match="not a sweep curves file"):
        run_sweep(config(epochs=20), **SMALL, out=out)


def test_more_curve_points_than_the_file_holds_is_refused(tmp_path):
    out = str(tmp_path / "s.csv")
    run_sweep(config(epochs=20), [(3,)], [1e-3], [0, 1], out=out, curve_points=5)
    with pytest.raises(ScratchnetError, match="5 points, this sweep's 10"):
        run_sweep(config(epochs=20), [(3,)], [1e-3], [0, 1, 2], out=out, curve_points=10)


def test_chunks_written_out_of_order_end_in_grid_order(tmp_path):
    """As Dask delivers them: a fresh file is rewritten block by block, byte for byte the
    serial file, without parsing a line."""
    from scratchnet.core.data import load_data
    from scratchnet.sweep import SweepWriter, run_chunk, setup_id

    cfg = config(epochs=20)
    serial = str(tmp_path / "serial.csv")
    run_sweep(cfg, **SMALL, out=serial, chunk_size=2)
    setup = setup_id(cfg, 1)
    data = load_data(cfg.data, cfg.features, cfg.target, n_samples=cfg.n_samples,
                     noise=cfg.noise, seed=cfg.data_seed, n_classes=cfg.n_classes)
    chunks = make_chunks(**SMALL, chunk_size=2)
    out = str(tmp_path / "dask.csv")
    writer = SweepWriter(out, setup)
    for i in (2, 0, 1):
        writer.write(run_chunk(cfg, data, chunks[i], 1, 100, setup), i)
    writer.finish(lambda: pytest.fail("a fresh file needs no key order"))
    for a, b in ((out, serial), (curves_path(out), curves_path(serial))):
        with open(a, "rb") as fa, open(b, "rb") as fb:
            assert fa.read() == fb.read()


# ---- an --out that is not a regular file (issue 12) ------------------------------------------
SWEEP_ARGS = ["sweep", "--seeds", "0:3", "--hidden", "3", "--lr", "1e-3,1e-2", "--epochs", "20",
              "--engine", "numpy", "--chunk-size", "2"]


def test_out_dev_stdout_streams_the_rows_and_the_summary_goes_to_stderr(tmp_path):
    file_out = str(tmp_path / "s.csv")
    assert main(SWEEP_ARGS + ["--out", file_out, "--quiet"]) == 0
    code = ("import sys\nfrom scratchnet.cli import main\n"
            f"sys.exit(main({SWEEP_ARGS + ['--out', '/dev/stdout']!r}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    with open(file_out, "rb") as fh:
        assert proc.stdout == fh.read()  # the CSV alone, the rows a file gets
    err = proc.stderr.decode()
    assert err.count("is not a regular file") == 1
    assert "scratchnet: warning: --out /dev/stdout is not a regular file: the rows are " \
           "streamed to it, with no lock, no resume and no curves file" in err
    assert "6 networks trained in process" in err and "test acc mean" in err
    assert not os.path.exists("/dev/stdout.lock")
    assert sorted(os.listdir(tmp_path)) == ["s.csv", "s.curves.npy"]  # nothing for the stream


def test_out_dev_null_and_a_fifo_take_the_rows_without_lock_or_curves(tmp_path):
    import threading

    warnings_seen = []
    run = run_sweep(config(epochs=20), **SMALL, out=os.devnull, warn=warnings_seen.append)
    assert run.trained == 6 and len(run.rows) == 6 and len(warnings_seen) == 1
    assert not os.path.exists(os.devnull + ".lock")
    assert not os.path.exists(curves_path(os.devnull))
    fifo = str(tmp_path / "rows.fifo")
    os.mkfifo(fifo)
    got = []

    def read_all():
        with open(fifo, "rb") as fh:
            got.append(fh.read())  # until the sweep closes its end

    reader = threading.Thread(target=read_all)
    reader.start()
    try:
        run = run_sweep(config(epochs=20), **SMALL, out=fifo, chunk_size=4,
                        warn=warnings_seen.append)
    finally:  # unblock the reader if the sweep never opened the fifo: a non-blocking open
        try:  # (a blocking one hung when the reader had just seen the end and was leaving)
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # ENXIO: no reader waits any more
            pass
        reader.join(timeout=60)
    clean, _ = clean_sweep(tmp_path)
    assert sorted(got[0].split(b"\r\n")) == sorted(clean.split(b"\r\n"))
    assert sorted(os.listdir(tmp_path)) == ["clean.csv", "clean.curves.npy", "rows.fifo"]


def test_plots_with_an_out_that_is_not_a_file_is_one_line(capsys):
    assert main(SWEEP_ARGS + ["--out", os.devnull, "--plots", "p"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--plots" in err and "not a regular file" in err
