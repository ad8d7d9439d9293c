"""The PyTorch twin: the same network, the same initial weights, the same loss, the same steps.

PS5 Question 3 rebuilt the network in PyTorch and got different numbers; its author could not
tell why. The twin removes every difference the problem set had (see docs/trust.md):

* the output activation is part of the module (Sigmoid / Identity / Softmax(dim=1));
* the loss is the problem set's ½Σ(ŷ − y)² (not ``MSELoss(reduction='sum')`` = Σ, twice as big),
  or the summed BCE / CE of ``losses.py``, clipped at EPS exactly where ``losses.py`` clips;
* the initial weights are scratchnet's ``w`` mapped onto each ``nn.Linear``:
  ``layout.views(w)[l]`` is W_l of shape (fan_in + 1, fan_out) with the bias row first, so
  ``Linear.bias = W_l[0]`` and ``Linear.weight = W_l[1:].T``  (w1..w7 → bias of layer 0, …);
* plain full-batch gradient descent ``p ← p − η ∂E/∂p`` on the same standardized rows,
  with the losses recorded before each update exactly as ``train.run_epochs`` records them.

torch is imported inside the functions: scratchnet itself runs without it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..core.backprop import loss_value
from ..core.errors import ScratchnetError
from ..core.losses import CANONICAL_PAIRS, EPS
from ..core.network import Layout, init_weights
from ..training.options import check_epochs_fit
from ..training.run import Run, StepEngine, deferred_interrupts
from ..training.train import prepare, select_engine
from .doctor import check_shared_init

DTYPES = ("float64", "float32")


def torch_available() -> bool:
    """True when ``import torch`` works."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _torch():
    try:
        import torch
    except ImportError:
        raise ScratchnetError("PyTorch is not installed: pip install 'scratchnet[torch]'") \
            from None
    return torch


def _dtype(dtype):
    torch = _torch()
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ScratchnetError(f"--dtype: unknown '{dtype}' (choose from {', '.join(DTYPES)})")
    return getattr(torch, dtype)


def _activation_module(name: str):
    nn = _torch().nn
    table = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "identity": nn.Identity,
             "softmax": lambda: nn.Softmax(dim=1), "leaky_relu": lambda: nn.LeakyReLU(0.01),
             "softplus": lambda: nn.Softplus(threshold=1e9)}  # (no linear cut-off at α > 20)
    return table[name]()


def _layout_and_w(model_or_layout, w):
    if isinstance(model_or_layout, Layout):
        layout = model_or_layout
        w = init_weights(layout) if w is None else w
    else:  # a scratchnet Model (anything with .layout and .w)
        layout = model_or_layout.layout
        w = model_or_layout.w if w is None else w
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (layout.n_params,):
        raise ScratchnetError(f"w has {w.size} values, the layout {layout.describe()} needs "
                              f"{layout.n_params}")
    return layout, w


def to_torch(model_or_layout, w: np.ndarray | None = None, dtype="float64"):
    """``nn.Sequential(Linear, f_1, …, Linear, f_out)`` holding the weights ``w``.

    ``model_or_layout``: a :class:`~scratchnet.core.model.Model` (its ``w`` is used unless ``w`` is
    given) or a :class:`~scratchnet.core.network.Layout` (``w`` defaults to scratchnet's initial
    weights, ``init_weights(layout)``).
    """
    torch = _torch()
    layout, w = _layout_and_w(model_or_layout, w)
    dt = _dtype(dtype)
    mods = []
    for l, W in enumerate(layout.views(w)):  # W: (fan_in + 1, fan_out), bias row first
        lin = torch.nn.Linear(layout.sizes[l], layout.sizes[l + 1], dtype=dt)
        with torch.no_grad():
            lin.bias.copy_(torch.from_numpy(W[0].copy()))  # (fan_out,)
            lin.weight.copy_(torch.from_numpy(W[1:].T.copy()))  # (fan_out, fan_in)
        name = layout.output if l == layout.n_layers - 1 else layout.activations[l]
        mods += [lin, _activation_module(name)]
    return torch.nn.Sequential(*mods)


