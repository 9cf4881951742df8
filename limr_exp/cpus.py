"""How many CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota."""

from __future__ import annotations

import math
import os
from pathlib import Path


def _cgroup_quota() -> float | None:
    """CPUs granted by a cgroup v2 (`cpu.max`) or v1 (`cpu.cfs_quota_us`) quota, if one is set."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def usable_cpus() -> int:
    """At least 1: the CPUs in this process's affinity mask, or fewer when a cgroup quota says so."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, math.ceil(quota))
    return max(1, n)


def torch_threads(parallel_jobs: int = 1) -> int:
    """Threads for torch in one of `parallel_jobs` jobs sharing this machine: more threads than usable CPUs
    oversubscribe them and slow every job down many times over."""
    return max(1, usable_cpus() // max(1, parallel_jobs))


def busy_hint(threads: int) -> str | None:
    """A warning when other work already keeps this machine's usable CPUs busy (load average above three
    quarters of them): `threads` torch threads then compete with it and can run several times slower."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    cpus = usable_cpus()
    if threads <= 1 or load <= 0.75 * cpus:
        return None
    return (f"the machine is busy (load average {load:.1f} on {cpus} usable CPUs): torch's {threads} threads compete with "
            "that work and can run several times slower; threads=1 usually runs faster then")
