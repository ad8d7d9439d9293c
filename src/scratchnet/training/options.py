"""Every training option once: name, type, default, valid range or choices, one line of help.

``OPTIONS`` is the one table (as scikit-learn's ``_parameter_constraints``).  The edges read it:

* ``TrainConfig`` (``training/train.py``) has one field per entry, same default (a test holds
  them equal) and validates itself with :func:`check_all`;
* the command line's flags (``cli/common.py``): argparse ``type=`` functions built by
  :func:`parse_text`, the help and the ``--flag`` spelling from here;
* the estimators (``sklearn.py``) validate their parameters with :func:`check` in ``fit``;
* the playground (``web/inputs.py``) builds a ``TrainConfig`` and words the refusal for its
  fields.

A value an option cannot take raises :class:`~scratchnet.core.errors.OptionError` carrying the
option's name, the value and the reason, never a message worded for one edge: ``--lr`` is the
command line's spelling, ``lr`` the Python one, "learning rate" the page's.  The choices come
from the tables that define them (activations, losses, inits, optimizers, schedules), so adding
an activation to ``core/activations.py`` adds it to every edge.

Cross-option rules (``loss ce`` needs ``output softmax``; ``lr_min`` ≤ ``lr``; generator options
need a generated data set; ``monitor`` needs an epoch; the run must fit in memory) live here
too, in :func:`check_all`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from ..core.activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from ..core.datasets import NAMES as GENERATED
from ..core.errors import OptionError
from ..core.losses import LOSSES
from ..core.network import INITS
from .optim import OPTIMIZERS, SCHEDULES
from .run import HISTORY_BUDGET

__all__ = ["OPTIONS", "Option", "OptionError", "check", "check_all", "parse_text", "flag"]

ENGINES = ("auto", "numpy", "fast")  # the selection point: training.train.select_engine
SEED_MAX = 2**32 - 1  # numpy's RandomState takes seeds 0 … 2³² − 1


@dataclass(frozen=True)
class Option:
    """One option. ``kind``: float | int | bool | choice | sizes | names | text."""

    name: str
    kind: str
    default: object
    help: str
    low: float | None = None  # the valid range, for float and int (and each of sizes)
    high: float | None = None
    low_open: bool = False  # True: the range excludes ``low``
    high_open: bool = False
    choices: tuple = ()
    optional: bool = False  # None is a value: "not given" (then the default is decided later)
    group: str = "network and training"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def need(self) -> str:
        """What a valid value is, in words: ``a positive number``, ``one of gd, sgd``."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "True or False"
        if self.kind == "names":
            return "distinct, non-empty column names"
        if self.kind == "text":
            return "a non-empty name"
        what = _range_words(self)
        if self.kind == "sizes":
            return f"{what} or a list of them (empty: no hidden layer)"
        return what


def _range_words(o: Option) -> str:
    integer = o.kind in ("int", "sizes")
    lo, hi = o.low, o.high
    if integer:
        if hi is None:
            return {0: "an integer >= 0", 1: "a positive integer"}.get(lo, f"an integer >= {lo}")
        return f"an integer in [{lo}, {hi}]"
    if hi is None:
        return "a positive number" if lo == 0 and o.low_open else f"a number >= {lo:g}"
    if lo == 0 and o.low_open and o.high_open:
        return f"a number strictly between 0 and {hi:g}"
    if lo == 0 and o.low_open:
        return f"a positive number <= {hi:g}"
    return f"a number in {'(' if o.low_open else '['}{lo:g}, {hi:g}{')' if o.high_open else ']'}"


def _opt(name, kind, default, help, **kw) -> Option:
    return Option(name, kind, default, help, **kw)


_DATA, _BEYOND = "data", "beyond plain gradient descent (default: none of it)"
_UNIT = dict(low=0.0, high=1.0, high_open=True)  # [0, 1): the decay rates μ, β₁, β₂, ρ
_POS = dict(low=0.0, low_open=True)  # (0, ∞)
_NONNEG = dict(low=0.0)  # [0, ∞)

