"""One WebSocket = one tab's training session, streamed as frames.

The protocol (JSON text messages):

page → server
  {"type": "config", "data": {...}, "network": {...}}   build data + network (epoch 0, paused)
  {"type": "play"} / {"type": "pause"}                  train continuously / stop
  {"type": "step", "epochs": n}                         n epochs (default 1), then pause
  {"type": "reset"}                                     epoch 0, the seed's very same weights
  {"type": "speed", "epochs_per_frame": n}              at most n per frame; 0 = max
  {"type": "export"}                                    ask for the model JSON
  {"type": "weight", "k": k, "value": v}                w_(k+1) ← v (a clicked edge)
  {"type": "ack", "seq": n}                             frame n is drawn (flow control)
server → page
  {"type": "ready", ...}   fixed facts of the data and network (Session.info)
  {"type": "frame", "seq": n, ...}                      Session.frame
  {"type": "progress", ...}   a frame during a long Step (not acked, ≤ 4 a second)
  {"type": "model", "model": {...}, "filename": ...}    Model.to_dict(), as `train --save`
  {"type": "error", "message": "...", "where": ...}

Training runs in slices on the app's worker threads: one slice is about 28 ms of epochs (one
epoch at least), sized by a Pacer, and between two slices the tab reads its messages, so Pause,
a new config, a closed socket and the server's shutdown all take effect within a slice.  A Step
of many epochs is the same loop with an end (it shows progress every ¼ s and Pause stops it).
The page's messages wait in an inbox of at most ``limits.inbox`` messages of at most
``limits.message_bytes`` bytes; one past either is dropped, and the page is told why.  A page
that acks frames never has more than ``MAX_IN_FLIGHT`` frames queued, so a slow page slows the
frames instead of falling behind.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import queue
import re
import threading
import time
from dataclasses import replace

from ..core.errors import ScratchnetError
from .inputs import parse_config
from . import PlaygroundError
from .features import REGRESSION, REGRESSION_DEFAULTS, parse_extras, regression_dataset
from .session import Limits, Session

log = logging.getLogger("scratchnet.web")
MAX_IN_FLIGHT = 3
MAX_FPS = 30.0
MAX_STEP = 100_000
PROGRESS_S = 0.25  # a long Step shows a frame this often


class Pacer:
    """How many epochs fit in one frame: about ``target_s`` of training (adapts to speed)."""

    def __init__(self, target_s: float = 0.028):
        self.target_s = target_s
        self.n = 1  # grows ×4 a frame at most, so a slow network is never stuck in one chunk

    def next(self) -> int:
        return self.n

    def observed(self, n: int, seconds: float) -> None:
        if n <= 0:
            return
        rate = n / max(seconds, 1e-4)
        self.n = int(max(1, min(self.n * 4, rate * self.target_s)))


clock = time.perf_counter


class _Closed(Exception):
    """The WebSocket is gone (or the server stops); the tab's loop ends."""


class Workers:
    """The app's worker threads for training slices and builds, counting the busy ones.

    Daemon threads, unlike ``ThreadPoolExecutor``'s: Ctrl-C must not wait at the interpreter's
    exit for a slice that is still computing (or for numba compiling an engine) — nothing a
    worker computes is ever written anywhere."""

    def __init__(self, size: int, name: str = "playground"):
        self.size, self.busy, self.closed = size, 0, False  # busy: threads computing now
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        for i in range(size):
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn = job
            if not future.set_running_or_notify_cancel():
                continue
            with self._lock:
                self.busy += 1
            try:
                future.set_result(fn())
            except BaseException as e:  # noqa: BLE001 - handed to the awaiting tab
                future.set_exception(e)
            finally:
                with self._lock:
                    self.busy -= 1

    def submit(self, fn, *args) -> concurrent.futures.Future:
        if self.closed:
            raise RuntimeError("the playground's workers are shut down")
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((future, functools.partial(fn, *args)))
        return future

    async def run(self, fn, *args):
        return await asyncio.wrap_future(self.submit(fn, *args))

    def shutdown(self) -> None:
        self.closed = True
        for _ in range(self.size):
            self._jobs.put(None)


def _dumps(msg: dict) -> str:
    return json.dumps(msg, separators=(",", ":"), allow_nan=False)


