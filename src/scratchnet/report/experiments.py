"""The report's side runs: the student's own procedure, and Question 4's experiments, each of
which changes one concept and measures the effect.

Every function returns a JSON-ready dict (the report's ``summary.json`` holds it) plus, where a
figure goes with it, what the figure needs.  They train on the compiled path where the run is
plain gradient descent, so the default report stays quick.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..core.activations import ACTIVATIONS, sigmoid, softmax
from ..core.backprop import forward, loss_and_grad, predict
from ..core.data import Standardizer
from ..core.errors import DivergedError
from ..core.network import init_weights
from ..engines.ensemble import train_ensemble
from ..training.monitor import saturated_share
from ..training.train import final_metrics, train

# What the problem set printed for Question 2 on its original data (PS5_FACTS.md): train loss
# at epochs 0, 1000 and 99000; and Question 3's printed test loss (the PyTorch run).
STUDENT_Q2_TRAIN_LOSS = {0: 71.579, 1000: 38.134, 99000: 23.412}
STUDENT_Q3_TEST_LOSS = {"epoch 0": 22.05, "lowest (near epoch 33000)": 6.56, "epoch 99000": 7.71}


def loss_floor(y: np.ndarray, output: str, loss: str) -> tuple[float, int]:
    """(the smallest training loss an output with ``output``'s range can reach on targets ``y``,
    the number of rows whose target lies outside that range).  For the squared error each such
    row keeps at least ½ (y − nearest reachable value)²: with the problem set's standardized
    labels (−1.04 / +0.96 on the stand-in data) every class-0 row keeps ½ · 1.04²."""
    act = ACTIVATIONS[output]
    if loss != "sse" or output == "softmax":
        return 0.0, 0
    gap = y - np.clip(y, act.low, act.high)
    return float(0.5 * np.sum(gap ** 2)), int(np.count_nonzero(gap))


def accuracy_at(layout, w, x, labels, threshold: float) -> float:
    """Share of rows whose single output lies above ``threshold`` exactly when the class is 1."""
    out = predict(layout, w, x)[:, 0]
    return float(np.mean((out > threshold) == (labels == 1)))


@dataclass
class StudentRun:
    """The problem set's procedure (``--faithful``) trained for the report's epochs."""

    result: object  # TrainResult
    summary: dict


def student_run(config, main_result) -> StudentRun:
    """The run as the problem set did it: whole-data standardizing of x and of the 0/1 labels.
    Its loss floor, and its accuracy read two ways: at the standardized midpoint (what
    ``--faithful`` reports) and at 0.5 on the raw output."""
    if config.faithful:
        r = main_result
    else:
        try:
            r = train(replace(config, faithful=True, log_every=0))
        except DivergedError as e:
            r = e.result
    prob, lay = r.prepared.problem, r.prepared.layout
    floor, rows = loss_floor(prob.y_train, lay.output, r.config.loss)
    h = r.history
    s = {"epochs": len(h), "floor": floor, "floor_rows": rows, "n_train": len(prob.y_train),
         "test_floor": loss_floor(prob.y_test, lay.output, r.config.loss)[0],
         "n_test": len(prob.y_test),
         "targets": sorted(set(np.round(prob.y_train[:, 0], 4).tolist())),
         "train_loss": r.final["train_loss"], "test_loss": r.final["test_loss"],
         "threshold_midpoint": prob.threshold,
         "printed": {str(k): v for k, v in STUDENT_Q2_TRAIN_LOSS.items()},
         "ours": {str(k): float(h.train_loss[k]) for k in STUDENT_Q2_TRAIN_LOSS if k < len(h)}}
    if lay.sizes[-1] == 1:
        for name, thr in (("midpoint", prob.threshold), ("half", 0.5)):
            s[f"acc_{name}"] = [accuracy_at(lay, r.model.w, prob.x_train, prob.l_train, thr),
                                accuracy_at(lay, r.model.w, prob.x_test, prob.l_test, thr)]
        s["always_class_1"] = [float(np.mean(prob.l_train == 1)), float(np.mean(prob.l_test == 1))]
    return StudentRun(r, s)


def grid_standardized_model(model, g1: np.ndarray, g2: np.ndarray):
    """The problem set's map as a model: its input scaler replaced by the grid's own mean and
    std (which is why its map is shifted and stretched against the data), and its raw sigmoid
    output drawn as it is (``y_pred`` in the problem set's contour plot), not mapped back from
    the standardized labels — read that way every output would be above ½."""
    xx, yy = np.meshgrid(g1, g2)
    return replace(model, x_scaler=Standardizer.fit(np.column_stack([xx.ravel(), yy.ravel()])),
                   y_scaler=None)


# ---- Question 4: one experiment per concept -----------------------------------------------


def activation_experiment(config, prep, epochs: int, seeds: int = 10) -> dict:
    """Sigmoid against identity hidden units over ``seeds`` initial draws (one ensemble run
    each): the spread says how much of a test-accuracy difference is noise."""
    out = {"epochs": epochs, "seeds": seeds, "n_test": int(len(prep.test_idx))}
    for act in (config.activation, "identity"):
        cfg = replace(config, activation=act, epochs=epochs, log_every=0)
        ens = train_ensemble(cfg, seeds=np.arange(seeds), epochs=epochs,
                             record_every=max(1, epochs))
        acc = np.asarray(ens.final["test_acc"], float)
        out[act] = {"test_acc_mean": float(acc.mean()), "test_acc_std": float(acc.std()),
                    "test_acc": acc.tolist()}
    n = out["n_test"]
    p = out[config.activation]["test_acc_mean"]
    out["one_row"] = 1.0 / n
    out["binomial_se"] = float(np.sqrt(max(p * (1 - p), 1e-12) / n))
    return out


def bias_experiment(config, prep, epochs: int) -> dict:
    """The same network with every bias weight held at 0 (full-batch gradient descent with the
    bias gradients masked): every border must then pass through the origin of the
    standardized inputs."""
    lay, prob = prep.layout, prep.problem
    mask = np.array([lay.weight_index(k)[1] != 0 for k in range(lay.n_params)], float)
    w = init_weights(lay, config.init, config.seed) * mask
    for _ in range(epochs):  # the masked update: w ← w − η (∂E/∂w ⊙ mask)
        _, g = loss_and_grad(lay, config.loss, w, prob.x_train, prob.y_train)
        w -= config.lr * g * mask
        if not np.isfinite(w).all():
            break
    m = final_metrics(lay, config.loss, w, prob)
    return {"epochs": epochs, "n_biases": int(lay.n_params - mask.sum()),
            **{k: float(v) for k, v in m.items()}}


def learning_rate_experiment(config, prep, epochs: int, factors) -> dict:
    """η × ``factors`` with an identity output, all at once (train_ensemble): with a sigmoid
    output and 0/1 targets each row's loss is below ½, so the loss is capped at N/2 and cannot
    show divergence; a linear output can.  The test loss judges each η."""
    lrs = np.array([config.lr * f for f in factors])
    cfg = replace(config, output="identity", epochs=epochs, log_every=0)
    ens = train_ensemble(cfg, seeds=config.seed, lrs=lrs, epochs=epochs,
                         record_every=max(1, epochs // 400))
    curves = np.asarray(ens.train_loss, float)
    curves = np.where(np.abs(curves) > 1e12, np.nan, curves)  # blown up: drawn until there
    return {"output": "identity", "epochs": epochs, "lrs": lrs,
            "final_train_loss": ens.final["train_loss"], "final_test_loss": ens.final["test_loss"],
            "diverged": np.asarray(ens.diverged, bool) | ~np.isfinite(curves[:, -1]),
            "curve_epochs": ens.epochs, "curves": curves}


def vanishing_experiment(config, prep) -> dict:
    """At the starting weights: the share of saturated hidden units with raw inputs against
    standardized ones, and the factor |w|·f′ by which each hidden unit scales the error it
    sends back."""
    lay, prob = prep.layout, prep.problem
    w0 = init_weights(lay, config.init, config.seed)
    raw = prep.dataset.X[prep.train_idx]
    out = {"saturated_raw": saturated_share(lay, w0, raw),
           "saturated_standardized": saturated_share(lay, w0, prob.x_train)}
    if len(lay.sizes) == 3 and lay.sizes[-1] == 1:  # one hidden layer, one output

        beta = forward(lay, w0, prob.x_train)[1]  # (N, H)
        slope = lay.layer_activation(0).df(beta)
        v = lay.views(w0)[1][1:, 0]  # (H,) hidden → output weights
        out["factor_mean"] = float(np.mean(np.abs(v) * slope))
        out["slope_mean"] = float(np.mean(slope))
    return out


def softmax_identity() -> float:
    """max |softmax([0, α])₁ − S(α)| over α ∈ [−30, 30]: the sigmoid is the 2-class softmax."""
    a = np.linspace(-30, 30, 601)
    two = softmax(np.column_stack([np.zeros_like(a), a]))[:, 1]
    return float(np.max(np.abs(two - sigmoid(a))))


def augmentation_experiment(config, epochs: int, sigma: float = 0.3) -> dict:
    """The same network trained with and without ``--jitter σ`` (fresh Gaussian noise on the
    training inputs every epoch)."""
    out = {"epochs": epochs, "sigma": sigma}
    for name, cfg in (("off", replace(config, epochs=epochs, log_every=0)),
                      ("on", replace(config, epochs=epochs, log_every=0, jitter=sigma))):
        try:
            r = train(cfg)
        except DivergedError as e:
            r = e.result
        out[name] = {k: float(r.final[k]) for k in ("train_acc", "test_acc", "test_loss")}
        out[f"model_{name}"] = r.model
    return out
