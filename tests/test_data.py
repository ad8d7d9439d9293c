import os

import numpy as np
import pytest

from scratchnet.core.data import (Standardizer, check_classification, check_features, load_data,
                             read_csv, split_indices)
from scratchnet.core.errors import DataError, OptionError


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
    """The refusal names the option, not a flag: each edge spells it its own way."""
    with pytest.raises(OptionError, match="too few") as e:
        split_indices(2, 0.2, 0)
    assert e.value.name == "test_size" and "--" not in str(e.value)
    assert e.value.worded(lambda n: "--" + n.replace("_", "-")).startswith("--test-size: 0.2")
    with pytest.raises(OptionError, match="between 0 and 1") as e:
        split_indices(10, 1.5, 0, option="validation_fraction")
    assert e.value.name == "validation_fraction"


def test_target_optional_for_prediction_files(tmp_path):
    ds = read_csv(write(tmp_path, "x_1,x_2\n1,2\n"), target="classification",
                  target_optional=True)
    assert np.isnan(ds.y).all() and ds.X.shape == (1, 2)


def test_bundled_names_load():
    ps5 = load_data("ps5")
    assert ps5.X.shape == (100, 2) and ps5.source == "ps5"
    moons = load_data("moons", n_samples=50, noise=0.1, seed=3)
    assert moons.X.shape == (50, 2)


# ---- the fast reader and the row-by-row one agree; extreme data is a data error -------------
def slow_read(path, **kw):
    """The row-by-row reader alone (keep_rows skips numpy's C reader)."""
    return read_csv(path, keep_rows=True, **kw)


@pytest.mark.parametrize("text", [
    "x_1,x_2,classification\n1,2,0\n3.5,-4e-3,1\n",
    "x_1,x_2,classification\r\n1,2,0\r\n3.5,-4e-3,1\r\n",
    "x_1,x_2,classification\n1,2,0\n3.5,-4e-3,1",  # no final newline
    "\ufeffx_1,x_2,classification\n1,2,0\n3,4,1\n",  # a UTF-8 BOM
    "c,x_2,x_1,classification\nname,2,1,0\nother,4,3,1\n",  # a text column, unused
    "x_1,x_2,classification\n 1 , 2 ,0\n3,4, 1\n",
    'x_1,x_2,classification\n"1",2,0\n3,"4",1\n',  # quotes: row-by-row reader
    "x_1,x_2,classification\n1,2,0\n\n3,4,1\n\n",  # blank lines: row-by-row reader
])
def test_fast_and_row_by_row_readers_agree(tmp_path, text):
    p = tmp_path / "d.csv"
    p.write_bytes(text.encode())
    fast, slow = read_csv(str(p)), slow_read(str(p))
    np.testing.assert_array_equal(fast.X, slow.X)
    np.testing.assert_array_equal(fast.y, slow.y)
    assert fast.feature_names == slow.feature_names == ("x_1", "x_2")
    assert slow.rows[0][-1] == "classification"


@pytest.mark.parametrize("text,pattern", [
    ("x_1,x_2,classification\n1,2,0\n3,4,1,9\n", r"row 3: has 4 fields, the header has 3"),
    ("x_1,x_2,classification\n1,2,0\n3\n", r"row 3: has 1 fields"),
    ("x_1,x_2,x_1,classification\n1,2,3,0\n", r"column 'x_1' appears twice in the header "
     r"\(columns 1 and 3\)"),
    ("x_1,x_2,classification\n1," + "9" * 140_000 + ",0\n",
     r"row 2, column x_2: a field of 140,000 characters \(at most 131,072\)"),
    ("x_1,x_2,classification\n1,0." + "0" * 140_000 + "1,0\n", r"row 2, column x_2: a field"),
    ("x_1,x_2,classification\n1,2,0\n3,1e400,1\n", r"row 3, column x_2: '1e400' is not a finite"),
    ("x_1,x_2,classification\n1,2,0\n3,4,\n", r"row 3, column classification: '' is not a number"),
])
def test_bad_rows_are_named_whichever_reader_sees_them(tmp_path, text, pattern):
    p = tmp_path / "d.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=pattern):
        read_csv(str(p))


def test_non_utf8_and_nul(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes(b"x_1,x_2,classification\n1,2,0\n3,\xe9,1\n")
    with pytest.raises(DataError, match=r"d\.csv line 3: not UTF-8 text \(byte 0xe9\)"):
        read_csv(str(p))
    p.write_bytes(b"x_1,x_2,classification\n1,2,0\n3,\x004,1\n")
    with pytest.raises(DataError, match=r"row 3, column x_2: '\x004' is not a number"):
        read_csv(str(p))


def test_chosen_columns_twice_and_an_empty_target(tmp_path):
    p = write(tmp_path, "x_1,x_2,classification\n1,2,0\n3,4,1\n")
    with pytest.raises(DataError, match="column 'x_1' is chosen twice as a feature"):
        read_csv(p, features=("x_1", "x_1"))
    with pytest.raises(DataError, match="no column ''"):
        read_csv(p, target="")


def test_a_pipe_is_read_once(tmp_path):
    r, w = os.pipe()
    os.write(w, b"x_1,x_2,classification\n1,2,0\n3,4,1\n")
    os.close(w)
    ds = read_csv(f"/dev/fd/{r}", keep_rows=True)
    os.close(r)
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4]])
    assert ds.rows == [["x_1", "x_2", "classification"], ["1", "2", "0"], ["3", "4", "1"]]


def test_a_big_file_takes_the_fast_path_with_bounded_memory(tmp_path):
    import tracemalloc

    rng = np.random.default_rng(0)
    A = np.column_stack([rng.normal(size=(20_000, 2)), rng.integers(0, 2, 20_000)])
    p = tmp_path / "big.csv"
    np.savetxt(p, A, delimiter=",", header="x_1,x_2,classification", comments="", fmt="%.17g")
    tracemalloc.start()
    ds = read_csv(str(p))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_array_equal(ds.X, A[:, :2])
    np.testing.assert_array_equal(ds.y, A[:, 2])
    assert peak <= 3 * p.stat().st_size  # no Python object per row


@pytest.mark.parametrize("values,pattern", [
    ([1e300, 2e300, 3e300], r"row 4, column x_1: 3e\+300 is too large to standardize"),
    ([1.7e308, -1.7e308, 0.0], r"row 2, column x_1: 1.7e\+308 is too large"),
    ([1e-320, 2e-320, 3e-320], r"column x_1 varies by only .*e-320 \(std 0\), too little"),
])
def test_extreme_values_are_named_by_column(tmp_path, values, pattern):
    rows = "".join(f"{v!r},{i},{i % 2}\n" for i, v in enumerate(values))
    ds = read_csv(write(tmp_path, "x_1,x_2,classification\n" + rows))
    with np.errstate(all="raise"):  # and without a numpy warning on the way
        with pytest.raises(DataError, match=pattern):
            check_features(ds)
