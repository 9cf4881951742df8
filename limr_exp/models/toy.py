"""The toy world's base model: a byte-level BPE tokenizer trained locally and a tiny
Qwen2-architecture model briefly pretrained (next-token) on solved easy problems, so that like
Qwen2.5-Math on MATH it starts with partial skill: it solves some problems, and writes its answer
in `\\boxed{}` only part of the time. Built once, cached by a hash of its config, saved in HF format.
"""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path

from limr_exp.io import give_files_the_usual_mode

log = logging.getLogger(__name__)

EOS = "<|endoftext|>"


def solution_text(answer: str, boxed: bool) -> str:
    return f" \\boxed{{{answer}}}" if boxed else f" {answer}"


def pretraining_corpus(model_cfg, n: int, seed: int) -> list[str]:
    """Solved problems of the pretraining levels; level k's answers are boxed with probability box_rates[k]."""
    from limr_exp.data.toy_arith import make_problem, prompt_text

    rng = random.Random(seed)
    levels, rates = list(model_cfg.toy.pretrain_levels), list(model_cfg.toy.box_rates)
    if len(rates) != len(levels):
        from limr_exp.errors import ConfigError

        raise ConfigError(f"model.toy.box_rates has {len(rates)} entries for {len(levels)} pretrain_levels: give one rate per level")
    texts = []
    for i in range(n):
        level = i % len(levels)
        expr, answer = make_problem(levels[level], rng)
        prompt = model_cfg.prompt_template.format(prompt=prompt_text(expr))
        texts.append(prompt + solution_text(answer, boxed=rng.random() < rates[level]) + EOS)
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
    from tqdm.auto import tqdm
    from transformers import Qwen2Config, Qwen2ForCausalLM

    t = model_cfg.toy
    torch.manual_seed(t.seed)
    from transformers import AutoTokenizer

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
    for _ in tqdm(range(t.pretrain_steps), desc="pretraining toy model", unit="step", leave=False, disable=None):
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
    model.eval().save_pretrained(tmp)
    (tmp / "build.json").write_text(f'{{"final_loss": {loss.item():.4f}}}\n')
    give_files_the_usual_mode(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    log.info("toy model built in %s (final pretraining loss %.3f)", folder, loss.item())
    return folder