def from_torch(module, layout: Layout) -> np.ndarray:
    """The flat float64 ``w`` (w1..wP order) of a module built like :func:`to_torch`."""
    return _flatten(module, layout, lambda p: p)


def from_torch_grad(module, layout: Layout) -> np.ndarray:
    """The module's ``.grad`` after ``backward()`` as a flat ∂E/∂w in w1..wP order."""
    return _flatten(module, layout, lambda p: p.grad)


def _flatten(module, layout: Layout, get) -> np.ndarray:
    torch = _torch()
    lins = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    if len(lins) != layout.n_layers:
        raise ScratchnetError(f"the module has {len(lins)} Linear layers, the layout "
                              f"{layout.describe()} needs {layout.n_layers}")
    w = np.empty(layout.n_params)
    for l, (lin, W) in enumerate(zip(lins, layout.views(w))):
        if tuple(lin.weight.shape) != (layout.sizes[l + 1], layout.sizes[l]):
            raise ScratchnetError(f"Linear layer {l} has shape {tuple(lin.weight.shape)}, "
                                  f"expected {(layout.sizes[l + 1], layout.sizes[l])}")
        W[0] = get(lin.bias).detach().cpu().double().numpy()  # bias row first
        W[1:] = get(lin.weight).detach().cpu().double().numpy().T
    return w


def torch_default_weights(layout: Layout, seed: int = 0) -> np.ndarray:
    """The weights PyTorch's own ``nn.Linear`` initialisation draws (``torch.manual_seed``).

    This is what PS5 Question 3 trained from instead of w1..w29 — useful to show that two runs
    from different initial weights cannot be compared (``scratchnet compare --torch-init``)."""
    torch = _torch()
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        lins = [torch.nn.Linear(layout.sizes[l], layout.sizes[l + 1], dtype=torch.float64)
                for l in range(layout.n_layers)]
    finally:
        torch.random.set_rng_state(gen_state)
    return from_torch(torch.nn.Sequential(*lins), layout)


def _clip_straight_through():
    """clamp(p, EPS, 1 − EPS) whose derivative is taken as 1, as ``losses.py`` does: its
    ∂E/∂ŷ is written with the clipped ŷ and no factor for the clip."""
    torch = _torch()

    class ClipST(torch.autograd.Function):
        @staticmethod
        def forward(ctx, p):
            return p.clamp(EPS, 1.0 - EPS)

        @staticmethod
        def backward(ctx, g):
            return g

    return ClipST.apply


def loss_fn(loss: str, output: str):
    """(value(ŷ, y), training loss(α_L, ŷ, y)) in torch.

    ``value`` is the number ``losses.py`` reports (EPS clipping included). The training loss
    has the same gradient as scratchnet's δ_L: for the canonical pairs (sigmoid + BCE, softmax
    + CE) it is written on the logits α_L so that autograd gives exactly ŷ − y, as
    ``backprop.output_delta`` does; otherwise it is ``value`` itself, differentiated through the
    clip as ``losses.py`` differentiates it."""
    torch = _torch()
    clip = _clip_straight_through()

    def value(p, y):
        if loss == "sse":
            return 0.5 * ((p - y) ** 2).sum()  # ½Σ, not MSELoss(reduction='sum') = Σ
        pc = clip(p)
        if loss == "bce":
            return -(y * torch.log(pc) + (1 - y) * torch.log(1 - pc)).sum()
        return -(y * torch.log(pc)).sum()  # ce

    def train_loss(alpha, p, y):
        if (output, loss) in CANONICAL_PAIRS and loss == "bce":
            return torch.nn.functional.binary_cross_entropy_with_logits(alpha, y,
                                                                        reduction="sum")
        if (output, loss) in CANONICAL_PAIRS and loss == "ce":
            return -(y * torch.log_softmax(alpha, dim=1)).sum()
        return value(p, y)

    return value, train_loss


