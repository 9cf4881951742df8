"""Batched sampling from a causal LM, shared by training rollouts and evaluation (HF backend).

`sample` returns every response of a batch of prompts as one padded block: prompts left-padded,
responses right-padded, with the mask of response tokens up to and including the first EOS.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Samples:
    sequences: torch.Tensor  # (N, P + R) token ids: left-padded prompt, right-padded response
    attention_mask: torch.Tensor  # (N, P + R)
    action_mask: torch.Tensor  # (N, R) 1 on response tokens up to and including EOS
    texts: list[str]  # decoded responses (special tokens dropped)
    ended: list[bool]  # response i stopped at EOS (False: cut at max_new_tokens)

    @property
    def response_width(self) -> int:
        return self.action_mask.shape[1]


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that ignore left padding (as `generate` computes them)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def _response_mask(responses: torch.Tensor, eos_id: int) -> torch.Tensor:
    is_eos = responses == eos_id
    seen_before = (is_eos.long().cumsum(-1) - is_eos.long()) > 0  # an EOS earlier in the row
    return (~seen_before).long()


@torch.no_grad()
def sample(model, tokenizer, prompts: list[str], n: int, *, temperature: float, top_p: float, max_new_tokens: int,
           batch_size: int, progress: str | None = None) -> Samples:
    """n responses per prompt (prompt-major order: p0 x n, p1 x n, ...); temperature 0 is greedy."""
    from limr_exp.progress import Progress

    device = next(model.parameters()).device
    eos_id, pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    expanded = [p for p in prompts for _ in range(n)]
    chunks = []
    starts = range(0, len(expanded), max(1, batch_size))
    bar = Progress(progress, len(starts), "batch", final_line=False) if progress else None
    for start in starts:
        batch = expanded[start:start + batch_size]
        enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        kwargs = dict(max_new_tokens=max_new_tokens, pad_token_id=pad_id, eos_token_id=eos_id)
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
        else:
            kwargs.update(do_sample=False)
        out = model.generate(**enc, **kwargs)
        chunks.append((enc["input_ids"], enc["attention_mask"], out[:, enc["input_ids"].shape[1]:]))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    p_width = max(c[0].shape[1] for c in chunks)
    r_width = max(max(c[2].shape[1] for c in chunks), 1)
    seqs, attn, acts, texts, ended = [], [], [], [], []
    for ids, mask, resp in chunks:
        b = ids.shape[0]
        ended += (resp == eos_id).any(dim=1).tolist() if resp.shape[1] else [False] * b
        left = torch.full((b, p_width - ids.shape[1]), pad_id, device=device)
        right = torch.full((b, r_width - resp.shape[1]), pad_id, device=device)
        resp = torch.cat([resp, right], dim=1)
        act = _response_mask(resp, eos_id)
        if right.shape[1]:
            act[:, -right.shape[1]:] = 0  # padding added here was never generated
        seqs.append(torch.cat([left, ids, resp], dim=1))
        attn.append(torch.cat([torch.zeros_like(left), mask, act], dim=1))
        acts.append(act)
        for row, m in zip(resp, act):
            texts.append(tokenizer.decode(row[m.bool()], skip_special_tokens=True))
    return Samples(torch.cat(seqs), torch.cat(attn), torch.cat(acts), texts, ended)
