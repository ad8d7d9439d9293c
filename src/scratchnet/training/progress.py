"""A dependency-free progress bar with live losses, drawn on stderr only when it is a terminal."""
from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, total: int, desc: str = "training", stream=None, enabled=None,
                 width: int = 28):
        self.total, self.desc, self.width = max(int(total), 1), desc, width
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.t0 = time.perf_counter()
        self._last = 0.0

    def __call__(self, done: int, total: int | None = None, train_loss=None, test_loss=None,
                 force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and done < self.total and now - self._last < 0.05:
            return
        self._last = now
        frac = min(done / self.total, 1.0)
        filled = int(frac * self.width)
        bar = "█" * filled + "·" * (self.width - filled)
        rate = done / max(now - self.t0, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else 0.0
        losses = ""
        if train_loss is not None:
            losses = f"  train {train_loss:.4g}"
            if test_loss is not None:
                losses += f"  test {test_loss:.4g}"
        self.stream.write(f"\r{self.desc} |{bar}| {done}/{self.total} "
                          f"[{rate:,.0f}/s, eta {eta:.1f}s]{losses}\033[K")
        if done >= self.total:
            self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