@dataclass
class TwinResult:
    w: np.ndarray  # (P,) final flat weights, w1..wP, float64
    train_loss: np.ndarray  # (epochs,) loss of the weights before update t
    test_loss: np.ndarray
    module: object  # the torch.nn.Sequential after training
    seconds: float = 0.0
    dtype: str = "float64"
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)  # t → w after t updates
    final_train_loss: float = float("nan")  # losses of the final weights (after the last update)
    final_test_loss: float = float("nan")


class _TwinSteps:
    """The twin between segments of epochs: its module, loss, tensors and per-epoch losses, so
    that ``compare`` can advance it checkpoint by checkpoint beside the engine."""

    def __init__(self, prepared, config, w0: np.ndarray, dtype, epochs: int):
        torch = _torch()
        layout, prob = prepared.layout, prepared.problem
        self.torch, self.layout, self.lr = torch, layout, config.lr
        self.dt = _dtype(dtype)
        self.module = to_torch(layout, w0, self.dt)
        self.body, self.head = self.module[:-1], self.module[-1]  # α_L = body(x), ŷ = head(α_L)
        self.value, self.train_loss = loss_fn(config.loss, layout.output)
        self.x_tr, self.y_tr, self.x_te, self.y_te = (
            torch.from_numpy(np.ascontiguousarray(a)).to(self.dt)
            for a in (prob.x_train, prob.y_train, prob.x_test, prob.y_test))
        self.params = list(self.module.parameters())
        self.tr_hist, self.te_hist = np.full(epochs, np.nan), np.full(epochs, np.nan)
        self.snaps: dict[int, np.ndarray] = {}
        self.seconds = 0.0

    def run(self, start: int, stop: int, wanted=frozenset()) -> None:
        """Epochs start..stop−1: record the losses of the weights before update t, update;
        keep the weights after t + 1 updates when t + 1 is ``wanted``."""
        torch, value = self.torch, self.value
        if start in wanted and start not in self.snaps:
            self.snaps[start] = from_torch(self.module, self.layout)
        t0 = time.perf_counter()
        for t in range(start, stop):
            alpha = self.body(self.x_tr)  # (N, n_out)  α_L on the training rows
            p = self.head(alpha)  # ŷ
            with torch.no_grad():
                self.tr_hist[t] = float(value(p, self.y_tr))
                self.te_hist[t] = float(value(self.module(self.x_te), self.y_te))
            self.train_loss(alpha, p, self.y_tr).backward()
            with torch.no_grad():
                for q in self.params:  # plain gradient descent, every weight from the old ones
                    q -= self.lr * q.grad
                    q.grad = None
            if t + 1 in wanted:
                self.snaps[t + 1] = from_torch(self.module, self.layout)
        self.seconds += time.perf_counter() - t0

    def losses_now(self) -> tuple[float, float]:
        """(train, test) loss of the current weights."""
        with self.torch.no_grad():
            return (float(self.value(self.module(self.x_tr), self.y_tr)),
                    float(self.value(self.module(self.x_te), self.y_te)))

    def result(self, epochs: int, w: np.ndarray, final: tuple[float, float]) -> "TwinResult":
        return TwinResult(w, self.tr_hist[:epochs], self.te_hist[:epochs], self.module,
                          self.seconds, str(self.dt).replace("torch.", ""),
                          {t: v for t, v in self.snaps.items() if t <= epochs}, *final)


