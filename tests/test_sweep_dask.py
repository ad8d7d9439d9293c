"""The sweep on a real Dask cluster (two worker processes on 127.0.0.1): the same rows as the
in-process sweep, every configuration exactly once — also when a worker is killed mid-sweep."""
import os
import signal

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from scratchnet.cli import main  # noqa: E402
from scratchnet.sweep import read_rows, run_sweep  # noqa: E402
from scratchnet.training.train import TrainConfig  # noqa: E402

# 8 chunks of 5 networks, each chunk a few tenths of a second with the numpy engine: long
# enough to kill a worker while it trains one.
GRID = dict(hiddens=[(5,), (6, 3)], lrs=[1e-3, 1e-2], seeds=list(range(10)))
CONFIG = TrainConfig(epochs=1500, engine="numpy")
EXACT = ("hidden", "seed", "epochs", "best_epoch", "diverged_at", "setup")


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("serial") / "serial.csv")
    run_sweep(CONFIG, **GRID, out=out, chunk_size=5)
    return read_rows(out)


def assert_same_rows(rows, reference):
    key = lambda r: (r["hidden"], r["lr"], r["seed"])  # noqa: E731
    assert len(rows) == len({key(r) for r in rows}) == len(reference)  # each exactly once
    by_key = {key(r): r for r in rows}
    for ref in reference:
        got = by_key[key(ref)]
        for c, v in ref.items():
            if c in EXACT:
                assert got[c] == v, (key(ref), c)
            else:
                np.testing.assert_allclose(got[c], v, rtol=1e-12, atol=0, err_msg=str(key(ref)))


def test_cli_sweep_on_a_local_cluster_of_two_processes(tmp_path, serial, capsys):
    out = tmp_path / "local.csv"
    code = main(["sweep", "--hidden", "5,6x3", "--lr", "1e-3,1e-2", "--seeds", "0:10",
                 "--epochs", "1500", "--engine", "numpy", "--chunk-size", "5", "--out",
                 str(out), "--scheduler", "local", "--workers", "2"])
    assert code == 0
    assert "40 networks trained on Dask (local)" in capsys.readouterr().out
    assert_same_rows(read_rows(str(out)), serial)


def test_a_worker_killed_mid_sweep_loses_nothing_and_duplicates_nothing(tmp_path, serial):
    out = str(tmp_path / "killed.csv")
    killed = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as client:

        def kill_a_busy_worker(result):
            if killed:
                return
            busy = [w for w, keys in client.processing().items() if keys]
            assert busy, "no chunk in flight to interrupt"
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)  # the nanny starts a fresh worker process
            killed.append((busy[0], pid))

        run = run_sweep(CONFIG, **GRID, out=out, chunk_size=5,
                        scheduler=cluster.scheduler_address, on_chunk=kill_a_busy_worker)
        assert killed and run.trained == 40
        with pytest.raises(OSError):
            os.kill(killed[0][1], 0)  # the worker really is gone
    assert_same_rows(read_rows(out), serial)
    with open(out, newline="") as fh:
        assert sum(1 for _ in fh) == 41  # the header and 40 rows: nothing written twice
