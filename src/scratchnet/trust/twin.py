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

from ..core.errors import ScratchnetError
from ..core.losses import CANONICAL_PAIRS, EPS
from ..core.network import Layout, init_weights

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


def train_twin(prepared, config, w0: np.ndarray | None = None, dtype="float64",
               epochs: int | None = None, checkpoints=()) -> TwinResult:
    """Train the PyTorch twin of ``prepared.layout`` as ``train.run_epochs`` trains the engine.

    ``prepared``: :class:`~scratchnet.training.train.Prepared`; ``config``: its TrainConfig (``lr``,
    ``loss``, ``epochs``, ``init``, ``seed``). ``w0`` defaults to ``init_weights(layout,
    config.init, config.seed)`` — the engine's own start. ``checkpoints``: epochs t at which the
    weights after t updates are kept in ``snapshots``.
    """
    torch = _torch()
    if not getattr(config, "plain_gd", lambda: True)():
        raise ScratchnetError("the twin trains plain full-batch gradient descent only (the "
                              "problem set's); drop the optimizer / schedule / penalty flags")
    layout, P = prepared.layout, prepared.problem
    w0 = init_weights(layout, config.init, config.seed) if w0 is None else w0
    epochs = config.epochs if epochs is None else int(epochs)
    dt = _dtype(dtype)
    module = to_torch(layout, w0, dt)
    body, head = module[:-1], module[-1]  # α_L = body(x), ŷ = head(α_L)
    value, train_loss = loss_fn(config.loss, layout.output)
    x_tr, y_tr, x_te, y_te = (torch.from_numpy(np.ascontiguousarray(a)).to(dt)
                              for a in (P.x_train, P.y_train, P.x_test, P.y_test))
    params = list(module.parameters())
    tr_hist, te_hist = np.full(epochs, np.nan), np.full(epochs, np.nan)
    wanted, snaps = set(int(c) for c in checkpoints), {}
    if 0 in wanted:
        snaps[0] = from_torch(module, layout)
    lr = config.lr
    t0 = time.perf_counter()
    for t in range(epochs):
        alpha = body(x_tr)  # (N, n_out)  α_L on the training rows
        p = head(alpha)  # ŷ
        with torch.no_grad():
            tr_hist[t] = float(value(p, y_tr))
            te_hist[t] = float(value(module(x_te), y_te))
        train_loss(alpha, p, y_tr).backward()
        with torch.no_grad():
            for q in params:  # plain gradient descent, every weight from the same old weights
                q -= lr * q.grad
                q.grad = None
        if t + 1 in wanted:
            snaps[t + 1] = from_torch(module, layout)
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        final = float(value(module(x_tr), y_tr)), float(value(module(x_te), y_te))
    return TwinResult(from_torch(module, layout), tr_hist, te_hist, module, seconds,
                      str(dt).replace("torch.", ""), snaps, *final)


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
                "findings": [f.to_dict() for f in self.findings]}


def compare(config, dtype: str = "float64", n_checkpoints: int = 10, torch_init: bool = False,
            prepared=None) -> Comparison:
    """Train the engine and the twin from the same initial weights and measure the gap.

    ``torch_init=True`` starts the twin from PyTorch's own initialisation instead (what PS5
    Question 3 did): the gap is then large and the doctor's finding 5 says why."""
    from ..core.backprop import loss_value
    from .doctor import check_shared_init
    from ..training.train import History, prepare, select_engine

    if not getattr(config, "plain_gd", lambda: True)():
        raise ScratchnetError("compare trains plain full-batch gradient descent only (the "
                              "problem set's); drop the optimizer / schedule / penalty flags")
    dtype = str(_dtype(dtype)).replace("torch.", "")
    prep = prepared or prepare(config)
    layout, P, E = prep.layout, prep.problem, config.epochs
    w = init_weights(layout, config.init, config.seed)
    w_twin = torch_default_weights(layout, config.seed) if torch_init else w.copy()
    marks = sorted(set(np.linspace(0, E, max(1, n_checkpoints) + 1).round().astype(int)))
    engine, run = select_engine(config.engine, layout)
    hist = History.empty(E)
    snaps, t0 = {0: w.copy()}, time.perf_counter()
    for a, b in zip(marks[:-1], marks[1:]):
        run(layout, config.loss, w, P, config.lr, a, b, hist)
        snaps[b] = w.copy()
    engine_seconds = time.perf_counter() - t0
    tw = train_twin(prep, config, w_twin, dtype, E, checkpoints=marks)
    dloss = np.maximum(np.abs(tw.train_loss - hist.train_loss),
                       np.abs(tw.test_loss - hist.test_loss))  # (E,)
    e_final = loss_value(layout, config.loss, w, P.x_train, P.y_train)
    e_loss = np.append(hist.train_loss, e_final)  # (E + 1,) loss after t updates, t = 0..E
    t_loss = np.append(tw.train_loss, tw.final_train_loss)
    dloss = np.append(dloss, abs(e_final - tw.final_train_loss))
    rows = [{"epoch": int(m),
             "max_abs_weight_diff": float(np.abs(tw.snapshots[m] - snaps[m]).max()),
             "max_abs_loss_diff": float(dloss[:m + 1].max()),
             "engine_train_loss": float(e_loss[m]), "torch_train_loss": float(t_loss[m])}
            for m in marks]
    findings = check_shared_init(init_weights(layout, config.init, config.seed), w_twin, layout)
    return Comparison(E, dtype, engine, not findings, rows,
                      max(r["max_abs_weight_diff"] for r in rows),
                      float(dloss.max()), TOLERANCE[dtype],
                      hist.train_loss, hist.test_loss, tw, engine_seconds, findings)
