"""Progress of long work: a tqdm bar on a terminal, and a log line at a steady cadence always, so a log
file (Hydra's `<run>/<job>.log`, or redirected output) shows that the run is alive and how far it is."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("limr_exp")

EVERY_S = 10.0  # seconds of work between two progress lines


class Progress:
    """`with Progress("train", total=40, unit="step") as p: ... p.update(reward=0.3)`."""

    def __init__(self, desc: str, total: int, unit: str = "step", initial: int = 0, every_s: float = EVERY_S,
                 final_line: bool = True):
        """`final_line=False`: no line at the end of work that finished before the first line was due."""
        from tqdm.auto import tqdm

        self.desc, self.total, self.unit, self.n, self.every_s = desc, total, unit, initial, every_s
        self.start = self.last = time.monotonic()
        self.initial, self.final_line, self.logged = initial, final_line, False
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False, disable=None)

    def update(self, n: int = 1, **postfix) -> None:
        self.n += n
        self.bar.update(n)
        shown = {k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in postfix.items()}
        if shown:
            self.bar.set_postfix(shown)
        now = time.monotonic()
        finished = self.n >= self.total and (self.final_line or self.logged)
        if now - self.last >= self.every_s or finished:
            self.last, self.logged = now, True
            done = self.n - self.initial
            rate = (now - self.start) / done if done else 0.0
            eta = rate * (self.total - self.n)
            extra = "".join(f", {k} {v}" for k, v in shown.items())
            log.info("%s: %d/%d %ss (%.0f%%), %.2f s/%s, %.0f s left%s", self.desc, self.n, self.total, self.unit,
                     100.0 * self.n / max(self.total, 1), rate, self.unit, eta, extra)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def quiet_transformers() -> None:
    """No per-file progress bars for loading/saving small checkpoints; our own bars say what runs."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