def train_twin(prepared, config, w0: np.ndarray | None = None, dtype="float64",
               epochs: int | None = None, checkpoints=()) -> TwinResult:
    """Train the PyTorch twin of ``prepared.layout`` as ``train.run_epochs`` trains the engine.

    ``prepared``: :class:`~scratchnet.training.train.Prepared`; ``config``: its TrainConfig (``lr``,
    ``loss``, ``epochs``, ``init``, ``seed``). ``w0`` defaults to ``init_weights(layout,
    config.init, config.seed)`` — the engine's own start. ``checkpoints``: epochs t at which the
    weights after t updates are kept in ``snapshots``.
    """
    if not getattr(config, "plain_gd", lambda: True)():
        raise ScratchnetError("the twin trains plain full-batch gradient descent only (the "
                              "problem set's); drop the optimizer / schedule / penalty flags")
    layout = prepared.layout
    w0 = init_weights(layout, config.init, config.seed) if w0 is None else w0
    epochs = config.epochs if epochs is None else int(epochs)
    check_epochs_fit(epochs, 16)  # the two loss curves
    tw = _TwinSteps(prepared, config, w0, dtype, epochs)
    tw.run(0, epochs, frozenset(int(c) for c in checkpoints))
    return tw.result(epochs, from_torch(tw.module, layout), tw.losses_now())


# ---- the comparison behind `scratchnet compare` ----------------------------------------------
TOLERANCE = {"float64": 1e-9, "float32": 1e-2}  # the largest max |Δw| called agreement


@dataclass
class Comparison:
    epochs: int
    dtype: str
    engine: str  # the scratchnet engine that was compared (numpy or fast)
    same_init: bool
    checkpoints: list[dict]  # per checkpoint t: |Δw| after t updates, max |Δloss| so far,
    #                          both train losses of the weights after t updates
    max_abs_weight_diff: float
    max_abs_loss_diff: float
    tolerance: float
    engine_train_loss: np.ndarray
    engine_test_loss: np.ndarray
    twin: TwinResult
    engine_seconds: float = 0.0
    findings: list = field(default_factory=list)  # doctor findings (e.g. init not shared)
    stopped: str = "completed"  # completed | interrupted | diverged
    planned: int = 0  # the epochs asked for (``epochs``: those both finished and compared)
    diverged_at: int | None = None  # the engine's first epoch whose loss or weights broke

    @property
    def agree(self) -> bool:
        return self.max_abs_weight_diff <= self.tolerance

    def to_dict(self) -> dict:
        import torch

        return {"max_abs_weight_diff": self.max_abs_weight_diff,
                "max_abs_loss_diff": self.max_abs_loss_diff, "epochs": self.epochs,
                "dtype": self.dtype, "engine": self.engine, "same_init": self.same_init,
                "tolerance": self.tolerance, "agree": self.agree,
                "torch_version": torch.__version__, "checkpoints": self.checkpoints,
                "seconds": {"engine": self.engine_seconds, "torch": self.twin.seconds},
                "findings": [f.to_dict() for f in self.findings], "stopped": self.stopped,
                "planned_epochs": self.planned, "diverged_at": self.diverged_at}


COMPARE_BYTES_PER_EPOCH = 160  # both engines' curves, the records' doubling, the differences


