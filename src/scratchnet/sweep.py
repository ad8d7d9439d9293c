"""Sweeps: how much does the result depend on the initialisation (and on η, and on the width)?

A sweep trains every (architecture, learning rate, seed) of a grid and writes one CSV row per
network.  The grid is cut into *chunks*: networks of one architecture, trained together as one
vectorized ensemble (:func:`scratchnet.engines.ensemble.train_ensemble`).  Chunks run one after the
other in this process, or, with ``scheduler``, as tasks on a Dask cluster (``"local"`` starts a
LocalCluster on this machine; ``"tcp://host:8786"`` joins a running one).  Dask is imported
only then.

Results stream to the output file as chunks finish: the rows of a chunk are appended together,
after its loss curves went to the ``<out>.curves.npy`` side file.  Both are built column by
column (numpy), never network by network, so that the host keeps up with a GPU that trains 10⁵
networks at a time.  Running the same sweep again
resumes: configurations already in the file are skipped, so every configuration appears exactly
once.  A chunk's networks are fixed by the grid (not by which chunks are done), and a network's
numbers do not depend on where it runs, so a resumed or redistributed sweep writes the same
numbers as an uninterrupted serial one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field, replace

import numpy as np

from .core.data import load_data
from .core.errors import ScratchnetError
from .engines.ensemble import check_options, train_ensemble
from .sweepfile import (COLUMNS, HIDDEN_WIDTH, SweepLock, SweepWriter,  # noqa: F401
                        curve_records, curves_path, is_stream, print_warning, read_curves,
                        read_rows)
from .training.train import prepare

KEY = ("hidden", "lr", "seed")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MAX_SEEDS = 10_000_000  # per sweep: the grid's keys are held in memory (~200 bytes each)


# ---- the grid ------------------------------------------------------------------------------
def _entries(text: str, option: str) -> list[str]:
    """The comma-separated entries of a list flag; an empty one (``7,,3``, ``7,``, ``,7``) is
    refused rather than dropped (issue 12 item 11)."""
    parts = [p.strip() for p in text.split(",")]
    if text.strip() and not all(parts):
        raise ScratchnetError(f"{option}: '{text}' has an empty entry")
    return [p for p in parts if p]


def parse_seeds(text: str) -> list[int]:
    """``0:1000`` (end excluded, as Python's range), ``0,5,9``, or both: ``0:10,100:110``."""
    seeds: list[int] = []
    try:
        for part in _entries(text, "--seeds"):
            lo, hi = (int(v) for v in part.split(":")) if ":" in part else (int(part),) * 2
            hi += ":" not in part  # a single seed is the range seed:seed+1
            if hi <= lo:
                raise ScratchnetError(f"--seeds: empty range '{part}' (end is excluded)")
            if lo < 0 or hi > 2 ** 32:
                raise ScratchnetError(f"--seeds: '{part}' leaves 0 … 2**32 − 1, the seeds "
                                      "numpy takes")
            if len(seeds) + hi - lo > MAX_SEEDS:  # checked before the list is built
                raise ScratchnetError(f"--seeds: '{text}' gives more than {MAX_SEEDS:,} seeds; "
                                      "a sweep holds at most that many")
            seeds.extend(range(lo, hi))
    except ValueError:
        raise ScratchnetError(f"--seeds: '{text}' is not like 0:1000 or 0,5,9") from None
    if not seeds:
        raise ScratchnetError("--seeds: no seeds given")
    if len(set(seeds)) != len(seeds):
        raise ScratchnetError(f"--seeds: '{text}' repeats a seed")
    return seeds


def parse_hidden(text: str) -> list[tuple[int, ...]]:
    """A list of architectures: ``3,7,15`` is three one-layer networks, ``16x8`` one network
    with two hidden layers; ``3,16x8`` both."""
    try:
        archs = [tuple(int(s) for s in part.split("x")) for part in _entries(text, "--hidden")]
    except ValueError:
        raise ScratchnetError(f"--hidden: '{text}' is not like 3,7,15 or 16x8") from None
    if not archs or any(s < 1 for a in archs for s in a):
        raise ScratchnetError(f"--hidden: '{text}' needs positive layer sizes")
    if len(set(archs)) != len(archs):
        raise ScratchnetError(f"--hidden: '{text}' repeats an architecture")
    return archs


def parse_lrs(text: str) -> list[float]:
    try:
        lrs = [float(v) for v in _entries(text, "--lr")]
    except ValueError:
        raise ScratchnetError(f"--lr: '{text}' is not a comma-separated list of numbers") from None
    if not lrs or not all(np.isfinite(v) and v > 0 for v in lrs):
        raise ScratchnetError(f"--lr: '{text}' needs positive learning rates")
    if len(set(lrs)) != len(lrs):
        raise ScratchnetError(f"--lr: '{text}' repeats a learning rate")
    return lrs


def hidden_label(hidden) -> str:
    """(16, 8) → ``16x8``, the form ``--hidden`` takes and the CSV stores."""
    return "x".join(str(int(h)) for h in hidden)


def _key(hidden: str, lr, seed) -> tuple[str, float, int]:
    return str(hidden), float(lr), int(seed)


@dataclass(frozen=True)
class Chunk:
    """Networks trained as one ensemble: one architecture, a (lr, seed) per network."""

    hidden: tuple[int, ...]
    lrs: tuple[float, ...]
    seeds: tuple[int, ...]

    def keys(self) -> list[tuple[str, float, int]]:
        return [_key(hidden_label(self.hidden), lr, s) for lr, s in zip(self.lrs, self.seeds)]


def make_chunks(hiddens, lrs, seeds, chunk_size: int, done=frozenset()) -> list[Chunk]:
    """The grid architectures × lrs × seeds cut into chunks of at most ``chunk_size``
    networks, then the ``done`` keys taken out (a chunk keeps the rest of its networks, so a
    chunk's content never depends on what has been done)."""
    if chunk_size < 1:
        raise ScratchnetError(f"--chunk-size must be >= 1, got {chunk_size}")
    chunks = []
    for h in hiddens:
        label = hidden_label(h)
        pairs = [(float(lr), int(s)) for lr in lrs for s in seeds]
        for i in range(0, len(pairs), chunk_size):
            todo = pairs[i:i + chunk_size]
            if done:
                todo = [p for p in todo if _key(label, *p) not in done]
            if todo:
                chunks.append(Chunk(tuple(h), *(tuple(v) for v in zip(*todo))))
    return chunks


def setup_id(config, record_every: int, dtype: str = "float64") -> str:
    """A short hash of everything but (hidden, lr, seed) that changes a network's numbers:
    rows of another setup in the output file are refused rather than mixed in."""
    d = config.to_dict()
    for k in ("hidden", "lr", "seed", "log_every", "engine"):
        d.pop(k, None)
    d["record_every"] = record_every
    if dtype != "float64":  # (float64 sweeps keep the hashes they always had)
        d["dtype"] = dtype
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]


