/* scratchnet playground — plain JS + canvas, no build step, no external assets.
 *
 * The server (scratchnet/web/live.py) trains; this page only sends settings and draws the
 * frames it streams over one WebSocket: the decision map (48×48, raw input units), the hidden
 * units' maps (24×24 thumbnails), the weights w1..wP and their gradients, the losses.
 */
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const NEG = [245, 147, 34], POS = [8, 119, 189];
  const PALETTE = [NEG, POS, [46, 160, 67], [214, 39, 40], [148, 103, 189], [140, 86, 75],
                   [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]];
  const S = {
    meta: null, info: null, frame: null, curve: [], ws: null, playing: false,
    dataset: "ps5", upload: null, hidden: [7], hover: null, nodes: [], edges: [],
    drawn: [], received: 0, drawPending: false, firstFrame: null, lastError: "",
    pinned: null, editing: null, suggestionShown: false,
  };

  // ---- small helpers ------------------------------------------------------------------
  const mix = (a, b, t) => [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
  const rgb = (c, a = 1) => `rgba(${c[0] | 0},${c[1] | 0},${c[2] | 0},${a})`;
  const WHITE = [255, 255, 255];
  /* q = 0..255 → orange (0) … white (128) … blue (255); `strength` < 1 keeps it light. */
  const lut = (strength) => Array.from({ length: 256 }, (_, q) => {
    const v = q / 255 * 2 - 1;
    return mix(WHITE, v < 0 ? NEG : POS, Math.min(1, Math.abs(v)) * strength);
  });
  const MAP_LUT = lut(0.8), THUMB_LUT = lut(1.0);
  function bytes(b64) {
    const s = atob(b64), a = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
    return a;
  }
  const floats = (b64) => { const b = bytes(b64); return new Float32Array(b.buffer, 0, b.length / 4); };
  const fmt = (v, d = 4) => (v === null || v === undefined || !isFinite(v)) ? "–"
    : (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0)) ? v.toExponential(d - 1) : v.toPrecision(d);
  const intOr = (el, dflt) => { const v = parseInt(el.value, 10); return Number.isFinite(v) ? v : dflt; };
  const numOr = (el, dflt) => { const v = parseFloat(el.value); return Number.isFinite(v) ? v : dflt; };
  function niceTicks(lo, hi, n = 5) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(+v.toPrecision(12));
    return out;
  }
  const epochLabel = (v) => v >= 1e6 ? `${+(v / 1e6).toPrecision(3)}M` : v >= 1e4 ? `${+(v / 1e3).toPrecision(3)}k` : String(v);
  const tickLabel = (v) => Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(0) : String(+v.toPrecision(4));
  function setup(canvas, w, h) {  // crisp canvases on high-DPI screens
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
      canvas.style.width = w + "px"; canvas.style.height = h + "px";
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }
  function planeCanvas(q, r, table, cls) {  // r×r uint8 plane → an offscreen canvas
    const c = document.createElement("canvas"); c.width = c.height = r;
    const ctx = c.getContext("2d"), img = ctx.createImageData(r, r);
    for (let i = 0; i < r * r; i++) {
      let col;
      if (cls) {  // several classes: the winning class, paler where it is less sure
        const K = S.info.classes.length, conf = (q[i] / 255 - 1 / K) / (1 - 1 / K);
        col = mix(WHITE, PALETTE[cls[i] % PALETTE.length], 0.8 * Math.max(0, conf));
      } else col = table[q[i]];
      img.data[4 * i] = col[0]; img.data[4 * i + 1] = col[1]; img.data[4 * i + 2] = col[2];
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    return c;
  }
  function showError(msg) {
    S.lastError = msg;
    $("error-text").textContent = msg;
    $("error").hidden = false;
  }
  function clearError() { $("error").hidden = true; S.lastError = ""; }
  function download(url, name) {
    const a = document.createElement("a");
    a.href = url; a.download = name; document.body.appendChild(a); a.click(); a.remove();
  }

  // ---- connection ---------------------------------------------------------------------
  function connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws?token=${encodeURIComponent(S.meta.token)}`);
    S.ws = ws;
    ws.onopen = () => { setStatus("connected"); sendConfig(true); sendSpeed(); };
    ws.onclose = () => {
      S.playing = false; updateTransport();
      setStatus("disconnected");
      showError("The connection to the playground server was lost — is `scratchnet playground` still running? Reload the page to reconnect.");
    };
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === "frame" || m.type === "progress") onFrame(m);
      else if (m.type === "ready") onReady(m);
      else if (m.type === "model") download(URL.createObjectURL(new Blob([JSON.stringify(m.model, null, 1)], { type: "application/json" })), m.filename);
      else if (m.type === "error") {
        showError(m.message);
        if (m.where === "message") return;  // a dropped message: the run goes on
        S.playing = false; updateTransport();
        if (m.where === "config") clearViews();
        setStatus(m.where === "config" ? "fix the settings" : "paused");
      }
    };
  }
  const datasetOptions = (name) => S.meta.datasets[name] || S.meta.regression_sets[name] || {};
  const isRegressionSet = (name) => name in S.meta.regression_sets;
  const send = (m) => { if (S.ws && S.ws.readyState === 1) S.ws.send(JSON.stringify(m)); };
  const sendSpeed = () => send({ type: "speed", epochs_per_frame: parseInt($("speed").value, 10) });
  function setStatus(t) { $("status").textContent = t; }

  let configTimer = null;
  function sendConfig(now) {  // settings changed: a new run (debounced a little)
    clearTimeout(configTimer);
    configTimer = setTimeout(flushConfig, now ? 0 : 120);
  }
  function flushConfig() {
    clearTimeout(configTimer); configTimer = null;
    clearError();
    setStatus("building…");
    const cfg = readConfig();
    writeHash();
    send(Object.assign({ type: "config" }, cfg));
  }
  /* Transport buttons act on the settings on screen: a change still waiting goes first
     (typing a learning rate and pressing Play at once plays with that rate). */
  const command = (m) => { if (configTimer !== null) flushConfig(); send(m); };
  /* Every setting in the URL (#…), so that a link opens the same run: the same data, network
     and seeds give the same first frame.  An uploaded file cannot travel in a link: ps5 then. */
  const HASH_IDS = ["lr", "activation", "output", "loss", "optimizer", "batch", "l2", "l1", "init",
    "seed", "epochs", "noise", "n-samples", "n-classes", "test-size", "data-seed", "speed"];
  function writeHash() {
    const p = new URLSearchParams();
    p.set("data", S.dataset === "upload" ? "ps5" : S.dataset);
    p.set("hidden", S.hidden.join(","));
    for (const id of HASH_IDS) p.set(id, $(id).value);
    const extras = [...document.querySelectorAll("#extras input:checked")].map((c) => c.value);
    if (extras.length) p.set("extras", extras.join(","));
    if ($("discretize").checked) p.set("discretize", "1");
    history.replaceState(null, "", "#" + p.toString());
  }
  function applyHash() {  // before the first config: the controls as the link says
    const p = new URLSearchParams(location.hash.slice(1));
    if (!p.has("data")) return;
    const name = p.get("data");
    if (name in S.meta.datasets || name in S.meta.regression_sets) selectDataset(name, true);
    const hidden = (p.get("hidden") || "").split(",").filter((v) => v !== "").map((v) => parseInt(v, 10));
    if (hidden.every((v) => Number.isInteger(v) && v > 0) && hidden.length <= S.meta.limits.hidden_layers) S.hidden = hidden;
    for (const id of HASH_IDS) if (p.has(id)) $(id).value = p.get(id);
    const extras = (p.get("extras") || "").split(",");
    document.querySelectorAll("#extras input").forEach((c) => { c.checked = extras.includes(c.value); });
    $("discretize").checked = p.get("discretize") === "1";
    $("noise-out").textContent = (+$("noise").value).toFixed(2);
    $("test-out").textContent = Math.round(100 * $("test-size").value) + "%";
    $("classes-row").hidden = !("n_classes" in datasetOptions(S.dataset));
    buildUnitControls();
  }

  function readConfig() {
    const ds = S.dataset, opts = datasetOptions(ds);
    const data = { name: ds, test_size: numOr($("test-size"), 0.2), seed: intOr($("data-seed"), 0) };
    const extras = [...document.querySelectorAll("#extras input:checked")].map((c) => c.value);
    if (extras.length) data.extras = extras;
    if (ds === "upload") {
      data.upload_id = S.upload.upload_id;
      data.features = [...document.querySelectorAll("#feature-list input:checked")].map((c) => c.value);
      data.target = $("target").value;
      if ($("regression").checked) data.problem = "regression";
    } else if (ds !== "ps5") {
      data.noise = numOr($("noise"), opts.noise);
      data.n_samples = intOr($("n-samples"), opts.n_samples);
      if ("n_classes" in opts) data.n_classes = intOr($("n-classes"), 2);
    }
    const batch = $("batch").value.trim();
    const network = {
      hidden: S.hidden.slice(), activation: $("activation").value, output: $("output").value,
      loss: $("loss").value, lr: $("lr").value.trim() === "" ? null : numOr($("lr"), $("lr").value),
      init: $("init").value, seed: intOr($("seed"), 0), epochs: intOr($("epochs"), 100000),
      optimizer: $("optimizer").value, batch_size: batch === "" ? null : intOr($("batch"), batch),
      l2: numOr($("l2"), 0), l1: numOr($("l1"), 0),
    };
    return { data, network };
  }

  function clearViews() {  // settings the server refused: no run, nothing stale on screen
    S.info = null; S.frame = null; S.curve = []; S.nodes = []; S.edges = []; S.hover = null;
    $("tip").hidden = true; $("edit").hidden = true; unpin(); hideSuggestion();
    for (const id of ["map", "loss-curve", "net"]) {
      const c = $(id), ctx = c.getContext("2d");
      ctx.setTransform(1, 0, 0, 1, 0, 0); ctx.clearRect(0, 0, c.width, c.height);
    }
    const ctx = setup($("map"), MAP.width, MAP.height);
    ctx.fillStyle = "#999"; ctx.font = "13px system-ui, sans-serif"; ctx.textAlign = "center";
    ctx.fillText("no run: change the settings (see the message above)", MAP.width / 2, MAP.height / 2);
    for (const id of ["train-loss", "test-loss", "train-acc", "test-acc"]) $(id).textContent = "–";
    for (const id of ["data-note", "describe", "optimizer-note", "loss-formula"]) $(id).textContent = "";
    $("epoch").textContent = "0";
    $("fps").textContent = "";
  }

  // ---- messages -----------------------------------------------------------------------
  function onReady(info) {
    S.info = info; S.curve = []; S.frame = null; S.hover = null; S.firstFrame = null;
    unpin(); hideSuggestion(); $("edit").hidden = true;
    document.querySelectorAll(".stats .acc-label").forEach((el, i) => { el.textContent = info.regression ? (i ? "Test R²" : "Train R²") : (i ? "Test acc" : "Train acc"); });
    $("describe").textContent = info.describe;
    $("budget").textContent = info.budget.toLocaleString("en-US");
    const f = info.features, nF = f.length;
    const extra = nF > 2 ? ` (the map shows ${f[0]} × ${f[1]}; the other ${nF - 2} at their mean)` : "";
    $("data-note").textContent = `${info.source}: ${info.n_train + info.n_test} rows — ${info.n_train} train, ${info.n_test} test (ringed). ` +
      `Features ${f.join(", ")} → ${info.target}${extra}. Inputs standardized with the training rows' mean and std; the map is in raw units.`;
    $("loss-formula").innerHTML = "";
    const lf = document.createElement("div"); lf.textContent = info.loss_formula;
    const small = document.createElement("small");
    small.textContent = `loss “${info.loss}”, summed over rows as in the problem set; the curves show E/N so train (${info.n_train} rows) and test (${info.n_test}) compare.`;
    $("loss-formula").append(lf, small);
    $("optimizer-note").textContent = `Optimizer ${info.optimizer}; η = ${info.lr}. Engine: ${info.engine}.`;
    const legend = $("class-legend"); legend.innerHTML = "";
    if (info.regression) {
      const item = document.createElement("span");
      item.textContent = `ŷ and ${info.target}: ${NEG_NAME} ${fmt(info.y_range[0], 3)} … white … ${POS_NAME} ${fmt(info.y_range[1], 3)}`;
      legend.append(item);
    }
    info.classes.forEach((c, i) => {
      const item = document.createElement("span"), dot = document.createElement("i");
      dot.className = "dot"; dot.style.background = rgb(PALETTE[i % PALETTE.length]);
      item.append(dot, `${info.target} ${c}`); legend.append(item);
    });
    buildUnitControls();
    layoutNetwork();
  }

  function onFrame(f) {
    S.received++;
    f._w = floats(f.w); f._g = floats(f.grad); f._map = bytes(f.map);
    f._cls = f.map_class ? bytes(f.map_class) : null;
    f._thumbs = f.thumbs.map(bytes);
    if (f.curve.length) {
      const t0 = f.curve[0][0];
      if (S.curve.length && t0 <= S.curve[S.curve.length - 1][0]) S.curve = S.curve.filter((p) => p[0] < t0);
      for (const p of f.curve) S.curve.push(p);
      if (S.curve.length > 4000) S.curve = S.curve.filter((p, i) => i % 2 === 0 || i === S.curve.length - 1);
    }
    if (f.epoch === 0 && !S.firstFrame) S.firstFrame = { w: f.w, map: f.map, thumbs: f.thumbs.join("|") };
    S.frame = f;
    S.playing = f.status === "running";
    if (f.type === "frame") send({ type: "ack", seq: f.seq });  // progress frames need none
    if (f.status === "diverged") showError(f.message);
    if (f.suggestion && !S.suggestionShown) showSuggestion(f.suggestion);
    if (!S.drawPending) { S.drawPending = true; requestAnimationFrame(drawAll); }
  }

  // ---- drawing ------------------------------------------------------------------------
  function drawAll() {
    S.drawPending = false;
    const f = S.frame;
    if (!f || !S.info) return;
    const now = performance.now();
    S.drawn.push(now);
    while (S.drawn.length && S.drawn[0] < now - 1000) S.drawn.shift();
    $("fps").textContent = S.playing ? `${S.drawn.length} fps` : "";
    $("epoch").textContent = f.epoch.toLocaleString("en-US");
    $("train-loss").textContent = fmt(f.train_loss);
    $("test-loss").textContent = fmt(f.test_loss);
    if (S.info.regression) {
      $("train-acc").textContent = fmt(f.train_r2, 3); $("test-acc").textContent = fmt(f.test_r2, 3);
    } else {
      $("train-acc").textContent = (100 * f.train_acc).toFixed(1) + "%";
      $("test-acc").textContent = (100 * f.test_acc).toFixed(1) + "%";
    }
    updateTransport();
    drawMap(); drawCurve(); drawNetwork();
    if (S.hover) showTip(S.hover);
  }

  function updateTransport() {
    const b = $("play");
    b.innerHTML = S.playing ? ICON_PAUSE : ICON_PLAY;
    b.classList.toggle("playing", S.playing);
    const f = S.frame;
    if (f) setStatus({ running: "training…", paused: "paused", ready: "ready", done: "budget reached", diverged: "diverged" }[f.status] || f.status);
  }

  const ICON_PLAY = '<svg viewBox="0 0 24 24" width="26" height="26"><path d="M8 5l12 7-12 7z" fill="currentColor"/></svg>';
  const ICON_PAUSE = '<svg viewBox="0 0 24 24" width="26" height="26"><path d="M6 5h4.5v14H6zM13.5 5H18v14h-4.5z" fill="currentColor"/></svg>';
  const MAP = { left: 48, top: 8, size: 360, width: 420, height: 400 };
  function discretized(q, cls) {  // the predicted class only: p > 0.5 → full blue, else orange
    if (!$("discretize").checked || S.info.regression) return q;
    if (cls) return q.map(() => 255);
    return q.map((v) => (v >= 128 ? 255 : 0));
  }
  function pin(nd) {  // a unit's (or an input's) own map on the output panel
    if (S.pinned && S.pinned.layer === nd.layer && S.pinned.j === nd.j) { unpin(); drawAll(); return; }
    S.pinned = { layer: nd.layer, j: nd.j };
    const sizes = S.info.layout.sizes;
    const what = nd.layer === 0 ? "input (standardized)" : `hidden layer ${nd.layer}, ${S.info.layout.activations[nd.layer - 1]}`;
    $("pinned-text").textContent = nd.layer === sizes.length - 1 ? "" : `The map shows ${S.info.unit_names[nd.layer][nd.j]} (${what}).`;
    $("pinned").hidden = nd.layer === sizes.length - 1;
    if (nd.layer === sizes.length - 1) S.pinned = null;
    drawAll();
  }
  function unpin() { S.pinned = null; $("pinned").hidden = true; }
  function showSuggestion(sg) {
    S.suggestionShown = true; S.suggestion = sg;
    $("suggest-text").textContent = sg.text; $("suggest").hidden = false;
  }
  function hideSuggestion() { $("suggest").hidden = true; }
  function applySuggestion() {
    const n = S.suggestion.network;
    $("activation").value = n.activation; $("lr").value = n.lr; S.hidden = n.hidden.slice();
    hideSuggestion(); buildUnitControls(); sendConfig(true);
  }
  function openEditor(k, cx, cy) {  // click an edge: type its new value
    const box = $("edit"), input = $("edit-value");
    S.editing = k;
    $("edit-name").textContent = `w${k + 1}`;
    input.value = String(+S.frame._w[k].toPrecision(6));
    box.hidden = false; $("tip").hidden = true;
    box.style.left = Math.min(cx + 8, innerWidth - box.offsetWidth - 4) + "px";
    box.style.top = Math.min(cy + 8, innerHeight - box.offsetHeight - 4) + "px";
    input.focus(); input.select();
  }
  function drawMap(target, ox = 0, oy = 0) {
    const info = S.info, f = S.frame;
    const ctx = target || setup($("map"), MAP.width, MAP.height);
    const { left, top, size } = MAP, L = left + ox, T = top + oy;
    if (!target) ctx.clearRect(0, 0, MAP.width, MAP.height);
    ctx.imageSmoothingEnabled = true;
    const pin = S.pinned && S.nodes[S.pinned.layer] && S.nodes[S.pinned.layer][S.pinned.j];
    if (pin) ctx.drawImage(nodeCanvas(pin, info.thumb_res, info.layout.sizes), L, T, size, size);
    else ctx.drawImage(planeCanvas(discretized(f._map, f._cls), info.map_res, MAP_LUT, f._cls), L, T, size, size);
    const [x0, x1, y0, y1] = info.extent;
    const px = (x) => L + (x - x0) / (x1 - x0) * size, py = (y) => T + (y1 - y) / (y1 - y0) * size;
    // the 0.5 contour is where the colour turns white; the points on top
    const P = info.points, showTest = $("show-test").checked, showTrain = $("show-train").checked;
    const n = P.x.length, r = n > 2000 ? 1.3 : n > 500 ? 2.4 : 3.6;
    // many rows: draw every k-th (at most ~2,500 a pass) and thin rings, so the map shows through
    const stride = Math.max(1, Math.ceil(n / 2500)), ring = n > 2000 ? 0.7 : n > 500 ? 1.2 : 1.8;
    for (const pass of [0, 1]) {  // train rows first, test rows on top
      for (let i = 0; i < n; i += stride) {
        if (P.test[i] !== pass || (pass ? !showTest : !showTrain)) continue;
        ctx.beginPath(); ctx.arc(px(P.x[i]), py(P.y[i]), r, 0, 2 * Math.PI);
        ctx.fillStyle = info.regression ? rgb(THUMB_LUT[P.label[i]]) : rgb(PALETTE[P.label[i] % PALETTE.length]);
        ctx.fill();
        ctx.lineWidth = pass ? ring : 0.6; ctx.strokeStyle = pass ? "#111" : (info.regression ? "#666" : "#fff"); ctx.stroke();
      }
    }
    S.pointsDrawn = Math.ceil(n / stride);
    // axes in raw units
    ctx.strokeStyle = "#999"; ctx.lineWidth = 1; ctx.strokeRect(L + 0.5, T + 0.5, size, size);
    ctx.fillStyle = "#555"; ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (const v of niceTicks(x0, x1, 5)) {
      ctx.fillRect(px(v), T + size, 1, 4); ctx.fillText(tickLabel(v), px(v), T + size + 5);
    }
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (const v of niceTicks(y0, y1, 5)) {
      ctx.fillRect(L - 4, py(v), 4, 1); ctx.fillText(tickLabel(v), L - 6, py(v));
    }
    ctx.fillStyle = "#222"; ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    ctx.fillText(info.features[0], L + size / 2, T + size + 19);
    ctx.save(); ctx.translate(ox + 10, T + size / 2); ctx.rotate(-Math.PI / 2);
    ctx.fillText(info.features[1], 0, -6); ctx.restore();
  }

  const CURVE = { width: 420, height: 170, left: 50, right: 10, top: 8, bottom: 24 };
  function drawCurve(target, ox = 0, oy = 0) {
    const ctx = target || setup($("loss-curve"), CURVE.width, CURVE.height);
    const C = CURVE, W = C.width - C.left - C.right, H = C.height - C.top - C.bottom;
    const L = ox + C.left, T = oy + C.top;
    if (!target) ctx.clearRect(0, 0, C.width, C.height);
    const pts = S.curve, logY = $("log-y").checked;
    const tMax = Math.max(pts.length ? pts[pts.length - 1][0] : 1, 1);
    let lo = Infinity, hi = -Infinity;
    for (const p of pts) for (const v of [p[1], p[2]]) if (v !== null && (!logY || v > 0)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (!logY) { lo = 0; hi = hi > 0 ? hi * 1.05 : 1; }
    else { lo = Math.log10(lo) - 0.05; hi = Math.log10(hi) + 0.05; if (hi - lo < 0.2) { hi += 0.1; lo -= 0.1; } }
    const X = (t) => L + t / tMax * W, Y = (v) => T + H - ((logY ? Math.log10(v) : v) - lo) / (hi - lo) * H;
    ctx.strokeStyle = "#ccc"; ctx.lineWidth = 1; ctx.strokeRect(L + 0.5, T + 0.5, W, H);
    ctx.fillStyle = "#666"; ctx.font = "10px system-ui, sans-serif";
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    const yt = logY ? niceTicks(lo, hi, 3).filter((v) => Number.isInteger(v)) : niceTicks(lo, hi, 4);
    for (const v of yt) {
      const y = logY ? T + H - (v - lo) / (hi - lo) * H : Y(v);
      ctx.fillRect(L - 3, y, 3, 1); ctx.fillText(logY ? `1e${v}` : tickLabel(v), L - 5, y);
    }
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (const v of niceTicks(0, tMax, 5).filter(Number.isInteger)) {  // 20k, 1.5M: short labels; the last one inside the chart
      ctx.fillRect(X(v), T + H, 1, 3);
      ctx.textAlign = X(v) > L + W - 14 ? "right" : "center";
      ctx.fillText(epochLabel(v), X(v) + (ctx.textAlign === "right" ? 2 : 0), T + H + 5);
    }
    ctx.textAlign = "center";
    ctx.fillText("epoch", L + W / 2, T + H + 14 > oy + C.height - 10 ? T + H + 14 : T + H + 14);
    for (const [j, col] of [[2, "#d4640a"], [1, "#222"]]) {
      ctx.beginPath(); ctx.strokeStyle = col; ctx.lineWidth = 1.6;
      let on = false;
      for (const p of pts) {
        const v = p[j];
        if (v === null || (logY && v <= 0)) { on = false; continue; }
        if (on) ctx.lineTo(X(p[0]), Y(v)); else { ctx.moveTo(X(p[0]), Y(v)); on = true; }
      }
      ctx.stroke();
    }
  }

  // ---- the network diagram ------------------------------------------------------------
  function layoutNetwork() {
    const info = S.info; if (!info) return;
    const sizes = info.layout.sizes, n = sizes.length, nmax = Math.max(...sizes);
    const W = Math.max(380, $("net").parentElement.clientWidth - 4);
    const s = Math.max(8, Math.min(36, Math.floor(540 / (nmax * 1.28))));
    const gap = s * 1.28, top = 46, H = Math.max(300, top + nmax * gap + 16);
    const nodes = [], bias = [];
    for (let i = 0; i < n; i++) {
      const x = (i + 0.5) * W / n, y0 = top + (nmax - sizes[i]) * gap / 2;
      nodes.push(Array.from({ length: sizes[i] }, (_, j) => ({ layer: i, j, x, y: y0 + j * gap + gap / 2, s })));
      if (i < n - 1) bias.push({ x, y: 20, layer: i });
    }
    const edges = [], off = [];
    let o = 0;
    for (let l = 0; l < n - 1; l++) { off.push(o); o += (sizes[l] + 1) * sizes[l + 1]; }
    for (let l = 0; l < n - 1; l++) {
      const fo = sizes[l + 1];
      for (let r = 0; r <= sizes[l]; r++) for (let c = 0; c < fo; c++) {
        const src = r === 0 ? bias[l] : nodes[l][r - 1], dst = nodes[l + 1][c];
        const x1 = r === 0 ? src.x + 8 : src.x + src.s / 2;
        edges.push({ k: off[l] + r * fo + c, x1, y1: src.y, x2: dst.x - dst.s / 2, y2: dst.y });
      }
    }
    Object.assign(S, { nodes, bias, edges, netW: W, netH: H });
  }

  function drawNetwork(target, ox = 0, oy = 0) {
    const info = S.info, f = S.frame;
    if (!S.nodes.length) return;
    const ctx = target || setup($("net"), S.netW, S.netH);
    if (!target) ctx.clearRect(0, 0, S.netW, S.netH);
    ctx.save(); ctx.translate(ox, oy);
    const w = f._w;
    let wmax = 1e-12;
    for (let k = 0; k < w.length; k++) wmax = Math.max(wmax, Math.abs(w[k]));
    const many = S.edges.length > 2000;
    for (const e of S.edges) {
      const a = Math.min(1, Math.abs(w[e.k]) / wmax);
      ctx.strokeStyle = rgb(w[e.k] < 0 ? NEG : POS, (many ? 0.08 : 0.25) + 0.75 * a);
      ctx.lineWidth = (many ? 0.3 : 0.6) + (many ? 1.5 : 5) * a;
      ctx.beginPath(); ctx.moveTo(e.x1, e.y1); ctx.lineTo(e.x2, e.y2); ctx.stroke();
    }
    if (S.hover && S.hover.edge) {
      const e = S.hover.edge;
      ctx.strokeStyle = "#111"; ctx.lineWidth = 3;
      ctx.beginPath(); ctx.moveTo(e.x1, e.y1); ctx.lineTo(e.x2, e.y2); ctx.stroke();
    }
    // nodes: inputs as their own ramps, hidden units as their thumbnails, the output as the map
    const r = info.thumb_res, sizes = info.layout.sizes;
    ctx.imageSmoothingEnabled = true;
    for (const col of S.nodes) for (const nd of col) {
      const c = nodeCanvas(nd, r, sizes);
      if (c) ctx.drawImage(c, nd.x - nd.s / 2, nd.y - nd.s / 2, nd.s, nd.s);
      else { ctx.fillStyle = rgb(PALETTE[nd.j % PALETTE.length], 0.85); ctx.fillRect(nd.x - nd.s / 2, nd.y - nd.s / 2, nd.s, nd.s); }
      ctx.strokeStyle = S.hover && S.hover.node === nd ? "#111" : "#888";
      ctx.lineWidth = S.hover && S.hover.node === nd ? 2 : 1;
      ctx.strokeRect(nd.x - nd.s / 2, nd.y - nd.s / 2, nd.s, nd.s);
    }
    ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#333";
    for (const b of S.bias) {
      ctx.beginPath(); ctx.arc(b.x, b.y, 8, 0, 2 * Math.PI); ctx.fillStyle = "#f0f0f0"; ctx.fill();
      ctx.strokeStyle = "#888"; ctx.lineWidth = 1; ctx.stroke();
      ctx.fillStyle = "#333"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.fillText(`b${b.layer + 1}`, b.x, b.y);
    }
    const names = info.unit_names;
    if (S.nodes[0][0].s >= 14) {
      ctx.textBaseline = "middle";
      for (const col of S.nodes) for (const nd of col) {
        const last = nd.layer === sizes.length - 1;
        ctx.textAlign = nd.layer === 0 ? "right" : "left";
        ctx.fillStyle = "#333";
        const label = names[nd.layer][nd.j];
        if (nd.layer === 0) ctx.fillText(label, nd.x - nd.s / 2 - 4, nd.y);
        else if (last) ctx.fillText(label, nd.x + nd.s / 2 + 4, nd.y);
        else if (nd.s >= 24) { ctx.fillStyle = "#333a"; ctx.fillText(label, nd.x + nd.s / 2 + 2, nd.y - nd.s / 2 + 5); }
      }
    }
    ctx.restore();
  }

  function nodeCanvas(nd, r, sizes) {
    const f = S.frame, last = sizes.length - 1;
    if (nd.layer === 0) {  // the input itself over the map (a ramp, x₁², sin x₂, … ; others at their mean)
      if (!S.info._inputs) S.info._inputs = S.info.input_thumbs.map(bytes);
      return planeCanvas(S.info._inputs[nd.j], r, THUMB_LUT);
    }
    if (nd.layer === last) return sizes[last] === 1 ? planeCanvas(f._map, S.info.map_res, MAP_LUT, null) : null;
    const plane = f._thumbs[nd.layer - 1].subarray(nd.j * r * r, (nd.j + 1) * r * r);
    return planeCanvas(plane, r, THUMB_LUT);
  }

  // ---- hover: an edge's name, value, gradient and ∂E/∂w; a unit's map -----------------
  function netPoint(ev) {
    const rect = $("net").getBoundingClientRect();
    return [(ev.clientX - rect.left) * S.netW / rect.width, (ev.clientY - rect.top) * S.netH / rect.height];
  }
  function hitTest(x, y) {
    for (const col of S.nodes) for (const nd of col) if (Math.abs(x - nd.x) <= nd.s / 2 && Math.abs(y - nd.y) <= nd.s / 2) return { node: nd };
    let best = null, bd = 6;
    for (const e of S.edges) {
      const dx = e.x2 - e.x1, dy = e.y2 - e.y1, L2 = dx * dx + dy * dy;
      const t = Math.max(0, Math.min(1, ((x - e.x1) * dx + (y - e.y1) * dy) / (L2 || 1)));
      const d = Math.hypot(x - e.x1 - t * dx, y - e.y1 - t * dy);
      if (d < bd) { bd = d; best = e; }
    }
    return best ? { edge: best } : null;
  }
  function showTip(h) {
    const tip = $("tip"), f = S.frame, info = S.info;
    if (!f || !info) return;
    tip.innerHTML = "";
    const add = (cls, text, tag = "div") => { const d = document.createElement(tag); d.className = cls; d.textContent = text; tip.append(d); return d; };
    if (h.edge) {
      const k = h.edge.k;
      add("name", info.weight_names[k]);
      const vals = add("vals", "");
      for (const [a, b] of [["value", fmt(f._w[k], 6)], ["∂E/∂w now", fmt(f._g[k], 6)]]) {
        const x = document.createElement("span"); x.textContent = a;
        const y = document.createElement("span"); y.textContent = b; vals.append(x, y);
      }
      const fm = add("f", info.formulas[k]);
      if (info.formulas_mathml) fm.innerHTML = info.formulas_mathml[k];  // scratchnet.derive's own
      add("muted", info.notation);
      add("muted", `${info.formulas_mathml ? "From scratchnet.derive (sympy). " : ""}Summed over the ${info.n_train} training rows; the step: w${k + 1} ← w${k + 1} − η ∂E/∂w${k + 1} (${$("optimizer").value}). Click the edge to type a new value.`);
    } else {
      const nd = h.node, sizes = info.layout.sizes, last = sizes.length - 1;
      const what = nd.layer === 0 ? "input (standardized)" : nd.layer === last ? `output, ${info.layout.output}` : `hidden layer ${nd.layer}, ${info.layout.activations[nd.layer - 1]}`;
      add("name", `${info.unit_names[nd.layer][nd.j]} — ${what}`);
      const c = nodeCanvas(nd, info.thumb_res, sizes);
      if (c) {
        const big = document.createElement("canvas"); big.width = big.height = 144;
        const bctx = big.getContext("2d"); bctx.imageSmoothingEnabled = true; bctx.drawImage(c, 0, 0, 144, 144);
        tip.append(big);
        if (nd.layer > 0 && nd.layer < last) {
          const [lo, hi] = f.thumb_ranges[nd.layer - 1];
          add("muted", `β over the map: ${NEG_NAME} ${fmt(lo, 3)} … white … ${POS_NAME} ${fmt(hi, 3)}`);
        }
      }
    }
    tip.hidden = false;
    const pad = 14, w = tip.offsetWidth, hh = tip.offsetHeight;
    let x = h.cx + pad, y = h.cy + pad;
    if (x + w > innerWidth - 4) x = Math.max(4, h.cx - w - pad);
    if (y + hh > innerHeight - 4) y = Math.max(4, h.cy - hh - pad);
    tip.style.left = x + "px"; tip.style.top = y + "px";
  }
  const NEG_NAME = "orange", POS_NAME = "blue";

  // ---- controls -----------------------------------------------------------------------
  function buildUnitControls() {
    const box = $("unit-ctls"), sizes = S.info ? S.info.layout.sizes : [2, ...S.hidden, 1];
    box.innerHTML = "";
    box.style.gridTemplateColumns = `repeat(${sizes.length}, 1fr)`;
    sizes.forEach((n, i) => {
      const d = document.createElement("div"); d.className = "uc";
      if (i === 0) d.textContent = `${n} input${n > 1 ? "s" : ""}`;
      else if (i === sizes.length - 1) d.textContent = `${n} output${n > 1 ? "s" : ""}`;
      else {
        const minus = document.createElement("button"), plus = document.createElement("button"), t = document.createElement("span");
        minus.className = plus.className = "mini"; minus.textContent = "−"; plus.textContent = "+";
        minus.title = "one unit less"; plus.title = "one unit more";
        t.textContent = `${S.hidden[i - 1]} units`;
        minus.onclick = () => { if (S.hidden[i - 1] > 1) { S.hidden[i - 1]--; sendConfig(); t.textContent = `${S.hidden[i - 1]} units`; } };
        plus.onclick = () => { if (S.hidden[i - 1] < S.meta.limits.units) { S.hidden[i - 1]++; sendConfig(); t.textContent = `${S.hidden[i - 1]} units`; } };
        d.append(minus, t, plus);
      }
      box.append(d);
    });
    $("n-layers").textContent = S.hidden.length;
    $("layers-s").textContent = S.hidden.length === 1 ? "" : "s";
  }

  function fillSelect(el, items, value) {
    el.innerHTML = "";
    for (const [v, label] of items) { const o = document.createElement("option"); o.value = v; o.textContent = label; el.append(o); }
    el.value = value;
  }

  function selectDataset(name, quiet) {
    const wasRegression = S.dataset && (isRegressionSet(S.dataset) || (S.dataset === "upload" && $("regression").checked));
    S.dataset = name;
    document.querySelectorAll("#datasets button, #reg-datasets button").forEach((b) => b.classList.toggle("on", b.dataset.name === name));
    if (isRegressionSet(name)) {  // ŷ is a number: identity output, ½Σ(ŷ − y)², a gentler η
      $("output").value = "identity"; $("loss").value = "sse";
      if (numOr($("lr"), 1) > 0.001) $("lr").value = "0.001";
    } else if (wasRegression && $("output").value === "identity") $("output").value = "sigmoid";
    const opts = datasetOptions(name);
    $("gen-controls").hidden = name === "ps5" || name === "upload";
    $("upload-cols").hidden = name !== "upload";
    if (opts.noise !== undefined && opts.noise !== null) {
      $("noise").max = Math.max(1, opts.noise * 2); $("noise").value = opts.noise; $("noise-out").textContent = opts.noise;
      $("n-samples").value = opts.n_samples;
    }
    $("classes-row").hidden = !("n_classes" in opts);
    if (!quiet) sendConfig();
  }

  function renderUploadColumns(u) {
    const list = $("feature-list"); list.innerHTML = "";
    u.columns.forEach((c, j) => {
      const lab = document.createElement("label"), box = document.createElement("input");
      box.type = "checkbox"; box.value = c; box.checked = u.features.includes(c);
      if (!u.numeric[j]) { lab.className = "off"; lab.title = "not all values are numbers"; }
      box.onchange = () => sendConfig();
      lab.append(box, " " + c); list.append(lab);
    });
    fillSelect($("target"), u.columns.map((c) => [c, c]), u.target);
  }

  async function upload(file) {
    const fd = new FormData(); fd.append("file", file, file.name);
    setStatus("uploading…");
    let res, body;
    try {
      res = await fetch("/api/upload", { method: "POST", body: fd, headers: { "X-Playground-Token": S.meta.token } });
      body = await res.json();
    } catch (e) { showError(`${file.name}: the upload failed (${e})`); return; }
    if (!res.ok) { showError(body.error || `${file.name}: the upload failed (${res.status})`); setStatus("upload refused"); return; }
    S.upload = body;
    let btn = document.querySelector('#datasets button[data-name="upload"]');
    if (!btn) { btn = datasetButton("upload"); $("datasets").append(btn); }
    btn.querySelector(".ds-name").textContent = body.name;
    renderUploadColumns(body);
    selectDataset("upload");
  }

  function datasetButton(name) {
    const b = document.createElement("button"); b.dataset.name = name;
    b.onclick = () => selectDataset(name);
    const pv = S.meta.previews[name];
    if (pv) {  // a small picture of the set, as its icon
      const c = document.createElement("canvas"), ctx = setup(c, 60, 40);
      ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, 60, 40);
      for (let i = 0; i < pv.x.length; i++) {
        ctx.fillStyle = rgb(PALETTE[pv.label[i] % PALETTE.length]);
        ctx.fillRect(3 + pv.x[i] * 53, 37 - pv.y[i] * 34, 2.2, 2.2);
      }
      b.append(c);
    }
    const label = document.createElement("span");
    label.className = "ds-name"; label.textContent = name === "ps5" ? "PS5 data" : name;
    b.append(label);
    return b;
  }

  function syncLossOutput(changed) {  // softmax goes with ce and ce with softmax
    const out = $("output"), loss = $("loss");
    if (changed === "output" && out.value === "softmax") loss.value = "ce";
    if (changed === "output" && out.value !== "softmax" && loss.value === "ce") loss.value = "sse";
    if (changed === "loss" && loss.value === "ce") out.value = "softmax";
    if (changed === "loss" && loss.value !== "ce" && out.value === "softmax") out.value = "sigmoid";
  }

  function exportFigures() {
    if (!S.frame) return;
    const netW = S.netW, netH = S.netH, W = netW + MAP.width + 30, H = Math.max(netH, MAP.height + CURVE.height + 10) + 40;
    const c = document.createElement("canvas"); c.width = W; c.height = H;
    const ctx = c.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    ctx.fillStyle = "#222"; ctx.font = "14px system-ui, sans-serif"; ctx.textBaseline = "top"; ctx.textAlign = "left";
    const f = S.frame, i = S.info;
    ctx.fillText(`scratchnet ${i.describe} · ${i.source} · epoch ${f.epoch} · train loss ${fmt(f.train_loss)} · test loss ${fmt(f.test_loss)} · ${i.loss_formula}`, 12, 10);
    drawNetwork(ctx, 0, 36);
    drawMap(ctx, netW + 20, 36);
    drawCurve(ctx, netW + 20, 36 + MAP.height + 6);
    download(c.toDataURL("image/png"), `scratchnet-${i.describe}-epoch${f.epoch}.png`);
  }

  async function init() {
    S.meta = await (await fetch("/api/meta")).json();
    const m = S.meta;
    for (const name of Object.keys(m.datasets)) $("datasets").append(datasetButton(name));
    for (const name of Object.keys(m.regression_sets)) $("reg-datasets").append(datasetButton(name));
    for (const [key, label] of Object.entries(m.extras)) {  // TensorFlow Playground's feature inputs
      const lab = document.createElement("label"), box = document.createElement("input");
      box.type = "checkbox"; box.value = key; box.onchange = () => sendConfig();
      lab.append(box, " " + label); $("extras").append(lab);
    }
    fillSelect($("activation"), m.activations.map((a) => [a, a]), "sigmoid");
    fillSelect($("output"), m.outputs.map((a) => [a, a]), "sigmoid");
    fillSelect($("loss"), Object.keys(m.losses).map((a) => [a, a]), "sse");
    fillSelect($("init"), m.inits.map((a) => [a, a === "normal" ? "normal (PS5 randn)" : a]), "normal");
    fillSelect($("optimizer"), Object.keys(m.options).map((a) => [a, a === "gd" ? "gd (PS5)" : a]), "gd");
    for (const k of Object.keys(m.losses)) $("loss").querySelector(`option[value="${k}"]`).title = m.losses[k];
    $("epochs").max = m.limits.epochs;
    $("lim-bytes").textContent = `${(m.limits.upload_bytes / 1e6).toFixed(0)} MB`;
    $("lim-rows").textContent = m.limits.rows.toLocaleString("en-US");
    $("footer").textContent = `scratchnet ${m.version} playground — everything runs on this machine (engine: ${m.engine}). ` +
      `Limits: ${m.limits.hidden_layers} hidden layers × ${m.limits.units} units, ${m.limits.epochs.toLocaleString("en-US")} epochs, ` +
      `uploads ${(m.limits.upload_bytes / 1e6).toFixed(0)} MB / ${m.limits.rows.toLocaleString("en-US")} rows.`;
    document.querySelector('#datasets button[data-name="ps5"]').classList.add("on");
    $("gen-controls").hidden = true;
    $("play").innerHTML = ICON_PLAY;
    buildUnitControls();

    for (const id of ["lr", "activation", "init", "seed", "epochs", "optimizer", "batch", "l2", "l1", "n-samples", "n-classes", "data-seed", "target", "noise", "test-size", "regression"])
      $(id).addEventListener("change", () => sendConfig());
    $("output").addEventListener("change", () => { syncLossOutput("output"); sendConfig(); });
    $("loss").addEventListener("change", () => { syncLossOutput("loss"); sendConfig(); });
    $("n-classes").addEventListener("change", () => {
      if (intOr($("n-classes"), 2) > 2 && $("output").value !== "softmax") { $("output").value = "softmax"; syncLossOutput("output"); }
    }, true);
    $("noise").addEventListener("input", () => { $("noise-out").textContent = (+$("noise").value).toFixed(2); });
    $("test-size").addEventListener("input", () => { $("test-out").textContent = Math.round(100 * $("test-size").value) + "%"; });
    $("file").addEventListener("change", (ev) => { const file = ev.target.files[0]; if (file) upload(file); ev.target.value = ""; });
    $("layer-plus").onclick = () => { if (S.hidden.length < m.limits.hidden_layers) { S.hidden.push(S.hidden[S.hidden.length - 1] || 4); buildUnitControls(); sendConfig(); } };
    $("layer-minus").onclick = () => { if (S.hidden.length > 0) { S.hidden.pop(); buildUnitControls(); sendConfig(); } };
    $("play").onclick = () => command({ type: S.playing ? "pause" : "play" });
    $("step").onclick = () => command({ type: "step", epochs: 1 });
    $("reset").onclick = () => { clearError(); command({ type: "reset" }); };
    $("speed").onchange = () => { sendSpeed(); writeHash(); };
    $("export-model").onclick = () => command({ type: "export" });
    $("export-png").onclick = exportFigures;
    $("png-map").onclick = () => S.frame && download($("map").toDataURL("image/png"), "scratchnet-map.png");
    $("png-loss").onclick = () => S.frame && download($("loss-curve").toDataURL("image/png"), "scratchnet-loss.png");
    for (const id of ["log-y", "show-test", "show-train"]) $(id).onchange = () => S.frame && drawAll();
    $("discretize").onchange = () => { writeHash(); if (S.frame) drawAll(); };
    $("unpin").onclick = () => { unpin(); if (S.frame) drawAll(); };
    $("suggest-apply").onclick = applySuggestion;
    $("suggest-close").onclick = hideSuggestion;
    $("edit-value").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        const v = parseFloat($("edit-value").value);
        if (Number.isFinite(v)) command({ type: "weight", k: S.editing, value: v });
        $("edit").hidden = true;
      } else if (ev.key === "Escape") $("edit").hidden = true;
    });
    $("edit-value").addEventListener("blur", () => { $("edit").hidden = true; });
    $("error-close").onclick = clearError;
    document.addEventListener("keydown", (ev) => {
      if (ev.code === "Space" && !/INPUT|SELECT|TEXTAREA|BUTTON/.test(document.activeElement.tagName)) { ev.preventDefault(); $("play").click(); }
    });
    const net = $("net");
    net.addEventListener("mousemove", (ev) => {
      if (!S.frame) return;
      const [x, y] = netPoint(ev), h = hitTest(x, y);
      const changed = (h && h.edge) !== (S.hover && S.hover.edge) || (h && h.node) !== (S.hover && S.hover.node);
      S.hover = h ? Object.assign(h, { cx: ev.clientX, cy: ev.clientY }) : null;
      if (S.hover) showTip(S.hover); else $("tip").hidden = true;
      if (changed) drawNetwork();
    });
    net.addEventListener("click", (ev) => {  // an edge: edit its weight; a unit: pin its map
      if (!S.frame) return;
      const [x, y] = netPoint(ev), h = hitTest(x, y);
      if (h && h.edge) openEditor(h.edge.k, ev.clientX, ev.clientY);
      else if (h && h.node) pin(h.node);
    });
    net.addEventListener("mouseleave", () => { S.hover = null; $("tip").hidden = true; if (S.frame) drawNetwork(); });
    window.addEventListener("resize", () => { if (S.info) { layoutNetwork(); if (S.frame) drawAll(); } });
    applyHash();
    connect();
  }

  // for the end-to-end tests (and the curious): read-only views of the page's state
  window.__playground = {
    state: S,
    fps: () => S.drawn.filter((t) => t > performance.now() - 1000).length,
    nodePoint(layer, j) {  // page coordinates of a unit's centre
      const nd = S.nodes[layer][j], rect = $("net").getBoundingClientRect();
      return [rect.left + nd.x * rect.width / S.netW, rect.top + nd.y * rect.height / S.netH];
    },
    edgePoint(k) {  // page coordinates of the middle of weight k's edge
      const e = S.edges.find((x) => x.k === k), rect = $("net").getBoundingClientRect();
      return e && [rect.left + (e.x1 + e.x2) / 2 * rect.width / S.netW, rect.top + (e.y1 + e.y2) / 2 * rect.height / S.netH];
    },
  };
  init().catch((e) => showError(`the page could not start: ${e}`));
})();
