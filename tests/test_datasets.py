import numpy as np
import pytest

from scratchnet.core import datasets
from scratchnet.core.data import bundled_csv, read_csv


def test_committed_ps5_csv_is_the_generator_output():
    X, y = datasets.make_ps5()
    ds = read_csv(bundled_csv("ps5"))
    np.testing.assert_allclose(ds.X, X, atol=1e-9)
    np.testing.assert_array_equal(ds.y, y)


def test_ps5_stand_in_has_the_problem_sets_shape_and_ranges():
    X, y = datasets.make_ps5()
    assert X.shape == (100, 2)
    assert -6.0 <= X[:, 0].min() and X[:, 0].max() <= -4.0
    assert -900.0 <= X[:, 1].min() and X[:, 1].max() <= 1035.0
    assert 0.35 < y.mean() < 0.65


def test_ps5_border_is_curved_so_a_linear_model_cannot_separate_it():
    from sklearn.linear_model import LogisticRegression

    X, y = datasets.make_ps5()
    Z = (X - X.mean(0)) / X.std(0)
    assert LogisticRegression().fit(Z, y).score(Z, y) < 0.8


@pytest.mark.parametrize("name", datasets.NAMES)
def test_generators_are_deterministic_and_two_class_by_default(name):
    X1, y1 = datasets.generate(name, seed=3)
    X2, y2 = datasets.generate(name, seed=3)
    np.testing.assert_array_equal(X1, X2)
    assert set(np.unique(y1)) == {0, 1}
    assert X1.shape[1] == 2 and len(y1) == len(X1)


@pytest.mark.parametrize("name", ["gaussians", "spiral"])
def test_multiclass_variants(name):
    X, y = datasets.generate(name, n_samples=90, n_classes=3)
    assert set(np.unique(y)) == {0, 1, 2} and len(y) == 90
