"""The doctor finds each pitfall on a constructed case and stays quiet on a clean run."""
import dataclasses

from dataclasses import replace

import numpy as np
import pytest

from scratchnet.trust import differences as D
from scratchnet.trust import doctor
from scratchnet.core.data import Standardizer
from scratchnet.core.network import Layout, init_weights
from scratchnet.training.train import TrainConfig, prepare, train

CLEAN = dict(data="moons", n_samples=400, hidden=(4,), init="xavier", lr=1e-3, epochs=2000)


def ids(findings, severity=None):
    return [f.id for f in findings if severity is None or f.severity == severity]


def quick(config, **kw):
    return doctor.diagnose(config, quick=True, **kw)[0]


def write_csv(tmp_path, X, y, name="d.csv"):
    p = tmp_path / name
    rows = "\n".join(f"{float(a)!r},{float(b)!r},{int(c)}" for (a, b), c in zip(X, y))
    p.write_text("x_1,x_2,classification\n" + rows + "\n")
    return str(p)


def test_a_clean_run_is_quiet():
    findings, trained = doctor.diagnose(TrainConfig(**CLEAN), check_epochs=2000)
    assert trained == 2000
    assert findings == []


# ---- 1, 2 --------------------------------------------------------------------------------
def test_standardized_targets_with_a_sigmoid_output_are_out_of_range():
    config = TrainConfig(standardize_targets=True)
    prep = prepare(config)
    (f,) = doctor.check_targets(prep)
    assert f.number == 1 and f.severity == "serious" and f.id == "targets-out-of-range"
    y = prep.problem.y_train
    floor = 0.5 * np.sum(np.where(y < 0, y, np.maximum(y - 1, 0)) ** 2)  # distance to [0, 1]
    assert floor > 5 and f"{floor:.4g}" in f.why
    assert doctor.check_targets(prepare(TrainConfig())) == []


def test_standardized_labels_with_an_identity_output_are_flagged():
    (f,) = doctor.check_targets(prepare(TrainConfig(standardize_targets=True,
                                                    output="identity")))
    assert f.severity == "serious" and "standardized" in f.title
    s = float(prepare(TrainConfig(standardize_targets=True)).y_scaler.std[0])
    assert f"{1 / s ** 2:.3g}×" in f.why  # every squared error scaled by 1/std²


def test_identity_output_on_class_labels_is_the_question_3_model():
    found = quick(TrainConfig(output="identity"))
    assert ids(found, "serious") == ["no-output-activation"]
    assert found[0].number == 2


# ---- 3, 4 --------------------------------------------------------------------------------
def test_unstandardized_inputs_are_serious():
    prep = prepare(TrainConfig())
    raw = prep.dataset.X
    prep = dataclasses.replace(
        prep, x_scaler=Standardizer(np.zeros(2), np.ones(2)),
        problem=dataclasses.replace(prep.problem, x_train=raw[prep.train_idx],
                                    x_test=raw[prep.test_idx]))
    (f,) = doctor.check_feature_scales(prep)
    assert f.id == "features-not-standardized" and f.severity == "serious"
    assert "x_2" in f.saw
    # the standardized default only gets the informational note about raw scales
    (g,) = doctor.check_feature_scales(prepare(TrainConfig()))
    assert g.severity == "info" and "1.09e+03" in g.saw


def ps5_grid(n=20):
    g1, g2 = np.meshgrid(np.linspace(-6, -4, n), np.linspace(-900, 1035, n))
    return np.column_stack([g1.ravel(), g2.ravel()])


def test_check_grid_catches_own_statistics_and_raw_grids():
    model = prepare(TrainConfig())  # anything with an x_scaler; a Model works the same
    scaler = model.x_scaler
    raw = ps5_grid()
    right = scaler.transform(raw)
    own = Standardizer.fit(raw).transform(raw)
    assert doctor.check_grid(scaler, right, raw) == []
    assert doctor.check_grid(scaler, right) == []
    assert ids(doctor.check_grid(scaler, own, raw)) == ["grid-own-statistics"]
    assert ids(doctor.check_grid(scaler, own)) == ["grid-own-statistics"]  # without the raw
    assert ids(doctor.check_grid(scaler, raw, raw)) == ["grid-not-standardized"]
    assert ids(doctor.check_grid(scaler, raw)) == ["grid-not-standardized"]
    assert ids(doctor.check_grid(scaler, right * 1.1, raw)) == ["grid-mismatch"]
    assert all(f.severity == "serious" and f.number == 4
               for f in doctor.check_grid(scaler, own, raw))


