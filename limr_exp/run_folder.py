"""A run folder never lies: one run at a time holds it, and `status.json` says what happened.

    running      from the first moment: pid, host, start time
    finished     every configured stage done
    failed       with the one-line reason
    interrupted  SIGINT or SIGTERM (rerun the same command, in the same folder, to resume)

A run killed outright (SIGKILL, power loss) leaves `running` with a pid that no longer lives:
`read_status` reports that as interrupted, so reports never count it as finished.

`fingerprint.json` holds the config that determines the folder's results: a later run in the folder
with another one is refused, naming the keys that differ, before anything is written, so a resume
never continues another experiment's checkpoint.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from limr_exp.errors import LimrError
from limr_exp.io import write_json

STATUS_FILE = "status.json"
LOCK_FILE = ".lock"
FINGERPRINT_FILE = "fingerprint.json"  # the config that determines the folder's results
RESERVE_FILE = ".status-reserve"  # room kept for the last status.json, should the disk fill up
RESERVE_BYTES = 64 * 1024


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: unwind like a failure (status, trackers, workers), exit 128 + signal."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_deferring = 0  # open signals_deferred() blocks
_pending: int | None = None  # a signal that arrived inside one


def raise_on_signals() -> None:
    """SIGINT and SIGTERM raise `Interrupted` in the main thread (a cluster's preemption sends SIGTERM),
    at once, or at the end of a `signals_deferred()` block."""
    def handler(signum, frame):
        global _pending
        if _deferring:
            _pending = signum
            return
        raise Interrupted(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


@contextmanager
def signals_deferred():
    """A signal arriving inside the block is raised when it ends: a tracker's database write (MLflow's
    SQLite store, W&B's record) is never cut in half, and its library never sees the interruption."""
    global _deferring, _pending
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _pending is not None:
            signum, _pending = _pending, None
            raise Interrupted(signum)


def outcome(exc: BaseException | None) -> tuple[str, str | None]:
    """(status, reason) of a run that ended with `exc` (None: it finished)."""
    if exc is None:
        return "finished", None
    if isinstance(exc, Interrupted):
        return "interrupted", f"{exc}: rerun the same command (in this folder: hydra.run.dir) to resume"
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return "interrupted", type(exc).__name__
    return "failed", str(exc) if isinstance(exc, LimrError) else f"{type(exc).__name__}: {exc}"


def pid_alive(pid: int) -> bool:
    """A process with this pid exists on this host (one of another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_status(folder: Path) -> dict:
    """status.json of a run folder ({"status": "missing"} without one); a `running` run whose process is
    gone (on this host) reads as interrupted."""
    import json

    try:
        status = json.loads((Path(folder) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {"status": "missing"}
    if status.get("status") == "running" and status.get("host") == socket.gethostname() and not pid_alive(int(status.get("pid", 0))):
        status = {**status, "status": "interrupted", "error": "the process was killed"}
    return status


def fingerprint_differences(old: dict, new: dict, limit: int = 6) -> list[str]:
    """`key: old -> new` for every key whose value differs (at most `limit`, then how many more)."""
    missing = object()
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k, missing) != new.get(k, missing))
    shown = [f"{k}: {_short(old.get(k, '(unset)'))} -> {_short(new.get(k, '(unset)'))}" for k in keys[:limit]]
    return shown + ([f"and {len(keys) - limit} more"] if len(keys) > limit else [])


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


class RunFolder:
    """Holds a run folder for one run: an exclusive lock (a second run on it stops at once with one line
    naming the pid that holds it), the config it belongs to (`fingerprint`: a run of another config is
    refused) and a truthful status.json from start to end."""

    def __init__(self, path: Path, fingerprint: dict | None = None):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self._lock_fd: int | None = None
        self.started = time.time()

    def __enter__(self) -> "RunFolder":
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise LimrError(f"the run folder {self.path} is in use by pid {holder}: wait for that run to end, "
                                "or give this one its own hydra.run.dir") from None
            raise
        try:
            self._check_fingerprint()
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd
        self.write("running")
        try:
            (self.path / RESERVE_FILE).write_bytes(b"\0" * RESERVE_BYTES)
        except OSError:
            pass
        return self

    def _check_fingerprint(self) -> None:
        import json

        if self.fingerprint is None:
            return
        try:
            old = json.loads((self.path / FINGERPRINT_FILE).read_text())
        except (FileNotFoundError, ValueError):  # a new folder (the file is written atomically: never half)
            return
        new = json.loads(json.dumps(self.fingerprint, default=str))  # as it reads back from the file
        differences = fingerprint_differences(old, new)
        if differences:
            raise LimrError(f"the run folder {self.path} holds a run of another configuration ({'; '.join(differences)}): "
                            "rerun with that run's settings to resume it, or give this one a fresh folder with "
                            "hydra.run.dir=<new folder>")

    def keep_fingerprint(self) -> None:
        """Record the folder's config, once the run has passed its checks (so a refused config leaves none)."""
        if self.fingerprint is not None and not (self.path / FINGERPRINT_FILE).exists():
            write_json(self.path / FINGERPRINT_FILE, self.fingerprint)

    def write(self, status: str, reason: str | None = None) -> None:
        record = {"status": status, "pid": os.getpid(), "host": socket.gethostname(), "started": self.started,
                  "time": time.time()}
        if reason:
            record["error"] = reason
        write_json(self.path / STATUS_FILE, record)

    def __exit__(self, exc_type, exc, tb) -> None:
        status, reason = outcome(exc)
        reserve = self.path / RESERVE_FILE
        try:
            try:
                self.write(status, reason)
            except OSError:  # a full disk: give back the room kept for this, then write the status again
                reserve.unlink(missing_ok=True)
                self.write(status, reason)
        except OSError:  # still no room: the run's own error must not be hidden (read_status: interrupted)
            pass
        finally:
            reserve.unlink(missing_ok=True)
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the lock
                self._lock_fd = None
