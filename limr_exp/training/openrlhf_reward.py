"""OpenRLHF's custom reward function, LIMR's rule behind it (the fixed `limr_reward.py` only builds one
from the `limr_reward.json` beside it).

OpenRLHF 0.11.2 (`openrlhf/utils/agent.py`, SingleTurnAgentExecutor) loads the file given to
`--reward.remote_url` with `spec_from_file_location` inside each vLLM engine actor and calls
`reward_func([query], [prompt], [label])` once per sample through `asyncio.to_thread`, so calls come
from worker threads; `query` is the decoded prompt + response with special tokens kept. If the function
raises, the executor logs it and leaves the sample's reward None, on which 0.11.2's experience maker
fails and the run crashes. So this function never raises for a sample (an internal error scores -1 with
reason `error`); it raises only to stop a run whose judge is broken, and first says why where the
run's launcher looks (`<records>/ABORTED`), which then stops the run with that one line.

Every judged training sample is appended to `<records>/rewards-<host>-<pid>.jsonl` (prompt id, reward,
correct, reason, time, launch): the history LIM reads back (trajectories.import_reward_records). Samples
of `--eval.dataset` prompts (labels marked `eval`) go to `eval-<host>-<pid>.jsonl`, out of the history,
and are rewarded 1 when correct and 0 otherwise, so OpenRLHF's `eval_<benchmark>_pass1` is the
benchmark's accuracy (LIMR's in-training metric), not a mean of 1 / -0.5 / -1.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

from limr_exp.rewards import Judgement, RewardSettings, judge_batch, too_many_errors, warm_up

ABORT_FILE = "ABORTED"
SETTINGS_FILE = "limr_reward.json"  # beside the reward file: {"settings": ..., "records": ..., "launch": ...}
_MARKERS = ("<|im_start|>assistant\n", "<|start_header_id|>assistant<|end_header_id|>\n\n", "Assistant:")


def split_response(query: str, prompt: str) -> str:
    """The model's response inside OpenRLHF's decoded query (prompt + response + special tokens), end
    tokens kept, as LIMR's RM server reads it: the text after the last assistant marker (a base model that
    runs on into a new turn is judged on that last turn), else the text after the prompt. The judge then
    reads only what comes before the first end token and, with `reward.require_end_token`, scores a
    response without one (cut at the token limit) -1."""
    cut = max(query.rfind(m) + len(m) if query.rfind(m) >= 0 else -1 for m in _MARKERS)
    if cut >= 0 and (cut >= len(prompt) or not query.startswith(prompt)):
        return query[cut:]
    return query[len(prompt):]


def parse_label(label) -> tuple[str | None, str, bool]:
    """(reference answer or None, prompt id, is an eval prompt) from the JSON label limr-exp writes into
    its prompt files; a label that is not such JSON is taken as the answer itself. A missing answer stays
    None: it is never replaced by a stand-in a response could match."""
    try:
        data = json.loads(label)
    except (TypeError, ValueError):
        return (label if isinstance(label, str) else None), "", False
    if not isinstance(data, dict):
        return str(data), "", False
    answer = data.get("answer")
    return (answer if answer is None or isinstance(answer, str) else str(answer)), str(data.get("id", "")), bool(data.get("eval"))


class RewardFunction:
    """`reward_func(queries, prompts, labels)` for OpenRLHF: LIMR's rule, every sample recorded.

    Internal errors of the judge (not timeouts) are counted over the process's samples; when they exceed
    `reward.max_error_share` of them (`too_many_errors`), the run is stopped: a run trained on -1 rewards
    from a broken judge is worse than none."""

    def __init__(self, settings: dict, records: str, launch: int = 1):
        self.settings = RewardSettings(**settings)
        warm_up(self.settings, wait=False)  # loaded when the engine starts: the judge is ready before the first rollout
        self.records = records
        self.launch = launch
        self._lock = threading.Lock()
        self.n_judged = 0
        self.n_errors = 0
        self.first_error: str | None = None
        self.aborted: str | None = None

    def __call__(self, queries, prompts, labels):
        import torch

        if self.aborted:
            raise RuntimeError(self.aborted)
        parsed = [parse_label(label) for label in labels]
        try:
            responses = [split_response(q, p) for q, p in zip(queries, prompts)]
            judgements = judge_batch(responses, [answer for answer, _, _ in parsed], self.settings)
        except Exception as e:  # a bad call or a failed judge: every sample of the call is an internal error
            self._note_error(f"{type(e).__name__}: {e}")
            judgements = [Judgement(self.settings.format_error, False, "error", None)] * len(queries)
        self._record(parsed, judgements)
        self._count(judgements)
        rewards = torch.tensor([float(j.correct) if is_eval else j.reward for (_, _, is_eval), j in zip(parsed, judgements)],
                               dtype=torch.float32)
        return {"rewards": rewards, "scores": rewards,
                "extra_logs": {"accuracy": torch.tensor([float(j.correct) for j in judgements]),
                               "reward_errors": torch.tensor([float(j.reason == "error") for j in judgements])}}

    def _note_error(self, message: str) -> None:
        with self._lock:
            self.first_error = self.first_error or message

    def _count(self, judgements: list[Judgement]) -> None:
        errors = sum(j.reason == "error" for j in judgements)
        with self._lock:
            self.n_judged += len(judgements)
            self.n_errors += errors
            if errors and self.first_error is None:
                self.first_error = "see the reward log lines of this engine"
            reason = None if self.aborted else too_many_errors(self.n_errors, self.n_judged, self.settings)
            if reason is None:
                return
            self.aborted = f"limr-exp reward: {reason} (first error: {self.first_error})"
        print(self.aborted, file=sys.stderr, flush=True)
        try:
            os.makedirs(self.records, exist_ok=True)
            with open(os.path.join(self.records, ABORT_FILE), "w", encoding="utf-8") as f:
                f.write(self.aborted + "\n")
        except OSError:
            pass
        raise RuntimeError(self.aborted)

    def _record(self, parsed, judgements: list[Judgement]) -> None:
        try:
            os.makedirs(self.records, exist_ok=True)
            name = f"{socket.gethostname()}-{os.getpid()}.jsonl"
            now = time.time()
            lines = {"rewards": "", "eval": ""}
            for (_, pid, is_eval), j in zip(parsed, judgements):
                lines["eval" if is_eval else "rewards"] += json.dumps(
                    {"prompt_id": pid, "reward": j.reward, "correct": j.correct, "reason": j.reason, "time": now,
                     "launch": self.launch}) + "\n"
            with self._lock:
                for kind, text in lines.items():
                    if text:
                        with open(os.path.join(self.records, f"{kind}-{name}"), "a", encoding="utf-8") as f:
                            f.write(text)
        except OSError as e:
            print(f"[limr_reward] could not record rewards: {e}", file=sys.stderr, flush=True)
