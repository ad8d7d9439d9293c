"""One WebSocket = one tab's training session, streamed as frames.

The protocol (JSON text messages):

page → server
  {"type": "config", "data": {...}, "network": {...}}   build data + network (epoch 0, paused)
  {"type": "play"} / {"type": "pause"}                  train continuously / stop
  {"type": "step", "epochs": n}                         n epochs (default 1), then pause
  {"type": "reset"}                                     epoch 0, the seed's very same weights
  {"type": "speed", "epochs_per_frame": n}              at most n per frame; 0 = max
  {"type": "export"}                                    ask for the model JSON
  {"type": "ack", "seq": n}                             frame n is drawn (flow control)
server → page
  {"type": "ready", ...}   fixed facts of the data and network (Session.info)
  {"type": "frame", "seq": n, ...}                      Session.frame
  {"type": "model", "model": {...}, "filename": ...}    Model.to_dict(), as `train --save`
  {"type": "error", "message": "...", "where": ...}

Training runs in a worker thread (``asyncio.to_thread``) one chunk per frame, each chunk about
28 ms of epochs, so the event loop keeps serving other tabs and HTTP requests.  A page that acks
frames never has more than ``MAX_IN_FLIGHT`` frames queued, so a slow page slows the frames
instead of falling behind.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time

from ..core.errors import ScratchnetError
from .inputs import Uploads, parse_config
from .session import Limits, PlaygroundError, Session

log = logging.getLogger("scratchnet.web")
MAX_IN_FLIGHT = 3
MAX_FPS = 30.0
MAX_STEP = 100_000


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
    """The WebSocket is gone; the tab's loop ends."""


def _dumps(msg: dict) -> str:
    return json.dumps(msg, separators=(",", ":"), allow_nan=False)


