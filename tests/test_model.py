import json

import numpy as np
import pytest

from scratchnet.core.errors import ModelFileError
from scratchnet.core.model import Model
from scratchnet.training.train import TrainConfig, train


@pytest.fixture(scope="module")
def trained():
    return train(TrainConfig(epochs=50, lr=1e-2, engine="numpy"))


def test_round_trip_keeps_weights_scalers_and_predictions(trained, tmp_path):
    p = tmp_path / "m.json"
    trained.model.save(str(p))
    m = Model.load(str(p))
    np.testing.assert_array_equal(m.w, trained.model.w)
    X = trained.prepared.dataset.X
    np.testing.assert_array_equal(m.predict_proba(X), trained.model.predict_proba(X))
    d = json.loads(p.read_text())
    assert d["format"] == "scratchnet-model" and d["version"] == 1 and len(d["w"]) == 29
    assert d["weight_names"][7] == "w8: x_1 → n1"


def test_predict_uses_the_stored_standardizer(trained):
    m = trained.model
    X = trained.prepared.dataset.X
    from scratchnet.core.backprop import predict

    z = (X - m.x_scaler.mean) / m.x_scaler.std
    np.testing.assert_allclose(m.predict_proba(X)[:, 1], predict(m.layout, m.w, z)[:, 0])


@pytest.mark.parametrize("mutate,pattern", [
    (lambda d: d.update(format="other"), "not a scratchnet model"),
    (lambda d: d.update(version=99), "version 99 is not supported"),
    (lambda d: d.update(w=d["w"][:-1]), "has 28 values"),
    (lambda d: d.pop("layout"), "malformed"),
    (lambda d: d.update(loss="hinge"), "unknown loss"),
])
def test_malformed_files_are_rejected(trained, tmp_path, mutate, pattern):
    d = trained.model.to_dict()
    mutate(d)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ModelFileError, match=pattern):
        Model.load(str(p))


def test_truncated_file(trained, tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps(trained.model.to_dict())[:200])
    with pytest.raises(ModelFileError, match="not valid JSON"):
        Model.load(str(p))


# ---- the whole file is a contract (issue 12 item 8) ----------------------------------------
@pytest.mark.parametrize("mutate,field,pattern", [
    (lambda d: d["layout"].update(sizes=[2, 7.0, 1]), "layout.sizes[1]", "not a positive whole"),
    (lambda d: d["layout"].update(sizes=[2, True, 1]), "layout.sizes[1]", "not a positive whole"),
    (lambda d: d["layout"].update(sizes=[2, -7, 1]), "layout.sizes[1]", "not a positive whole"),
    (lambda d: d["layout"].update(sizes=[2, 10 ** 12, 1]), "layout.sizes", "more than"),
    (lambda d: d["layout"].update(activations=["swish"]), "layout.activations[0]", "not one of"),
    (lambda d: d["layout"].update(output="hinge"), "layout.output", "not one of"),
    (lambda d: d["layout"].update(input_names=["x_1"]), "layout.input_names", "2 distinct"),
    (lambda d: d.update(classes=[0, 1, 2]), "classes", "has 3 labels, a network with 1 output "
     "needs 2"),
    (lambda d: d.update(classes=[1, 1]), "classes", "repeats a label"),
    (lambda d: d.update(classes=["a", "b"]), "classes[0]", "not a finite number"),
    (lambda d: d["x_scaler"].update(mean=[0.0]), "x_scaler.mean", "has 1 values, the layout "
     "needs 2"),
    (lambda d: d["x_scaler"].update(std=[1.0, 0.0]), "x_scaler.std[1]", "must be positive"),
    (lambda d: d["x_scaler"].update(std=[1.0, 1e999]), "x_scaler.std[1]", "not a finite"),
    (lambda d: d["w"].__setitem__(3, "1"), "w[3]", "not a finite number"),
    (lambda d: d.update(w={"safetensors": "../../etc/passwd", "sha256": "00"}),
     "w.safetensors", "must be a file name in the model's folder"),
    (lambda d: d.update(config=[1]), "config", "must be an object"),
    (lambda d: d.update(final={"a": json.loads("[" * 40 + "]" * 40)}),
     "final", "nested more than 32 deep"),
    (lambda d: d.update(target=3), "target", "must be a column name"),
])
def test_every_field_is_checked_and_named(trained, tmp_path, mutate, field, pattern):
    d = json.loads(json.dumps(trained.model.to_dict()))
    mutate(d)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d).replace("1e999", "Infinity"))
    with pytest.raises(ModelFileError) as e:
        Model.load(str(p))
    msg = str(e.value)
    if "Infinity" in p.read_text():
        assert "non-standard JSON token Infinity" in msg
    else:
        assert msg.startswith(f"{p}: \"{field}\" ") and pattern in msg, msg
    assert "\n" not in msg and "--" not in msg  # one line, no flag the user did not give