OPTIONS: dict[str, Option] = {o.name: o for o in [
    # ---- data --------------------------------------------------------------------------
    _opt("data", "text", "ps5", "CSV path or bundled name: " + ", ".join(GENERATED),
         group=_DATA),
    _opt("features", "names", None, "comma-separated feature columns (default: x_1,x_2)",
         optional=True, group=_DATA),
    _opt("target", "text", None, "target column (default: classification)", optional=True,
         group=_DATA),
    _opt("n_samples", "int", None, "rows of a generated data set", low=1, optional=True,
         group=_DATA),
    _opt("noise", "float", None, "noise of a generated data set", **_NONNEG, optional=True,
         group=_DATA),
    _opt("data_seed", "int", None, "seed of a generated data set", low=0, high=SEED_MAX,
         optional=True, group=_DATA),
    _opt("n_classes", "int", None, "classes of gaussians / spiral", low=2, optional=True,
         group=_DATA),
    # ---- network and training (the problem set's) ------------------------------------------
    _opt("hidden", "sizes", (7,), "hidden layer sizes, e.g. 7 or 16,8 (default: 7)", low=1),
    _opt("activation", "choice", "sigmoid", "hidden activation (default: sigmoid)",
         choices=HIDDEN_ACTIVATIONS),
    _opt("output", "choice", "sigmoid", "output activation (default: sigmoid)",
         choices=OUTPUT_ACTIVATIONS),
    _opt("loss", "choice", "sse", "sse = ½Σ(y − ŷ)² (default), bce, ce (with softmax)",
         choices=tuple(LOSSES)),
    _opt("init", "choice", "normal",
         "normal = the problem set's np.random.randn draw (default), xavier, he", choices=INITS),
    _opt("lr", "float", 1e-4, "learning rate η (1e-4)", **_POS),
    _opt("epochs", "int", 100_000, "full-batch epochs (default: 100000)", low=0),
    _opt("seed", "int", 0, "weight init seed (default: 0)", low=0, high=SEED_MAX),
    _opt("test_size", "float", 0.2, "test fraction (0.2)", low=0.0, high=1.0, low_open=True,
         high_open=True),
    _opt("split_seed", "int", 0, "split random_state (0)", low=0, high=SEED_MAX),
    _opt("faithful", "bool", False, "reproduce PS5 Question 2 exactly: standardize inputs AND "
         "0/1 targets with the whole data set's statistics"),
    _opt("standardize_targets", "bool", False,
         "standardize the 0/1 targets as the problem set did"),
    _opt("log_every", "int", 1000, "print the loss every N epochs, 0 = never (default: 1000)",
         low=0),
    _opt("engine", "choice", "auto", "auto = compiled when available (default)",
         choices=ENGINES),
    # ---- beyond the problem set (training/optim.py) ---------------------------------------
    _opt("optimizer", "choice", "gd", "gd (default), sgd, momentum, nesterov, rmsprop, adam",
         choices=tuple(OPTIMIZERS), group=_BEYOND),
    _opt("batch_size", "int", None, "mini-batch size, rows reshuffled every epoch (default: "
         "full batch)", low=1, optional=True, group=_BEYOND),
    _opt("momentum", "float", 0.9, "μ of momentum / nesterov (0.9)", **_UNIT, group=_BEYOND),
    _opt("beta1", "float", 0.9, "adam β₁ (0.9)", **_UNIT, group=_BEYOND),
    _opt("beta2", "float", 0.999, "adam β₂ (0.999)", **_UNIT, group=_BEYOND),
    _opt("rho", "float", 0.99, "rmsprop decay ρ (0.99)", **_UNIT, group=_BEYOND),
    _opt("eps", "float", 1e-8, "rmsprop / adam ε (1e-8)", **_POS, group=_BEYOND),
    _opt("schedule", "choice", "constant", "learning-rate schedule: constant (default), step, "
         "exponential, cosine", choices=tuple(SCHEDULES), group=_BEYOND),
    _opt("step_size", "int", 1000, "step schedule: multiply η by --gamma every N epochs "
         "(1000)", low=1, group=_BEYOND),
    # a decay factor: above 1 the rate grows as γᵗ and overflows within a few hundred epochs
    _opt("gamma", "float", 0.5, "step / exponential schedule decay factor in (0, 1] (0.5)",
         low=0.0, high=1.0, low_open=True, group=_BEYOND),
    _opt("lr_min", "float", 0.0, "cosine schedule: η at the last epoch, <= --lr (0)", **_NONNEG,
         group=_BEYOND),
    _opt("l2", "float", 0.0, "L2 penalty ½λΣw² on the non-bias weights (0)", **_NONNEG,
         group=_BEYOND),
    _opt("l1", "float", 0.0, "L1 penalty λΣ|w| on the non-bias weights (0)", **_NONNEG,
         group=_BEYOND),
    _opt("early_stopping", "bool", False, "stop when the validation loss has not improved for "
         "--patience epochs and keep the best weights", group=_BEYOND),
    # early stopping watches rows held out of the training split; 0 watches the test split
    # instead, an explicit choice: the test score reported then is optimistic
    _opt("validation_fraction", "float", None, "share of the training rows held out for "
         "--early-stopping to watch (default: 0.1 with it); 0 = watch the test split",
         low=0.0, high=1.0, high_open=True, optional=True, group=_BEYOND),
    _opt("patience", "int", 100, "early stopping patience in epochs (100)", low=1,
         group=_BEYOND),
    _opt("jitter", "float", 0.0, "augment: add N(0, σ²) noise to the standardized training "
         "inputs, fresh every epoch (σ, default 0)", **_NONNEG, group=_BEYOND),
    _opt("monitor", "bool", False, "record per-layer gradient norms and the share of saturated "
         "units every epoch (vanishing gradients)", group=_BEYOND),
]}


