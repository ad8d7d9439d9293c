import numpy as np
import pytest

from scratchnet.core.data import (Standardizer, check_classification, check_features, load_data,
                             read_csv, split_indices)
from scratchnet.core.errors import DataError


def write(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("n,test_size,seed", [(100, 0.2, 0), (37, 0.3, 5), (10, 0.25, 42)])
def test_split_equals_scikit_learns_train_test_split(n, test_size, seed):
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    tr, te = train_test_split(idx, test_size=test_size, random_state=seed)
    my_tr, my_te = split_indices(n, test_size, seed)
    np.testing.assert_array_equal(my_tr, tr)
    np.testing.assert_array_equal(my_te, te)


def test_standardizer_uses_population_std_and_round_trips(rng):
    A = rng.randn(30, 3) * [1, 10, 1000] + [5, -3, 0]
    s = Standardizer.fit(A)
    np.testing.assert_allclose(s.std, A.std(axis=0))  # ddof = 0, as np.std
    Z = s.transform(A)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1)
    np.testing.assert_allclose(s.inverse(Z), A)
    s2 = Standardizer.from_dict(s.to_dict())
    np.testing.assert_array_equal(s2.transform(A), Z)


def test_reads_default_and_chosen_columns(tmp_path):
    p = write(tmp_path, "a,x_1,x_2,classification\n1,2,3,0\n4,5,6,1\n")
    ds = read_csv(p)
    assert ds.feature_names == ("x_1", "x_2")
    np.testing.assert_array_equal(ds.X, [[2, 3], [5, 6]])
    ds = read_csv(p, features=("a", "x_2"), target="x_1")
    np.testing.assert_array_equal(ds.y, [2, 5])


@pytest.mark.parametrize("text,kw,pattern", [
    ("", {}, r"d\.csv: the file is empty"),
    ("x_1,x_2,classification\n", {}, "header but no data rows"),
    ("x_1,x_3,classification\n1,2,0\n", {},
     r"no column 'x_2' \(columns found: x_1, x_3, classification\)"),
    ("x_1,x_2,classification\n1,2,0\n1,abc,1\n", {}, r"d\.csv row 3, column x_2: 'abc' is not a number"),
    ("x_1,x_2,classification\n1,nan,0\n", {}, r"row 2, column x_2: 'nan' is not a finite number"),
    ("x_1,x_2,classification\n1,inf,0\n", {}, r"row 2, column x_2: 'inf' is not a finite"),
    ("x_1,x_2,classification\n1,2\n", {}, r"row 2: has 2 fields, the header has 3"),
    ("x_1,x_2,y\n1,2,0\n", {"target": "classification"}, r"no column 'classification'"),
])
def test_bad_files_name_file_row_and_column(tmp_path, text, kw, pattern):
    with pytest.raises(DataError, match=pattern):
        read_csv(write(tmp_path, text), **kw)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="nope.csv: no such file"):
        read_csv(str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="is a directory"):
        read_csv(str(tmp_path))


def test_label_checks(tmp_path):
    ds = read_csv(write(tmp_path, "x_1,x_2,classification\n1,2,0\n3,4,0.5\n"))
    with pytest.raises(DataError, match=r"row 3, column classification: label '0.5' is not an"):
        check_classification(ds)
    ds = read_csv(write(tmp_path, "x_1,x_2,classification\n1,2,1\n3,4,1\n"))
    with pytest.raises(DataError, match=r"single class \(1\)"):
        check_classification(ds)
    ds = read_csv(write(tmp_path, "x_1,x_2,classification\n1,2,2\n3,4,5\n5,5,2\n"))
    np.testing.assert_array_equal(check_classification(ds), [2, 5])


def test_constant_feature_is_refused(tmp_path):
    ds = read_csv(write(tmp_path, "x_1,x_2,classification\n1,7,0\n3,7,1\n"))
    with pytest.raises(DataError, match="feature x_2 is constant"):
        check_features(ds)


def test_too_few_rows_for_the_split():
    with pytest.raises(DataError, match="too few"):
        split_indices(2, 0.2, 0)


def test_target_optional_for_prediction_files(tmp_path):
    ds = read_csv(write(tmp_path, "x_1,x_2\n1,2\n"), target="classification",
                  target_optional=True)
    assert np.isnan(ds.y).all() and ds.X.shape == (1, 2)


def test_bundled_names_load():
    ps5 = load_data("ps5")
    assert ps5.X.shape == (100, 2) and ps5.source == "ps5"
    moons = load_data("moons", n_samples=50, noise=0.1, seed=3)
    assert moons.X.shape == (50, 2)
