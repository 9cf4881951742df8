"""The toy world's base model: a byte-level BPE tokenizer trained locally and a tiny
Qwen2-architecture model briefly pretrained (next-token) on solved problems of some families, so that
like Qwen2.5-Math on MATH it starts with partial skill: it solves one family, computes another but
rarely writes that answer in `\\boxed{}` (RL can teach it), and has never seen the third. Built once,
cached by a hash of its config, saved in HF format.
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import random
import shutil
import time
from pathlib import Path

from limr_exp.hashing import config_hash
from limr_exp.io import give_files_the_usual_mode, write_json
from limr_exp.progress import Progress, quiet_transformers

log = logging.getLogger(__name__)

EOS = "<|endoftext|>"


def solution_text(answer: str, boxed: bool) -> str:
    return f" \\boxed{{{answer}}}" if boxed else f" {answer}"


def pretraining_corpus(model_cfg, n: int, seed: int) -> list[str]:
    """Solved problems of the pretraining families, drawn from each family's pretraining half (the dataset
    never draws from it): family f makes a share `pretrain_weights[f]` (default 1) of the examples, relative
    to the others, and its answers are boxed with probability `pretrain_families[f]`. Families not listed
    are never seen: the model cannot solve them. Beside those n, each glimpsed problem of family f (those the
    train split draws from) appears `pretrain_glimpses[f]` times, with the right answer in a share
    `glimpse_correct` of them and another problem's answer in the rest: the model half-knows each alike."""
    from limr_exp.data.toy_arith import family, glimpsing_family, prompt_text
    from limr_exp.errors import ConfigError

    rng = random.Random(seed)
    rates = {str(k): float(v) for k, v in dict(model_cfg.toy.pretrain_families).items()}
    if not rates:
        raise ConfigError("model.toy.pretrain_families is empty: give the families the base model sees, with the share "
                          "of their answers boxed, e.g. {add: 1.0, sub: 0.1}")
    families = [family(name) for name in rates]  # an unknown name is one line
    for name, rate in rates.items():
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"model.toy.pretrain_families.{name}={rate} must be a share of boxed answers in [0, 1]")
    weights = {str(k): float(v) for k, v in dict(model_cfg.toy.get("pretrain_weights") or {}).items()}
    for name, weight in weights.items():
        if name not in rates:
            raise ConfigError(f"model.toy.pretrain_weights.{name}: {name} is not in model.toy.pretrain_families "
                              f"({', '.join(rates)}): weigh only families the model is pretrained on")
        if not weight >= 0:
            raise ConfigError(f"model.toy.pretrain_weights.{name}={weight} must be a non-negative weight")
    cumulative = list(itertools.accumulate(weights.get(f.name, 1.0) for f in families))
    if cumulative[-1] <= 0:
        raise ConfigError("model.toy.pretrain_weights gives every family weight 0: give at least one a positive weight")
    glimpses = {str(k): v for k, v in dict(model_cfg.toy.get("pretrain_glimpses") or {}).items()}
    correct = float(model_cfg.toy.glimpse_correct)
    for name, count in glimpses.items():
        if name not in rates:
            raise ConfigError(f"model.toy.pretrain_glimpses.{name}: {name} is not in model.toy.pretrain_families "
                              f"({', '.join(rates)}): only a pretrained family's problems can be glimpsed")
        glimpsing_family(name, f"model.toy.pretrain_glimpses.{name}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(f"model.toy.pretrain_glimpses.{name}={count} must be a whole number of examples per problem")
    if not 0.0 <= correct <= 1.0:
        raise ConfigError(f"model.toy.glimpse_correct={correct} must be a share of right answers in [0, 1]")
    halves = {f.name: f.half(pretraining=True) for f in families}
    texts = []

    def example(fam, expr: str, answer: str) -> str:
        prompt = model_cfg.prompt_template.format(prompt=prompt_text(expr))
        return prompt + solution_text(answer, boxed=rng.random() < rates[fam.name]) + EOS

    for _ in range(n):
        fam = families[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]
        texts.append(example(fam, *fam.problem(rng.choice(halves[fam.name]))))
    for name, count in sorted(glimpses.items()):  # every glimpsed problem equally often, right equally often
        fam = family(name)
        for index in fam.glimpsed_problems():
            expr, right = fam.problem(index)
            for k in range(count):
                answer = right
                while k >= round(count * correct) and answer == right:  # a wrong answer of the family's kind
                    answer = fam.problem(rng.randrange(fam.size))[1]
                texts.append(example(fam, expr, answer))
    return texts


def train_tokenizer(corpus: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, unk_token=None)


def build_toy_model(model_cfg, folder: Path, device: str = "cpu") -> Path:
    """Train tokenizer and model, write them to `folder` (atomically: a temp folder renamed)."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    quiet_transformers()
    t0 = time.perf_counter()
    t = model_cfg.toy
    torch.manual_seed(t.seed)

    corpus = pretraining_corpus(model_cfg, t.pretrain_examples, t.seed)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    trained = train_tokenizer(corpus, t.vocab_size)
    trained.save_pretrained(tmp)
    config = Qwen2Config(
        vocab_size=len(trained), hidden_size=t.hidden_size, intermediate_size=t.intermediate_size,
        num_hidden_layers=t.num_hidden_layers, num_attention_heads=t.num_attention_heads,
        num_key_value_heads=t.num_key_value_heads, max_position_embeddings=t.max_position_embeddings,
        tie_word_embeddings=True, bos_token_id=trained.eos_token_id, eos_token_id=trained.eos_token_id,
        pad_token_id=trained.pad_token_id,
    )
    config.save_pretrained(tmp)
    # With config.json beside it, AutoTokenizer loads the Qwen2 tokenizer class (which splits digits):
    # train on exactly the tokenization every later load will produce.
    tokenizer = AutoTokenizer.from_pretrained(tmp)
    model = Qwen2ForCausalLM(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=t.pretrain_lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=t.pretrain_lr, total_steps=t.pretrain_steps, pct_start=0.1)
    enc = [tokenizer(text)["input_ids"] for text in corpus]
    rng = random.Random(t.seed)
    model.train()
    with Progress("pretraining the toy model", t.pretrain_steps) as progress:
        for _ in range(t.pretrain_steps):
            batch = [enc[rng.randrange(len(enc))] for _ in range(t.pretrain_batch_size)]
            width = max(map(len, batch))
            ids = torch.full((len(batch), width), tokenizer.pad_token_id)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for i, seq in enumerate(batch):
                ids[i, :len(seq)] = torch.tensor(seq)
                mask[i, :len(seq)] = 1
            labels = ids.masked_fill(mask == 0, -100)
            loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            progress.update(1, loss=loss.item())
    model.eval().save_pretrained(tmp)
    write_json(tmp / "build.json", {"final_loss": round(loss.item(), 4), "seconds": round(time.perf_counter() - t0, 3),
                                    "finished_at": time.time()})
    give_files_the_usual_mode(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    log.info("toy model built in %s (final pretraining loss %.3f)", folder, loss.item())
    return folder


def toy_model_folder(model_cfg, cache_dir) -> Path:
    """Where the toy model of this config is built (cached): a hash of its config and the toy world's version."""
    from limr_exp.data.toy_arith import WORLD_VERSION

    key = config_hash(model_cfg.toy, model_cfg.prompt_template, WORLD_VERSION)
    return Path(cache_dir) / "models" / f"toy-{key}"


def build_seconds(model_cfg, cache_dir, since: float) -> float | None:
    """How long the toy model's build took, if it was built after `since` (a time.time()), else None."""
    try:
        record = json.loads((toy_model_folder(model_cfg, cache_dir) / "build.json").read_text())
    except (OSError, ValueError):
        return None
    return float(record["seconds"]) if record.get("finished_at", 0) >= since and "seconds" in record else None
