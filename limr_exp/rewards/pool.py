"""Worker processes that judge with a hard per-judgement time budget, usable from any thread.

OpenRLHF calls reward functions in worker threads, where `signal.alarm` cannot be used. Here each
judgement runs in a process of a small pool: a process that overruns the budget is killed and
replaced, so a tower like 9^{9^{9^{9}}} costs one timeout, never a hang; each process caps its
address space, so a huge number raises MemoryError there instead of exhausting the machine.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
import time


class _Zygote:
    """Handle on the zygote subprocess (zygote.py), started on first use."""

    def __init__(self):
        import subprocess
        import sys
        import tempfile

        self._dir = tempfile.mkdtemp(prefix="limr-judge-")
        self.path = os.path.join(self._dir, "zygote.sock")
        self.proc = subprocess.Popen([sys.executable, "-m", "limr_exp.rewards.zygote", self.path], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        deadline = time.monotonic() + 120
        while not os.path.exists(self.path):
            if self.proc.poll() is not None:
                raise RuntimeError(f"the reward verifier process exited at start (code {self.proc.returncode})")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("the reward verifier process did not start within 120 s")
            time.sleep(0.01)

    def fork_worker(self, memory_limit_mb: int) -> "_Worker":
        import socket
        from multiprocessing.connection import Connection

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.path)
        conn = Connection(sock.detach())
        conn.send(memory_limit_mb)
        return _Worker(conn, conn.recv())

    def close(self) -> None:
        import shutil

        try:
            self.proc.stdin.close()  # the zygote exits on EOF
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()
        shutil.rmtree(self._dir, ignore_errors=True)


_ZYGOTE: _Zygote | None = None
_ZYGOTE_LOCK = threading.Lock()


def zygote() -> _Zygote:
    global _ZYGOTE
    with _ZYGOTE_LOCK:
        if _ZYGOTE is None or _ZYGOTE.proc.poll() is not None:
            _ZYGOTE = _Zygote()
        return _ZYGOTE


class _Worker:
    def __init__(self, conn, pid: int):
        self.conn, self.pid = conn, pid

    def kill(self) -> None:
        import signal

        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.conn.close()


ERROR = "__error__"  # first field of a result that reports an internal error instead of a verdict


class JudgePool:
    """`n_workers` processes (one per usable CPU by default) that run `judge_local`; safe from any thread.

    Each judgement gets `settings.timeout_s` of judging time, counted from when a worker starts it: a
    caller waiting for a free worker is not charged for the wait, nor for a worker's start. A worker
    that overruns is killed and replaced. With as many workers as cores, N threads calling at once
    finish in about N x judging time / cores."""

    def __init__(self, n_workers: int = 0, memory_limit_mb: int = 2048):
        from limr_exp.cpus import usable_cpus

        self.n_workers = n_workers or usable_cpus()
        self.memory_limit_mb = memory_limit_mb
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._started = 0
        self.timeouts = 0  # judgements that overran their budget
        self.errors = 0  # internal errors: a bug reported by a worker, or a worker that died
        self._closed = False

    def _spawn(self) -> _Worker:
        return zygote().fork_worker(self.memory_limit_mb)

    def _checkout(self) -> _Worker:
        """An idle worker, a new one while fewer than `n_workers` exist, or the next one to come free."""
        while True:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the verifier pool is closed")
                spawn = self._idle.empty() and self._started < self.n_workers
                if spawn:
                    self._started += 1
            if spawn:
                try:
                    return self._spawn()
                except BaseException:
                    with self._lock:
                        self._started -= 1
                    raise
            try:
                return self._idle.get(timeout=0.5)  # re-check now and then: a failed spawn frees a place
            except queue.Empty:
                continue

    def _checkin(self, worker: _Worker | None) -> None:
        if worker is None:
            with self._lock:
                self._started -= 1
        else:
            self._idle.put(worker)

    def warm_up(self) -> None:
        """Start every worker now rather than on first use."""
        workers = []
        with self._lock:
            while self._started < self.n_workers:
                self._started += 1
                workers.append(self._spawn())
        for w in workers:
            self._idle.put(w)

    def _receive(self, worker: _Worker, timeout_s: float) -> tuple[tuple | None, bool]:
        """(result, worker still usable): the worker's next result, None on overrun, an ERROR result if it died."""
        try:
            if not worker.conn.poll(timeout_s):
                with self._lock:
                    self.timeouts += 1
                return None, False
            result = worker.conn.recv()[1]
        except (EOFError, OSError) as e:
            result = (ERROR, f"the judging process died ({type(e).__name__})")
            healthy = False
        else:
            healthy = True
        if result[0] == ERROR or result[2] == "timeout":  # a worker over its memory cap reports a timeout
            with self._lock:
                if result[0] == ERROR:
                    self.errors += 1
                else:
                    self.timeouts += 1
        return result, healthy

    def run(self, settings, tasks: list[tuple[int, str, str]]) -> dict[int, tuple | None]:
        """Judge tasks (idx, response, answer) in order on one worker: {idx: judge_local's tuple, None for
        a timeout, or (ERROR, message)}. A worker that overruns or dies is replaced for the rest."""
        results: dict[int, tuple | None] = {}
        worker: _Worker | None = self._checkout()
        try:
            while tasks:
                worker.conn.send((settings, tasks))
                done = 0
                for idx, _, _ in tasks:
                    results[idx], healthy = self._receive(worker, settings.timeout_s)
                    done += 1
                    if not healthy:
                        worker.kill()
                        worker = None
                        worker = self._spawn()
                        break
                tasks = tasks[done:]
        except BaseException:
            if worker is not None:
                worker.kill()
            worker = None
            raise
        finally:
            self._checkin(worker)
        return results

    def run_parallel(self, settings, tasks: list[tuple[int, str, str]]) -> dict[int, tuple | None]:
        """Spread tasks over the workers, results keyed by task index: chunks of tasks sorted by reference
        answer (its parse is cached in the worker) are handed out as workers come free."""
        if len(tasks) <= 1 or self.n_workers == 1:
            return self.run(settings, tasks)
        ordered = sorted(tasks, key=lambda task: task[2])
        size = max(1, min(64, -(-len(ordered) // (4 * self.n_workers))))
        chunks: queue.SimpleQueue = queue.SimpleQueue()
        for i in range(0, len(ordered), size):
            chunks.put(ordered[i:i + size])
        out: dict[int, tuple | None] = {}
        errors: list[BaseException] = []

        def drive():
            try:
                while not errors:
                    try:
                        chunk = chunks.get_nowait()
                    except queue.Empty:
                        return
                    out.update(self.run(settings, chunk))
            except BaseException as e:  # re-raised in the caller
                errors.append(e)

        threads = [threading.Thread(target=drive, daemon=True) for _ in range(min(self.n_workers, -(-len(ordered) // size)))]
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


_POOLS: dict[tuple[int, int], JudgePool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(n_workers: int = 0, memory_limit_mb: int = 2048) -> JudgePool:
    """One pool per (workers, memory limit) for the process, created on first use, closed at exit."""
    key = (n_workers, memory_limit_mb)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None or pool._closed:
            pool = _POOLS[key] = JudgePool(n_workers, memory_limit_mb)
        return pool


@atexit.register
def shutdown() -> None:
    """Stop every worker process and the zygote (they start again on next use); also run at exit."""
    global _ZYGOTE
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()
    with _ZYGOTE_LOCK:
        if _ZYGOTE is not None:
            _ZYGOTE.close()
            _ZYGOTE = None
