"""The playground's HTTP API and WebSocket protocol, with FastAPI's in-process test client."""
import base64
import io
import json
import socket
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("fastapi")
with warnings.catch_warnings():  # starlette's TestClient warns about httpx at import time
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from scratchnet.core.backprop import loss_and_grad  # noqa: E402
from scratchnet.cli import main  # noqa: E402
from scratchnet.core.data import bundled_csv  # noqa: E402
from scratchnet.core.model import Model  # noqa: E402
from scratchnet.core.network import Layout, init_weights  # noqa: E402
from scratchnet.training.train import History, TrainConfig, prepare, run_epochs  # noqa: E402
from scratchnet.web.app import create_app  # noqa: E402
from scratchnet.web.formula import local_weight_formula  # noqa: E402
from scratchnet.web.session import Limits  # noqa: E402

PS5 = {"type": "config", "data": {"name": "ps5"}, "network": {}}
WS = "ws://localhost/ws"  # the page's own host (the test client's default name is refused)


def local_client(app=None) -> TestClient:
    """The test client as the page on this machine: Host localhost (the default 'testserver'
    is a name the playground refuses, as it refuses any name a foreign page could rebind)."""
    return TestClient(app or create_app(), base_url="http://localhost")


@pytest.fixture
def client():
    return local_client()


def f32(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=np.float32)


def recv(ws, kind: str, max_messages: int = 500) -> dict:
    """The next message of type ``kind`` (acking frames on the way); an error fails."""
    for _ in range(max_messages):
        m = ws.receive_json()
        if m["type"] == "frame":
            ws.send_json({"type": "ack", "seq": m["seq"]})
        if m["type"] == kind:
            return m
        assert m["type"] != "error", m["message"]
    raise AssertionError(f"no {kind!r} message")


def recv_error(ws) -> str:
    for _ in range(500):
        m = ws.receive_json()
        if m["type"] == "error":
            return m["message"]
        if m["type"] == "frame":
            ws.send_json({"type": "ack", "seq": m["seq"]})
    raise AssertionError("no error message")


def configure(ws, msg=PS5) -> tuple[dict, dict]:
    ws.send_json(msg)
    return recv(ws, "ready"), recv(ws, "frame")


def strip(frame: dict) -> dict:
    return {k: v for k, v in frame.items() if k != "seq"}