def flag(name: str) -> str:
    """The command line's spelling of an option (or of any snake_case name): ``--lr-min``."""
    return OPTIONS[name].flag if name in OPTIONS else "--" + name.replace("_", "-")


# ---- one option ------------------------------------------------------------------------
def _show(v) -> str:
    """A value as a message shows it (braces doubled: reasons are format templates)."""
    text = repr(v) if isinstance(v, str) else str(v)
    return text.replace("{", "{{").replace("}", "}}")


def _refuse(o: Option, v, text: str | None = None):
    shown = _show(v) if text is None else _show(text).strip("'")
    raise OptionError(o.name, v, f"must be {o.need()}, got {shown}")


def _in_range(o: Option, x) -> bool:
    if o.low is not None and (x <= o.low if o.low_open else x < o.low):
        return False
    return o.high is None or (x < o.high if o.high_open else x <= o.high)


def _is_int(v) -> bool:
    return isinstance(v, Integral) and not isinstance(v, (bool, np.bool_))


def check(name: str, value, text: str | None = None):
    """``value`` if option ``name`` can take it (normalized: numpy scalars → Python, a single
    size → a tuple), else :class:`OptionError` (showing ``text``, the value as typed, if
    given)."""
    o = OPTIONS[name]
    if value is None and o.optional:
        return None
    k = o.kind
    if k == "float":
        ok = isinstance(value, Real) and not isinstance(value, (bool, np.bool_)) and \
            math.isfinite(value) and _in_range(o, value)
        return float(value) if ok else _refuse(o, value, text)
    if k == "int":
        ok = _is_int(value) and _in_range(o, value)
        return int(value) if ok else _refuse(o, value, text)
    if k == "bool":
        return bool(value) if isinstance(value, (bool, np.bool_)) else _refuse(o, value)
    if k == "choice":
        return value if isinstance(value, str) and value in o.choices else _refuse(o, value)
    if k == "text":
        return value if isinstance(value, str) and value.strip() else _refuse(o, value)
    if k == "sizes":
        sizes = (value,) if _is_int(value) else value
        if isinstance(sizes, (str, bytes)) or not np.iterable(sizes):
            _refuse(o, value)
        sizes = tuple(sizes)  # () is a network without a hidden layer
        if not all(_is_int(s) and _in_range(o, s) for s in sizes):
            _refuse(o, value)
        return tuple(int(s) for s in sizes)
    # names: column names, each once
    if isinstance(value, (str, bytes)) or not np.iterable(value):
        _refuse(o, value)
    names = tuple(value)
    if not names or not all(isinstance(c, str) and c.strip() for c in names):
        _refuse(o, value)
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise OptionError(name, value, f"column {_show(twice[0])} is given twice")
    return names


def parse_text(name: str, text: str):
    """The value of option ``name`` from a command-line text, checked: an int option takes
    ``100000`` or ``1e5``; sizes and names are comma-separated (``16,8``; ``x_1,x_2``), and
    sizes ``none`` (or an empty text) is a network without a hidden layer."""
    o = OPTIONS[name]
    if o.kind == "sizes":
        if text.strip().lower() in ("", "none"):
            return ()  # no hidden layer: the inputs feed the output units directly
        parts = [p.strip() for p in text.split(",")]
        if not all(parts):
            raise OptionError(name, text, f"{_show(text)} has an empty entry; give sizes "
                              "like 7 or 16,8")
        return check(name, tuple(_parse_int(o, p) for p in parts))
    if o.kind == "names":
        return check(name, tuple(p.strip() for p in text.split(",")))
    if o.kind == "int":
        return check(name, _parse_int(o, text), text)
    if o.kind == "float":
        try:
            return check(name, float(text), text)
        except ValueError:
            raise OptionError(name, text, f"{_show(text)} is not a number") from None
    return check(name, text)


