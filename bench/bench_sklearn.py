"""The estimators against scikit-learn's MLPClassifier / MLPRegressor (issue 15, item 2).

Full batch, ``reduction="mean"``, plain gradient descent: both libraries start from the same
weights (ours copied into ``coefs_`` / ``intercepts_``) on the same standardized inputs, run
the same epochs, and must end with the same weights (``max_dw``).  ``speed_ratio`` is
scikit-learn's fit time over ours (target ≥ 3).  Then mini-batch Adam, each library
with its own shuffles, at equal accuracy (target ≥ 2), on digits (1347 training rows, 64
inputs: compute-bound) and on 20,000 moons (2 inputs: the per-batch overhead counts).

The two fits alternate (ours, scikit-learn, ours, …) and each keeps its fastest run, in wall
time (``*_s``, ``speed_ratio``) and in CPU time of the process, all threads (``*_cpu_s``,
``cpu_ratio``): on a loaded box the CPU time is the steadier of the two.  ``engine`` is the
estimator's ``engine_`` (fast = the compiled loop).

    python bench/bench_sklearn.py            # 300 epochs, best of 3 (make bench)
    python bench/bench_sklearn.py --quick    # 20 epochs, one repeat: checks that it runs
"""
from __future__ import annotations

import sys
import time
import warnings

import numpy as np

from _common import emit

BENCH = "sklearn"
HIDDEN = (16,)


def alternate(ours, theirs, repeat: int) -> dict:
    """Run the two fits in turn ``repeat`` times: the fastest wall and CPU seconds of each."""
    best = {k: float("inf") for k in ("ours_s", "sklearn_s", "ours_cpu_s", "sklearn_cpu_s")}
    for _ in range(repeat):
        for name, fn in (("ours", ours), ("sklearn", theirs)):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            best[f"{name}_s"] = min(best[f"{name}_s"], time.perf_counter() - t0)
            best[f"{name}_cpu_s"] = min(best[f"{name}_cpu_s"], time.process_time() - c0)
    return {**best, "speed_ratio": best["sklearn_s"] / best["ours_s"],
            "cpu_ratio": best["sklearn_cpu_s"] / best["ours_cpu_s"]}


def datasets():
    from sklearn import datasets as d

    return {"iris": d.load_iris, "wine": d.load_wine, "breast-cancer": d.load_breast_cancer,
            "digits": d.load_digits}


def standardized(X):
    sd = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def sklearn_twin(est, w0, X, y, epochs: int, regressor: bool):
    """scikit-learn's MLP set up to take the same steps as ``est`` from the weights ``w0``."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = MLPRegressor if regressor else MLPClassifier
    mlp = cls(hidden_layer_sizes=HIDDEN, activation="logistic", solver="sgd", alpha=0.0,
              batch_size=len(X), learning_rate_init=est.lr, momentum=0.0,
              nesterovs_momentum=False, shuffle=False, max_iter=1, tol=0.0,
              n_iter_no_change=10**9, warm_start=True, random_state=0)
    mlp.fit(X, y)  # builds the label encoding and the arrays; the weights are replaced below
    views = est.layout_.views(w0)
    mlp.coefs_ = [W[1:].copy() for W in views]
    mlp.intercepts_ = [W[0].copy() for W in views]
    mlp.loss_curve_, mlp.t_, mlp.n_iter_ = [], 0, 0
    mlp.max_iter = epochs
    return mlp


def full_batch(name: str, X, y, epochs: int, repeat: int, regressor: bool = False) -> None:
    from scratchnet.core.network import init_weights
    from scratchnet.sklearn import ScratchNetClassifier, ScratchNetRegressor

    cls = ScratchNetRegressor if regressor else ScratchNetClassifier
    est = cls(hidden=HIDDEN, activation="sigmoid", lr=0.5 if not regressor else 0.05,
              epochs=epochs, standardize=False, random_state=0)
    est.fit(X, y)  # (the layout for the twin; numba's cache loaded)
    w0 = init_weights(est.layout_, est.init, 0)
    # each timed scikit-learn fit gets a fresh twin built before the clock starts
    twins, fitted = [sklearn_twin(est, w0, X, y, epochs, regressor) for _ in range(repeat)], []

    def sk_fit():
        fitted.append(twins.pop().fit(X, y))

    times = alternate(lambda: est.fit(X, y), sk_fit, repeat)
    m = fitted[-1]
    w_sk = np.concatenate([np.vstack([b[None, :], W]).ravel()
                           for W, b in zip(m.coefs_, m.intercepts_)])
    emit(BENCH, f"full batch, {'MLPRegressor' if regressor else 'MLPClassifier'}: {name}",
         rows=len(X), epochs=epochs, engine=est.engine_, **times,
         max_dw=float(np.max(np.abs(est.w_ - w_sk))), target_ratio=3.0)


def adam_minibatch(name: str, X, y, epochs: int, repeat: int) -> None:
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    from scratchnet.sklearn import ScratchNetClassifier

    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    ours = ScratchNetClassifier(hidden=HIDDEN, optimizer="adam", lr=1e-2, batch_size=200,
                                epochs=epochs, standardize=False, random_state=0)
    mlp = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="logistic", solver="adam",
                        learning_rate_init=1e-2, batch_size=200, alpha=0.0, max_iter=epochs,
                        tol=0.0, n_iter_no_change=10**9, random_state=0)
    ours.fit(Xtr, ytr)  # numba's cache loaded
    times = alternate(lambda: ours.fit(Xtr, ytr), lambda: mlp.fit(Xtr, ytr), repeat)
    emit(BENCH, f"mini-batch adam (200 rows), MLPClassifier: {name}", rows=len(Xtr),
         epochs=epochs, engine=ours.engine_, **times,
         ours_test_acc=float(ours.score(Xte, yte)), sklearn_test_acc=float(mlp.score(Xte, yte)),
         target_ratio=2.0)


def main(argv) -> None:
    quick = "--quick" in argv
    epochs, repeat = (20, 1) if quick else (300, 3)
    try:
        import sklearn  # noqa: F401
    except ImportError:
        emit(BENCH, "scikit-learn", skipped="scikit-learn not installed")
        return
    warnings.filterwarnings("ignore")  # ConvergenceWarning: the epochs are fixed on purpose
    from sklearn.datasets import load_diabetes

    for name, load in datasets().items():
        X, y = load(return_X_y=True)
        full_batch(name, standardized(X), y, epochs, repeat)
    X, y = load_diabetes(return_X_y=True)
    full_batch("diabetes", standardized(X), standardized(y[:, None])[:, 0], epochs, repeat,
               regressor=True)
    X, y = datasets()["digits"](return_X_y=True)
    adam_minibatch("digits", standardized(X), y, max(epochs // 3, 5), repeat)
    from sklearn.datasets import make_moons  # many rows, few weights: per-batch overhead

    X, y = make_moons(20_000, noise=0.2, random_state=0)
    adam_minibatch("moons 20000", standardized(X), y, max(epochs // 15, 3), repeat)


if __name__ == "__main__":
    main(sys.argv[1:])
