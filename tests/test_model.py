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