class Tab:
    """One connected page: its Session (None until a config is accepted) and the stream."""

    def __init__(self, ws, limits: Limits, uploads, workers: Workers | None = None,
                 stopping: threading.Event | None = None):
        self.ws, self.limits, self.uploads = ws, limits, uploads
        self.workers = workers or Workers(2)
        self.stopping = stopping or threading.Event()
        self.session: Session | None = None
        self.running = False
        self.step_to: int | None = None  # a Step in progress: train until this epoch
        self.seq = 0
        self.acked: int | None = None  # None until the page acks: no flow control then
        self.epochs_per_frame = 100  # the page's speed; 0 = as many as fit in a frame
        self.pacer = Pacer()
        self.last_send = 0.0
        self.gone = False
        self._left = asyncio.Event()  # set with ``gone``: what a tab waiting on a slice awaits
        self.dropped: list[str] = []  # why messages were dropped, told to the page

    @property
    def busy(self) -> bool:
        """Training (Play or a Step in progress)."""
        return self.running or self.step_to is not None

    # ---- the loop -----------------------------------------------------------------------
    async def run(self) -> None:
        inbox: asyncio.Queue = asyncio.Queue()
        reader = asyncio.create_task(self._read(inbox))
        try:
            await self._loop(inbox)
        except _Closed:
            pass  # the page left (or the server stops): nothing to tell anyone
        finally:
            self.running, self.step_to = False, None
            reader.cancel()

    async def _loop(self, inbox: asyncio.Queue) -> None:
        """Messages first (never more than one slice late), then a slice if training."""
        while True:
            if self.stopping.is_set() or self.gone:
                return
            while not inbox.empty():
                if not await self._dispatch(inbox.get_nowait()):
                    return
            await self._tell_dropped()
            if self._can_train():
                await self._guard(self._train_slice())
                continue
            if not await self._dispatch(await inbox.get()):
                return

    async def _read(self, inbox: asyncio.Queue) -> None:
        lim = self.limits
        try:
            while True:
                m = await self.ws.receive()
                if m["type"] == "websocket.disconnect":
                    break
                text = m.get("text")
                size = len(text if text is not None else m.get("bytes") or b"")
                if size > lim.message_bytes:
                    self.dropped.append(f"a message of {size:,} bytes was dropped: the "
                                        f"playground takes messages up to "
                                        f"{lim.message_bytes:,} bytes")
                    inbox.put_nowait({"type": "_wake"})
                    continue
                if inbox.qsize() >= lim.inbox:
                    self.dropped.append(f"a message was dropped: {lim.inbox} messages are "
                                        "waiting already (the server is busy training a "
                                        "slice); send fewer at once")
                    continue
                try:
                    msg = json.loads(text) if text is not None else None
                except ValueError:
                    msg = None
                inbox.put_nowait(msg if isinstance(msg, dict) else {"type": "_bad"})
        except Exception:  # noqa: BLE001 - a broken connection ends the tab
            pass
        finally:
            self.gone = True
            self._left.set()
            inbox.put_nowait(None)

    async def _dispatch(self, msg) -> bool:
        if msg is None:
            return False
        await self._tell_dropped()  # in order: before what came after the dropped ones
        await self._guard(self.handle(msg))
        return True

    async def _tell_dropped(self) -> None:
        if self.dropped:
            why, more = self.dropped[0], len(self.dropped) - 1
            self.dropped = []
            extra = f" ({more} more dropped since)" if more else ""
            await self.send({"type": "error", "where": "message", "message": why + extra})

    async def _work(self, fn, *args):
        """``fn(*args)`` on a worker thread; the server stopping ends the tab."""
        if self.stopping.is_set() or self.gone:
            raise _Closed()
        try:
            job = asyncio.wrap_future(self.workers.submit(fn, *args))
        except RuntimeError:
            if self.stopping.is_set():  # the workers are shut down: the server is stopping
                raise _Closed() from None
            raise
        left = asyncio.ensure_future(self._left.wait())
        try:
            await asyncio.wait({job, left}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            left.cancel()
        if not job.done():  # the page left mid-slice: free the tab now; the slice's result
            raise _Closed()  # (of a session nobody holds any more) is dropped when it ends
        return job.result()

    async def _guard(self, coro) -> None:
        """Run one step; any failure becomes an error message, never a dead connection, and
        never the text of an internal error (that goes to the server's log)."""
        try:
            await coro
        except _Closed:
            raise
        except ScratchnetError as e:
            self.running, self.step_to = False, None
            await self.send({"type": "error", "message": _plain(str(e)),
                             **({} if self.session else {"where": "config"})})
        except Exception:  # noqa: BLE001 - a bug: log it, tell the page, keep serving
            log.exception("playground: internal error")
            self.running, self.step_to = False, None
            await self.send({"type": "error", "message": "the server could not do that (an "
                             "internal error, written to the server's log); change the "
                             "settings or press Reset",
                             **({} if self.session else {"where": "config"})})

    def _can_train(self) -> bool:
        if not (self.busy and self.session is not None):
            return False
        return self.acked is None or self.seq - self.acked < MAX_IN_FLIGHT

    async def send(self, msg: dict) -> None:
        await self._send_text(_dumps(msg))

    async def _send_text(self, text: str) -> None:
        if self.gone:
            raise _Closed()
        try:
            await self.ws.send_text(text)
        except Exception as e:  # noqa: BLE001 - the page went away (tab closed, reload)
            raise _Closed() from e

    async def _send_frame(self, text_parts: tuple[str, str]) -> None:
        head, body = text_parts
        self.seq += 1
        self.last_send = clock()
        await self._send_text(head + str(self.seq) + body)

    def _frame_text(self, progress: bool = False) -> tuple[str, str]:
        """The frame as JSON text with a hole for its sequence number (built off the loop)."""
        body = _dumps(self.session.frame(progress))
        return '{"seq":', "," + body[1:]

    # ---- training -----------------------------------------------------------------------
    def _advance(self, n: int, frame: str | None) -> tuple[int, float, tuple[str, str] | None]:
        """n epochs, then the frame's text (``frame``: "frame", "progress" or None)."""
        t0 = clock()
        ran = self.session.advance(n)
        text = None if frame is None else self._frame_text(frame == "progress")
        return ran, clock() - t0, text

    async def _train_slice(self) -> None:
        """One slice of Play or of a Step, then a frame (for a Step: at its end, and every
        PROGRESS_S while it lasts)."""
        s = self.session
        if self.step_to is not None:
            n = min(self.pacer.next(), self.step_to - s.epoch)
            # a progress frame due (not for the last slice: its frame says "paused")
            frame_due = "progress" if (n < self.step_to - s.epoch
                                       and clock() - self.last_send > PROGRESS_S) else None
        else:  # the page's speed, but never more epochs than fit in a frame's time
            n = min(self.epochs_per_frame or self.pacer.next(), self.pacer.next())
            frame_due = "frame"
        ran, seconds, text = await self._work(self._advance, n, frame_due)
        self.pacer.observed(ran, seconds)
        if s is not self.session:  # a config arrived meanwhile: that frame is stale
            return
        if self.step_to is not None:
            if s.epoch >= self.step_to or s.status in ("done", "diverged") or ran < n:
                self.step_to = None
                if s.status not in ("done", "diverged"):
                    s.status = "paused"
                text = await self._work(self._frame_text)
                await self._send_frame(text)
            elif text is not None:  # progress: drawn like a frame, no ack (≤ 1/PROGRESS_S)
                self.last_send = clock()
                await self._send_text(text[0].replace('"seq"', '"type":"progress","seq"')
                                      + "null" + text[1].replace('"type":"frame",', "", 1))
            return
        wait = self.last_send + 1.0 / MAX_FPS - clock()
        if wait > 0:
            await asyncio.sleep(wait)
        if s.status in ("done", "diverged"):
            self.running = False
        await self._send_frame(text)

    async def _send_current(self) -> None:
        await self._send_frame(await self._work(self._frame_text))

    # ---- messages -----------------------------------------------------------------------
    def _need_session(self) -> Session:
        if self.session is None:
            raise PlaygroundError("no data and network yet: fix the settings above first")
        return self.session

    async def handle(self, msg: dict) -> None:
        kind = msg.get("type")
        if kind == "ack":
            seq = msg.get("seq")
            if isinstance(seq, int):
                self.acked = max(self.acked or 0, seq)
        elif kind == "config":
            self.running, self.step_to = False, None
            self.session = None
            try:
                self.session, info = await self._work(self._build, msg)
            except ScratchnetError as e:
                await self.send({"type": "error", "where": "config",
                                 "message": _plain(str(e))})
                return
            self.pacer = Pacer()
            await self._send_text(info)
            await self._send_current()
        elif kind == "play":
            s = self._need_session()
            if s.budget_left <= 0:
                raise PlaygroundError(f"the epoch budget ({s.config.epochs:,}) is used up: "
                                      "raise it or press Reset")
            if s.status == "diverged":
                raise PlaygroundError(s.message)
            s.status, self.running, self.step_to = "running", True, None
        elif kind == "pause":
            s = self._need_session()
            self.running, self.step_to = False, None
            if s.status == "running":
                s.status = "paused"
            await self._send_current()
        elif kind == "step":
            self._step(msg)
        elif kind == "reset":
            s = self._need_session()
            self.running, self.step_to = False, None
            s.reset()
            self.pacer = Pacer()
            await self._send_current()
        elif kind == "speed":
            n = msg.get("epochs_per_frame", 0)
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_STEP:
                raise PlaygroundError(f"speed: epochs per frame must be 0 (auto) to "
                                      f"{MAX_STEP:,}")
            self.epochs_per_frame = n
        elif kind == "export":
            s = self._need_session()
            model = await self._work(lambda: s.model().to_dict())
            await self.send({"type": "model", "model": model,
                             "filename": f"scratchnet-{s.layout.describe()}-epoch{s.epoch}.json"})
        elif kind == "weight":  # the page's edit of one edge: w_k ← value
            await self._edit_weight(msg)
        elif kind == "_wake":  # a dropped message: the loop tells why
            pass
        elif kind == "_bad":
            raise PlaygroundError("messages must be JSON objects with a \"type\"")
        else:
            raise PlaygroundError(f"unknown message type {kind!r}")

    def _step(self, msg: dict) -> None:
        """{"type": "step", "epochs": n}: trained slice by slice in the loop (Pause stops
        it); the frame comes at its end."""
        s = self._need_session()
        n = msg.get("epochs", 1)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_STEP:
            raise PlaygroundError(f"step: epochs must be a whole number from 1 to "
                                  f"{MAX_STEP:,}")
        self.running = False
        if s.budget_left <= 0:
            raise PlaygroundError(f"the epoch budget ({s.config.epochs:,}) is used up")
        if s.status == "diverged":
            raise PlaygroundError(s.message)
        self.step_to, s.status = s.epoch + min(n, s.budget_left), "running"
        self.last_send = clock()

    async def _edit_weight(self, msg: dict) -> None:
        """{"type": "weight", "k": k, "value": v}: w_{k+1} ← v, training paused."""
        s = self._need_session()
        k, v = msg.get("k"), msg.get("value")
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < s.layout.n_params:
            raise PlaygroundError(f"weight: k must be 0 to {s.layout.n_params - 1}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not abs(v) <= 1e6:
            raise PlaygroundError(f"w{k + 1}: the value must be a number from −1e6 to 1e6")
        self.running, self.step_to = False, None
        s.set_weight(k, float(v))
        if s.status == "running":
            s.status = "paused"
        await self._send_current()

    def _build(self, msg: dict) -> tuple[Session, str]:
        """The new session and its ``ready`` message (names, formulas: slow for big nets)."""
        data = msg.get("data") if isinstance(msg.get("data"), dict) else {}
        extras = parse_extras(data)
        name = data.get("name")
        regression = name in REGRESSION or (name == "upload"
                                            and data.get("problem") == "regression")
        if name in REGRESSION:  # the options checked as for a generated set, then this set
            d = REGRESSION_DEFAULTS[name]
            checked = {**msg, "data": {"n_samples": d["n_samples"], "noise": d["noise"],
                                       **data, "name": "moons"}}
            config, _ = parse_config(checked, self.uploads, self.limits)
            dataset = regression_dataset(name, config.n_samples, config.noise,
                                         config.data_seed)
            config = replace(config, data=name, n_samples=None, noise=None, data_seed=None)
        else:
            config, dataset = parse_config(msg, self.uploads, self.limits)
        if regression:  # ŷ can be any number: an identity output and ½Σ(ŷ − y)²
            config = replace(config, output="identity", loss="sse")
        session = Session(config, dataset, self.limits, extras, regression)
        return session, _dumps(session.info())


def _plain(message: str) -> str:
    """Core messages name command-line flags (``--output softmax``); the page has controls."""
    return re.sub(r"--([a-z][a-z-]*)", lambda m: m.group(1).replace("-", " "), message)