def _parse_int(o: Option, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        x = float(text)  # 1e5: a whole number written as a float
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and x == int(x)):
        raise OptionError(o.name, text, f"{_show(text)} is not an integer")
    return int(x)


# ---- options together ------------------------------------------------------------------
def check_all(values: dict) -> dict:
    """Every option in ``values`` checked (:func:`check`), then the rules between them; returns
    the normalized values.  Names that are not options pass through unchecked; a rule is
    checked when the options it involves are all given."""
    out = {k: check(k, v) if k in OPTIONS else v for k, v in values.items()}
    _check_rules(out)
    check_memory(out)
    return out


def _check_rules(v: dict) -> None:
    if v.get("loss") == "ce" and "output" in v and v["output"] != "softmax":
        # cross-entropy over classes reads ŷ as a distribution: only softmax makes one
        raise OptionError("loss", "ce", "ce needs {output} softmax", ("output",))
    if "lr" in v and v.get("lr_min", 0.0) > v["lr"]:
        raise OptionError("lr_min", v["lr_min"], f"must be <= {{lr}} ({_show(v['lr'])}), got "
                          f"{_show(v['lr_min'])}", ("lr",))
    if v.get("monitor") and v.get("epochs") == 0:
        raise OptionError("monitor", True, "needs at least one epoch ({epochs} is 0)",
                          ("epochs",))
    data = v.get("data")
    if isinstance(data, str) and (data not in GENERATED or os.path.exists(data)):
        for name in ("n_samples", "noise", "data_seed", "n_classes"):
            if v.get(name) is not None:
                raise OptionError(name, v[name], f"only for a generated data set "
                                  f"({', '.join(GENERATED)}), not for the file {_show(data)}")


# ---- will it fit? -----------------------------------------------------------------------
def available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``), None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_estimate(v: dict) -> dict[str, int]:
    """Bytes a run needs, by the option that drives them: ``epochs`` (the history: 4 float64
    per record, at most 2 × ``run.HISTORY_BUDGET`` records however long the run, but
    ``monitor`` keeps every epoch's gradient norms), ``hidden`` (w, its gradient, optimizer
    state and copies: ~8 float64 per weight) and ``n_samples`` (the rows and every layer's β
    and δ on them)."""
    hidden = v.get("hidden")
    hidden = (7,) if hidden is None else hidden
    n_in = len(v["features"]) if v.get("features") else 2
    sizes = (n_in, *hidden, max(v.get("n_classes") or 1, 1))
    n_params = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    rows = v.get("n_samples") or 1000
    epochs = int(v.get("epochs") or 0)
    history = 32 * min(epochs, 2 * HISTORY_BUDGET)  # thinned beyond the budget
    monitor = 64 * len(sizes) * epochs if v.get("monitor") else 0  # every epoch, kept
    units = 3 * sum(sizes[1:])  # β, δ and a temporary per unit and row
    need = {"epochs": history + monitor, "hidden": 64 * n_params,
            "n_samples": 8 * rows * (n_in + 1)}
    # the per-row layer arrays grow with both: charged to the one that is out of proportion
    need["n_samples" if v.get("n_samples") and rows > units else "hidden"] += 8 * rows * units
    return need


def check_memory(v: dict, available: int | None = None) -> None:
    """Refuse, naming the option that drives it, a run that cannot fit in memory."""
    if not any(k in v for k in ("epochs", "hidden", "n_samples")):
        return
    need = memory_estimate(v)
    total = sum(need.values())
    available = available_memory() if available is None else available
    if available is None or total <= available:
        return
    name = max(need, key=need.get)
    raise OptionError(name, v.get(name), f"{_show(v.get(name))} needs about {_gb(total)} of "
                      f"memory, more than the {_gb(available)} available")


def check_epochs_fit(epochs: int, bytes_per_epoch: int, available: int | None = None) -> None:
    """Refuse, naming ``epochs`` (``--epochs`` on the command line), a run whose per-epoch
    arrays keep every epoch (``compare``'s curves, the CNN's history) and cannot fit in the
    memory available — before they are allocated.  ``check_memory`` counts the bounded
    history of ``train``."""
    need = int(epochs) * bytes_per_epoch
    available = available_memory() if available is None else available
    if available is not None and need > available:
        raise OptionError("epochs", epochs, f"{_show(epochs)} needs about {_gb(need)} of "
                          f"memory, more than the {_gb(available)} available")


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB"
