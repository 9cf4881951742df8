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
import zlib


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


class JudgePool:
    """Worker processes that run `judge_local` with a per-judgement time budget; safe to use from threads."""

    def __init__(self, n_workers: int = 0, memory_limit_mb: int = 2048):
        self.n_workers = n_workers or max(1, os.cpu_count() or 1)
        # single judgements from many threads may add workers, so none waits out its budget in a queue
        self.max_workers = max(4 * self.n_workers, 8)
        self.memory_limit_mb = memory_limit_mb
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._started = 0
        self.timeouts = 0
        self._closed = False

    def _spawn(self) -> _Worker:
        return zygote().fork_worker(self.memory_limit_mb)

    def _checkout(self, deadline: float | None) -> tuple[_Worker | None, bool]:
        """(an idle worker or a new one, whether it is new); (None, False) if none came by `deadline`."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the verifier pool is closed")
            limit = self.n_workers if deadline is None else self.max_workers
            spawn = self._idle.empty() and self._started < limit
            if spawn:
                self._started += 1
        if spawn:
            try:
                return self._spawn(), True
            except BaseException:
                with self._lock:
                    self._started -= 1
                raise
        try:
            return self._idle.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic())), False
        except queue.Empty:
            return None, False

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
                workers.append(self._spawn())
        from limr_exp.rewards.settings import RewardSettings

        for w in workers:
            w.conn.send((RewardSettings(), [(0, "\\boxed{1}", "1")]))
        for w in workers:
            w.conn.poll(30)
            w.conn.recv()
            self._idle.put(w)

    def run(self, settings, tasks: list[tuple[int, str, str]], deadline: float | None = None) -> dict[int, tuple | None]:
        """Judge tasks (idx, response, answer) on one worker; None marks a timeout. Tasks run in order; a
        task that overruns `settings.timeout_s` (or the overall `deadline`, waiting for a worker included)
        kills the worker, which is replaced for the rest."""
        timeout_s = settings.timeout_s
        results: dict[int, tuple | None] = {}
        worker, fresh = self._checkout(deadline)
        if fresh and deadline is not None:  # starting a process (the fork server, once) is not the judgement's time
            deadline = time.monotonic() + timeout_s
        if worker is None:
            return {idx: None for idx, _, _ in tasks}
        pending = list(tasks)
        try:
            while pending:
                worker.conn.send((settings, pending))
                while pending:
                    budget = timeout_s if deadline is None else min(timeout_s, max(0.0, deadline - time.monotonic()))
                    if worker.conn.poll(budget):
                        idx, ok = worker.conn.recv()  # answers come in task order
                        if ok[0] == "__error__":
                            raise RuntimeError(f"reward judge failed on task {idx}: {ok[1]}")
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

    def run_parallel(self, settings, tasks: list[tuple[int, str, str]]) -> dict[int, tuple | None]:
        """Spread tasks over the workers (threads drive them), results keyed by task index. Tasks
        with the same reference answer go to the same worker, where its parse is cached."""
        if not tasks:
            return {}
        n = min(self.n_workers, len(tasks))
        if n == 1:
            return self.run(settings, tasks)
        chunks: list[list] = [[] for _ in range(n)]
        for task in tasks:
            chunks[zlib.crc32(task[2].encode("utf-8", "surrogatepass")) % n].append(task)
        chunks = [c for c in chunks if c]
        out: dict[int, tuple | None] = {}
        errors: list[BaseException] = []

        def drive(chunk):
            try:
                out.update(self.run(settings, chunk))
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
def _close_pools() -> None:
    for pool in list(_POOLS.values()):
        pool.close()
    if _ZYGOTE is not None:
        _ZYGOTE.close()
