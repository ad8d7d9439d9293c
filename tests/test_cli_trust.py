"""`scratchnet compare`, `gradcheck` and `doctor` driven through the CLI: exit codes and output."""
import json

import pytest

from scratchnet.core.activations import ACTIVATIONS, Activation, sigmoid
from scratchnet.cli import main

Q3 = ["--standardize-targets", "--output", "identity"]  # PS5 Question 3's setup


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- doctor ------------------------------------------------------------------------------
def test_doctor_on_the_question_3_setup_lists_findings_1_and_2_first(capsys):
    code, out, _ = run(capsys, "doctor", "--data", "ps5", *Q3, "--check-epochs", "2000")
    assert code == 1
    heads = [line for line in out.splitlines() if line.startswith("[")]
    assert heads[0].startswith("[1] SERIOUS") and heads[1].startswith("[2] SERIOUS")
    assert "fix the serious findings first" in out
    code, out, _ = run(capsys, "doctor", "--data", "ps5", *Q3, "--quick", "--json")
    d = json.loads(out)
    assert code == 1 and d["epochs_trained"] == 0 and d["serious"] == 2
    assert [f["number"] for f in d["findings"][:2]] == [1, 2]
    assert {"id", "severity", "title", "saw", "why", "fix"} <= set(d["findings"][0])


def test_doctor_ps5_q3_names_all_five_differences_from_the_command_line(capsys):
    code, out, _ = run(capsys, "doctor", "--data", "ps5", "--ps5-q3", "--quick", "--json")
    ids = {f["id"] for f in json.loads(out)["findings"]}
    assert code == 1 and {"no-output-activation", "targets-out-of-range", "grid-not-standardized",
                          "loss-scale-differs", "init-not-shared"} <= ids
    code, out, _ = run(capsys, "doctor", "--data", "ps5", "--grid-stats", "self",
                       "--loss-scale", "mean", "--quick", "--json")
    ids = {f["id"] for f in json.loads(out)["findings"]}
    assert "loss-scale-differs" in ids and "init-not-shared" not in ids
    assert "no-output-activation" not in ids
    with pytest.raises(SystemExit) as e:
        main(["doctor", "--loss-scale", "double"])
    assert e.value.code == 2


def test_doctor_on_the_clean_ps5_setup_finds_nothing_serious(capsys):
    code, out, _ = run(capsys, "doctor", "--data", "ps5", "--check-epochs", "3000")
    assert code == 0
    assert "SERIOUS" not in out and "0 serious" in out and "3000-epoch training run" in out


def test_doctor_rejects_bad_input(capsys):
    code, _, err = run(capsys, "doctor", "--data", "no-such-file.csv", "--quick")
    assert code == 2 and err.startswith("scratchnet: ")
    with pytest.raises(SystemExit) as e:
        main(["doctor", "--time-limit", "-1"])
    assert e.value.code == 2


# ---- gradcheck ---------------------------------------------------------------------------
def test_gradcheck_passes_and_prints_the_table(capsys):
    code, out, _ = run(capsys, "gradcheck", "--no-autograd")
    assert code == 0
    assert "w8: x_1 → n1" in out and out.strip().splitlines()[-1].startswith("PASS: 29 weights")
    code, out, _ = run(capsys, "gradcheck", "--hidden", "4,3", "--activation", "tanh",
                       "--output", "softmax", "--loss", "ce", "--data", "spiral", "--json")
    d = json.loads(out)
    assert code == 0 and d["passed"] and d["tolerance"] == 1e-4 and d["step"] == 1e-5
    assert len(d["weights"]) == (2 + 1) * 4 + (4 + 1) * 3 + (3 + 1) * 2


def test_gradcheck_fails_with_exit_code_1_on_a_broken_derivative(capsys, monkeypatch):
    broken = Activation("sigmoid", sigmoid, lambda b: 1.5 * b * (1.0 - b), 0.0, 1.0)
    monkeypatch.setitem(ACTIVATIONS, "sigmoid", broken)
    code, out, _ = run(capsys, "gradcheck", "--output", "identity", "--no-autograd")
    assert code == 1
    assert out.strip().splitlines()[-1].startswith("FAIL") and "  FAIL" in out