def compare(config, dtype: str = "float64", n_checkpoints: int = 10, torch_init: bool = False,
            prepared=None) -> Comparison:
    """Train the engine and the twin from the same initial weights and measure the gap.

    Both advance checkpoint by checkpoint, the engine as a :class:`~scratchnet.training.run.Run`
    (the driver every command uses).  Ctrl-C (or SIGTERM/SIGHUP taking its path) keeps the
    checkpoints both reached: the result says ``stopped="interrupted"`` and compares those
    epochs.  A diverging engine stops the comparison at its last checkpoint before the
    divergence (``stopped="diverged"``).

    ``torch_init=True`` starts the twin from PyTorch's own initialisation instead (what PS5
    Question 3 did): the gap is then large and the doctor's finding 5 says why."""
    if not getattr(config, "plain_gd", lambda: True)():
        raise ScratchnetError("compare trains plain full-batch gradient descent only (the "
                              "problem set's); drop the optimizer / schedule / penalty flags")
    dtype = str(_dtype(dtype)).replace("torch.", "")
    n_epochs = config.epochs
    check_epochs_fit(n_epochs, COMPARE_BYTES_PER_EPOCH)  # before any per-epoch array exists
    prep = prepared or prepare(config)
    layout, prob = prep.layout, prep.problem
    w = init_weights(layout, config.init, config.seed)
    w_twin = torch_default_weights(layout, config.seed) if torch_init else w.copy()
    marks = sorted(set(np.linspace(0, n_epochs, max(1, n_checkpoints) + 1).round().astype(int)))
    name, fn = select_engine(config.engine, layout)
    longest = max((b - a for a, b in zip(marks[:-1], marks[1:])), default=1)
    run = Run(StepEngine(name, fn, layout, config.loss, prob, config.lr), w, n_epochs,
              slice_epochs=longest, history_budget=n_epochs + 1)  # a slice a segment, no thinning
    tw = _TwinSteps(prep, config, w_twin, dtype, n_epochs)
    tw.snaps[0] = from_torch(tw.module, layout)
    state = {"done": 0, "snaps": {0: w.copy()}, "twin_final": {0: tw.losses_now()},
             "seconds": 0.0, "stopped": "completed"}
    try:
        _advance_both(run, tw, marks, state)
    except KeyboardInterrupt:  # outside the engine (the twin, a snapshot): keep what both did
        state["stopped"] = "interrupted"
    with deferred_interrupts():  # the result is built whole, then a signal is delivered
        return _comparison(config, prep, dtype, run, tw, marks, state, w_twin)


def _advance_both(run, tw: _TwinSteps, marks: list[int], state: dict) -> None:
    """The engine, then the twin, one checkpoint segment at a time; ``state["done"]`` is the
    last checkpoint both reached."""
    for a, b in zip(marks[:-1], marks[1:]):
        t0 = time.perf_counter()
        run.advance(b - a)
        state["seconds"] += time.perf_counter() - t0
        if run.stopped in ("interrupted", "diverged") or run.epoch < b:
            state["stopped"] = run.stopped
            return
        state["snaps"][b] = run.w.copy()
        tw.run(a, b, frozenset({b}))
        state["twin_final"][b] = tw.losses_now()
        state["done"] = int(b)


def _comparison(config, prep, dtype, run, tw: _TwinSteps, marks, state, w_twin) -> Comparison:
    """The Comparison of the ``state["done"]`` epochs both finished."""
    layout, prob, done, snaps = prep.layout, prep.problem, state["done"], state["snaps"]
    hist = run.history.truncate(done)
    twin = tw.result(done, tw.snaps[done], state["twin_final"][done])
    dloss = np.maximum(np.abs(twin.train_loss - hist.train_loss),
                       np.abs(twin.test_loss - hist.test_loss))  # (done,)
    e_final = loss_value(layout, config.loss, snaps[done], prob.x_train, prob.y_train)
    e_loss = np.append(hist.train_loss, e_final)  # (done + 1,) loss after t updates, t = 0..done
    t_loss = np.append(twin.train_loss, twin.final_train_loss)
    dloss = np.append(dloss, abs(e_final - twin.final_train_loss))
    rows = [{"epoch": int(m),
             "max_abs_weight_diff": float(np.abs(tw.snaps[m] - snaps[m]).max()),
             "max_abs_loss_diff": float(dloss[:m + 1].max()),
             "engine_train_loss": float(e_loss[m]), "torch_train_loss": float(t_loss[m])}
            for m in marks if m <= done]
    findings = check_shared_init(init_weights(layout, config.init, config.seed), w_twin, layout)
    return Comparison(done, dtype, run.engine.name, not findings, rows,
                      max(r["max_abs_weight_diff"] for r in rows),
                      float(dloss.max()), TOLERANCE[dtype],
                      hist.train_loss, hist.test_loss, twin, state["seconds"], findings,
                      state["stopped"], run.epochs, run.diverged_at)
