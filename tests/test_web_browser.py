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
    assert map_pixels(page) == map0  # the very same first picture
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
