"""The one options table (scratchnet.training.options) and the edges that read it.

The central test, ``test_every_edge_accepts_and_refuses_the_same_values``, runs each case
through the command line's parser, ``TrainConfig``, the estimator's ``fit`` and the
playground's ``parse_config``, wherever the edge has the option, and holds them to one
answer; ``test_every_option_has_cases`` keeps the case list complete as the table grows.
"""
import inspect
from dataclasses import fields

import numpy as np
import pytest

from scratchnet.cli import build_parser
from scratchnet.cli.common import config_from_args
from scratchnet.core.activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from scratchnet.core.datasets import NAMES
from scratchnet.core.errors import OptionError, ScratchnetError
from scratchnet.core.losses import LOSSES
from scratchnet.core.network import INITS
from scratchnet.training import options
from scratchnet.training.optim import OPTIMIZERS, SCHEDULES
from scratchnet.training.options import OPTIONS, check, check_all, check_memory, flag, parse_text
from scratchnet.training.train import TrainConfig

sklearn = pytest.importorskip("sklearn")
from scratchnet.sklearn import (ESTIMATOR_DEFAULTS, OPTION_PARAMS,  # noqa: E402
                                ScratchNetClassifier, ScratchNetRegressor)

# ---- the cases: (options, accepted) -----------------------------------------------------
GOOD = {
    "data": ["moons"], "features": [("x_1", "x_2")], "target": ["classification"],
    "n_samples": [50], "noise": [0.0, 0.2], "data_seed": [0, 7], "n_classes": [2, 3],
    "hidden": [(7,), (3, 4), ()], "activation": ["tanh", "relu"], "output": ["sigmoid", "softmax"],
    "loss": ["sse", "bce"], "init": ["he", "xavier"], "lr": [1e-3, 1.0],
    "epochs": [1, 3], "seed": [0, 12345], "test_size": [0.2, 0.5], "split_seed": [0, 7],
    "faithful": [True, False], "standardize_targets": [True], "log_every": [0, 10],
    "engine": ["numpy", "auto"], "optimizer": ["adam", "gd"], "batch_size": [None, 16],
    "momentum": [0.0, 0.5], "beta1": [0.8], "beta2": [0.99], "rho": [0.9], "eps": [1e-6],
    "schedule": ["cosine", "step"], "step_size": [10], "gamma": [0.5, 1.0], "lr_min": [0.0, 1e-5],
    "l2": [0.0, 1e-3], "l1": [1e-3], "early_stopping": [True, False], "patience": [1, 50],
    "jitter": [0.0, 0.1], "monitor": [True], "validation_fraction": [None, 0.0, 0.2],
}
NAN, INF = float("nan"), float("inf")
BAD = {
    "data": [""], "features": [("x_1", "x_1"), ("x_1", "")], "target": [""],
    "n_samples": [0, -5, 2.5], "noise": [-0.1, NAN], "data_seed": [-1, 2**32],
    "n_classes": [1, 0, 2.5], "hidden": [(0,), (7, -1), (2.5,)],
    "activation": ["swish"], "output": ["relu"], "loss": ["hinge"], "init": ["uniform"],
    "lr": [0, -1, NAN, INF], "epochs": [-1, 2.5], "seed": [-1, 2**32, 1.5],
    "test_size": [0, 1, 1.5, -0.1], "split_seed": [-1, 2**32], "faithful": ["yes"],
    "standardize_targets": [1], "log_every": [-1, 0.5], "engine": ["gpu"],
    "optimizer": ["lbfgs"], "batch_size": [-1, 2.5], "momentum": [1.0, -0.1, NAN],
    "beta1": [1.0], "beta2": [-0.5], "rho": [1.5], "eps": [0, -1], "schedule": ["linear"],
    "step_size": [0, 2.5], "gamma": [0, 1.5, 1e308], "lr_min": [-1, INF], "l2": [-1, NAN],
    "l1": [-1], "early_stopping": ["yes"], "patience": [0, 0.5], "jitter": [-1, NAN],
    "monitor": [0], "validation_fraction": [-0.1, 1.0, NAN],
}
# rules between options
RULES = [
    (dict(loss="ce", output="sigmoid"), False),
    (dict(loss="ce", output="softmax"), True),
    (dict(loss="sse", output="softmax"), True),  # every edge accepts it (see the commit)
    (dict(lr=1e-3, lr_min=1e-2), False),
    (dict(lr=1e-2, lr_min=1e-2), True),
    (dict(epochs=0, monitor=True), False),
    (dict(epochs=10**15, monitor=True), False),  # per-epoch gradient norms: no memory for them
    (dict(data="some-file.csv", n_samples=50), False),
    (dict(data="some-file.csv", noise=0.1), False),
    (dict(data="moons", n_samples=50, noise=0.1), True),
]
CASES = [(dict(data="moons", **{k: v}) if k in ("n_samples", "noise", "data_seed") else
          dict(data="gaussians", **{k: v}) if k == "n_classes" else {k: v}, ok)
         for table, ok in ((GOOD, True), (BAD, False)) for k, vs in table.items() for v in vs]