class Tab:
    """One connected page: its Session (None until a config is accepted) and the stream."""

    def __init__(self, ws, limits: Limits, uploads: Uploads):
        self.ws, self.limits, self.uploads = ws, limits, uploads
        self.session: Session | None = None
        self.running = False
        self.seq = 0
        self.acked: int | None = None  # None until the page acks: no flow control then
        self.epochs_per_frame = 100  # the page's speed; 0 = as many as fit in a frame
        self.pacer = Pacer()
        self.last_send = 0.0

    # ---- the loop -----------------------------------------------------------------------
    async def run(self) -> None:
        inbox: asyncio.Queue = asyncio.Queue()
        reader = asyncio.create_task(self._read(inbox))
        try:
            await self._loop(inbox)
        except _Closed:
            pass  # the page left: nothing to tell anyone
        finally:
            reader.cancel()

    async def _loop(self, inbox: asyncio.Queue) -> None:
        """Messages first (never more than one frame late), then a frame if training."""
        while True:
            while not inbox.empty():
                if not await self._dispatch(inbox.get_nowait()):
                    return
            if self._can_train():
                await self._guard(self._train_frame())
                continue
            if not await self._dispatch(await inbox.get()):
                return

    async def _read(self, inbox: asyncio.Queue) -> None:
        try:
            while True:
                m = await self.ws.receive()
                if m["type"] == "websocket.disconnect":
                    break
                text = m.get("text")
                try:
                    msg = json.loads(text) if text is not None else None
                except ValueError:
                    msg = None
                inbox.put_nowait(msg if isinstance(msg, dict) else {"type": "_bad"})
        except Exception:  # noqa: BLE001 - a broken connection ends the tab
            pass
        finally:
            inbox.put_nowait(None)

    async def _dispatch(self, msg) -> bool:
        if msg is None:
            return False
        await self._guard(self.handle(msg))
        return True

    async def _guard(self, coro) -> None:
        """Run one step; any failure becomes an error message, never a dead connection."""
        try:
            await coro
        except _Closed:
            raise
        except ScratchnetError as e:
            self.running = False
            await self.send({"type": "error", "message": str(e)})
        except Exception as e:  # noqa: BLE001 - a bug: log it, tell the page, keep serving
            log.exception("playground: internal error")
            self.running = False
            await self.send({"type": "error", "message": f"internal error: "
                             f"{e.__class__.__name__}: {e}"})

    def _can_train(self) -> bool:
        if not (self.running and self.session is not None):
            return False
        return self.acked is None or self.seq - self.acked < MAX_IN_FLIGHT

    async def send(self, msg: dict) -> None:
        await self._send_text(_dumps(msg))

    async def _send_text(self, text: str) -> None:
        try:
            await self.ws.send_text(text)
        except Exception as e:  # noqa: BLE001 - the page went away (tab closed, reload)
            raise _Closed() from e

    async def _send_frame(self, text_parts: tuple[str, str]) -> None:
        head, body = text_parts
        self.seq += 1
        self.last_send = clock()
        await self._send_text(head + str(self.seq) + body)

    def _frame_text(self) -> tuple[str, str]:
        """The frame as JSON text with a hole for its sequence number (built off the loop)."""
        body = _dumps(self.session.frame())
        return '{"seq":', "," + body[1:]

    # ---- training -----------------------------------------------------------------------
    def _advance_and_frame(self, n: int) -> tuple[int, float, tuple[str, str]]:
        t0 = clock()
        ran = self.session.advance(n)
        return ran, clock() - t0, self._frame_text()

    async def _train_frame(self) -> None:
        s = self.session
        # the page's speed, but never more epochs than fit in a frame's time
        n = min(self.epochs_per_frame or self.pacer.next(), self.pacer.next())
        ran, seconds, text = await asyncio.to_thread(self._advance_and_frame, n)
        self.pacer.observed(ran, seconds)
        wait = self.last_send + 1.0 / MAX_FPS - clock()
        if wait > 0:
            await asyncio.sleep(wait)
        if s is not self.session:  # a config arrived meanwhile: that frame is stale
            return
        if s.status in ("done", "diverged"):
            self.running = False
        await self._send_frame(text)

    async def _send_current(self) -> None:
        await self._send_frame(await asyncio.to_thread(self._frame_text))

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
            self.running = False
            self.session = None
            try:
                self.session, info = await asyncio.to_thread(self._build, msg)
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
            s.status, self.running = "running", True
        elif kind == "pause":
            s = self._need_session()
            self.running = False
            if s.status == "running":
                s.status = "paused"
            await self._send_current()
        elif kind == "step":
            s = self._need_session()
            n = msg.get("epochs", 1)
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_STEP:
                raise PlaygroundError(f"step: epochs must be a whole number from 1 to "
                                      f"{MAX_STEP:,}")
            self.running = False
            if s.budget_left <= 0:
                raise PlaygroundError(f"the epoch budget ({s.config.epochs:,}) is used up")
            await asyncio.to_thread(s.advance, n)
            if s.status not in ("done", "diverged"):
                s.status = "paused"
            await self._send_current()
        elif kind == "reset":
            s = self._need_session()
            self.running = False
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
            model = await asyncio.to_thread(lambda: s.model().to_dict())
            await self.send({"type": "model", "model": model,
                             "filename": f"scratchnet-{s.layout.describe()}-epoch{s.epoch}.json"})
        elif kind == "_bad":
            raise PlaygroundError("messages must be JSON objects with a \"type\"")
        else:
            raise PlaygroundError(f"unknown message type {kind!r}")

    def _build(self, msg: dict) -> tuple[Session, str]:
        """The new session and its ``ready`` message (names, formulas: slow for big nets)."""
        config, dataset = parse_config(msg, self.uploads, self.limits)
        session = Session(config, dataset, self.limits)
        return session, _dumps(session.info())


def _plain(message: str) -> str:
    """Core messages name command-line flags (``--output softmax``); the page has controls."""
    import re

    return re.sub(r"--([a-z][a-z-]*)", lambda m: m.group(1).replace("-", " "), message)
