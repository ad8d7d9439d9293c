"""The playground under load: frames per second per tab and /healthz latency (p95).

Starts `scratchnet playground` in its own process and connects WebSocket clients that behave
like pages (they ack every frame):

* ``16 tabs playing``: the PS5 network, full speed, on every tab the server allows;
* ``10 playing + 6 long steps``: six tabs each run ``step 100000`` on a 2-64-64-64-64-1
  network over 20,000 rows (the issue's attack; the server allows 16 tabs, so 10 play), and a
  17th connection is refused while a new tab after one closes gets ``ready``.

The issue's figures before the fix: 29 fps per tab with 16 tabs, /healthz p95 16–22 ms; six
long steps then blocked every new tab.  ``--seconds`` sets each phase's length (``--quick``: 3).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

from _common import emit

PS5 = {"type": "config", "data": {"name": "ps5"}, "network": {"lr": 0.01, "epochs": 1_000_000}}
LONG = {"type": "config", "data": {"name": "moons", "n_samples": 20_000},
        "network": {"hidden": [64, 64, 64, 64], "lr": 0.001, "epochs": 1_000_000}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    code = "import sys; from scratchnet.cli import main; sys.exit(main())"
    proc = subprocess.Popen([sys.executable, "-c", code, "playground", "--no-browser", "--port",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the playground did not start")


async def tab(url: str, config: dict, then: dict, frames: list, stop: asyncio.Event,
              ready: asyncio.Event | None = None) -> None:
    """One page: configure, then play (or step); ack every frame and count it."""
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None) as ws:
        await ws.send(json.dumps(config))
        while json.loads(await ws.recv())["type"] != "frame":
            pass
        if ready:
            ready.set()
        await ws.send(json.dumps(then))
        while not stop.is_set():
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
            except asyncio.TimeoutError:
                continue
            if m["type"] == "frame":
                frames.append(time.perf_counter())
                await ws.send(json.dumps({"type": "ack", "seq": m["seq"]}))


async def poll_healthz(base: str, stop: asyncio.Event, lat: list, seen: list) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=10) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            r = await client.get(base + "/healthz")
            lat.append(time.perf_counter() - t0)
            seen.append(r.json())
            await asyncio.sleep(0.05)


def p95(xs: list) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.95 * len(xs)))] if xs else float("nan")


async def phase(port: int, playing: int, stepping: int, seconds: float) -> dict:
    url, base = f"ws://127.0.0.1:{port}/ws", f"http://127.0.0.1:{port}"
    stop = asyncio.Event()
    frames = [[] for _ in range(playing)]
    tasks = []
    for i in range(stepping):  # the long steps first: they must not starve what follows
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(tab(url, LONG, {"type": "step", "epochs": 100_000},
                                             [], stop, ready)))
        await asyncio.wait_for(ready.wait(), 120)
    t_ready = time.perf_counter()
    readies = [asyncio.Event() for _ in range(playing)]
    for i in range(playing):
        tasks.append(asyncio.create_task(tab(url, PS5, {"type": "play"}, frames[i], stop,
                                             readies[i])))
    lat, seen = [], []
    poller = asyncio.create_task(poll_healthz(base, stop, lat, seen))
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 300)
    ready_s = time.perf_counter() - t_ready  # every playing tab built and drawn
    await asyncio.sleep(1.0)  # playing
    t0 = time.perf_counter()
    n0 = [len(f) for f in frames]
    lat.clear()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - t0
    fps = [(len(f) - a) / elapsed for f, a in zip(frames, n0)]
    stop.set()
    await asyncio.gather(*tasks, poller, return_exceptions=True)
    busy = max((h.get("busy_workers", 0) for h in seen), default=0)
    return {"fps_min": min(fps) if fps else 0.0, "fps_mean": sum(fps) / max(len(fps), 1),
            "healthz_p95_ms": 1000 * p95(lat), "healthz_max_ms": 1000 * max(lat or [0]),
            "polls": len(lat), "busy_workers_max": busy, "tabs_ready_s": ready_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--quick", action="store_true", help="3 s a phase")
    args = ap.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    port = free_port()
    proc = start_server(port)
    try:
        r = asyncio.run(phase(port, 16, 0, seconds))
        emit("playground", "16 tabs playing (PS5 2-7-1)", **r)
        r = asyncio.run(phase(port, 10, 6, seconds))
        emit("playground", "10 playing + 6 long steps (2-64-64-64-64-1, 20,000 rows)", **r)
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        emit("playground", "Ctrl-C to exit", seconds=time.perf_counter() - t0,
             load=os.getloadavg()[0])
    finally:
        if proc.poll() is None:
            proc.kill()


if __name__ == "__main__":
    main()
