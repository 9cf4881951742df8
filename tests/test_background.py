"""Background jobs: the forked child that writes the select stage's scores table and figures."""

from __future__ import annotations

import os

import pytest

from limr_exp import background
from limr_exp.background import BackgroundJobs, discard_spare, prewarm, started_jobs


def write_pid(path):
    path.write_text(str(os.getpid()))


def fail():
    raise ValueError("this job fails")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_jobs_run_in_forked_processes_in_parallel(tmp_path):
    jobs = BackgroundJobs().start()
    paths = [tmp_path / f"job{i}" for i in range(3)]
    for p in paths:
        jobs.submit(write_pid, p)
    jobs.finish()
    pids = {int(p.read_text()) for p in paths}
    assert os.getpid() not in pids
    if (os.cpu_count() or 1) > 1:
        assert len(pids) == 3  # the first job in the warm child, the others in processes forked from it


def test_a_failed_job_raises_and_the_others_still_finish(tmp_path, capfd):
    jobs = BackgroundJobs().start()
    jobs.submit(fail)
    jobs.submit(write_pid, tmp_path / "other")
    with pytest.raises(RuntimeError, match="background job"):
        jobs.finish()
    assert (tmp_path / "other").exists()
    assert "this job fails" in capfd.readouterr().err


def test_cancel_runs_nothing(tmp_path):
    jobs = BackgroundJobs().start()
    pid = jobs._pid
    jobs.submit(write_pid, tmp_path / "never")
    jobs.cancel()
    assert not (tmp_path / "never").exists() and not alive(pid)


def test_the_prewarmed_child_is_taken_once_and_discarded_when_unused(tmp_path):
    prewarm()
    spare_pid = background._spare[1]._pid
    taken = started_jobs()
    assert taken._pid == spare_pid and background._spare is None
    taken.submit(write_pid, tmp_path / "a")
    taken.finish()
    assert int((tmp_path / "a").read_text()) == spare_pid

    fresh = started_jobs()  # nothing prewarmed any more: a new child
    assert fresh._pid not in (None, spare_pid)
    fresh.cancel()

    prewarm()
    unused = background._spare[1]._pid
    discard_spare()  # e.g. a run without a select stage
    assert background._spare is None and not alive(unused)


def test_no_child_for_hydra_flags_that_run_nothing():
    prewarm(["--help"])
    prewarm(["selector=lim", "--cfg", "job"])
    assert background._spare is None


def test_without_a_spare_and_without_fork_jobs_run_inline(tmp_path):
    jobs = started_jobs(fork=False)
    jobs.submit(write_pid, tmp_path / "inline")
    jobs.finish()
    assert int((tmp_path / "inline").read_text()) == os.getpid()
