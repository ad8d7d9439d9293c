"""Fuzzing the playground: Schemathesis against its OpenAPI schema, Hypothesis-made WebSocket
messages.  No answer is a 500, none carries internal error text, memory stays bounded.

Lean on purpose (a fixed seed, a few dozen examples each): the whole file runs in seconds.
"""
import json
import warnings

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from scratchnet.web.app import create_app  # noqa: E402

# the test client's own name is the server's name here; Schemathesis runs its own app (its
# client runs the app's lifespan, whose end stops that app's tabs as Ctrl-C does)
APP = create_app(host="testserver")
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(host="testserver"))
INTERNAL = ("Traceback", "internal error:", "Exception", "Error:", "File \"")


@schema.parametrize()
@settings(max_examples=15, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_the_http_api_never_fails_inside(case):
    response = case.call()
    assert response.status_code < 500, response.text
    assert not any(w in response.text for w in INTERNAL), response.text[:300]


def test_the_schema_lists_every_endpoint():
    paths = TestClient(APP).get("/openapi.json").json()["paths"]
    assert {"/healthz", "/api/meta", "/api/upload"} <= set(paths)
    assert "multipart/form-data" in paths["/api/upload"]["post"]["requestBody"]["content"]


# ---- WebSocket messages --------------------------------------------------------------------
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=8)
TYPES = ["config", "play", "pause", "step", "reset", "speed", "export", "ack", "weight", "warp"]
KEYS = ["epochs", "epochs_per_frame", "seq", "k", "value", "data", "network"]
messages = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(TYPES)},
                          optional={k: values for k in KEYS}),
    st.fixed_dictionaries({"type": st.just("config"),
                           "data": st.fixed_dictionaries({}, optional={
                               "name": st.sampled_from(["ps5", "moons", "bumps", "upload", "x"]),
                               "n_samples": values, "noise": values, "seed": values,
                               "extras": values, "problem": values, "test_size": values}),
                           "network": st.fixed_dictionaries({}, optional={
                               "hidden": st.lists(st.integers(-2, 70), max_size=5) | values,
                               "lr": values, "seed": values, "activation": values,
                               "epochs": values, "l1": values, "l2": values,
                               "batch_size": values, "optimizer": values})}),
    values,
)


def _answers(ws, n_sent: int) -> list[dict]:
    """Every message up to the answer of a final config (frames acked on the way)."""
    ws.send_json({"type": "config", "data": {"name": "ps5"}, "network": {"epochs": 50}})
    out = []
    for _ in range(200 + 20 * n_sent):
        m = ws.receive_json()
        out.append(m)
        if m["type"] == "frame":
            ws.send_json({"type": "ack", "seq": m["seq"]})
        if m["type"] == "ready":
            return out
    raise AssertionError("no ready after the fuzzed messages")


@given(st.lists(messages, min_size=1, max_size=6))
@settings(max_examples=25, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_fuzzed_websocket_messages_get_plain_answers(msgs):
    client = TestClient(APP)
    with client.websocket_connect("ws://testserver/ws") as ws:
        for m in msgs:
            ws.send_text(json.dumps(m))
        answers = _answers(ws, len(msgs))
    for a in answers:
        assert a["type"] in ("ready", "frame", "progress", "error", "model"), a
        if a["type"] == "error":
            assert not any(w in a["message"] for w in INTERNAL), a["message"]
            assert "internal error" not in a["message"], a["message"]


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/statm"), reason="Linux /proc")
def test_a_flood_of_messages_keeps_memory_bounded():
    """25 messages of 12 MB took the old server from 758 to 1093 MB: now each is dropped with a
    reason as it arrives, and the process does not keep them."""
    client = TestClient(APP)
    big = json.dumps({"type": "config", "pad": "x" * 12_000_000})
    with client.websocket_connect("ws://testserver/ws") as ws:
        _answers(ws, 0)  # a run, drawn: the tab is in use
        before = _rss()
        for _ in range(25):
            ws.send_text(big)
        answers = _answers(ws, 25)
        grown = _rss() - before
    dropped = [a for a in answers if a["type"] == "error" and "dropped" in a["message"]]
    print(f"25 messages of 12 MB: {len(dropped)} dropped with a reason, RSS grew {grown / 1e6:.0f} MB")
    assert dropped and "12,000,0" in dropped[0]["message"]
    assert grown < 150_000_000  # not 25 × 12 MB = 300 MB kept