# ---- one chunk (runs here or on a Dask worker) ----------------------------------------------
@dataclass
class ChunkResult:
    columns: dict  # COLUMNS → (K,) arrays: the chunk's rows, column by column
    curves: np.ndarray  # (K,) records of sweepfile.curve_dtype: key, epochs, train, test
    seconds: float
    engine: str
    agreement: dict = field(default_factory=dict)  # float32: EnsembleResult.agreement

    @property
    def rows(self) -> list[dict]:
        return rows_of(self.columns)

    @property
    def curve_epochs(self) -> list[int]:
        return self.curves["epochs"][0].tolist() if len(self.curves) else []


def rows_of(columns: dict) -> list[dict]:
    """Columns (COLUMNS → arrays) as one dict per network, with Python numbers."""
    return [dict(zip(COLUMNS, values))
            for values in zip(*(np.asarray(columns[c]).tolist() for c in COLUMNS))]


def columns_of(rows: list[dict]) -> dict:
    """Rows as columns (their keys → arrays): the inverse of :func:`rows_of`."""
    if not rows:
        return {c: np.array([], str if c in ("hidden", "setup") else float) for c in COLUMNS}
    return {c: np.array([r[c] for r in rows]) for c in rows[0]}


def run_chunk(config, dataset, chunk: Chunk, record_every: int, curve_points: int, setup: str,
              device: str = "cpu", progress=None, dtype: str = "float64") -> ChunkResult:
    """Train the chunk's networks as one ensemble on ``dataset`` and return its rows."""
    cfg = replace(config, hidden=tuple(chunk.hidden))
    res = train_ensemble(cfg, chunk.seeds, chunk.lrs, device=device,
                         prepared=prepare(cfg, dataset), record_every=record_every,
                         progress=progress, dtype=dtype)
    if res.stopped != "completed":
        raise KeyboardInterrupt
    label, K = hidden_label(chunk.hidden), res.K
    tl = np.where(np.isfinite(res.test_loss), res.test_loss, np.inf)  # (K, n_records)
    best_col = np.argmin(tl, axis=1) if tl.shape[1] else np.zeros(K, np.int64)
    best_loss = tl[np.arange(K), best_col] if tl.shape[1] else np.full(K, np.inf)
    # whole columns (a K = 1e5 chunk: no per-network Python at all)
    cols = {"hidden": np.full(K, label), "lr": np.asarray(res.lrs, float),
            "seed": np.asarray(res.seeds, np.int64),
            "epochs": np.full(K, int(res.epochs_done), np.int64),
            **{m: np.asarray(res.final[m], float) for m in ("train_loss", "test_loss",
                                                           "train_acc", "test_acc")},
            "best_epoch": res.epochs[best_col] if tl.shape[1] else np.zeros(K, np.int64),
            "best_test_loss": best_loss, "diverged_at": np.asarray(res.diverged_at, np.int64),
            "setup": np.full(K, setup)}
    stride = max(1, -(-len(res.epochs) // max(1, curve_points)))  # ⌈n_records / points⌉
    keep = slice(0, None, stride)  # a view: the records are the only copy
    curves = curve_records(label, cols["lr"], cols["seed"], setup, res.epochs[keep],
                           res.train_loss[:, keep], res.test_loss[:, keep])
    return ChunkResult(cols, curves, res.seconds, res.engine, res.agreement)


# ---- the output files: locked, checked line by line on resume (scratchnet.sweepfile) ------


# ---- running the grid ------------------------------------------------------------------------
@dataclass
class SweepRun:
    out: str
    columns: dict  # every row of the grid (earlier runs included), column by column, grid order
    trained: int  # networks trained by this call
    skipped: int  # networks found done in the file
    seconds: float
    network_epochs: int  # trained networks × epochs, for throughput
    scheduler: str | None = None
    engines: tuple[str, ...] = ()  # the ensemble engines the chunks ran on
    agreement: dict = field(default_factory=dict)  # float32: the worst over the chunks

    @property
    def rows(self) -> list[dict]:
        """One dict per network (built on first use: 10⁵ dicts take a while)."""
        if not hasattr(self, "_rows"):
            self._rows = rows_of(self.columns)
        return self._rows


def merge_agreement(a: dict, b: dict) -> dict:
    """Two chunks' float32-vs-float64 reports as one: the networks checked, the seconds and
    the networks that diverged differently add up; the differences take the worse one."""
    if not a or not b:
        return dict(a or b)
    out = dict(a)
    for k, v in b.items():
        if k in ("networks", "seconds", "diverged_differently"):
            out[k] = a.get(k, 0) + v
        elif isinstance(v, float):
            out[k] = max(a.get(k, v), v)
    return out


def run_sweep(config, hiddens, lrs, seeds, out: str, **kw) -> SweepRun:
    """Train the grid ``hiddens × lrs × seeds`` of ``config``'s setup into ``out`` (see
    :func:`_run_sweep` for the keywords), holding ``<out>.lock`` meanwhile: a second sweep on
    the same file is refused.  An ``out`` that is not a regular file (``/dev/stdout``, a pipe)
    gets the rows streamed to it, without lock, resume or curves file (said on stderr)."""
    if is_stream(out):
        (kw.get("warn") or print_warning)(f"--out {out} is not a regular file: the rows are streamed "
                                  "to it, with no lock, no resume and no curves file")
        return _run_sweep(config, hiddens, lrs, seeds, out, **kw)
    lock = SweepLock(out)
    try:
        return _run_sweep(config, hiddens, lrs, seeds, out, **kw)
    finally:
        lock.release()


def _run_sweep(config, hiddens, lrs, seeds, out: str, *, chunk_size: int = 100,
               record_every: int | None = None, curve_points: int = 100, device: str = "cpu",
               scheduler: str | None = None, workers: int | None = None, progress=None,
               on_chunk=None, warn=None, dtype: str = "float64") -> SweepRun:
    """Train the grid ``hiddens × lrs × seeds`` of ``config``'s setup into ``out``.

    ``scheduler``: None (in process), ``"local"`` (a LocalCluster of ``workers`` processes on
    this machine) or a Dask scheduler address.  ``dtype="float32"``: the GPU kernel in single
    precision (its agreement with float64 in ``SweepRun.agreement``).  ``progress(done, total)``
    counts networks;
    ``on_chunk(result)`` is called after each chunk is written.  Finished configurations
    already in ``out`` are skipped.  Ctrl-C stops after the chunks written so far."""
    if hasattr(config, "plain_gd"):  # what the ensembles train, asked of them (OptionError)
        check_options(config)
    hiddens, lrs, seeds = _grid_lists(hiddens, lrs, seeds)
    epochs = int(config.epochs)
    if epochs < 1:
        raise ScratchnetError("sweep needs --epochs >= 1")
    record_every = int(record_every or max(1, epochs // 1000))
    setup = setup_id(config, record_every, dtype)
    writer = SweepWriter(out, setup, **({"warn": warn} if warn else {}))
    total = len(hiddens) * len(lrs) * len(seeds)
    chunks = make_chunks(hiddens, lrs, seeds, chunk_size, writer.done)
    todo = sum(len(c.seeds) for c in chunks)
    dataset = load_data(config.data, config.features, config.target,
                        n_samples=config.n_samples, noise=config.noise, seed=config.data_seed,
                        n_classes=config.n_classes)  # once, here; shipped to the workers
    args = (record_every, curve_points, setup, device)
    done, engines, agreement, blocks = [total - todo], set(), [{}], []
    if progress:
        progress(done[0], total)

    def finished(result: ChunkResult, index: int) -> None:
        writer.write(result, index)
        blocks.append((index, result.columns))
        engines.add(result.engine)
        agreement[0] = merge_agreement(agreement[0], result.agreement)
        done[0] += len(result.columns["seed"])
        if progress:
            progress(done[0], total)
        if on_chunk:
            on_chunk(result)

    t0 = time.perf_counter()
    if scheduler is None:
        for index, chunk in enumerate(chunks):
            inner = None
            if progress:  # the chunk's epochs, counted as a fraction of its networks
                def inner(e, E, *_, before=done[0], k=len(chunk.seeds)):
                    progress(before + k * e // max(E, 1), total)
            finished(run_chunk(config, dataset, chunk, *args, progress=inner, dtype=dtype),
                     index)
    else:
        _run_on_dask(scheduler, workers, config, dataset, chunks, args, finished, dtype)
    seconds = time.perf_counter() - t0
    # the grid's order, as an uninterrupted serial sweep writes it (chunks of one architecture,
    # lr-major): resumed, repaired and distributed sweeps end with the same file
    keys = lambda: (_key(hidden_label(h), lr, s)  # noqa: E731
                    for h in hiddens for lr in lrs for s in seeds)
    writer.finish(lambda: {k: i for i, k in enumerate(keys())})
    if writer.fresh:  # every row of the grid is in memory, chunk by chunk
        columns = _concat([c for _, c in sorted(blocks, key=lambda b: b[0])])
    else:
        grid = set(keys())
        columns = columns_of([r for r in read_rows(out)
                              if _key(r["hidden"], r["lr"], r["seed"]) in grid])
    return SweepRun(out, columns, todo, total - todo, seconds, todo * epochs, scheduler,
                    tuple(sorted(engines)), agreement[0])


def _grid_lists(hiddens, lrs, seeds) -> tuple[list, list, list]:
    """The grid's lists, as tuples without repeats (the CLI's parsers refuse repeats already);
    an architecture label must fit the curves file's records."""
    hiddens = list(dict.fromkeys((int(h),) if isinstance(h, (int, np.integer))
                                 else tuple(int(v) for v in h) for h in hiddens))
    for h in hiddens:
        if len(hidden_label(h)) > HIDDEN_WIDTH:
            raise ScratchnetError(f"--hidden: '{hidden_label(h)[:40]}…' is longer than "
                                  f"{HIDDEN_WIDTH} characters")
    return (hiddens, list(dict.fromkeys(float(v) for v in lrs)),
            list(dict.fromkeys(int(v) for v in seeds)))


def _concat(blocks: list[dict]) -> dict:
    if not blocks:
        return columns_of([])
    return {c: np.concatenate([b[c] for b in blocks]) for c in COLUMNS}


def _run_on_dask(scheduler: str, workers: int | None, config, dataset, chunks, args,
                 finished, dtype: str = "float64") -> None:
    """Each chunk one task; results are written here, in the order they complete."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ScratchnetError("--scheduler needs Dask: pip install 'scratchnet[dist]'") from None

    with contextlib.ExitStack() as stack:
        if scheduler == "local":
            n = workers or os.cpu_count() or 1
            # one single-threaded process per core; numba's threads kept to one per worker;
            # everything on 127.0.0.1, the status page on a free port (8787 may be taken)
            cluster = stack.enter_context(LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address="127.0.0.1:0", env={"NUMBA_NUM_THREADS": "1"},
                # the workers' shutdown chatter ("failed to heartbeat"); a failing chunk
                # still raises here, through its future
                silence_logs=logging.CRITICAL))
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(scheduler, timeout=30))
            except (OSError, TimeoutError, ValueError) as e:
                raise ScratchnetError(f"--scheduler {scheduler}: cannot connect ({e})") from None
        data = client.scatter(dataset, broadcast=True)  # the rows travel once per worker
        futures = {client.submit(run_chunk, config, data, chunk, *args, dtype=dtype,
                                 pure=False): index
                   for index, chunk in enumerate(chunks)}
        try:
            for future in as_completed(list(futures)):
                finished(future.result(), futures[future])
                future.release()
        finally:
            client.cancel(list(futures))


# ---- what the sweep says -------------------------------------------------------------------
def summarize(rows) -> list[dict]:
    """Per (hidden, lr): how the final test accuracy and loss spread across seeds.  ``rows``:
    a list of row dicts, or columns (``SweepRun.columns``)."""
    cols = rows if isinstance(rows, dict) else columns_of(rows)
    order = np.argsort(np.asarray(cols["seed"]), kind="stable")  # file order varies; sums
    hidden = np.asarray(cols["hidden"]).astype(str)[order]      # must not
    lr = np.asarray(cols["lr"], float)[order]
    out = []
    for h, v in sorted(set(zip(hidden.tolist(), lr.tolist())),
                       key=lambda c: (arch_key(c[0]), c[1])):
        pick = order[(hidden == h) & (lr == v)]
        acc = np.asarray(cols["test_acc"], float)[pick]
        loss = np.asarray(cols["test_loss"], float)[pick]
        out.append({"hidden": h, "lr": v, "runs": len(pick), "acc_mean": float(acc.mean()),
                    "acc_std": float(acc.std(ddof=1)) if len(pick) > 1 else 0.0,
                    **{f"acc_q{int(q * 100):02d}": float(np.quantile(acc, q))
                       for q in QUANTILES},
                    "loss_median": float(np.nanmedian(loss)) if np.isfinite(loss).any()
                    else float("nan"),
                    "best_epoch_median": float(np.median(np.asarray(cols["best_epoch"])[pick])),
                    "diverged": int((np.asarray(cols["diverged_at"])[pick] >= 0).sum())})
    return out


def arch_key(label: str):
    return tuple(int(v) for v in label.split("x"))