CASES += RULES


def _id(case) -> str:
    kw, ok = case
    return ("ok-" if ok else "bad-") + "-".join(f"{k}={v!r}" for k, v in kw.items())


# ---- the edges: each answers (accepted, message) ----------------------------------------
def cli_edge(kw):
    argv = ["train"]
    for name, v in kw.items():
        if OPTIONS[name].kind == "bool":
            if not isinstance(v, bool):
                return None  # a flag without a value cannot carry 'yes'
            argv += [flag(name)] if v else []
        elif v is not None:
            argv += [flag(name), ",".join(map(str, v)) if isinstance(v, tuple) else str(v)]
    try:
        args = build_parser().parse_args(argv)
        config_from_args(args)
    except SystemExit:
        return False, "argparse"
    except OptionError as e:
        return False, e.worded(flag)
    return True, ""


def python_edge(kw):
    try:
        TrainConfig(**kw)
    except OptionError as e:
        return False, str(e)
    return True, ""


X2, Y2 = np.random.RandomState(0).randn(30, 2), np.arange(30) % 2


def estimator_edge(kw):
    own = set(OPTION_PARAMS) | {"output", "loss"}
    if not set(kw) <= own:
        return None
    params = {"epochs": 2, **kw}
    try:
        ScratchNetClassifier(**params).fit(X2, Y2)
    except ValueError as e:
        return False, str(e)
    return True, ""


PAGE = {"hidden": ("network", "hidden"), "activation": ("network", "activation"),
        "output": ("network", "output"), "loss": ("network", "loss"),
        "init": ("network", "init"), "lr": ("network", "lr"), "epochs": ("network", "epochs"),
        "seed": ("network", "seed"), "optimizer": ("network", "optimizer"),
        "batch_size": ("network", "batch_size"), "l2": ("network", "l2"),
        "test_size": ("data", "test_size"), "split_seed": ("data", "seed"),
        "n_samples": ("data", "n_samples"), "noise": ("data", "noise"),
        "n_classes": ("data", "n_classes"), "data": ("data", "name")}


def page_edge(kw):
    pytest.importorskip("fastapi")
    from scratchnet.web.inputs import FIELDS, Uploads, parse_config
    from scratchnet.web.session import Limits, PlaygroundError

    if not set(kw) <= set(PAGE) or kw.get("data", "ps5") not in (*NAMES, ""):
        return None  # an option the page does not set, or a CSV path (the page uploads)
    msg = {"data": {}, "network": {}}
    for name, v in kw.items():
        part, key = PAGE[name]
        msg[part][key] = list(v) if isinstance(v, tuple) else v
    limits = Limits()
    try:
        parse_config(msg, Uploads(limits), limits)
    except PlaygroundError as e:
        return False, str(e)
    assert set(PAGE) <= set(FIELDS)  # the page names every option it sets
    return True, ""


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_every_edge_accepts_and_refuses_the_same_values(case):
    kw, ok = case
    answers = {"python": python_edge(kw), "cli": cli_edge(kw), "estimator": estimator_edge(kw),
               "page": page_edge(kw)}
    answers = {edge: a for edge, a in answers.items() if a is not None}
    assert {edge: a[0] for edge, a in answers.items()} == {edge: ok for edge in answers}
    if not ok and len(set(kw) - {"data"}) <= 1:  # one option refused: each edge names it
        (name,) = set(kw) - {"data"} or {"data"}
        assert answers["python"][1].startswith(f"{name}: ")
        if "cli" in answers and answers["cli"][1] != "argparse":
            assert answers["cli"][1].startswith(f"{flag(name)}: ")
        if "estimator" in answers:
            assert answers["estimator"][1].startswith(name)
        if "page" in answers:
            from scratchnet.web.inputs import FIELDS

            assert FIELDS[name].split()[0] in answers["page"][1]


