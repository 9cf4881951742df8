"""Symbolic equivalence on Math-Verify, run in worker processes with a hard time budget.

Both sides reach Math-Verify as LaTeX inside `$...$`, gold first, through `LatexExtractionConfig`
only: its `ExprExtractionConfig` path calls sympy's `parse_expr` (an `eval`) on raw text, so model
output never goes there. Each worker caps its address space, and a worker that overruns the budget
is killed and replaced, so towers like 9^{9^{9^{9}}} cost one timeout, from any thread (no
`signal.alarm`, which only works in the main thread).
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import queue
import threading
import time
from functools import lru_cache

_PRELOAD = "limr_exp.rewards.verifier"


# ------------------------------------------------------------------ inside a worker process

@lru_cache(maxsize=4096)
def _parse(latex: str):
    from math_verify import LatexExtractionConfig, parse

    return parse(f"${latex}$", extraction_config=[LatexExtractionConfig()], parsing_timeout=None)


def verify_pair(gold: str, pred: str) -> bool:
    """Math-Verify's judgement of `pred` against `gold` (both LaTeX, without delimiters)."""
    from math_verify import verify

    g, p = _parse(gold), _parse(pred)
    if not g or not p:
        return False
    return bool(verify(g, p, timeout_seconds=None))


def _worker_main(conn, memory_limit_mb: int) -> None:
    import logging

    logging.disable(logging.CRITICAL)  # math-verify logs every parse failure
    if memory_limit_mb > 0:
        import resource

        limit = memory_limit_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import sys

    sys.set_int_max_str_digits(10_000)
    while True:
        try:
            batch = conn.recv()
        except EOFError:
            return
        if batch is None:
            return
        for idx, gold, pred in batch:
            try:
                result = verify_pair(gold, pred)
            except MemoryError:
                result = False
            except Exception:
                result = False  # unparseable answers are not equal
            conn.send((idx, result))


# ------------------------------------------------------------------ in the calling process

class _Worker:
    def __init__(self, ctx, memory_limit_mb: int):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, memory_limit_mb), daemon=True)
        self.proc.start()
        child.close()

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.join(timeout=5)
        finally:
            self.conn.close()


class VerifierPool:
    """Worker processes that run `verify_pair` with a per-pair time budget; safe to use from threads."""

    def __init__(self, n_workers: int = 0, memory_limit_mb: int = 2048):
        self.n_workers = n_workers or max(1, os.cpu_count() or 1)
        self.memory_limit_mb = memory_limit_mb
        methods = mp.get_all_start_methods()
        self._ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            self._ctx.set_forkserver_preload([_PRELOAD, "math_verify", "sympy"])
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._started = 0
        self.timeouts = 0
        self._closed = False

    def _spawn(self) -> _Worker:
        return _Worker(self._ctx, self.memory_limit_mb)

    def _checkout(self, deadline: float | None) -> _Worker | None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the verifier pool is closed")
            if self._idle.empty() and self._started < self.n_workers:
                self._started += 1
                return self._spawn()
        try:
            return self._idle.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None

    def _checkin(self, worker: _Worker | None) -> None:
        if worker is None:
            with self._lock:
                self._started -= 1
            return
        self._idle.put(worker)

    def warm_up(self) -> None:
        """Start every worker now (in parallel) rather than on first use."""
        workers = []
        with self._lock:
            while self._started < self.n_workers:
                self._started += 1
                workers.append(_Worker(self._ctx, self.memory_limit_mb))
        for w in workers:
            w.conn.send([(0, "1", "1")])
        for w in workers:
            w.conn.poll(30)
            w.conn.recv()
            self._idle.put(w)

    def run(self, tasks: list[tuple[int, str, str]], timeout_s: float, deadline: float | None = None) -> dict[int, bool | None]:
        """Judge tasks (idx, gold, pred) on one worker; None marks a timeout. Tasks run in order; a
        task that overruns `timeout_s` (or the overall `deadline`, waiting for a worker included)
        kills the worker, which is replaced for the rest."""
        results: dict[int, bool | None] = {}
        worker = self._checkout(deadline)
        if worker is None:
            return {idx: None for idx, _, _ in tasks}
        pending = list(tasks)
        try:
            while pending:
                worker.conn.send(pending)
                while pending:
                    budget = timeout_s if deadline is None else min(timeout_s, max(0.0, deadline - time.monotonic()))
                    if worker.conn.poll(budget):
                        idx, ok = worker.conn.recv()  # answers come in task order
                        results[idx] = ok
                        pending = pending[1:]
                    else:  # overrun: the first pending task is the one running
                        results[pending[0][0]] = None
                        with self._lock:
                            self.timeouts += 1
                        pending = pending[1:]
                        worker.kill()
                        worker = self._spawn()
                        break
        except BaseException:
            worker.kill()
            worker = None
            raise
        finally:
            self._checkin(worker)
        return results

    def run_parallel(self, tasks: list[tuple[int, str, str]], timeout_s: float) -> dict[int, bool | None]:
        """Spread tasks over the workers (threads drive them), results keyed by task index."""
        if not tasks:
            return {}
        n = min(self.n_workers, len(tasks))
        if n == 1:
            return self.run(tasks, timeout_s)
        chunks = [tasks[i::n] for i in range(n)]
        out: dict[int, bool | None] = {}
        errors: list[BaseException] = []

        def drive(chunk):
            try:
                out.update(self.run(chunk, timeout_s))
            except BaseException as e:  # re-raised in the caller
                errors.append(e)

        threads = [threading.Thread(target=drive, args=(c,), daemon=True) for c in chunks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return out

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                w = self._idle.get_nowait()
            except queue.Empty:
                break
            try:
                w.conn.send(None)
            except OSError:
                pass
            w.kill()


_POOLS: dict[tuple[int, int], VerifierPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(n_workers: int = 0, memory_limit_mb: int = 2048) -> VerifierPool:
    """One pool per (workers, memory limit) for the process, created on first use, closed at exit."""
    key = (n_workers, memory_limit_mb)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None or pool._closed:
            pool = _POOLS[key] = VerifierPool(n_workers, memory_limit_mb)
        return pool


@atexit.register
def _close_pools() -> None:
    for pool in list(_POOLS.values()):
        pool.close()
