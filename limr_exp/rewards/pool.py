"""Worker processes that judge with a hard per-judgement time budget, usable from any thread.

OpenRLHF calls reward functions in worker threads, where `signal.alarm` cannot be used. Here each
judgement runs in a process of a small pool: a process that overruns the budget is killed and
replaced, so a tower like 9^{9^{9^{9}}} costs one timeout, never a hang; each process caps its
address space, so a huge number raises MemoryError there instead of exhausting the machine.
"""

from __future__ import annotations

import atexit
import collections
import os
import queue
import threading
import time

_DIR_PREFIX = "limr-judge-"  # + the owner's pid + a random part: the zygote's socket folder


def remove_stale_dirs() -> None:
    """Socket folders of processes that were killed outright (SIGKILL skips the clean-up at exit)."""
    import glob
    import shutil
    import tempfile

    from limr_exp.run_folder import pid_alive

    for folder in glob.glob(os.path.join(tempfile.gettempdir(), f"{_DIR_PREFIX}*-*")):
        pid = os.path.basename(folder)[len(_DIR_PREFIX):].split("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


class _Zygote:
    """Handle on the zygote subprocess (zygote.py), started on first use."""

    def __init__(self):
        import subprocess
        import sys
        import tempfile

        remove_stale_dirs()
        self._dir = tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-")
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

        deadline = time.monotonic() + _CONNECT_WINDOW_S
        while True:  # the zygote listens before its socket appears; a refusal at start is retried
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
                break
            except (ConnectionRefusedError, FileNotFoundError):
                sock.close()
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the reward verifier process at {self.path} refused connections for "
                                       f"{_CONNECT_WINDOW_S:g} s (exit code {self.proc.poll()})") from None
                time.sleep(0.02)
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


_CONNECT_WINDOW_S = 30.0  # how long a refused connection to the zygote is retried
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


class _Ticket:
    """A caller's place in the queue for a worker: granted a worker, or the right to start one."""

    __slots__ = ("event", "worker", "spawn")

    def __init__(self):
        self.event = threading.Event()
        self.worker: _Worker | None = None
        self.spawn = False


class JudgePool:
    """`n_workers` processes (one per usable CPU by default) that run `judge_local`; safe from any thread.

    Workers are handed out first come, first served: a caller that finds none free takes a ticket, and a
    worker coming free goes to the oldest ticket (never straight back to the thread that returned it). Each
    judgement gets `settings.timeout_s` of judging time, counted from when a worker starts it: a caller
    waiting for a free worker is not charged for the wait, nor for a worker's start. A worker that overruns
    is killed and replaced. So a call waits at most (calls ahead of it) x budget / workers."""

    def __init__(self, n_workers: int = 0, memory_limit_mb: int = 2048):
        from limr_exp.cpus import usable_cpus

        self.n_workers = n_workers or usable_cpus()
        self.memory_limit_mb = memory_limit_mb
        self._idle: list[_Worker] = []
        self._waiting: collections.deque[_Ticket] = collections.deque()
        self._lock = threading.Lock()
        self._started = 0  # workers alive or being started
        self.timeouts = 0  # judgements that overran their budget
        self.errors = 0  # internal errors: a bug reported by a worker, or a worker that died
        self._closed = False

    def _spawn(self) -> _Worker:
        return zygote().fork_worker(self.memory_limit_mb)

    def _spawn_in_slot(self) -> _Worker:
        """Start a worker in a place already counted in `_started`; on failure the place is passed on."""
        try:
            return self._spawn()
        except BaseException:
            self._checkin(None)
            raise

    def _checkout(self) -> _Worker:
        """An idle worker, a new one while fewer than `n_workers` exist, or the next to come free (in order)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the verifier pool is closed")
            if self._idle and not self._waiting:
                return self._idle.pop()
            if not self._waiting and self._started < self.n_workers:
                self._started += 1
                ticket = None
            else:
                ticket = _Ticket()
                self._waiting.append(ticket)
        if ticket is None:
            return self._spawn_in_slot()
        while not ticket.event.wait(0.5):
            if self._closed:
                with self._lock:
                    if not ticket.event.is_set():
                        self._waiting.remove(ticket)
                        raise RuntimeError("the verifier pool is closed")
        if ticket.spawn:
            return self._spawn_in_slot()
        return ticket.worker

    def _checkin(self, worker: _Worker | None) -> None:
        """Return a worker (None: one that was killed, or failed to start): to the oldest waiting caller
        (None hands it the place, to start one), else to the idle list."""
        with self._lock:
            if self._waiting:
                ticket = self._waiting.popleft()
                ticket.worker, ticket.spawn = worker, worker is None
                ticket.event.set()
            elif worker is None:
                self._started -= 1
            elif self._closed:
                worker.kill()
                self._started -= 1
            else:
                self._idle.append(worker)

    def warm_up(self) -> None:
        """Start every worker now rather than on first use."""
        with self._lock:
            free = self.n_workers - self._started
            self._started += max(free, 0)
        for _ in range(max(free, 0)):
            self._checkin(self._spawn_in_slot())

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
                        worker = self._spawn()  # the killed worker's place, kept by this call
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
            idle, self._idle = self._idle, []
            self._started -= len(idle)
        for w in idle:
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
