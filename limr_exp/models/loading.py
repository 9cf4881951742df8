"""Load a policy (causal LM + tokenizer + prompt rendering) the same way for the toy model and a
real checkpoint: `from_pretrained` on a folder (or hub id). The toy model is built first if needed."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limr_exp.errors import ConfigError, DataError
from limr_exp.models.toy import build_toy_model, toy_model_folder
from limr_exp.progress import quiet_transformers

log = logging.getLogger(__name__)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda but no CUDA device is visible: use trainer.device=auto or cpu")
    return name


def chat_messages(model_cfg, problem: str) -> list[dict]:
    """The conversation a chat model gets for a problem: the model config's system prompt, if any, then the problem."""
    system = [{"role": "system", "content": model_cfg.system_prompt}] if model_cfg.system_prompt else []
    return system + [{"role": "user", "content": problem}]


@dataclass
class PolicyBundle:
    model: Any
    tokenizer: Any
    path: str
    model_cfg: Any

    def render(self, problem: str) -> str:
        """The prompt text the model sees for a problem (chat template or plain template)."""
        cfg = self.model_cfg
        if cfg.use_chat_template and getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(chat_messages(cfg, problem), tokenize=False, add_generation_prompt=True)
        return cfg.prompt_template.format(prompt=problem)


def model_identity(model_cfg) -> tuple:
    """What a cache built on this model is keyed by: its config, and for the toy model the toy world's version."""
    from limr_exp.data.toy_arith import WORLD_VERSION

    return (model_cfg,) if model_cfg.path is not None else (model_cfg, WORLD_VERSION)


def model_folder(model_cfg, cache_dir: str | os.PathLike, device: str = "cpu") -> str:
    """Where the model is loaded from; the toy model is built there on first use (file-locked)."""
    if model_cfg.path is not None:
        path = os.path.expanduser(str(model_cfg.path))
        if os.path.isabs(path) or path.startswith(".") or os.path.exists(path):
            if not os.path.isdir(path):
                raise DataError(f"model.path={model_cfg.path} does not exist: point it at a folder with config.json and weights")
            if not (Path(path) / "config.json").exists():
                raise DataError(f"model.path={model_cfg.path} has no config.json: is it a Hugging Face model folder?")
        return path
    if model_cfg.toy is None:
        raise ConfigError(f"model={model_cfg.name} has neither model.path nor a toy section: set model.path=<HF model folder>")
    from filelock import FileLock

    folder = toy_model_folder(model_cfg, cache_dir)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (folder / "config.json").exists():
            log.info("building the toy model (once; cached in %s)", folder)
            build_toy_model(model_cfg, folder, device)
    return str(folder)


def load_policy(model_cfg, cache_dir: str | os.PathLike, device: str = "cpu", path: str | None = None,
                with_model: bool = True) -> PolicyBundle:
    """Tokenizer and causal LM via from_pretrained, on `device`, in eval mode (only the tokenizer
    with `with_model=False`, for backends such as vLLM that load the weights themselves)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    path = path or model_folder(model_cfg, cache_dir, device)
    dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(model_cfg.dtype)
    if dtype is None:
        raise ConfigError(f"model.dtype={model_cfg.dtype!r} is unknown: use auto, float32, bfloat16 or float16")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype) if with_model else None
    except OSError as e:
        raise DataError(f"cannot load the model from {path}: {str(e).splitlines()[0]}") from None
    except (ValueError, RuntimeError) as e:
        raise DataError(f"the model folder {path} is corrupt or incomplete ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return PolicyBundle(model.to(device).eval() if model is not None else None, tokenizer, path, model_cfg)