def test_deep_nesting_bom_and_non_utf8(trained, tmp_path):
    p = tmp_path / "deep.json"
    p.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ModelFileError, match="nested too deeply"):
        Model.load(str(p))
    p.write_text('{"format": "scratchnet-model", "version": 1, "config": ' + "[" * 200_000
                 + "]" * 200_000 + "}")
    with pytest.raises(ModelFileError, match="nested too deeply"):
        Model.load(str(p))
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(trained.model.to_dict()).encode())
    np.testing.assert_array_equal(Model.load(str(bom)).w, trained.model.w)
    bom.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ModelFileError, match="not UTF-8"):
        Model.load(str(bom))


def test_never_writes_non_finite_numbers(trained, tmp_path):
    import copy

    m = copy.deepcopy(trained.model)
    m.final = {**m.final, "test_loss": float("nan"), "x": np.float64("inf")}
    p = tmp_path / "m.json"
    m.save(str(p))
    text = p.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["final"]["test_loss"] is None
    m.w = m.w.copy()
    m.w[4] = np.inf
    p.write_text("old")
    from scratchnet.core.errors import OutputError

    with pytest.raises(OutputError, match=r"non-finite weights \(w5 is inf\)"):
        m.save(str(p))
    assert p.read_text() == "old"  # the old file untouched


# ---- large models: safetensors beside the JSON (issue 15 item 4) ----------------------------
def big_model():
    from scratchnet.core.data import Standardizer
    from scratchnet.core.model import INLINE_MAX
    from scratchnet.core.network import Layout

    layout = Layout.build(2, (400, 300), 1)
    assert layout.n_params > INLINE_MAX
    w = np.random.default_rng(1).normal(size=layout.n_params) * 0.05
    return Model(layout, w, "sse", Standardizer(np.array([1.0, -2.0]), np.array([2.0, 3.0])),
                 None, np.array([0.0, 1.0]))


def test_big_model_round_trips_through_safetensors(tmp_path):
    m = big_model()
    p = tmp_path / "big.json"
    m.save(str(p))
    d = json.loads(p.read_text())
    name = d["w"]["safetensors"]
    assert name.startswith("big.w-") and name.endswith(".safetensors")
    assert "weight_names" not in d and len(d["w"]["sha256"]) == 64
    back = Model.load(str(p))
    np.testing.assert_array_equal(back.w, m.w)
    X = np.random.default_rng(2).normal(size=(5, 2))
    np.testing.assert_allclose(back.predict_proba(X), m.predict_proba(X), rtol=0, atol=0)
    # saving again replaces the weights file and removes the old one
    m.w = m.w * 0.5
    m.save(str(p))
    files = sorted(f.name for f in tmp_path.iterdir())
    assert len(files) == 2 and name not in files
    np.testing.assert_array_equal(Model.load(str(p)).w, m.w)


def _killed_before_the_json(monkeypatch, model, path):
    """A save that wrote its weights file and died before replacing the JSON (SIGKILL)."""
    import scratchnet.core.model as mod

    def killed(*a, **k):
        raise RuntimeError("killed")

    with monkeypatch.context() as mp:
        mp.setattr(mod, "atomic_write", killed)
        with pytest.raises(RuntimeError, match="killed"):
            model.save(str(path))