def test_check_grid_accepts_a_model():
    from scratchnet.core.model import Model

    prep = prepare(TrainConfig())
    model = Model(prep.layout, init_weights(prep.layout), "sse", prep.x_scaler)
    raw = ps5_grid(5)
    assert doctor.check_grid(model, model.standardize(raw), raw) == []
    assert doctor.check_grid(Model(prep.layout, init_weights(prep.layout)), raw) == []


def test_standardizing_with_the_test_rows_is_leakage():
    found = doctor.check_leakage(prepare(TrainConfig(faithful=True)))
    assert ids(found) == ["standardized-with-test-rows"]
    assert doctor.check_leakage(prepare(TrainConfig())) == []


def test_test_rows_standardized_with_their_own_statistics():
    prep = prepare(TrainConfig())
    raw_test = prep.dataset.X[prep.test_idx]
    prep.problem.x_test = Standardizer.fit(raw_test).transform(raw_test)
    (f,) = doctor.check_leakage(prep)
    assert f.id == "grid-own-statistics" and "test rows" in f.title


# ---- 5 -----------------------------------------------------------------------------------
def test_comparison_without_a_shared_init():
    lay = Layout.build(2, 7)
    w = init_weights(lay)
    assert doctor.check_shared_init(w, w.copy(), lay) == []
    other = w.copy()
    other[20] += 3.0
    (f,) = doctor.check_shared_init(w, other, lay)
    assert f.severity == "serious" and "w21: x_2 → n7" in f.saw and "3" in f.saw
    assert doctor.check_shared_init(w, w[:5])[0].id == "init-not-shared"


# ---- PS5 Question 3's five differences (trust/differences.py) ---------------------------
def test_the_five_differences_are_one_table_and_question_3_has_all_five():
    assert [d.key for d in D.DIFFERENCES] == ["output", "standardize_targets", "grid_stats",
                                             "loss_scale", "init_from"]
    right = TrainConfig()
    assert D.present(right, prepare(right), D.Setup()) == []
    q3 = TrainConfig(output="identity", standardize_targets=True)
    assert D.present(q3, prepare(q3), D.Setup.ps5_q3()) == list(D.DIFFERENCES)


def test_the_doctor_options_describe_each_difference():
    import argparse

    p = argparse.ArgumentParser()
    D.add_arguments(p)
    config = TrainConfig()
    args = p.parse_args(["--grid-stats", "self", "--loss-scale", "mean"])
    assert D.from_args(args, config) == (config, D.Setup("self", "mean", "seed"))
    q3_config, setup = D.from_args(p.parse_args(["--ps5-q3"]), config)
    assert setup == D.Setup("none", "sum", "torch-default")
    assert q3_config.output == "identity" and q3_config.standardize_targets
    with pytest.raises(SystemExit):
        p.parse_args(["--init-from", "xavier"])


def test_pytorch_default_init_is_uniform_within_one_over_sqrt_fan_in():
    lay = Layout.build(64, 200)
    w = D.torch_default_weights(lay, seed=3)
    for l, W in enumerate(lay.views(w)):
        bound = 1 / np.sqrt(lay.sizes[l])
        assert np.all(np.abs(W) <= bound) and np.abs(W).max() > 0.95 * bound
        assert W.std() == pytest.approx(bound / np.sqrt(3), rel=0.1)  # U(−b, b): std b/√3
    assert not np.allclose(w, D.torch_default_weights(lay, seed=4))