def test_every_option_has_cases():
    assert set(GOOD) == set(OPTIONS) and set(BAD) == set(OPTIONS)


def test_cli_refusals_name_the_flag_in_one_line(capsys):
    from scratchnet.cli import main

    for argv, words in [(["--lr", "-1"], "argument --lr: must be a positive number, got -1"),
                        (["--hidden", "7,,3"], "argument --hidden: '7,,3' has an empty entry"),
                        (["--seed", "-1"], "argument --seed: must be an integer in [0, "),
                        (["--lr-min", "1", "--lr", "0.1"], "--lr-min: must be <= --lr (0.1)"),
                        (["--epochs", "0", "--monitor"], "--monitor: needs at least one epoch"),
                        (["--epochs", "1e15", "--monitor"],
                         "--epochs: 1000000000000000 needs about"),
                        (["--hidden", "1e11"], "--hidden: (100000000000,) needs about"),
                        (["--data", "ps5", "--n-samples", "0"], "--n-samples: must be a "),
                        (["--features", "x_1,x_1"], "column 'x_1' is given twice"),
                        (["--save", ""], "argument --save: an empty path"),
                        (["--noise", "nan"], "argument --noise: must be a number >= 0, got nan"),
                        (["--gamma", "1e308"], "argument --gamma: must be a positive number <= 1")]:
        try:
            code = main(["train", "--quiet", *argv])
        except SystemExit as e:  # argparse's own refusal
            code = e.code
        err = capsys.readouterr().err
        assert code == 2, argv
        assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_python_wording_and_the_error_carries_name_value_reason():
    with pytest.raises(OptionError) as e:
        TrainConfig(lr=-1)
    assert str(e.value) == "lr: must be a positive number, got -1"
    assert (e.value.name, e.value.value) == ("lr", -1)
    assert isinstance(e.value, ScratchnetError)
    with pytest.raises(OptionError) as e:
        TrainConfig(lr=0.1, lr_min=0.5)
    assert str(e.value) == "lr_min: must be <= lr (0.1), got 0.5"
    assert e.value.worded(flag) == "--lr-min: must be <= --lr (0.1), got 0.5"


def test_estimator_wording_names_the_parameter():
    with pytest.raises(ValueError, match=r"^lr must be a positive number, got -1$"):
        ScratchNetRegressor(lr=-1).fit(X2, Y2.astype(float))


# ---- every edge is derived from the table -----------------------------------------------
def test_train_config_fields_and_defaults_are_the_tables():
    got = {f.name: f.default for f in fields(TrainConfig)}
    assert set(got) == set(OPTIONS)  # one field per option (a new field needs its entry)
    assert got == {n: o.default for n, o in OPTIONS.items()}
    for name, o in OPTIONS.items():  # the defaults pass their own checks
        assert check(name, o.default) == o.default


ESTIMATOR_ONLY = {"output", "loss", "reduction", "standardize", "validation_fraction",
                  "random_state"}


@pytest.mark.parametrize("est", [ScratchNetClassifier, ScratchNetRegressor])
def test_estimator_parameters_and_defaults_are_the_tables(est):
    params = inspect.signature(est.__init__).parameters
    names = set(params) - {"self"}
    assert names - ESTIMATOR_ONLY == set(OPTION_PARAMS)
    assert set(OPTION_PARAMS) <= set(OPTIONS)
    for name in OPTION_PARAMS:
        want = ESTIMATOR_DEFAULTS.get(name, OPTIONS[name].default)
        assert params[name].default == want, name
    for name, v in ESTIMATOR_DEFAULTS.items():
        assert check(name, v) == v  # the estimator's own defaults are valid options


def test_cli_flags_are_the_tables():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    actions = {a.dest: a for a in train._actions}
    for name, o in OPTIONS.items():
        a = actions[name]
        assert a.option_strings == [o.flag]
        if name not in ("data", "epochs"):  # commands set their own default epochs
            assert a.default == o.default and a.help == o.help
        if o.kind == "choice":
            assert tuple(a.choices) == o.choices


