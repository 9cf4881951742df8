"""Work a run hands to a forked child process, so that slow imports and result files overlap its main work.

The select stage's figures and its scores table are written by a child forked early (at CLI start,
see `prewarm`), which imports matplotlib and pyarrow on a spare core while Hydra composes the config
and the parse workers read the history. The parent sends it picklable `(function, args)` jobs and
waits for them in `finish`; jobs beyond the first run in processes forked from the warm child, so
independent files are written on separate cores. Where fork is unavailable, jobs run inline.
"""

from __future__ import annotations

import os

_spare: tuple[int, "BackgroundJobs"] | None = None  # (pid of the process that forked it, its started child)


class BackgroundJobs:
    """`start()` forks the child; `submit(fn, *args)` queues a job; `finish()` hands the jobs over and
    waits (RuntimeError if one failed); `cancel()` stops the child without running anything."""

    def __init__(self):
        self._jobs: list = []
        self._pid: int | None = None
        self._write_fd: int | None = None

    def start(self) -> "BackgroundJobs":
        if not hasattr(os, "fork"):
            return self
        import gc

        read_fd, write_fd = os.pipe()
        gc.freeze()  # the child then leaves inherited objects (and their pages) alone
        pid = os.fork()
        if pid == 0:  # child: warm up, then run what the parent sends
            _exit_after(lambda: _serve(read_fd, write_fd))
        gc.unfreeze()
        os.close(read_fd)
        self._pid, self._write_fd = pid, write_fd
        return self

    def submit(self, fn, *args, **kwargs) -> None:
        self._jobs.append((fn, args, kwargs))

    def finish(self) -> None:
        import pickle

        jobs, self._jobs = self._jobs, []
        if self._pid is None:
            for fn, args, kwargs in jobs:
                fn(*args, **kwargs)
            return
        try:
            with os.fdopen(self._write_fd, "wb") as f:
                f.write(pickle.dumps(jobs))
        except BrokenPipeError:
            pass
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError("a background job (a plot or the scores table) failed: see the traceback above")

    def cancel(self, kill: bool = False) -> None:
        """Stop the child without running jobs (used when the stage fails); `kill` does not wait for its warm-up."""
        import signal

        self._jobs = []
        if self._pid is not None:
            if kill:
                os.kill(self._pid, signal.SIGKILL)
            os.close(self._write_fd)  # empty payload: the child exits without work
            os.waitpid(self._pid, 0)
            self._pid = None


def _exit_after(body) -> None:
    """In a forked process: run `body` (it returns the exit code), print any exception, and leave with
    os._exit, never running the parent's cleanup."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (one line, not a traceback per child)
    code = 1
    try:
        code = body()
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def _serve(read_fd: int, write_fd: int) -> int:
    """The child's life: warm up, read the pickled jobs (none if the parent cancels), run them."""
    import pickle

    os.close(write_fd)  # with this copy closed, EOF arrives as soon as the parent closes its own
    _warm_up()
    with os.fdopen(read_fd, "rb") as f:
        payload = f.read()
    return _run_all(pickle.loads(payload) if payload else [])


def _run_job(fn, args, kwargs) -> int:
    fn(*args, **kwargs)
    return 0


def _warm_up() -> None:
    """Import what the jobs use and draw a throwaway figure (fonts, Agg renderer) before real work arrives."""
    import pyarrow.parquet  # noqa: F401
    from matplotlib.collections import LineCollection  # noqa: F401

    import limr_exp.arrow  # noqa: F401  (the scores table)
    from limr_exp.plots import new_figure

    fig = new_figure(figsize=(2, 2), right=0.9)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], label="warm-up")
    ax.set_title("warm-up")
    ax.legend()
    fig.canvas.draw()


def _run_all(jobs: list) -> int:
    """Run jobs, each beyond the first in a process forked from this warm one; 0 when all succeeded."""
    import gc
    import traceback

    gc.freeze()  # the warm-up's objects: no collection in a job process walks (and so copies) their pages

    parallel = (os.cpu_count() or 1) > 1
    pids = []
    for fn, args, kwargs in jobs[1:] if parallel else []:
        pid = os.fork()
        if pid == 0:
            _exit_after(lambda: _run_job(fn, args, kwargs))
        pids.append(pid)
    failed = False
    for fn, args, kwargs in jobs[:1] if parallel else jobs:
        try:
            fn(*args, **kwargs)
        except Exception:
            traceback.print_exc()
            failed = True
    for pid in pids:
        failed |= os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0
    return 1 if failed else 0


# Hydra's flags that print something and run no job: no child for them
_INFO_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc"}


def prewarm(argv: list[str] | None = None) -> None:
    """Fork the background child now, at CLI start, so its imports run on a spare core while Hydra composes
    the config. The select stage takes it (`started_jobs`); if nothing does, it is killed at exit."""
    import atexit

    global _spare
    if (argv is not None and _INFO_FLAGS.intersection(argv)) or (os.cpu_count() or 1) < 2:
        return  # nothing to overlap, or no spare core to overlap it on
    if _spare is None and hasattr(os, "fork"):
        _spare = (os.getpid(), BackgroundJobs().start())
        atexit.register(discard_spare)


def discard_spare() -> None:
    """Stop the prewarmed child, if this process has one (a run without a select stage has no use for it)."""
    global _spare
    if _spare is not None and _spare[0] == os.getpid():
        _spare[1].cancel(kill=True)
    _spare = None


def started_jobs(fork: bool = True) -> BackgroundJobs:
    """The prewarmed child when this process forked one; else a new child, or with `fork=False` (nothing
    to overlap its warm-up with) jobs that run inline."""
    global _spare
    if _spare is not None and _spare[0] == os.getpid():
        jobs, _spare = _spare[1], None
        return jobs
    return BackgroundJobs().start() if fork else BackgroundJobs()
