"""scratchnet.sklearn: scikit-learn's own estimator checks, the problem set's numbers through
the estimator API, and the estimator inside Pipeline / GridSearchCV / cross_val_score /
pandas / joblib's Dask backend."""
import numpy as np
import pytest
from sklearn.datasets import load_iris, make_moons
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from scratchnet.core.data import load_data
from scratchnet.core.model import Model
from scratchnet.core.network import init_weights
from scratchnet.sklearn import ScratchNetClassifier, ScratchNetRegressor
from scratchnet.training.train import TrainConfig, train

# Small epoch counts keep the ~220 checks to about a second; they still have to reach
# scikit-learn's accuracy (> 0.83) and R² (> 0.5) bars.  The second instance of each class
# exercises mini-batches, other optimizers, a validation split and the non-default
# output/loss; the third classifier the schedules, penalties, jitter and early stopping.
ESTIMATORS = [
    ScratchNetClassifier(epochs=50, lr=1.0),
    ScratchNetClassifier(epochs=20, lr=1.0, output="softmax", loss="sse", batch_size=16,
                         optimizer="momentum", momentum=0.5, validation_fraction=0.2),
    ScratchNetClassifier(epochs=30, lr=0.05, optimizer="adam", beta1=0.8, schedule="cosine",
                         lr_min=0.005, l2=1e-3, l1=1e-4, jitter=0.05, batch_size=16,
                         early_stopping=True, patience=5),
    ScratchNetRegressor(epochs=50),
    ScratchNetRegressor(epochs=20, lr=0.05, batch_size=16, optimizer="adam", standardize=False,
                        validation_fraction=0.2),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    # check_array_api_input (NumPy namespace) skips itself unless SCIPY_ARRAY_API is set; the
    # variable only switches on scikit-learn's dispatch here (the estimator never calls scipy),
    # so set it for the run of that check instead of leaving it skipped.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


def ps5_xy():
    ds = load_data("ps5")
    return ds.X, ds.y


def test_classifier_reproduces_the_problem_set_run():
    # The problem set's setup through the estimator API: sigmoid / ½Σ loss / summed gradient,
    # lr 1e-4, w1..w29 = np.random.seed(0); randn(29), 80/20 split with random_state 0 and the
    # inputs standardized with the training rows' statistics.  Same numbers as `train`.
    epochs = 300
    result = train(TrainConfig(epochs=epochs, engine="numpy"))
    X, y = ps5_xy()
    clf = ScratchNetClassifier(hidden=7, output="sigmoid", loss="sse", lr=1e-4, epochs=epochs,
                               init="normal", reduction="sum", validation_fraction=0.2,
                               random_state=0).fit(X, y)
    np.testing.assert_allclose(clf.w_, result.model.w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(clf.loss_curve_, result.history.train_loss, rtol=1e-12)
    np.testing.assert_allclose(clf.validation_loss_curve_, result.history.test_loss,
                               rtol=1e-12)
    assert clf.n_iter_ == epochs and clf.loss_ == clf.loss_curve_[-1]
    assert clf.layout_.sizes == (2, 7, 1) and clf.w_.shape == (29,)
    np.testing.assert_allclose(clf.predict_proba(X), result.model.predict_proba(X),
                               atol=1e-12)


# The problem set's setup (as above) with one option each: the estimator with reduction="sum"
# is the same run as `scratchnet train` with the same TrainConfig field.
PS5 = dict(hidden=7, output="sigmoid", loss="sse", init="normal", reduction="sum",
           validation_fraction=0.2, random_state=0)


@pytest.mark.parametrize("options", [
    dict(schedule="step", step_size=7, gamma=0.5), dict(schedule="exponential", gamma=0.97),
    dict(schedule="cosine", lr_min=1e-3), dict(l2=0.5), dict(l1=0.3), dict(jitter=0.3),
    dict(optimizer="adam", lr=0.05, beta1=0.8, beta2=0.99, eps=1e-6),
    dict(optimizer="rmsprop", lr=0.05, rho=0.9, eps=1e-4),
    # early stopping: stops at epoch 16 (best 6) / runs out of epochs and puts back epoch 6
    dict(optimizer="adam", lr=0.05, early_stopping=True, patience=10, epochs=400),
    dict(optimizer="adam", lr=0.05, early_stopping=True, patience=10, epochs=12),
    # mini-batches: the shuffle of epoch t is optim.epoch_rng(seed, t)'s, as `scratchnet train`
    dict(batch_size=16, optimizer="momentum", lr=0.005, momentum=0.8),
    dict(batch_size=20, optimizer="adam", lr=0.05, jitter=0.2, l2=0.1, schedule="cosine"),
], ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_every_training_option_matches_scratchnet_train(options):
    options = {"lr": 0.01, "epochs": 60, **options}
    # the estimator's validation rows are `scratchnet train`'s test rows: early stopping there
    # watches the test split, train's explicit choice validation_fraction=0
    watch_test = {"validation_fraction": 0} if options.get("early_stopping") else {}
    result = train(TrainConfig(engine="numpy", **options, **watch_test))
    X, y = ps5_xy()
    clf = ScratchNetClassifier(**PS5, **options).fit(X, y)
    np.testing.assert_allclose(clf.w_, result.model.w, rtol=0, atol=1e-10)
    np.testing.assert_allclose(clf.loss_curve_, result.history.train_loss, rtol=1e-10)
    np.testing.assert_allclose(clf.validation_loss_curve_, result.history.test_loss,
                               rtol=1e-10)
    # ... and the option changes training: not the weights of the plain run
    plain = ScratchNetClassifier(**PS5, **{k: v for k, v in options.items()
                                           if k in ("lr", "epochs", "optimizer")}).fit(X, y)
    assert np.abs(clf.w_ - plain.w_).max() > 1e-3
    if "l2" in options or "l1" in options:  # the penalties shrink the non-bias weights
        mask = np.ones_like(clf.w_)
        for W in clf.layout_.views(mask):
            W[0] = 0.0
        assert np.linalg.norm(clf.w_ * mask) < 0.95 * np.linalg.norm(plain.w_ * mask)
    if options.get("early_stopping"):
        assert clf.best_epoch_ == result.final["best_epoch"] == 6
        assert clf.best_loss_ == min(clf.validation_loss_curve_)
        assert clf.n_iter_ == len(result.history) == min(options["epochs"], 17)


def rel_err(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


# (estimator, options): mini-batches with every kind of step, penalty, jitter, a schedule,
# a validation split and early stopping, mean and sum reduction, the multi-output regressor
ENGINE_CASES = [
    (ScratchNetClassifier, dict(optimizer="adam", lr=0.01, batch_size=32)),
    (ScratchNetClassifier, dict(optimizer="momentum", lr=0.1, momentum=0.8, l2=1e-2,
                                batch_size=20, validation_fraction=0.2)),
    (ScratchNetClassifier, dict(optimizer="nesterov", lr=0.05, jitter=0.3, l1=1e-3,
                                batch_size=50, schedule="step", step_size=7, hidden=(6, 5),
                                activation="tanh")),
    (ScratchNetClassifier, dict(optimizer="rmsprop", lr=0.01, batch_size=16, reduction="sum",
                                early_stopping=True, patience=4, epochs=200)),
    (ScratchNetClassifier, dict(optimizer="adam", lr=0.02, l2=1e-3)),  # full batch
    (ScratchNetRegressor, dict(optimizer="adam", lr=0.01, batch_size=25, jitter=0.1,
                               validation_fraction=0.25)),
]


@pytest.mark.parametrize("cls, options", ENGINE_CASES,
                         ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items())
                         if isinstance(o, dict) else o.__name__)
def test_numpy_and_compiled_engines_fit_the_same(monkeypatch, cls, options):
    # The estimator builds the shared engines: the compiled loop where `auto` takes it, the
    # readable numpy loop when numba is absent (forced here); same weights and curves to 1e-12
    import scratchnet.sklearn as sk
    from scratchnet.engines import fast as compiled

    if not compiled.available():
        pytest.skip("numba is not installed: only the numpy engine runs")
    X, y = load_iris(return_X_y=True)
    if cls is ScratchNetRegressor:
        X, y = X[:, :2], np.column_stack([X[:, 2], X[:, 3] - X[:, 2]])  # two outputs
    kw = {"epochs": 25, "random_state": 2, **options}
    fast = cls(**kw).fit(X, y).partial_fit(X, y)  # the optimizer state carries over
    monkeypatch.setattr(sk, "compiled_engine", lambda name: None)
    slow = cls(**kw).fit(X, y).partial_fit(X, y)
    assert (fast.engine_, slow.engine_) == ("fast", "numpy")
    assert fast.n_iter_ == slow.n_iter_ == len(fast.loss_curve_) > 2
    assert rel_err(fast.w_, slow.w_) <= 1e-12
    assert rel_err(fast.loss_curve_, slow.loss_curve_) <= 1e-12
    if "validation_fraction" in options or "early_stopping" in options:
        assert rel_err(fast.validation_loss_curve_, slow.validation_loss_curve_) <= 1e-12
    if "early_stopping" in options:
        assert fast.best_epoch_ == slow.best_epoch_ < fast.n_iter_ - 1 < 200
    assert np.abs(fast.w_ - cls(**kw).fit(X, y).w_).max() > 1e-6  # partial_fit did a step


def test_partial_fit_goes_on_after_an_early_stopped_fit():
    X, y = make_moons(200, noise=0.3, random_state=0)
    clf = ScratchNetClassifier(hidden=32, activation="tanh", optimizer="adam", lr=0.05,
                               epochs=2000, early_stopping=True, patience=20, random_state=0)
    clf.fit(X, y)
    stopped, w = clf.n_iter_, clf.w_.copy()
    assert stopped < 2000
    for _ in range(3):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == stopped + 3 and np.abs(clf.w_ - w).max() > 1e-6


@pytest.mark.parametrize("regressor", [False, True])
def test_full_batch_fit_equals_scikit_learns_mlp(regressor):
    # Full batch, reduction="mean", plain gradient descent, from the same starting weights:
    # the weights of MLPClassifier / MLPRegressor (solver="sgd", no momentum, alpha=0)
    from sklearn.datasets import load_diabetes, load_wine
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    X, y = (load_diabetes if regressor else load_wine)(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    if regressor:
        y = (y - y.mean()) / y.std()
    epochs, lr = 40, 0.05 if regressor else 0.5
    cls = ScratchNetRegressor if regressor else ScratchNetClassifier
    ours = cls(hidden=(16,), lr=lr, epochs=epochs, standardize=False, random_state=0).fit(X, y)
    mlp = (MLPRegressor if regressor else MLPClassifier)(
        hidden_layer_sizes=(16,), activation="logistic", solver="sgd", alpha=0.0,
        batch_size=len(X), learning_rate_init=lr, momentum=0.0, nesterovs_momentum=False,
        shuffle=False, max_iter=1,
        tol=0.0, n_iter_no_change=10**9, warm_start=True, random_state=0)
    with pytest.warns(Warning):  # ConvergenceWarning of the set-up epoch
        mlp.fit(X, y)
    w0 = init_weights(ours.layout_, "xavier", 0)  # the estimator's draw for random_state=0
    views = ours.layout_.views(w0)
    mlp.coefs_ = [W[1:].copy() for W in views]
    mlp.intercepts_ = [W[0].copy() for W in views]
    mlp.loss_curve_, mlp.t_, mlp.n_iter_, mlp.max_iter = [], 0, 0, epochs
    with pytest.warns(Warning):
        mlp.fit(X, y)
    w_mlp = np.concatenate([np.vstack([b[None, :], W]).ravel()
                            for W, b in zip(mlp.coefs_, mlp.intercepts_)])
    assert np.max(np.abs(ours.w_ - w_mlp)) <= 1e-12
    assert np.max(np.abs(w_mlp - w0)) > 1e-3  # (it trained)


def test_early_stopping_stops_and_keeps_the_best_weights():
    X, y = make_moons(200, noise=0.3, random_state=0)
    common = dict(hidden=32, activation="tanh", optimizer="adam", lr=0.05, random_state=0)
    clf = ScratchNetClassifier(**common, epochs=2000, early_stopping=True, patience=20)
    clf.fit(X, y)
    val = np.array(clf.validation_loss_curve_)
    assert clf.n_iter_ == len(clf.loss_curve_) == len(val) == clf.best_epoch_ + 21 < 2000
    assert clf.best_epoch_ == val.argmin() and clf.best_loss_ == val.min()
    assert val[-1] > clf.best_loss_
    # w_ is the run stopped at the best epoch; None held out 0.1 of the rows
    best = ScratchNetClassifier(**common, epochs=clf.best_epoch_, validation_fraction=0.1)
    np.testing.assert_array_equal(clf.w_, best.fit(X, y).w_)
    np.testing.assert_array_equal(best.validation_loss_curve_, val[:clf.best_epoch_])
    # partial_fit never stops early and clears nothing it should not
    inc = ScratchNetClassifier(**common, early_stopping=True, patience=1)
    for _ in range(5):
        inc.partial_fit(X, y)
    assert inc.n_iter_ == 5 and not hasattr(inc, "best_epoch_")


def test_new_options_keep_partial_fit_equal_to_fit_and_jitter_seeded():
    X, y = make_moons(120, noise=0.2, random_state=1)
    opts = dict(optimizer="nesterov", lr=0.2, momentum=0.8, schedule="cosine", lr_min=0.01,
                l2=1e-3, jitter=0.2, batch_size=32, epochs=30, random_state=3)
    full = ScratchNetClassifier(**opts).fit(X, y)
    inc = ScratchNetClassifier(**opts)
    for _ in range(30):
        inc.partial_fit(X, y)
    np.testing.assert_allclose(inc.w_, full.w_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(inc.loss_curve_, full.loss_curve_, rtol=1e-12)
    again = ScratchNetClassifier(**opts).fit(X, y)
    np.testing.assert_array_equal(again.w_, full.w_)  # the jitter comes from random_state
    other = ScratchNetClassifier(**{**opts, "jitter": 0.0}).fit(X, y)
    assert np.abs(other.w_ - full.w_).max() > 1e-3


@pytest.mark.parametrize("bad, message", [
    (dict(beta1=1.0), "beta1 must be a number in \\[0, 1\\)"), (dict(rho=-0.1), "rho must"),
    (dict(eps=0), "eps must be a positive"), (dict(schedule="linear"), "schedule must be one"),
    (dict(step_size=0), "step_size must be a positive integer"),
    (dict(gamma=0.0), "gamma must be a positive"), (dict(lr_min=-1.0), "lr_min must be"),
    (dict(l2=float("nan")), "l2 must be a number >= 0"), (dict(l1=-1), "l1 must be"),
    (dict(jitter="a"), "jitter must be"), (dict(early_stopping="yes"), "early_stopping must"),
    (dict(patience=0.5), "patience must be a positive integer"),
])
def test_new_options_are_validated_in_fit(bad, message):
    X, y = make_moons(40, random_state=0)
    reg = ScratchNetRegressor(**bad)  # __init__ only stores
    assert reg.get_params()[next(iter(bad))] is next(iter(bad.values()))
    with pytest.raises(ValueError, match=message):
        reg.fit(X, y)


def test_coefs_are_views_of_w_in_problem_set_order():
    X, y = ps5_xy()
    clf = ScratchNetClassifier(epochs=5, random_state=0).fit(X, y)
    W0, W1 = clf.coefs_
    assert W0.shape == (3, 7) and W1.shape == (8, 1)  # rows: bias first, then inputs
    assert np.shares_memory(W0, clf.w_) and np.shares_memory(W1, clf.w_)
    np.testing.assert_array_equal(W0[1], clf.w_[7:14])  # w8..w14: x_1 → n1..n7
    assert W1[0, 0] == clf.w_[21]  # w22: bias → output


def test_partial_fit_continues_exactly_like_more_epochs():
    X, y = make_moons(120, noise=0.2, random_state=1)
    # adam's moments and step count carry over from one call to the next
    full = ScratchNetClassifier(epochs=30, optimizer="adam", lr=0.05, random_state=3).fit(X, y)
    inc = ScratchNetClassifier(optimizer="adam", lr=0.05, random_state=3)
    for _ in range(30):
        inc.partial_fit(X, y)
    assert inc.n_iter_ == 30
    np.testing.assert_allclose(inc.w_, full.w_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(inc.loss_curve_, full.loss_curve_, rtol=1e-12)


def test_partial_fit_takes_classes_on_the_first_call():
    X, y = load_iris(return_X_y=True)
    clf = ScratchNetClassifier(random_state=0)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])  # the first batch lacks class 2
    assert clf.classes_.tolist() == [0, 1, 2] and clf.layout_.sizes[-1] == 3
    clf.partial_fit(X, y)
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(X[:3], [0, 1, 7])


def test_multiclass_gets_softmax_and_string_labels_work():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = ScratchNetClassifier(epochs=300, random_state=0).fit(X, names)
    assert clf.layout_.output == "softmax" and clf.layout_.sizes == (4, 7, 3)
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert clf.score(X, names) > 0.9
    assert set(clf.predict(X)) <= set(names)
    with pytest.raises(ValueError, match="one output unit"):
        ScratchNetClassifier(output="sigmoid").fit(X, y)
    with pytest.raises(ValueError, match="does not go with"):
        ScratchNetClassifier(loss="ce").fit(X[y < 2], y[y < 2])


@pytest.mark.parametrize("optimizer, lr", [("gd", 0.5), ("sgd", 0.5), ("momentum", 0.1),
                                           ("nesterov", 0.1), ("rmsprop", 0.01),
                                           ("adam", 0.01)])
def test_every_shared_optimizer_trains(optimizer, lr):
    X, y = make_moons(200, noise=0.2, random_state=0)
    clf = ScratchNetClassifier(hidden=8, activation="tanh", optimizer=optimizer, lr=lr,
                               epochs=300, batch_size=50, random_state=0).fit(X, y)
    assert clf.loss_curve_[-1] < 0.6 * clf.loss_curve_[0]
    assert clf.score(X, y) > 0.85


def test_mean_reduction_makes_lr_independent_of_row_count():
    X, y = make_moons(80, noise=0.2, random_state=0)
    X2, y2 = np.vstack([X, X]), np.r_[y, y]  # every row twice: same mean gradient
    a = ScratchNetClassifier(epochs=40, random_state=0).fit(X, y)
    b = ScratchNetClassifier(epochs=40, random_state=0).fit(X2, y2)
    np.testing.assert_allclose(a.w_, b.w_, rtol=1e-10, atol=1e-12)
    s = ScratchNetClassifier(epochs=40, reduction="sum", lr=0.5 / 80, random_state=0)
    c = s.fit(X, y)  # the summed gradient with lr / N is the same step
    np.testing.assert_allclose(c.w_, a.w_, rtol=1e-10, atol=1e-12)
    assert c.loss_curve_[0] == pytest.approx(80 * a.loss_curve_[0], rel=1e-12)


def test_regressor_fits_a_smooth_function_and_multioutput():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(200, 2))
    y = 300 + 100 * np.sin(X[:, 0]) + 50 * X[:, 1]  # large target scale: standardized inside
    reg = ScratchNetRegressor(hidden=(16,), activation="tanh", epochs=2000,
                              optimizer="momentum", lr=0.1, random_state=0).fit(X, y)
    assert reg.score(X, y) > 0.98
    assert reg.predict(X).shape == (200,)
    assert reg.loss_curve_[-1] < 0.05 * reg.loss_curve_[0]
    Y = np.column_stack([y, -2 * y])
    multi = ScratchNetRegressor(epochs=200, random_state=0).fit(X, Y)
    assert multi.predict(X).shape == (200, 2) and multi.n_outputs_ == 2


def test_divergence_is_a_clear_error():
    X = np.linspace(-1, 1, 40)[:, None]
    reg = ScratchNetRegressor(activation="identity", standardize=False, lr=50.0, epochs=500,
                              random_state=0)
    with pytest.raises(ValueError, match="diverged.*lower lr"):
        reg.fit(X, 1e3 * X[:, 0])


def test_pipeline_gridsearch_cross_val_and_dataframes():
    pd = pytest.importorskip("pandas")
    X, y = make_moons(150, noise=0.2, random_state=0)
    df = pd.DataFrame(X, columns=["width", "height"])
    pipe = make_pipeline(StandardScaler(), ScratchNetClassifier(epochs=200, standardize=False,
                                                                random_state=0))
    scores = cross_val_score(pipe, df, y, cv=3)
    assert scores.mean() > 0.8
    grid = GridSearchCV(ScratchNetClassifier(epochs=100, random_state=0),
                        {"hidden": [3, (8, 4)], "activation": ["sigmoid", "tanh"]}, cv=3)
    grid.fit(df, y)
    assert grid.best_estimator_.feature_names_in_.tolist() == ["width", "height"]
    assert grid.best_estimator_.layout_.input_names == ("width", "height")
    assert grid.best_estimator_.layout_.weight_name(3).startswith("w4: width")
    with pytest.raises(ValueError, match="feature names"):
        grid.best_estimator_.predict(df.rename(columns={"width": "w"}))


def test_to_model_predicts_the_same_and_saves(tmp_path):
    X, y = ps5_xy()
    clf = ScratchNetClassifier(epochs=50, random_state=0).fit(X, y)
    model = clf.to_model()
    model.save(tmp_path / "m.json")
    loaded = Model.load(str(tmp_path / "m.json"))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-12)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_gridsearch_on_dask_joblib_backend_matches_serial():
    distributed = pytest.importorskip("distributed")
    import joblib

    X, y = make_moons(120, noise=0.25, random_state=2)
    params = {"hidden": [3, 7], "lr": [0.3, 1.0]}
    est = ScratchNetClassifier(epochs=100, random_state=0)
    serial = GridSearchCV(est, params, cv=3).fit(X, y)
    # everything on 127.0.0.1, the status page on a free port (8787 may be taken)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
            dist = GridSearchCV(est, params, cv=3, n_jobs=-1).fit(X, y)
        # the fits really ran on the cluster's worker processes
        workers = {task["worker"] for task in stream.data}
        assert stream.data and workers <= set(client.scheduler_info()["workers"])
    assert dist.best_params_ == serial.best_params_
    np.testing.assert_allclose(dist.cv_results_["mean_test_score"],
                               serial.cv_results_["mean_test_score"], rtol=0, atol=1e-12)