def test_choices_come_from_the_core_tables():
    assert OPTIONS["activation"].choices == HIDDEN_ACTIVATIONS
    assert OPTIONS["output"].choices == OUTPUT_ACTIVATIONS
    assert OPTIONS["loss"].choices == tuple(LOSSES)
    assert OPTIONS["init"].choices == INITS
    assert OPTIONS["optimizer"].choices == tuple(OPTIMIZERS)
    assert OPTIONS["schedule"].choices == tuple(SCHEDULES)


# ---- parsing and memory -----------------------------------------------------------------
@pytest.mark.parametrize("name,text,want", [
    ("epochs", "1e5", 100_000), ("epochs", "300", 300), ("hidden", "16, 8", (16, 8)),
    ("hidden", "7", (7,)), ("hidden", "none", ()), ("features", "a,b", ("a", "b")),
    ("lr", "1e-3", 1e-3),
    ("data_seed", "4294967295", 2**32 - 1)])
def test_parse_text(name, text, want):
    assert parse_text(name, text) == want


@pytest.mark.parametrize("name,text,words", [
    ("epochs", "1e400", "is not an integer"), ("epochs", "2.5", "is not an integer"),
    ("hidden", "7,", "empty entry"), ("hidden", ",7", "empty entry"),
    ("hidden", "7,x", "is not an integer"), ("lr", "fast", "is not a number"),
    ("lr", "1e999", "got 1e999")])
def test_parse_text_refuses(name, text, words):
    with pytest.raises(OptionError, match=words) as e:
        parse_text(name, text)
    assert e.value.name == name


def test_memory_is_checked_against_what_is_available():
    small = dict(epochs=1000, hidden=(7,))
    check_memory(small, available=10**9)
    check_memory(dict(epochs=10**12, hidden=(7,)), available=10**9)  # the history is bounded
    with pytest.raises(OptionError) as e:  # but --monitor keeps every epoch's norms
        check_memory(dict(epochs=10**8, hidden=(7,), monitor=True), available=10**9)
    assert e.value.name == "epochs" and "more than the 1 GB available" in str(e.value)
    with pytest.raises(OptionError) as e:
        check_memory(dict(epochs=10, hidden=(10**5, 10**5)), available=10**9)
    assert e.value.name == "hidden"
    with pytest.raises(OptionError) as e:
        check_memory(dict(epochs=10, n_samples=10**9), available=10**9)
    assert e.value.name == "n_samples"
    est = options.memory_estimate(dict(epochs=1000, hidden=(7,)))
    # 8 float64 per weight (29) + β, δ and a temporary per unit (8) and row (1000 by default)
    assert options.memory_estimate(dict(epochs=10**12))["epochs"] == 64 * options.HISTORY_BUDGET
    assert est["epochs"] == 32_000 and est["hidden"] == 64 * 29 + 8 * 1000 * 3 * 8


def test_arrays_that_keep_every_epoch_are_checked_against_memory(monkeypatch):
    """compare (160 B/epoch) and the CNN (48 B/epoch) keep every epoch: no thinning."""
    options.check_epochs_fit(10**6, 160, available=10**9)  # 0.16 GB fits
    with pytest.raises(OptionError) as e:
        options.check_epochs_fit(10**10, 48, available=10**9)
    assert e.value.name == "epochs" and e.value.value == 10**10
    assert e.value.worded(flag) == ("--epochs: 10000000000 needs about 480 GB of memory, "
                                    "more than the 1 GB available")
    monkeypatch.setattr(options, "available_memory", lambda: None)
    options.check_epochs_fit(10**12, 48)  # memory unknown: nothing refused
    monkeypatch.setattr(options, "available_memory", lambda: 10**9)
    with pytest.raises(OptionError, match="more than the 1 GB available"):
        options.check_epochs_fit(10**12, 48)  # what is available now, by default


def test_check_all_normalizes_and_passes_other_names_through():
    out = check_all({"hidden": np.int64(5), "lr": np.float32(0.5), "reduction": "mean"})
    assert out["hidden"] == (5,) and type(out["hidden"][0]) is int
    assert type(out["lr"]) is float and out["reduction"] == "mean"
