"""Settings of LIMR's rule-based reward; also the `reward` structured-config node."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RewardSettings:
    """LIMR's rule-based reward: 1 correct, -0.5 wrong, -1 format error (no box, too many boxes,
    unterminated or empty box, garbled or endlessly repeated text, no end token when one is required,
    timeout). Only the text before the first end token is judged (LIMR's RM server, serve_rm.py)."""

    correct: float = 1.0
    wrong: float = -0.5
    format_error: float = -1.0
    timeout_s: float = 2.0  # hard budget per judgement, enforced from any thread
    max_boxes: int = 5  # this many \boxed or more is a format error
    check_garbled: bool = True
    garbled_fraction: float = 0.3
    check_repetition: bool = True
    repetition_min_span: int = 5
    repetition_min_repeats: int = 5
    workers: int = 0  # verifier processes; 0 = one per core
    memory_limit_mb: int = 2048  # address-space cap of each verifier process
    max_error_share: float = 0.01  # internal judge errors above this share of the samples stop training
    require_end_token: bool = False  # LIMR: a response cut at the token limit (no end token) is a format error
    end_tokens: list[str] = field(default_factory=lambda: ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>"])  # judged up to the first

    @classmethod
    def from_cfg(cls, cfg) -> "RewardSettings":
        if cfg is None or isinstance(cfg, cls):
            return cfg or cls()
        values = {k: cfg[k] for k in cls.__dataclass_fields__ if k in cfg}
        if "end_tokens" in values:
            values["end_tokens"] = [str(t) for t in values["end_tokens"]]
        return cls(**values)