def test_a_save_removes_the_weights_file_a_kill_left_behind(tmp_path, monkeypatch):
    m = big_model()
    p = tmp_path / "big.json"
    m.save(str(p))
    first = json.loads(p.read_text())["w"]["safetensors"]
    m.w = m.w * 0.5
    _killed_before_the_json(monkeypatch, m, p)  # an orphan: no JSON names it
    weights = sorted(f.name for f in tmp_path.glob("*.safetensors"))
    assert len(weights) == 2 and first in weights
    np.testing.assert_array_equal(Model.load(str(p)).w, big_model().w)  # the old model loads
    # things that are not this model's orphans are never touched
    keep = ["big.w-notes.txt", "other.w-0123456789ab.safetensors", "big.w-0123.safetensors"]
    for name in keep:
        (tmp_path / name).write_text("not mine")
    m.w = m.w * 0.5
    m.save(str(p))
    now = json.loads(p.read_text())["w"]["safetensors"]
    assert sorted(f.name for f in tmp_path.glob("big.w-*.safetensors")) == sorted(
        [now, "big.w-0123.safetensors"])  # exactly one weights file of the model left
    assert all((tmp_path / name).read_text() == "not mine" for name in keep)
    np.testing.assert_array_equal(Model.load(str(p)).w, m.w)


def test_orphan_removal_keeps_what_another_model_file_of_the_stem_names(tmp_path):
    m = big_model()
    m.save(str(tmp_path / "big.model"))  # a second model file with the same stem
    other = json.loads((tmp_path / "big.model").read_text())["w"]["safetensors"]
    m.w = m.w * 0.5
    m.save(str(tmp_path / "big.json"))
    assert (tmp_path / other).exists()
    np.testing.assert_array_equal(Model.load(str(tmp_path / "big.model")).w, big_model().w)
    # a big model saved small: its weights file is removed, the other model's stays
    small = Model(m.layout.build(2, (3,), 1), np.zeros(13), "sse", m.x_scaler, None,
                  m.classes)
    small.save(str(tmp_path / "big.json"))
    assert sorted(f.name for f in tmp_path.glob("*.safetensors")) == [other]
    np.testing.assert_array_equal(Model.load(str(tmp_path / "big.json")).w, np.zeros(13))


@pytest.mark.parametrize("damage,pattern", [
    ("flip", r'"w.sha256" does not match'),
    ("missing", r'"w.safetensors" cannot read'),
    ("float32", r'"w" .*float32, not float64'),
    ("shape", r'"w" .*has shape \(10,\)'),
    ("nan", r'"w\[7\]" in .* is not finite'),
    ("not_safetensors", r'is not a valid safetensors file'),
])
def test_big_model_weights_are_validated(tmp_path, damage, pattern):
    import hashlib

    from safetensors.numpy import save as st_save

    m = big_model()
    p = tmp_path / "big.json"
    m.save(str(p))
    d = json.loads(p.read_text())
    wp = tmp_path / d["w"]["safetensors"]
    blob = wp.read_bytes()
    if damage == "flip":
        blob = blob[:-8] + bytes(8)
    elif damage == "missing":
        wp.unlink()
    elif damage == "float32":
        blob = st_save({"w": m.w.astype(np.float32)})
    elif damage == "shape":
        blob = st_save({"w": m.w[:10]})
    elif damage == "nan":
        w = m.w.copy()
        w[7] = np.nan
        blob = st_save({"w": w})
    elif damage == "not_safetensors":
        blob = b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}"
    if damage != "missing":
        wp.write_bytes(blob)
        if damage != "flip":
            d["w"]["sha256"] = hashlib.sha256(blob).hexdigest()
            p.write_text(json.dumps(d))
    with pytest.raises(ModelFileError, match=pattern) as e:
        Model.load(str(p))
    assert str(e.value).startswith(f"{p}: ")