def test_the_grid_standardized_three_ways():
    config = TrainConfig()
    prep = prepare(config)
    raw = D.map_grid(prep.dataset.X, n=30)
    assert raw.shape == (900, 2)
    own = D.grid_inputs(raw, prep.x_scaler, "self")
    np.testing.assert_allclose(own.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(own.std(axis=0), 1, atol=1e-12)
    np.testing.assert_allclose(D.grid_inputs(raw, prep.x_scaler, "train"),
                               prep.x_scaler.transform(raw))
    assert ids(doctor.check_setup(prep, config, D.Setup(grid_stats="self"))) == [
        "grid-own-statistics"]
    assert ids(doctor.check_setup(prep, config, D.Setup(grid_stats="none"))) == [
        "grid-not-standardized"]


def test_a_scaled_loss_is_named_with_its_factor():
    assert D.loss_factor("half", 80) == 1 and D.loss_factor("sum", 80) == 2
    assert D.loss_factor("mean", 80) == pytest.approx(2 / 80)
    assert doctor.check_loss_scale("half", 80) == []
    (f,) = doctor.check_loss_scale("sum", 80)
    assert f.number == 5 and f.severity == "serious" and "2η" in f.why


def test_question_3_names_all_five_differences_with_their_measured_effects():
    config = TrainConfig(output="identity", standardize_targets=True, epochs=3000)
    found, _ = doctor.diagnose(config, setup=D.Setup.ps5_q3(), check_epochs=3000,
                               time_limit=30)
    by_id = {f.id: f for f in found}
    for fid in ("no-output-activation", "targets-out-of-range", "grid-not-standardized",
                "loss-scale-differs", "init-not-shared"):
        assert by_id[fid].severity == "serious"
        assert "of the map's grid points change class" in by_id[fid].effect
    assert "all 5 together" in by_id["differences-together"].saw
    assert "effect:" in by_id["loss-scale-differs"].format()


def test_a_measured_effect_is_the_run_it_describes():
    """The doubled loss is measured as a run with 2η: its loss and accuracy are that run's."""
    config = TrainConfig(epochs=2000)
    prep = prepare(config)
    setup = D.Setup(loss_scale="sum")
    (e,), n = D.measure(config, prep, setup, D.present(config, prep, setup), check_epochs=2000,
                        time_limit=30)
    assert n == 2000 and e.key == "loss_scale"
    twice, once = train(replace(config, lr=2e-4, log_every=0)), train(replace(config,
                                                                              log_every=0))
    assert e.numbers["train_loss"] == pytest.approx(twice.final["train_loss"], rel=1e-9)
    assert e.numbers["right_train_loss"] == pytest.approx(once.final["train_loss"], rel=1e-9)
    assert e.numbers["test_acc"] == pytest.approx(twice.final["test_acc"])
    assert 0 <= e.numbers["map_changed_share"] <= 1


def test_the_right_setup_measures_nothing_and_quick_measures_nothing():
    config = TrainConfig(output="identity", epochs=500)
    assert D.measure(config, prepare(config), D.Setup(), []) == ([], 0)
    found = quick(config, setup=D.Setup.ps5_q3())
    assert all(f.effect == "" for f in found)
    assert "loss-scale-differs" in ids(found) and "init-not-shared" in ids(found)


# ---- 6 -----------------------------------------------------------------------------------
def test_divergence_is_serious():
    found, _ = doctor.diagnose(TrainConfig(output="identity", lr=0.05), check_epochs=1000)
    (f,) = [f for f in found if f.number == 6]
    assert f.id == "lr-too-large" and f.severity == "serious" and "non-finite" in f.saw


def test_a_loss_that_ends_higher_than_it_started_is_serious():
    found, _ = doctor.diagnose(TrainConfig(lr=3.0), check_epochs=500)
    (f,) = [f for f in found if f.number == 6]
    assert f.id == "lr-too-large" and f.severity == "serious"


def test_an_oscillating_loss_is_a_warning():
    t = np.arange(400)
    loss = 10 * 0.99 ** t + 1 + 0.2 * (t % 2)  # falls overall, zig-zags every epoch
    (f,) = doctor.check_learning_rate(loss, 0.5, budget=400)
    assert f.id == "lr-too-large" and f.severity == "warning" and "rose in 50" in f.saw


def test_a_loss_still_falling_at_the_end_of_the_budget():
    t = np.arange(2000)
    slow = 1 + 10 * 0.9995 ** t  # halves its gap every ~1400 epochs
    (f,) = doctor.check_learning_rate(slow, 1e-4, budget=2000)
    assert f.id == "lr-too-small" and f.severity == "warning"
    # the gap to the plateau (10·0.9995^2000 ≈ 3.7) needs ln(0.01·L/3.7)/ln(0.9995) ≈ 11800
    # more epochs to fall under 1 % of the loss; the estimate is printed in the finding
    more = np.log(0.01 * 1.0 / (10 * 0.9995 ** 1999)) / np.log(0.9995)
    est = float(f.saw.split("roughly ")[1].split(" more")[0].replace(",", ""))
    assert abs(est - more) / more < 0.05
    settled = 1 + 10 * 0.99 ** t
    assert doctor.check_learning_rate(settled, 1e-2, budget=2000) == []
    # the same slow curve is fine when the real budget is long enough to finish it
    assert doctor.check_learning_rate(slow, 1e-4, budget=100_000) == []


def test_a_tiny_learning_rate_is_reported_end_to_end():
    found, _ = doctor.diagnose(TrainConfig(lr=1e-6, epochs=3000), check_epochs=3000)
    assert "lr-too-small" in ids(found, "warning")


# ---- 7 -----------------------------------------------------------------------------------
def test_saturated_hidden_units():
    config = TrainConfig()
    w0 = 10 * init_weights(prepare(config).layout)
    (f,) = [f for f in quick(config, w0=w0) if f.number == 7]
    assert f.id == "saturated-units" and f.severity == "warning" and "of 7 units" in f.saw


def test_dead_relu_units_and_vanishing_gradients():
    config = TrainConfig(activation="relu", hidden=(7, 7), init="he")
    w0 = init_weights(prepare(config).layout, "he")
    Layout.build(2, (7, 7)).views(w0)[0][0] = -10.0  # every first-layer bias far negative
    found = [f for f in quick(config, w0=w0) if f.number == 7]
    assert set(ids(found)) == {"saturated-units", "vanishing-gradients"}
    assert "dead ReLU" in found[0].saw


def test_vanishing_gradients_in_a_deep_sigmoid_network():
    found = quick(TrainConfig(hidden=(7,) * 8, init="xavier"))
    (f,) = [f for f in found if f.id == "vanishing-gradients"]
    assert f.severity == "warning" and "layer 9" in f.saw
    assert "vanishing-gradients" not in ids(quick(TrainConfig()))


# ---- 8 -----------------------------------------------------------------------------------
def test_test_loss_rising_reports_the_best_epoch():
    t = np.arange(1000)
    train = 10 * 0.995 ** t + 1
    test = 3 + 1e-5 * (t - 300) ** 2  # best at epoch 300
    (f,) = doctor.check_overfitting(train, test)
    assert f.id == "test-loss-rising" and "epoch 300" in f.saw and "--epochs 300" in f.fix
    assert doctor.check_overfitting(train, train) == []


def test_overfitting_found_on_the_ps5_data():
    found, _ = doctor.diagnose(TrainConfig(lr=0.05), check_epochs=3000)
    (f,) = [f for f in found if f.number == 8]
    best = int(f.saw.split("at epoch ")[1].split(";")[0])
    assert 0 < best < 2999


# ---- 9 -----------------------------------------------------------------------------------
def test_class_imbalance(tmp_path, rng):
    X = rng.randn(100, 2)
    y = (np.arange(100) < 8).astype(int)  # 8 % of class 1
    found = doctor.check_data(prepare(TrainConfig(data=write_csv(tmp_path, X, y))))
    (f,) = [f for f in found if f.id == "class-imbalance"]
    assert f.severity == "warning" and "8.0%" in f.saw and "92.0%" in f.why


def test_duplicate_rows(tmp_path, rng):
    X = rng.randn(100, 2)
    X[50:60] = X[:10]  # ten duplicates; with 0.2 test rows some pairs straddle the split
    y = rng.randint(0, 2, 100)
    found = doctor.check_data(prepare(TrainConfig(data=write_csv(tmp_path, X, y))))
    (f,) = [f for f in found if f.id == "duplicate-rows"]
    assert "20 rows" in f.saw and "10 groups" in f.saw and f.severity == "warning"


def test_too_few_rows_per_weight():
    (f,) = [f for f in doctor.check_data(prepare(TrainConfig(hidden=(50,))))
            if f.id == "few-rows-per-weight"]
    assert f.severity == "warning" and "80 training rows for 201 weights" in f.saw


# ---- ordering ----------------------------------------------------------------------------
def test_findings_are_sorted_most_serious_first_and_deduplicated():
    mk = lambda n, i, s: doctor.Finding(n, i, s, "t", "saw", "why", "fix")  # noqa: E731
    out = doctor.sort_findings([mk(9, "a", "info"), mk(3, "b", "warning"), mk(7, "c", "info"),
                                mk(7, "c", "warning"), mk(2, "d", "serious")])
    assert [(f.id, f.severity) for f in out] == [("d", "serious"), ("b", "warning"),
                                                 ("c", "warning"), ("a", "info")]
