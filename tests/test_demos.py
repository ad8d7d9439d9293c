"""`scratchnet demo …`: each demo shows what it claims (numbers checked), and writes its
figures.  Epochs are kept small; the figures' content is the numbers tested here."""
import numpy as np
import pytest

from scratchnet.report import demos
from scratchnet.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8) == PNG


def test_verdicts_read_off_a_loss_curve():
    down = np.array([10.0, 5.0, 3.0, 2.0])
    assert demos.verdict(down, False, 2.0) == "good"
    assert demos.verdict(down + 2, False, 2.0) == "too small"  # ends at 4 > 1.5 · 2
    assert demos.verdict(np.array([10.0, 5.0, 6.0, 2.0]), False, 2.0) == "oscillating"
    assert demos.verdict(np.array([10.0, 12.0, 30.0]), False, 2.0) == "diverged"  # grows
    assert demos.verdict(down, True, 2.0) == "diverged"


def test_learning_rate_demo_shows_every_regime(tmp_path):
    r = demos.learning_rate(out=str(tmp_path), epochs=800)
    assert r.data["verdicts"] == {1e-4: "too small", 1e-3: "good", 3e-3: "good",
                                  2e-2: "oscillating", 3e-2: "diverged"}
    assert len(r.data["curves"][3e-2]) < 800  # stopped where the loss overflowed
    assert r.figures == [str(tmp_path / "learning-rate.png")] and is_png(r.figures[0])
    assert any("diverged at epoch" in line for line in r.lines)
    # the oscillation, flat at the main scale, is zoomed in: its last epochs, up and down
    fig = demos._lr_figure(r.data["curves"], r.data["verdicts"])
    (inset,) = fig.axes[0].child_axes
    x, y = inset.lines[0].get_data()
    np.testing.assert_array_equal(y, np.asarray(r.data["curves"][2e-2])[x[0]:x[-1] + 1])
    assert np.any(np.diff(y) > 1e-3 * y[:-1]) and np.any(np.diff(y) < 0)  # up and down


def test_vanishing_demo_measures_the_gradient_reaching_the_first_layer(tmp_path):
    r = demos.vanishing(out=str(tmp_path), epochs=5)
    ratio = {label: d["first_over_last"] for label, d in r.data.items()}
    sig_n, sig_x, tanh, relu = (label for _, _, label in demos.VANISHING_SETUPS)
    assert ratio[sig_x] < 1e-4  # slope ≤ ¼ per layer, 8 layers: the gradient vanishes
    assert ratio[sig_n] < 0.1 and r.data[sig_n]["saturated_0"] > 0.05  # saturated units
    assert ratio[tanh] > 0.1 and ratio[relu] > 0.1  # the right init keeps it alive
    assert r.data[sig_n]["monitor"]["grad_norms"].shape == (5, 9)
    assert [p.rsplit("/", 1)[1] for p in r.figures] == ["vanishing.png", "gradients.png"]
    assert all(is_png(p) for p in r.figures)


def test_softmax_demo_probability_maps(tmp_path):
    r = demos.softmax(out=str(tmp_path), epochs=150)
    P = r.data["proba"]
    assert P.shape[1] == 3
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    assert r.data["result"].final["test_acc"] > 0.9
    assert is_png(r.figures[0])


def test_digits_demo_writes_kernels_and_feature_maps(tmp_path):
    r = demos.digits(out=str(tmp_path), epochs=1)
    assert [p.rsplit("/", 1)[1] for p in r.figures] == ["digits-kernels.png",
                                                       "digits-feature-maps.png"]
    assert all(is_png(p) for p in r.figures)
    assert r.data["result"].final["test_acc"] > 0.5  # one epoch already learns a lot
    assert "test acc" in r.lines[1]


def test_demo_command(tmp_path, capsys):
    assert main(["demo", "softmax", "--epochs", "50", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "softmax output" in out and f"wrote {tmp_path / 'softmax.png'}" in out
    assert main(["demo", "softmax", "--n-classes", "2"]) == 2
    assert "3 or more classes" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["demo", "learning-rate", "--lrs", "0.1,abc"])
    assert e.value.code == 2


def test_numbers_quoted_in_the_docs_are_current():
    """docs/doc_numbers.py computes every generated block of the docs (the learning-rate
    table, the logistic-regression figure); they must match what the code gives today."""
    import importlib.util
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("doc_numbers",
                                                  os.path.join(root, "docs", "doc_numbers.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.refresh(check=True) == [], "run: python docs/doc_numbers.py"
    with open(os.path.join(root, "docs", "beyond.md"), encoding="utf-8") as fh:
        assert "<!-- numbers:lr-table -->" in fh.read()