# ---- HTTP -------------------------------------------------------------------------------
def test_healthz_and_meta(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    meta = client.get("/api/meta").json()
    assert set(meta["datasets"]) == {"ps5", "moons", "circles", "xor", "gaussians", "spiral"}
    assert meta["limits"]["upload_bytes"] == 1_000_000 and meta["limits"]["rows"] == 20_000
    assert meta["limits"]["hidden_layers"] == 4 and meta["limits"]["units"] == 64
    assert meta["losses"]["sse"] == "E = ½ Σᵢ (yᵢ − ŷᵢ)²"
    assert {"gd", "adam"} <= set(meta["options"])


def test_page_and_assets_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '/static/app.js' in page.text and '/static/style.css' in page.text
    import re

    for asset in ("index.html", "app.js", "style.css"):
        r = client.get(f"/static/{asset}")
        assert r.status_code == 200 and len(r.text) > 500
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", r.text), \
            f"{asset} refers to an outside address: the page must work offline"


# ---- the protocol -----------------------------------------------------------------------
def test_ps5_first_frame_is_the_problem_sets_network(client):
    with client.websocket_connect(WS) as ws:
        info, frame = configure(ws)
    assert info["layout"]["sizes"] == [2, 7, 1] and info["describe"] == "2-7-1"
    assert info["weight_names"][7] == "w8: x_1 → n1"
    assert info["formulas"][7] == ("∂E/∂w8 = Σ (β_O1 − y) β_O1(1 − β_O1) · w23 · "
                                   "β_H1(1 − β_H1) · x_1")
    assert info["loss_formula"] == "E = ½ Σᵢ (yᵢ − ŷᵢ)²"
    assert info["n_train"] == 80 and info["n_test"] == 20 and sum(info["points"]["test"]) == 20
    assert frame["epoch"] == 0 and frame["status"] == "ready"
    # the weights are the problem set's np.random.seed(0); np.random.randn(29) draw
    np.testing.assert_array_equal(f32(frame["w"]), np.random.RandomState(0).randn(29)
                                  .astype(np.float32))
    prep = prepare(TrainConfig())
    w0 = init_weights(prep.layout, "normal", 0)
    e0, g0 = loss_and_grad(prep.layout, "sse", w0, prep.problem.x_train, prep.problem.y_train)
    assert frame["train_loss"] == pytest.approx(e0, rel=1e-12)
    np.testing.assert_allclose(f32(frame["grad"]), g0, rtol=1e-6, atol=1e-7)
    assert len(base64.b64decode(frame["map"])) == info["map_res"] ** 2
    assert len(base64.b64decode(frame["thumbs"][0])) == 7 * info["thumb_res"] ** 2


def test_step_runs_the_engines_epochs(client):
    with client.websocket_connect(WS) as ws:
        configure(ws, {"type": "config", "data": {"name": "ps5"}, "network": {"lr": 0.01}})
        ws.send_json({"type": "step", "epochs": 25})
        frame = recv(ws, "frame")
    assert frame["epoch"] == 25 and frame["status"] == "paused"
    prep = prepare(TrainConfig(lr=0.01))
    w = init_weights(prep.layout, "normal", 0)
    hist = History.empty(25)
    run_epochs(prep.layout, "sse", w, prep.problem, 0.01, 0, 25, hist)
    np.testing.assert_allclose(f32(frame["w"]), w, rtol=1e-6, atol=1e-6)
    # the curve: the loss per row of every epoch since the first frame (which had epoch 0)
    assert [p[0] for p in frame["curve"]] == list(range(1, 26))
    assert frame["curve"][2][1] == pytest.approx(hist.train_loss[3] / 80, rel=1e-9)


def test_play_streams_at_least_20_frames_per_second_and_pause_stops(client):
    with client.websocket_connect(WS) as ws:
        configure(ws, {"type": "config", "data": {"name": "ps5"},
                       "network": {"epochs": 1_000_000, "lr": 0.01}})
        ws.send_json({"type": "play"})
        first = recv(ws, "frame")
        t0, n, frame = time.perf_counter(), 0, first
        while time.perf_counter() - t0 < 1.5:
            frame = recv(ws, "frame")
            n += 1
        fps = n / (time.perf_counter() - t0)
        ws.send_json({"type": "pause"})
        while frame["status"] != "paused":
            frame = recv(ws, "frame")
        stopped_at = frame["epoch"]
        ws.send_json({"type": "step", "epochs": 1})
        after = recv(ws, "frame")
    print(f"playground frames: {fps:.1f} per second")
    assert fps >= 20
    assert first["status"] == "running" and stopped_at > first["epoch"]
    assert frame["train_loss"] < first["train_loss"]
    assert after["epoch"] == stopped_at + 1  # nothing ran while paused


def test_reset_gives_the_very_same_first_frame_and_run(client):
    cfg = {"type": "config", "data": {"name": "moons", "noise": 0.2, "seed": 3},
           "network": {"hidden": [5, 4], "activation": "tanh", "lr": 0.01, "seed": 11,
                       "init": "xavier"}}
    with client.websocket_connect(WS) as ws:
        _, first = configure(ws, cfg)
        ws.send_json({"type": "step", "epochs": 40})
        at40 = recv(ws, "frame")
        ws.send_json({"type": "reset"})
        again = recv(ws, "frame")
        ws.send_json({"type": "step", "epochs": 40})
        again40 = recv(ws, "frame")
    assert at40["epoch"] == 40 and at40["w"] != first["w"]
    assert strip(again) == strip(first)
    assert strip(again40) == strip(at40)
    with client.websocket_connect(WS) as ws:  # another tab, same settings: same start
        _, other = configure(ws, cfg)
    assert strip(other) == strip(first)


def test_minibatch_adam_is_reproducible_too(client):
    cfg = {"type": "config", "data": {"name": "xor"},
           "network": {"optimizer": "adam", "batch_size": 16, "lr": 0.01, "hidden": [6]}}
    with client.websocket_connect(WS) as ws:
        info, _ = configure(ws, cfg)
        ws.send_json({"type": "step", "epochs": 15})
        a = recv(ws, "frame")
        ws.send_json({"type": "reset"})
        recv(ws, "frame")
        ws.send_json({"type": "step", "epochs": 15})
        b = recv(ws, "frame")
    assert "adam" in info["optimizer"] and "mini-batches of 16" in info["optimizer"]
    assert a["w"] == b["w"] and a["train_loss"] < a["curve"][0][1] * 160


def test_many_classes_use_softmax_and_send_the_winning_class(client):
    cfg = {"type": "config", "data": {"name": "spiral", "n_classes": 3, "n_samples": 150},
           "network": {"output": "softmax", "loss": "ce", "hidden": [8], "lr": 0.01}}
    with client.websocket_connect(WS) as ws:
        info, frame = configure(ws, cfg)
        ws.send_json({"type": "config", "data": {"name": "spiral", "n_classes": 3},
                      "network": {}})
        message = recv_error(ws)
    assert info["multiclass"] and len(info["classes"]) == 3
    cls = np.frombuffer(base64.b64decode(frame["map_class"]), np.uint8)
    assert cls.size == 48 * 48 and set(np.unique(cls)) <= {0, 1, 2}
    assert "softmax" in message and "--" not in message  # the page's words, not the CLI's


def test_divergence_stops_with_a_message_and_finite_numbers(client):
    cfg = {"type": "config", "data": {"name": "ps5"},
           "network": {"activation": "relu", "output": "identity", "lr": 50, "hidden": [16]}}
    with client.websocket_connect(WS) as ws:
        configure(ws, cfg)
        ws.send_json({"type": "step", "epochs": 500})
        frame = recv(ws, "frame")
        ws.send_json({"type": "play"})
        message = recv_error(ws)
        ws.send_json({"type": "export"})
        kept = np.array(recv(ws, "model")["model"]["w"])
    assert frame["status"] == "diverged" and "lower the learning rate" in frame["message"]
    assert 0 < frame["epoch"] < 500 and np.all(np.isfinite(kept))  # the last finite epoch
    assert frame["train_loss"] is not None and np.isfinite(frame["train_loss"])
    assert "diverged" in message


@pytest.mark.parametrize("network, data, words", [
    ({"hidden": [4, 4, 4, 4, 4]}, {}, "hidden layers: at most 4"),
    ({"hidden": [65]}, {}, "at most 64"),
    ({"hidden": [0]}, {}, "out of range"),
    ({"epochs": 1_000_001}, {}, "epoch budget (at most 1,000,000)"),
    ({"lr": -1}, {}, "learning rate"),
    ({"lr": "fast"}, {}, "'fast' is not a number"),
    ({"activation": "swish"}, {}, "activation: unknown 'swish'"),
    ({"batch_size": 2.5}, {}, "batch size"),
    ({}, {"name": "moons", "n_samples": 20_001}, "at most 20,000 rows"),
    ({}, {"name": "gaussians", "n_classes": 11}, "classes"),
    ({}, {"name": "nope"}, "data set: unknown 'nope'"),
    ({}, {"name": "upload", "upload_id": "missing"}, "upload it again"),
])
def test_limits_are_enforced_with_a_clear_message(client, network, data, words):
    with client.websocket_connect(WS) as ws:
        ws.send_json({"type": "config", "data": {"name": "ps5", **data}, "network": network})
        message = recv_error(ws)
        ws.send_json({"type": "play"})
        assert "no data and network yet" in recv_error(ws)
        info, _ = configure(ws)  # the connection stays usable
    assert words in message
    assert info["describe"] == "2-7-1"


def test_bad_messages_get_an_answer_not_a_crash(client):
    with client.websocket_connect(WS) as ws:
        ws.send_text("{not json")
        assert "JSON" in recv_error(ws)
        ws.send_json({"type": "warp"})
        assert "unknown message type 'warp'" in recv_error(ws)
        ws.send_json({"type": "step", "epochs": 0})
        assert "no data and network yet" in recv_error(ws)
        configure(ws)
        ws.send_json({"type": "step", "epochs": -3})
        assert "step: epochs" in recv_error(ws)
        ws.send_json({"type": "speed", "epochs_per_frame": "x"})
        assert "speed" in recv_error(ws)


def test_tabs_are_independent_and_limited():
    client = local_client(create_app(Limits(sessions=2)))
    with client.websocket_connect(WS) as a, client.websocket_connect(WS) as b:
        configure(a, {"type": "config", "data": {"name": "ps5"}, "network": {"lr": 0.01}})
        configure(b)
        a.send_json({"type": "play"})
        for _ in range(5):
            fa = recv(a, "frame")
        t0 = time.perf_counter()
        assert client.get("/healthz").json()["open_tabs"] == 2
        latency = time.perf_counter() - t0
        b.send_json({"type": "step", "epochs": 1})
        fb = recv(b, "frame")
        a.send_json({"type": "pause"})
        with client.websocket_connect(WS) as c:
            assert "close one" in c.receive_json()["message"]
    assert fa["epoch"] > 0 and fb["epoch"] == 1  # b did not train along with a
    assert latency < 1.0


# ---- uploads ----------------------------------------------------------------------------
def page_token(client) -> str:
    """The upload token a page gets with /api/meta (one per client here)."""
    if not hasattr(client, "page_token"):
        client.page_token = client.get("/api/meta").json()["token"]
    return client.page_token


def upload(client, text: str | bytes, name: str = "mine.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post("/api/upload", files={"file": (name, io.BytesIO(data), "text/csv")},
                       headers={"X-Playground-Token": page_token(client)})


def page_ws(client):
    """The WebSocket of the page that uploaded (its token names its uploads)."""
    return client.websocket_connect(f"{WS}?token={page_token(client)}")


def moons_csv(n: int = 120) -> str:
    from scratchnet.core.datasets import make_moons

    X, y = make_moons(n, 0.15, 4)
    rows = "\n".join(f"{a:.5f},{b * 100:.3f},{a * b:.4f},{int(c)}" for (a, b), c in zip(X, y))
    return "width,height,area,kind\n" + rows + "\n"


def test_upload_then_train_on_it(client):
    r = upload(client, moons_csv())
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["rows"] == 120 and u["columns"] == ["width", "height", "area", "kind"]
    assert u["features"] == ["width", "height"] and u["target"] == "kind"
    cfg = {"type": "config", "data": {"name": "upload", "upload_id": u["upload_id"],
                                      "features": ["width", "height", "area"],
                                      "target": "kind", "test_size": 0.25},
           "network": {"lr": 0.01}}
    with page_ws(client) as ws:
        info, first = configure(ws, cfg)
        ws.send_json({"type": "step", "epochs": 300})
        frame = recv(ws, "frame")
    assert info["source"] == "mine.csv" and info["features"] == ["width", "height", "area"]
    assert info["layout"]["sizes"] == [3, 7, 1] and info["n_test"] == 30
    assert info["weight_names"][7] == "w8: width → n1"
    assert info["weight_names"][14] == "w15: height → n1"
    x0, x1, y0, y1 = info["extent"]  # the map is in the file's own units
    assert x0 < -0.9 and x1 > 1.9 and y0 < -40 and y1 > 90
    assert frame["train_loss"] < first["train_loss"]


@pytest.mark.parametrize("content, status, words", [
    ("x_1,x_2,classification\n" + "1,2,0\n" * 170_000, 413, "up to 1,000,000 bytes"),
    ("x_1,x_2,classification\n" + "1,2,0\n" * 20_001, 400, "20,001 data rows"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", 400, "not a UTF-8 text file"),
    ("", 400, "the file is empty"),
    ("x_1,x_2,classification\n", 400, "no data rows"),
    ("a,b\n1,2\n", 400, "needs at least 3 columns"),
    ("a,a,b\n1,2,3\n", 400, "distinct"),
])
def test_bad_uploads_are_refused_with_a_message(client, content, status, words):
    r = upload(client, content)
    assert r.status_code == status
    assert words in r.json()["error"]


def test_no_file_in_the_upload(client):
    r = client.post("/api/upload", data={"x": "1"},
                    headers={"X-Playground-Token": page_token(client)})
    assert r.status_code == 400 and "no file" in r.json()["error"]


@pytest.mark.parametrize("content, words", [
    ("x_1,x_2,classification\n1,2,0\n3,abc,1\n4,5,0\n", "row 3, column x_2: 'abc' is not a number"),
    ("x_1,x_2,classification\n1,2,0\n3,4,0\n4,5,0\n", "single class"),
    ("x_1,x_2,classification\n1,2,0\n3,4,1\n4,5\n", "row 4: has 2 fields"),
    ("x_1,x_2,classification\n1,2,0.5\n3,4,1\n4,5,0\n", "not an integer class label"),
])
def test_a_bad_file_gives_a_message_naming_row_and_column(client, content, words):
    u = upload(client, content).json()
    with page_ws(client) as ws:
        ws.send_json({"type": "config", "data": {"name": "upload", "upload_id": u["upload_id"],
                                                  "features": u["features"],
                                                  "target": u["target"]}, "network": {}})
        message = recv_error(ws)
    assert words in message and "mine.csv" in message


# ---- export -----------------------------------------------------------------------------
def test_exported_model_loads_with_scratchnet_predict(client, tmp_path, capsys):
    with client.websocket_connect(WS) as ws:
        configure(ws, {"type": "config", "data": {"name": "ps5"}, "network": {"lr": 0.01}})
        ws.send_json({"type": "step", "epochs": 300})
        frame = recv(ws, "frame")
        ws.send_json({"type": "export"})
        msg = recv(ws, "model")
    d = msg["model"]
    assert d["format"] == "scratchnet-model" and d["weight_names"][7] == "w8: x_1 → n1"
    assert d["final"]["epochs"] == 300
    model = Model.from_dict(json.loads(json.dumps(d)))
    assert set(d) == set(model.to_dict())
    np.testing.assert_allclose(model.w, f32(frame["w"]), rtol=1e-6, atol=1e-6)
    path, out = tmp_path / msg["filename"], tmp_path / "pred.csv"
    path.write_text(json.dumps(d))
    assert main(["predict", "--model", str(path), "--data", bundled_csv("ps5"),
                 "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].endswith("probability,prediction") and len(lines) == 101
    acc = float(capsys.readouterr().out.split()[1])
    n_tr, n_te = 80, 20
    expected = (d["final"]["train_acc"] * n_tr + d["final"]["test_acc"] * n_te) / 100
    assert acc == pytest.approx(expected, abs=1e-9)


# ---- formulas ---------------------------------------------------------------------------
def test_formulas_read_as_the_problem_set_writes_them():
    L = Layout.build(2, 7, 1)
    f = [local_weight_formula(L, "sse", k) for k in range(29)]
    assert f[0] == "∂E/∂w1 = Σ (β_O1 − y) β_O1(1 − β_O1) · w23 · β_H1(1 − β_H1)"
    assert f[14] == "∂E/∂w15 = Σ (β_O1 − y) β_O1(1 − β_O1) · w23 · β_H1(1 − β_H1) · x_2"
    assert f[20].endswith("· w29 · β_H7(1 − β_H7) · x_2")
    assert f[21] == "∂E/∂w22 = Σ (β_O1 − y) β_O1(1 − β_O1)"
    assert f[22] == "∂E/∂w23 = Σ (β_O1 − y) β_O1(1 − β_O1) · β_H1"
    # canonical pairs: δ = ŷ − y; deeper nets: the δ-form with the right weight numbers
    assert local_weight_formula(Layout.build(2, 4, 1, "tanh"), "bce", 16) == \
        "∂E/∂w17 = Σ (β_O1 − y) · β_H4"
    deep = Layout.build(2, (4, 3), 1, "tanh")
    assert deep.weight_name(0) == "w1: b1 → n1.1"
    assert local_weight_formula(deep, "sse", 0).startswith(
        "∂E/∂w1 = Σ δ_H1.1,   δ_H1.1 = (1 − β_H1.1²) · (w16 δ_H2.1 + w17 δ_H2.2 + w18 δ_H2.3)")


def test_the_page_gets_the_derivation_modules_formulas_for_small_networks():
    pytest.importorskip("sympy")
    from scratchnet.web.formula import derived_mathml

    m = derived_mathml(Layout.build(2, 7, 1), "sse")
    assert len(m) == 29 and m[7].startswith('<math display="block">')
    for piece in ("<mi>8</mi>", "<mi>23</mi>", "<mi>H1</mi>", "<mi>O1</mi>", "<mi>x</mi>"):
        assert piece in m[7]
    deep = derived_mathml(Layout.build(2, (4, 3), 1, "tanh"), "sse")
    assert deep[0].count("<math") == 2  # ∂E/∂w1 = δ_H1.1, and δ_H1.1's definition
    assert derived_mathml(Layout.build(2, (64, 64), 1), "sse") is None  # too big: the text


# ---- the command ------------------------------------------------------------------------
def test_playground_command_is_registered_and_reports_a_busy_port(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        code = main(["playground", "--no-browser", "--port", str(port)])
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_no_web_framework_is_imported_until_the_playground_starts():
    code = ("import sys, scratchnet.cli, scratchnet.cli.web, scratchnet.web.session, "
            "scratchnet.web.inputs; scratchnet.cli.build_parser(); "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=300)
    assert out.stdout.strip() == "[]"
