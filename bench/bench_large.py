"""Large data: 1e6 training rows (+ 2.5e5 test rows), 2-7-1 sigmoid, ½Σ loss, full batch.
One epoch (train forward + loss, test forward + loss, backward, update) of scratchnet's fast
path on both cores against a plain numpy-vectorized epoch written the obvious way."""
import numpy as np

from _common import best_of, emit

BENCH = "large_data"


def numpy_epoch(x, y, xt, yt, W1, W2, lr):
    """A plain vectorized numpy epoch: matmuls, 1/(1 + e^−α), sums; returns the two losses."""
    h = 1.0 / (1.0 + np.exp(-(x @ W1[1:] + W1[0])))  # (N, 7)
    p = 1.0 / (1.0 + np.exp(-(h @ W2[1:] + W2[0])))  # (N, 1)
    ht = 1.0 / (1.0 + np.exp(-(xt @ W1[1:] + W1[0])))
    pt = 1.0 / (1.0 + np.exp(-(ht @ W2[1:] + W2[0])))
    e_train, e_test = 0.5 * np.sum((p - y) ** 2), 0.5 * np.sum((pt - yt) ** 2)
    s = (p - y) * p * (1 - p)  # (N, 1)
    d = (s @ W2[1:].T) * h * (1 - h)  # (N, 7)
    g2 = np.vstack([s.sum(axis=0), h.T @ s])
    g1 = np.vstack([d.sum(axis=0), x.T @ d])
    W1 -= lr * g1
    W2 -= lr * g2
    return e_train, e_test


def main(N=1_000_000):
    import numba

    from scratchnet.engines import fast
    from scratchnet.core.network import Layout, init_weights
    from scratchnet.training.train import History, Problem, run_epochs

    rng = np.random.default_rng(0)
    x, xt = rng.standard_normal((N, 2)), rng.standard_normal((N // 4, 2))
    lab, labt = (x[:, 0] * x[:, 1] > 0).astype(np.int64), (xt[:, 0] * xt[:, 1] > 0).astype(np.int64)
    P = Problem(x, lab[:, None] * 1.0, xt, labt[:, None] * 1.0, lab, labt, 0.5)
    layout = Layout.build(2, 7)
    w0 = init_weights(layout)
    lr = 1e-6

    W1, W2 = (V.copy() for V in layout.views(w0))
    t_np = best_of(lambda: numpy_epoch(x, P.y_train, xt, P.y_test, W1, W2, lr), 3)
    emit(BENCH, "plain numpy-vectorized epoch", rows=N, ms_per_epoch=t_np * 1e3,
         blas_threads="default")
    try:  # BLAS threads spin badly when the box is busy: the better of the two is the baseline
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            t1 = best_of(lambda: numpy_epoch(x, P.y_train, xt, P.y_test, W1, W2, lr), 3)
        emit(BENCH, "plain numpy-vectorized epoch", rows=N, ms_per_epoch=t1 * 1e3,
             blas_threads=1)
        t_np = min(t_np, t1)
    except ImportError:
        pass

    h = History.empty(10)
    fast.run_epochs(layout, "sse", w0.copy(), P, lr, 0, 1, h)  # load the compiled code
    EF = 10
    w = w0.copy()
    t_fast = best_of(lambda: fast.run_epochs(layout, "sse", w0.copy(), P, lr, 0, EF, h), 2) / EF
    fast.run_epochs(layout, "sse", w, P, lr, 0, EF, h)
    w_np = w0.copy()
    hn = History.empty(EF)
    run_epochs(layout, "sse", w_np, P, lr, 0, EF, hn)
    emit(BENCH, "scratchnet fast (numba, row blocks on all cores)", rows=N,
         ms_per_epoch=t_fast * 1e3, threads=numba.get_num_threads(),
         numpy_over_fast=t_np / t_fast, target="numpy_over_fast >= 0.5",
         max_rel_diff_vs_readable=float(np.max(np.abs(w - w_np) / np.maximum(1, np.abs(w_np)))))
    R, nw = sum(layout.sizes), numba.get_num_threads()
    data = sum(a.nbytes for rows in fast._problem_blocks(P, fast.BLOCK_ROWS) for a in rows[:4])
    scratch = 8 * nw * (R + 2 * max(layout.sizes)) * fast.BLOCK_ROWS
    emit(BENCH, "fast path memory (allocated once per call, reused by every epoch)",
         data_blocks_bytes=int(data), scratch_bytes=int(scratch),
         note="x, y, labels re-laid unit-major: O(N·D); beta/delta scratch: one block per core")

if __name__ == "__main__":
    main()
