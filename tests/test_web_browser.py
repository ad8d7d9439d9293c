"""End to end in a real headless Chromium: the page, Play, Reset, uploads, hover, exports.

Debian's ``chromium`` (``make browser`` installs it) driven by Playwright for Python through
``executable_path`` — Playwright never downloads a browser here.  The server is the real one
(uvicorn on a free local port).  Screenshots go to ``test-artifacts/`` (git-ignored).
"""
import json
import pathlib
import shutil
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("playwright")

from scratchnet.cli import main  # noqa: E402
from scratchnet.core.data import bundled_csv  # noqa: E402
from scratchnet.core.model import Model  # noqa: E402

ARTIFACTS = pathlib.Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Debian's chromium is not installed: run `make browser` (or "
                    "`apt-get install chromium`)")
    return path


@pytest.fixture(scope="module")
def server():
    import uvicorn

    from scratchnet.web.app import create_app

    try:
        import websockets  # noqa: F401
    except ImportError:
        pytest.fail("uvicorn serves WebSockets with the 'websockets' package: install it")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port,
                                        log_level="warning", ws_max_size=1 << 20))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    assert srv.started, "the playground server did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    # bypass_csp: Playwright's wait_for_function evaluates its predicate with eval, which the
    # page's Content-Security-Policy forbids; test_web_security.py runs the page under it
    context = browser.new_context(viewport={"width": 1440, "height": 960},
                                  accept_downloads=True, bypass_csp=True)
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server + "/")
    pg.wait_for_function("window.__playground && window.__playground.state.frame")
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def state(pg, expr: str):
    return pg.evaluate(f"(() => {{ const S = window.__playground.state; return {expr}; }})()")


def wait(pg, condition: str, timeout: float = 20_000) -> None:
    """Until ``condition`` (JS, over the page's state S) holds for a drawn run; S.frame is null
    while a new run is being built, so the condition is only asked once there is one."""
    pg.wait_for_function(f"(() => {{ const S = window.__playground.state; "
                         f"return S.info && S.frame && ({condition}); }})()", timeout=timeout)


def map_pixels(pg) -> str:
    return pg.evaluate("document.getElementById('map').toDataURL()")