# ---- compare -----------------------------------------------------------------------------
def test_compare_ps5_float64_after_1e4_epochs(capsys, tmp_path):
    pytest.importorskip("torch", reason="torch not installed (make test installs it)")
    fig = tmp_path / "cmp.png"
    code, out, _ = run(capsys, "compare", "--data", "ps5", "--epochs", "10000", "--json",
                       "--out", str(fig))
    d = json.loads(out)
    assert code == 0 and d["agree"] and d["same_init"]
    assert d["epochs"] == 10000 and d["dtype"] == "float64"
    assert d["max_abs_weight_diff"] <= 1e-9
    assert d["max_abs_loss_diff"] <= 1e-9
    assert [c["epoch"] for c in d["checkpoints"]] == list(range(0, 10001, 1000))
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_float32_and_the_table(capsys):
    pytest.importorskip("torch", reason="torch not installed (make test installs it)")
    code, out, _ = run(capsys, "compare", "--epochs", "1000", "--dtype", "float32", "--json")
    d = json.loads(out)
    assert code == 0 and d["dtype"] == "float32"
    assert 1e-12 < d["max_abs_weight_diff"] <= 1e-3  # float32 rounding, visible but small
    code, out, _ = run(capsys, "compare", "--epochs", "200", "--checkpoints", "2")
    assert code == 0 and "agree" in out and "max |Δw|" in out


def test_compare_without_a_shared_init_disagrees_and_says_why(capsys):
    pytest.importorskip("torch", reason="torch not installed (make test installs it)")
    code, out, _ = run(capsys, "compare", "--epochs", "200", "--torch-init")
    assert code == 1
    assert "DIFFERENT initial weights" in out and "DISAGREE" in out
    assert "[5] SERIOUS  init-not-shared" in out


def test_compare_refuses_what_the_twin_does_not_train(capsys):
    pytest.importorskip("torch", reason="torch not installed (make test installs it)")
    code, _, err = run(capsys, "compare", "--epochs", "10", "--optimizer", "adam")
    assert code == 2 and "plain full-batch gradient descent" in err


def test_everything_but_compare_works_without_torch(capsys, monkeypatch):
    import sys

    from scratchnet.trust import twin

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    assert twin.torch_available() is False
    code, out, _ = run(capsys, "gradcheck")
    assert code == 0 and "torch not installed: no autograd column" in out
    code, out, _ = run(capsys, "doctor", "--quick")
    assert code == 0
    code, _, err = run(capsys, "compare", "--epochs", "10")
    assert code == 2 and "compare needs PyTorch" in err


def test_compare_of_a_diverging_engine_stops_at_its_last_checkpoint(capsys):
    """η = 0.5 on a linear output overflows at epoch 90: the checkpoints before it are
    compared, the divergence is one line naming --lr, exit 2 (as train)."""
    pytest.importorskip("torch")
    code, out, err = run(capsys, "compare", "--output", "identity", "--lr", "0.5", "--epochs",
                         "400", "--checkpoints", "8", "--engine", "numpy", "--json")
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == ["scratchnet: the engine diverged at epoch 90: try a "
                                        "lower --lr (now 0.5); compared up to epoch 50"]
    d = json.loads(out)
    assert d["stopped"] == "diverged" and d["epochs"] == 50 and d["planned_epochs"] == 400
    assert [c["epoch"] for c in d["checkpoints"]] == [0, 50]
    last = d["checkpoints"][-1]  # already huge (~1e173): the two agree relatively
    assert last["engine_train_loss"] > 1e100
    assert last["torch_train_loss"] == pytest.approx(last["engine_train_loss"], rel=1e-9)


def test_compare_refuses_epochs_that_cannot_fit_in_memory(capsys):
    pytest.importorskip("torch")
    code, out, err = run(capsys, "compare", "--epochs", "1e10")
    assert code == 2 and out == ""
    assert err.startswith("scratchnet: --epochs: 10000000000 needs about") and \
        err.count("\n") == 1 and "GB of memory" in err
