"""The PS5 job in one process: 2-7-1 sigmoid, 80 train / 20 test rows, ½Σ loss, full-batch
GD with η = 1e-4, train AND test loss recorded every epoch, float64.  µs per epoch for
scratchnet's fast and readable engines and for the baselines, all in this one run."""

import numpy as np

from _common import (best_of, best_of_cpu, emit, machine, ps5_problem,
                     sklearn_full_batch_gd)

import naive_ps5

BENCH = "ps5_epoch"
LR = 1e-4


def main():
    from scratchnet.engines import fast
    from scratchnet.training.train import History, run_epochs

    layout, P, w0 = ps5_problem()
    emit(BENCH, "machine", **machine())

    E = 2000
    naive = best_of(lambda: naive_ps5.train(P.x_train, P.y_train, P.x_test, P.y_test, w0, LR, E))
    us_naive = naive / E * 1e6
    emit(BENCH, "naive per-weight numpy (problem set style)", us_per_epoch=us_naive, epochs=E)

    def readable():
        run_epochs(layout, "sse", w0.copy(), P, LR, 0, E, History.empty(E))
    emit(BENCH, "scratchnet numpy engine (readable)", us_per_epoch=best_of(readable) / E * 1e6,
         epochs=E)

    EF = 100_000
    h = History.empty(EF)
    fast.run_epochs(layout, "sse", w0.copy(), P, LR, 0, 10, h)  # load / compile once

    def fastrun():
        fast.run_epochs(layout, "sse", w0.copy(), P, LR, 0, EF, h)
    wall, cpu = best_of_cpu(fastrun)
    us_fast, us_fast_cpu = wall / EF * 1e6, cpu / EF * 1e6
    # same numbers as the baseline?
    w_naive, trl, _ = naive_ps5.train(P.x_train, P.y_train, P.x_test, P.y_test, w0, LR, E)
    w_fast, hf = w0.copy(), History.empty(E)
    fast.run_epochs(layout, "sse", w_fast, P, LR, 0, E, hf)
    emit(BENCH, "scratchnet fast (numba)", us_per_epoch=us_fast, us_per_epoch_cpu=us_fast_cpu,
         epochs=EF,
         speedup_vs_naive=us_naive / us_fast, target_us=5.0,
         max_abs_diff_vs_naive=float(max(np.abs(w_fast - w_naive).max(),
                                         np.abs(hf.train_loss - trl).max())))
    torch_eager(P, w0, us_naive)
    sklearn_mlp(P, us_naive)


def torch_eager(P, w0, us_naive, E=2000):
    try:
        import torch
    except ImportError:
        emit(BENCH, "pytorch eager", skipped="torch not installed")
        return
    torch.manual_seed(0)
    xtr, ytr = torch.tensor(P.x_train), torch.tensor(P.y_train)
    xte, yte = torch.tensor(P.x_test), torch.tensor(P.y_test)

    def run():
        net = torch.nn.Sequential(torch.nn.Linear(2, 7), torch.nn.Sigmoid(),
                                  torch.nn.Linear(7, 1), torch.nn.Sigmoid()).double()
        opt = torch.optim.SGD(net.parameters(), lr=LR)
        tr, te = np.empty(E), np.empty(E)
        for t in range(E):
            opt.zero_grad()
            loss = 0.5 * ((net(xtr) - ytr) ** 2).sum()
            with torch.no_grad():
                te[t] = (0.5 * ((net(xte) - yte) ** 2).sum()).item()
            tr[t] = loss.item()
            loss.backward()
            opt.step()
    us = best_of(run, 2) / E * 1e6
    emit(BENCH, "pytorch eager", us_per_epoch=us, epochs=E, threads=torch.get_num_threads(),
         naive_over_this=us_naive / us)


def sklearn_mlp(P, us_naive, E=2000):
    try:
        import sklearn  # noqa: F401
    except ImportError:
        emit(BENCH, "scikit-learn MLPClassifier", skipped="scikit-learn not installed")
        return

    def run():
        sklearn_full_batch_gd(P, 7, LR, E)
    us = best_of(run, 2) / E * 1e6
    emit(BENCH, "scikit-learn MLPClassifier", us_per_epoch=us, epochs=E,
         naive_over_this=us_naive / us, note="log-loss, no test loss recorded")


if __name__ == "__main__":
    main()