def shot(pg, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_play_trains_the_map_changes_and_reset_gives_the_same_first_frame(page):
    first = state(page, "S.firstFrame")
    loss0 = state(page, "S.frame.train_loss")
    map0 = map_pixels(page)
    assert state(page, "S.frame.epoch") == 0 and page.inner_text("#describe") == "2-7-1"
    page.click("#play")
    wait(page, "S.frame.epoch >= 3000")
    time.sleep(1.2)  # a full second of steady frames for the count
    fps = page.evaluate("window.__playground.fps()")
    loss = state(page, "S.frame.train_loss")
    print(f"browser frames: {fps} per second at epoch {state(page, 'S.frame.epoch')}")
    # hovering edge w8 shows its PS5 name, value, gradient and chain-rule formula
    x, y = page.evaluate("window.__playground.edgePoint(7)")
    page.mouse.move(x, y)
    page.wait_for_selector("#tip:not([hidden])")
    tip = page.inner_text("#tip")
    shot(page, "playground.png")
    page.click("#play")  # pause
    wait(page, "S.frame.status === 'paused'")
    assert fps >= 20
    assert loss < loss0 and map_pixels(page) != map0
    epochs = state(page, "S.curve.map(p => p[0])")
    assert epochs[0] == 0 and all(a < b for a, b in zip(epochs, epochs[1:]))
    assert "w8: x_1 → n1" in tip and "∂E/∂w now" in tip
    assert "n1…n7 = H1…H7; o1 = O1" in tip and "standardized inputs" in tip  # said once
    if state(page, "S.info.formulas_mathml"):  # scratchnet.report.derive's formula, as MathML
        math = page.eval_on_selector("#tip .f math", "m => m.textContent").replace("\u2062", "")
        assert math == "∂E∂w8=∑n(βO1−y)βO1(1−βO1)w23βH1(1−βH1)x1"  # Σ over the rows n
    else:
        assert "∂E/∂w8 = Σ (β_O1 − y) β_O1(1 − β_O1) · w23 · β_H1(1 − β_H1) · x_1" in tip
    assert "E = ½ Σᵢ (yᵢ − ŷᵢ)²" in page.inner_text("#loss-formula")

    page.mouse.move(5, 5)
    page.click("#reset")
    wait(page, "S.frame.epoch === 0")
    again = state(page, "({w: S.frame.w, map: S.frame.map, thumbs: S.frame.thumbs.join('|')})")
    assert again == first
    # the very same first picture, once the canvas has redrawn the frame (its drawing may lag
    # the state by an animation frame on a loaded machine)
    deadline = time.monotonic() + 5
    while map_pixels(page) != map0 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert map_pixels(page) == map0
    assert state(page, "S.curve.length") == 1


def test_upload_a_csv_and_train_on_it(page, tmp_path):
    from scratchnet.core.datasets import make_circles

    X, y = make_circles(160, 0.08, 2)
    path = tmp_path / "rings.csv"
    path.write_text("u,v,ring\n" + "".join(f"{a * 10:.4f},{b * 10:.4f},{int(c) + 1}\n"
                                           for (a, b), c in zip(X, y)))
    page.set_input_files("#file", str(path))
    wait(page, "S.info.source === 'rings.csv'")
    assert page.inner_text("#datasets button.on").strip() == "rings.csv"
    assert "rings.csv: 160 rows" in page.inner_text("#data-note")
    assert state(page, "S.info.classes") == [1, 2]
    loss0 = state(page, "S.frame.train_loss")
    page.fill("#lr", "0.01")
    page.click("#play")  # the new learning rate goes first, then Play
    wait(page, "S.frame.epoch >= 1500")
    assert state(page, "S.info.lr") == 0.01
    page.click("#play")
    assert state(page, "S.frame.train_loss") < loss0
    assert page.is_hidden("#error")
    shot(page, "playground-upload.png")


def test_a_bad_csv_shows_the_error_on_the_page(page, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("x_1,x_2,classification\n1,2,0\n3,abc,1\n4,5,0\n")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#error:not([hidden])")
    assert "bad.csv row 3, column x_2: 'abc' is not a number" in page.inner_text("#error")
    huge = tmp_path / "huge.csv"
    huge.write_text("x_1,x_2,classification\n" + "1,2,0\n" * 200_000)
    page.click("#error-close")
    page.set_input_files("#file", str(huge))
    page.wait_for_selector("#error:not([hidden])")
    assert "up to 1,000,000 bytes" in page.inner_text("#error")
    shot(page, "playground-bad-csv.png")
    # the page still works: back to PS5 and train a step
    page.click('#datasets button[data-name="ps5"]')
    wait(page, "S.info.source === 'ps5'")
    page.click("#step")
    wait(page, "S.frame.epoch === 1")


def test_tabs_train_independently_and_exports_work(page, browser, server, tmp_path):
    import httpx

    other = browser.new_page(viewport={"width": 1200, "height": 900}, bypass_csp=True)
    other.goto(server + "/")
    other.wait_for_function("window.__playground && window.__playground.state.frame")
    page.click("#play")
    wait(page, "S.frame.epoch >= 2000")
    t0 = time.perf_counter()
    assert httpx.get(server + "/healthz", timeout=5).status_code == 200
    latency = time.perf_counter() - t0
    page.click("#play")
    wait(page, "S.frame.status === 'paused'")
    assert state(other, "S.frame.epoch") == 0  # the other tab did not train
    other.close()
    assert latency < 1.0

    with page.expect_download() as dl:
        page.click("#export-model")
    model_path = tmp_path / "model.json"
    dl.value.save_as(model_path)
    model = Model.load(str(model_path))
    assert model.layout.sizes == (2, 7, 1)
    assert model.final["epochs"] == state(page, "S.frame.epoch")
    assert main(["predict", "--model", str(model_path), "--data", bundled_csv("ps5"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    with page.expect_download() as dl:
        page.click("#export-png")
    png = tmp_path / "fig.png"
    dl.value.save_as(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert json.loads(model_path.read_text())["weight_names"][7] == "w8: x_1 → n1"


# ---- other web pages ---------------------------------------------------------------------
EVIL_PAGE = """<!doctype html><html><body><h1>some other web site</h1>
<iframe id="frame" src="{server}/" width="400" height="300"></iframe>
<script>
window.result = {{}};
const ws = new WebSocket("{ws}/ws");
ws.onopen = () => {{ window.result.ws = "open";
  ws.send(JSON.stringify({{type: "config", data: {{name: "moons", n_samples: 20000}},
                          network: {{hidden: [64, 64, 64, 64]}}}})); }};
ws.onerror = () => {{ window.result.ws = window.result.ws || "error"; }};
ws.onclose = (e) => {{ window.result.closed = e.code; }};
const form = () => {{ const fd = new FormData();
  fd.append("file", new Blob(["x_1,x_2,classification\\n1,2,0\\n3,4,1\\n"]), "evil.csv");
  return fd; }};
fetch("{server}/api/upload", {{method: "POST", mode: "no-cors", body: form()}})
  .then(() => window.result.blind = "sent", () => window.result.blind = "failed");
fetch("{server}/api/upload", {{method: "POST", body: form(),
                                headers: {{"X-Playground-Token": "guess"}}}})
  .then(() => window.result.cors = "read", () => window.result.cors = "blocked");
fetch("{server}/api/meta").then(r => r.json()).then(m => window.result.token = m.token,
                                                   () => window.result.meta = "blocked");
</script></body></html>"""


@pytest.fixture(scope="module")
def evil_site(server):
    """A page on a second origin (another local port): any web site the user visits."""
    import http.server

    html = EVIL_PAGE.format(server=server, ws=server.replace("http://", "ws://")).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://localhost:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


def test_a_page_on_another_origin_can_neither_open_the_socket_nor_upload(browser, server,
                                                                         evil_site):
    import httpx

    before = httpx.get(server + "/healthz").json()
    context = browser.new_context()
    pg = context.new_page()
    console = []
    pg.on("console", lambda m: console.append(m.text))
    pg.goto(evil_site)
    for _ in range(100):
        r = pg.evaluate("window.result")
        if "closed" in r and "blind" in r and "cors" in r and ("token" in r or "meta" in r):
            break
        time.sleep(0.05)
    after = httpx.get(server + "/healthz").json()
    context.close()
    print("the other page got:", r)
    assert r.get("ws") != "open" and r["closed"] != 1000  # the handshake was refused
    assert r["cors"] == "blocked" and r.get("meta") == "blocked" and "token" not in r
    assert after["uploads"] == before["uploads"]  # the blind no-cors POST stored nothing
    assert after["open_tabs"] == before["open_tabs"] and after["training"] == 0
    assert any("frame-ancestors" in c or "X-Frame-Options" in c for c in console), console


def test_dns_rebinding_gets_421_in_the_browser(browser, server):
    from playwright.sync_api import sync_playwright  # noqa: F401 - the browser fixture's

    port = server.rsplit(":", 1)[1]
    b = browser.browser_type.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS + [
        "--host-resolver-rules=MAP attacker.example 127.0.0.1"])
    try:
        pg = b.new_page()
        r = pg.goto(f"http://attacker.example:{port}/")
        assert r.status == 421 and "localhost only" in pg.inner_text("body")
        assert pg.goto(f"http://attacker.example:{port}/api/meta").status == 421
    finally:
        b.close()


def test_the_page_runs_under_its_content_security_policy(browser, server):
    context = browser.new_context()  # no bypass_csp: the policy as a user's browser applies it
    pg = context.new_page()
    console, errors = [], []
    pg.on("console", lambda m: console.append(m.text))
    pg.on("pageerror", lambda e: errors.append(str(e)))
    r = pg.goto(server + "/")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    for _ in range(200):
        if pg.evaluate("!!(window.__playground && window.__playground.state.frame)"):
            break
        time.sleep(0.05)
    ok = pg.evaluate("!!window.__playground.state.frame")
    context.close()
    assert ok and not errors
    assert not [c for c in console if "Content Security Policy" in c], console


# ---- ahead of TensorFlow Playground, row by row -------------------------------------------
def healthz(server) -> dict:
    import httpx

    return httpx.get(server + "/healthz", timeout=5).json()


def play_until(pg, condition: str, timeout: float = 30_000) -> None:
    pg.click("#play")
    wait(pg, condition, timeout)
    pg.click("#play")
    wait(pg, "S.frame.status !== 'running'")


def test_regression_sets_train_an_identity_output_with_a_map_of_yhat(page):
    page.click('#reg-datasets button[data-name="bumps"]')
    wait(page, "S.info.regression && S.info.source === 'bumps'")
    assert page.input_value("#output") == "identity" and page.input_value("#loss") == "sse"
    assert state(page, "S.info.layout.output") == "identity"
    assert "train r²" in page.inner_text(".stats").lower()
    page.select_option("#activation", "tanh")
    page.click("#layer-plus")
    wait(page, "S.info.describe === '2-7-7-1' && S.info.layout.activations[0] === 'tanh'")
    map0 = map_pixels(page)
    page.select_option("#speed", "0")
    play_until(page, "S.frame.epoch >= 3000")
    r2 = state(page, "S.frame.train_r2")
    assert r2 > 0.6 and map_pixels(page) != map0
    assert "ŷ and y" in page.inner_text("#class-legend")
    shot(page, "playground-regression.png")


def test_a_csv_with_a_numeric_target_trains_as_regression(page, tmp_path):
    rng = np.random.RandomState(1)
    X = rng.uniform(-3, 3, (150, 2))
    path = tmp_path / "price.csv"
    path.write_text("size,age,price\n" + "".join(
        f"{a:.4f},{b:.4f},{100 + 20 * a - 5 * b + rng.randn():.3f}\n" for a, b in X))
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#error:not([hidden])")  # as classes, 150 prices cannot be learnt
    assert "price.csv" in page.inner_text("#error")
    page.check("#regression")
    wait(page, "S.info.regression && S.info.target === 'price'")
    page.fill("#lr", "0.0005")
    page.click("#play")
    wait(page, "S.frame.epoch >= 1500")
    page.click("#play")
    wait(page, "S.frame.status !== 'running'")
    assert state(page, "S.frame.test_r2") > 0.9
    y_lo, y_hi = state(page, "S.info.y_range")
    assert 20 < y_lo < 100 < y_hi < 180  # the map's colours are in the file's own units


def test_feature_inputs_add_input_nodes_with_their_own_thumbnails(page):
    page.click('#datasets button[data-name="circles"]')
    wait(page, "S.info.source === 'circles'")
    page.check('#extras input[value="sq1"]')
    page.check('#extras input[value="sq2"]')
    wait(page, "S.info.layout.sizes[0] === 4")
    assert state(page, "S.info.features") == ["x_1", "x_2", "x_1²", "x_2²"]
    r = state(page, "S.info.thumb_res")
    sq = state(page, "Array.from(atob(S.info.input_thumbs[2]), c => c.charCodeAt(0))")
    ramp = state(page, "Array.from(atob(S.info.input_thumbs[0]), c => c.charCodeAt(0))")
    row = r // 2 * r
    assert abs(sq[row] - sq[row + r - 1]) <= 12 and sq[row + r // 2] < sq[row] - 100  # a bowl
    assert ramp[row] < ramp[row + r - 1] - 150  # x_1 itself: a ramp
    page.fill("#lr", "0.01")
    page.select_option("#speed", "0")
    play_until(page, "S.frame.epoch >= 1500")
    assert state(page, "S.frame.test_acc") >= 0.9
    page.mouse.move(*page.evaluate("window.__playground.nodePoint(0, 2)"))
    page.wait_for_selector("#tip:not([hidden])")
    assert "x_1² — input (standardized)" in page.inner_text("#tip")
    shot(page, "playground-features.png")


def test_l1_and_l2_rates_are_on_the_page(page):
    page.fill("#l1", "0.01")
    page.press("#l1", "Enter")
    page.fill("#l2", "0.001")
    page.press("#l2", "Enter")
    wait(page, "S.info.optimizer.includes('λ₁ = 0.01') && S.info.optimizer.includes('λ₂ = 0.001')")
    assert "L1 penalty λ₁Σ|w|" in page.inner_text("#optimizer-note")
    page.click("#step")
    wait(page, "S.frame.epoch === 1")


def test_click_an_edge_type_a_value_and_the_map_changes(page):
    map0 = map_pixels(page)
    x, y = page.evaluate("window.__playground.edgePoint(7)")
    page.mouse.click(x, y)
    page.wait_for_selector("#edit:not([hidden])")
    assert page.inner_text("#edit-name") == "w8"
    page.fill("#edit-value", "6")
    page.press("#edit-value", "Enter")
    wait(page, "Math.abs(S.frame._w[7] - 6) < 1e-6 && !S.drawPending")  # and drawn
    assert page.is_hidden("#edit") and map_pixels(page) != map0
    page.click("#reset")  # Reset: the seed's weights again
    wait(page, "S.frame.epoch === 0 && Math.abs(S.frame._w[7] - 6) > 0.1 && !S.drawPending")
    assert map_pixels(page) == map0


def test_the_url_holds_every_setting_and_restores_the_same_first_frame(page, browser, server):
    page.click('#datasets button[data-name="moons"]')
    wait(page, "S.info.source === 'moons'")
    page.select_option("#activation", "tanh")
    page.click("#layer-plus")
    page.fill("#seed", "5")
    page.press("#seed", "Enter")
    page.check('#extras input[value="sin2"]')
    page.fill("#lr", "0.02")
    page.press("#lr", "Enter")
    page.check("#discretize")
    wait(page, "S.info.describe === '3-7-7-1' && S.info.lr === 0.02 && S.frame.epoch === 0 "
         "&& S.info.layout.activations[1] === 'tanh'")
    wait(page, "location.hash.includes('seed=5') && location.hash.includes('extras=sin2')")
    url = page.url
    first = state(page, "S.firstFrame")
    picture = map_pixels(page)
    other = browser.new_page(viewport={"width": 1440, "height": 960}, bypass_csp=True)
    try:
        other.goto(url)
        wait(other, "S.frame.epoch === 0")
        assert state(other, "S.firstFrame") == first
        assert map_pixels(other) == picture  # the same first picture, discretized too
        for sel in ("#activation", "#seed", "#lr"):
            assert other.input_value(sel) == page.input_value(sel)
        assert other.is_checked("#discretize") and other.is_checked('#extras input[value="sin2"]')
    finally:
        other.close()


def test_discretize_shows_the_predicted_class_only(page):
    page.uncheck("#show-test")
    page.uncheck("#show-train")
    page.click("#step")
    wait(page, "S.frame.epoch === 1")
    share = ("(() => { const c = document.getElementById('map'), d = window.devicePixelRatio || 1;"
             " const img = c.getContext('2d').getImageData(60 * d, 20 * d, 340 * d, 340 * d).data;"
             " const seen = new Map(); for (let i = 0; i < img.length; i += 4) {"
             " const k = img[i] + ',' + img[i + 1] + ',' + img[i + 2]; seen.set(k, (seen.get(k) || 0) + 1); }"
             " const top = [...seen.values()].sort((a, b) => b - a); return (top[0] + (top[1] || 0)) / (img.length / 4); })()")
    shaded = page.evaluate(share)
    page.check("#discretize")
    hard = page.evaluate(share)
    assert hard > 0.8 > shaded  # two colours (and the smoothed edge between them)


def test_click_a_neuron_to_pin_its_map_on_the_output(page):
    out = map_pixels(page)
    page.mouse.click(*page.evaluate("window.__playground.nodePoint(1, 2)"))
    page.wait_for_selector("#pinned:not([hidden])")
    assert "n3" in page.inner_text("#pinned") and state(page, "S.pinned.j") == 2
    pinned = map_pixels(page)
    shot(page, "playground-pinned.png")
    assert pinned != out
    page.click("#unpin")
    assert page.is_hidden("#pinned") and map_pixels(page) == out


def test_a_stalled_hard_set_gets_a_suggestion_that_learns_it(page):
    page.click('#datasets button[data-name="spiral"]')
    wait(page, "S.info.source === 'spiral'")
    page.select_option("#speed", "1000")
    page.click("#play")
    page.wait_for_selector("#suggest:not([hidden])", timeout=30_000)
    page.click("#play")
    assert "try tanh, 2 hidden layers of 8 units, η 0.03" in page.inner_text("#suggest")
    shot(page, "playground-suggestion.png")
    page.click("#suggest-apply")
    wait(page, "S.info.describe === '2-8-8-1' && S.info.lr === 0.03 && S.frame.epoch === 0")
    assert page.input_value("#activation") == "tanh"
    play_until(page, "S.frame.epoch >= 5000")
    assert state(page, "S.frame.train_acc") >= 0.95


def test_long_names_keep_the_layout_and_many_rows_are_thinned(page, tmp_path):
    long = "a_column_name_that_goes_on_" * 3
    path = tmp_path / ("a_file_name_that_is_also_very_long_" * 2 + ".csv")
    path.write_text(f"{long}1,{long}2,{long}class\n" + "".join(
        f"{i % 7},{(i * 3) % 11},{i % 2}\n" for i in range(60)))
    width0 = page.evaluate("document.querySelector('.panel.data').getBoundingClientRect().width")
    page.set_input_files("#file", str(path))
    wait(page, "S.info.target.endsWith('class')")
    box = page.evaluate("(() => { const p = document.querySelector('.panel.data').getBoundingClientRect();"
                        " const t = document.getElementById('target').getBoundingClientRect();"
                        " return [p.width, p.right, t.right]; })()")
    assert abs(box[0] - width0) < 2 and box[2] <= box[1]  # the select stays in its panel
    page.click('#datasets button[data-name="moons"]')
    wait(page, "S.info.source === 'moons'")
    page.fill("#n-samples", "20000")
    page.press("#n-samples", "Enter")
    wait(page, "S.info.n_train + S.info.n_test === 20000", 60_000)
    page.wait_for_timeout(300)
    assert state(page, "S.pointsDrawn") <= 5000
    shot(page, "playground-20000-rows.png")


def test_a_tab_closed_during_a_long_step_frees_its_slot_within_a_second(browser, server):
    pg = browser.new_page(bypass_csp=True)
    pg.goto(server + "/")
    pg.wait_for_function("window.__playground && window.__playground.state.frame")
    before = healthz(server)["open_tabs"]
    pg.evaluate("window.__playground.state.ws.send(JSON.stringify({type: 'config', "
                "data: {name: 'moons', n_samples: 5000}, network: {hidden: [64, 64, 64]}}))")
    pg.wait_for_function("window.__playground.state.info && window.__playground.state.info.describe === '2-64-64-64-1'")
    pg.evaluate("window.__playground.state.ws.send(JSON.stringify({type: 'step', epochs: 100000}))")
    time.sleep(0.5)
    assert healthz(server)["training"] >= 1
    pg.close()
    t0 = time.perf_counter()
    while healthz(server)["open_tabs"] >= before and time.perf_counter() - t0 < 5:
        time.sleep(0.02)
    freed = time.perf_counter() - t0
    print(f"the closed tab's slot came back in {freed:.3f} s")
    assert freed < 1.0 and healthz(server)["training"] == 0
