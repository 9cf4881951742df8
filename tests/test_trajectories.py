"""Reward-history importers: step dumps, verl rollout dumps, the Parquet table; format detection; errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import compose_cfg, released_source, write_step_dumps

from limr_exp.errors import DataError
from limr_exp.history import COLUMNS, AccuracyCurves, History, load_history, read_table, unmatched_id, write_table


def traj_cfg(path, **kw):
    overrides = [f"trajectories.path={path}"] + [f"trajectories.{k}={v}" for k, v in kw.items()]
    return compose_cfg(overrides).trajectories


def test_step_dumps_group_into_epochs_and_keep_step_numbers(tmp_path):
    epochs = [{"p": [1, -0.5]}, {"p": [1, 1]}, {"p": [-1, -1]}]
    dumps = write_step_dumps(tmp_path / "d", epochs, steps_per_epoch=2)
    (dumps / "step_7.json").write_text(json.dumps([{"prompt": "p", "reward": 1}]))  # trailing partial epoch
    h = load_history(traj_cfg(dumps, steps_per_epoch=2), {"p": "id-p"}, workers=1)
    assert h.prompt_ids == ["id-p"]
    assert h.epoch.tolist() == [1, 1, 2, 2, 3, 3] and h.step.tolist() == [1, 2, 3, 4, 5, 6]
    assert h.correct.tolist() == [True, False, True, True, False, False]
    h2 = load_history(traj_cfg(dumps, steps_per_epoch=2, max_epochs=2), {"p": "id-p"}, workers=1)
    assert h2.epoch.max() == 2


def test_prompts_match_by_stripped_text_and_unmatched_keep_an_id(tmp_path):
    dumps = write_step_dumps(tmp_path / "d", [{"  p \n": [1], "q": [1], "other": [-1]}], steps_per_epoch=1)
    h = load_history(traj_cfg(dumps, steps_per_epoch=1), {"p": "P", "q": "Q"}, workers=1)
    assert sorted(h.prompt_ids) == sorted(["P", "Q", unmatched_id("other")])


def test_verl_rollout_dumps(tmp_path):
    folder = tmp_path / "rollouts"
    folder.mkdir()
    template = "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
    for step in (1, 2, 3, 4):
        lines = [{"input": template.format("What is 2+2?"), "output": "4", "score": 1.0 if step > 2 else 0.0, "step": step},
                 {"input": "What is 3+3?", "output": "6", "score": 1.0, "step": step}]
        (folder / f"{step}.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    h = load_history(traj_cfg(folder, steps_per_epoch=2), {"What is 2+2?": "a", "What is 3+3?": "b"}, workers=1)
    assert set(h.prompt_ids) == {"a", "b"}
    curves = AccuracyCurves.from_history(h)
    acc = dict(zip(curves.prompt_ids, curves.acc.tolist()))
    assert acc == {"a": [0.0, 1.0], "b": [1.0, 1.0]}
    custom = load_history(traj_cfg(folder, steps_per_epoch=2, prompt_regex="'user\\n(.*?)<'", format="verl"),
                          {"What is 2+2?": "a", "What is 3+3?": "b"}, workers=1)
    assert set(custom.prompt_ids) == {"a", "b"}


def test_table_round_trip_and_detection(tmp_path):
    h = History.build(["a", "b"], [0, 1, 1], [1, 1, 2], [10, 11, 20], [1.0, -0.5, 1.0])
    path = tmp_path / "t.parquet"
    write_table(h, path)
    assert pq.read_table(path).column_names == list(COLUMNS)
    back = load_history(traj_cfg(path), {})
    assert back.prompt_ids == ["a", "b"] and back.correct.tolist() == [True, False, True]
    assert read_table(path, max_epochs=1).num_rows == 2
    folder = tmp_path / "folder"
    folder.mkdir()
    write_table(h, folder / "part-0.parquet")
    assert load_history(traj_cfg(folder), {}).num_rows == 3


def test_concat_recodes_ids():
    a = History.build(["x"], [0], [1], [1], [1.0])
    b = History.build(["y", "x"], [0, 1], [2, 2], [2, 2], [-1.0, 1.0])
    c = a.concat(b)
    assert [c.prompt_ids[i] for i in c.codes] == ["x", "y", "x"]


@pytest.mark.parametrize("setup,message", [
    ("missing", "does not exist"),
    ("empty_folder", "neither step_"),
    ("truncated", "the file is truncated"),
    ("no_reward", "without a text 'prompt' or a numeric 'reward'"),
    ("prompt_not_text", "without a text 'prompt' or a numeric 'reward'"),
    ("not_a_list", "must hold a JSON list of samples"),
    ("verl_no_score", "line 2 lacks a numeric 'score'"),
    ("too_few", "fewer than one epoch"),
    ("bad_parquet", "not a readable Parquet"),
])
def test_bad_histories_give_one_clear_line(tmp_path, setup, message):
    path = tmp_path / "h"
    kw = {"steps_per_epoch": 1}
    if setup == "empty_folder":
        path.mkdir()
    elif setup in ("truncated", "no_reward", "prompt_not_text", "not_a_list", "too_few"):
        path.mkdir()
        content = {"truncated": '[{"prompt": "p", "rew', "no_reward": '[{"prompt": "p"}]',
                   "prompt_not_text": '[{"prompt": ["p"], "reward": 1}]', "not_a_list": '{"prompt": "p", "reward": 1}',
                   "too_few": '[{"prompt": "p", "reward": 1}]'}[setup]
        (path / "step_1.json").write_text(content)
        if setup == "too_few":
            kw["steps_per_epoch"] = 4
    elif setup == "verl_no_score":
        path.mkdir()
        (path / "1.jsonl").write_text('{"input": "p", "output": "o", "score": 1}\n{"input": "p", "output": "o"}\n')
    elif setup == "bad_parquet":
        path = tmp_path / "h.parquet"
        path.write_bytes(b"garbage")
    with pytest.raises(DataError, match=message) as e:
        load_history(traj_cfg(path, **kw) if setup != "missing" else traj_cfg(path), {"p": "p"}, workers=1)
    assert "\n" not in str(e.value)


def test_curves_fill_one_epoch_gaps_from_the_next_epoch_only():
    h = History.build(["a", "b", "c"], [0, 0, 1, 1, 2, 2], [1, 3, 1, 4, 2, 3], [0] * 6, [1, -1, 1, 1, 1, 1])
    c = AccuracyCurves.from_history(h)
    acc = dict(zip(c.prompt_ids, c.acc.tolist()))
    assert acc["a"][:3] == [1.0, 0.0, 0.0] and np.isnan(acc["a"][3])  # epoch 2 filled from 3; 4 missing
    assert acc["b"][0] == 1.0 and np.isnan(acc["b"][1]) and acc["b"][2:] == [1.0, 1.0]  # two-epoch gap: only the later one filled
    assert acc["c"][:3] == [1.0, 1.0, 1.0] and np.isnan(acc["c"][3])
    assert c.scored.tolist() == [False, False, False] and np.isnan(c.mean).all()


# -- verl dumps as verl writes them -------------------------------------------------------------------

VERL_VERSION = "0.9.1"
QWEN_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
LLAMA_TEMPLATE = ("<|begin_of_text|>{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n"
                  "{{ m.content }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")
SPECIALS = {"qwen": ["<|im_start|>", "<|im_end|>"], "llama": ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]}  # noqa: E501


def chat_tokenizer(kind: str, corpus: list[str]):
    """A real HF fast tokenizer (BPE trained here) with the template's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS[kind],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, additional_special_tokens=SPECIALS[kind])
    fast.chat_template = QWEN_TEMPLATE if kind == "qwen" else LLAMA_TEMPLATE
    return fast


def verl_writer():
    """`RayPPOTrainer._write_generations` from verl's released trainer/ppo/ray_trainer.py (the function that
    writes `trainer.rollout_data_dir/{step}.jsonl`), taken out of the wheel and run as it is."""
    import ast

    source = released_source("verl", VERL_VERSION, "verl/trainer/ppo/ray_trainer.py")
    cls = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "RayPPOTrainer")
    fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "_write_generations")
    fn.decorator_list = []
    namespace: dict = {}
    exec("import json, os\n" + ast.unparse(fn), namespace)
    return namespace["_write_generations"]


@pytest.mark.parametrize("template", ["qwen", "llama"])
@pytest.mark.parametrize("skip_special_tokens", [True, False])
def test_verl_dumps_written_by_verl_match_every_prompt(tmp_path, template, skip_special_tokens):
    from limr_exp.selection.lim import lim_scores

    write = verl_writer()
    # problems that share their opening words, so the template's fixed parts can't be found by common prefixes alone
    problems = [f"Compute the value of $x$ when $x + {i} = {3 * i + 1}$. Give your answer in lowest terms." for i in range(12)]
    problems += [f"Compute $\\dbinom{{{i + 5}}}{{{i}}}$." for i in range(4)] + ["How many primes are less than 30?"]
    tok = chat_tokenizer(template, problems + ["Please reason step by step, and put your final answer within \\boxed{}."])
    system = {"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."}
    ids = [tok.apply_chat_template([system, {"role": "user", "content": p}], add_generation_prompt=True, tokenize=True)
           for p in problems]
    ids = [x if isinstance(x, list) else list(x["input_ids"]) for x in ids]
    inputs = tok.batch_decode(ids, skip_special_tokens=skip_special_tokens)  # as verl's _log_rollout_data decodes them
    assert all(p in text for p, text in zip(problems, inputs))
    rng = np.random.default_rng(0)
    truth = {}
    folder = tmp_path / "rollout_data"
    for step in range(1, 9):  # 4 epochs of 2 steps, 4 samples per prompt per step
        scores = [float(rng.random() < (i + step) / 30) for i in range(len(problems)) for _ in range(4)]
        for k, sc in enumerate(scores):
            truth.setdefault(problems[k // 4], []).append((step, sc))
        write([inputs[k // 4] for k in range(len(scores))], ["..."] * len(scores), [None] * len(scores), scores, {},
              str(folder), step)
    text_to_id = {p: f"q{i}" for i, p in enumerate(problems)}
    h = load_history(traj_cfg(folder, steps_per_epoch=2), text_to_id, workers=1)  # format auto, no regex
    assert sorted(h.prompt_ids) == sorted(text_to_id.values())
    direct = History.build(list(text_to_id.values()), [int(text_to_id[p][1:]) for p in problems for _ in truth[p]],
                           [(s + 1) // 2 for p in problems for s, _ in truth[p]], [s for p in problems for s, _ in truth[p]],
                           [r for p in problems for _, r in truth[p]])
    def scores(history):
        c = AccuracyCurves.from_history(history)
        return dict(zip(c.prompt_ids, lim_scores(c.acc, c.mean).tolist()))

    assert scores(h) == scores(direct)


def test_a_history_that_matches_no_prompt_is_an_error(tmp_path):
    folder = tmp_path / "rollouts"
    folder.mkdir()
    for step in (1, 2):
        (folder / f"{step}.jsonl").write_text(json.dumps({"input": "user\nSomething else entirely\nassistant\n",
                                                          "output": "", "score": 1.0, "step": step}) + "\n")
    with pytest.raises(DataError, match=r"matches 0 of the dataset's 2 prompts \(0%\), below trajectories.min_match_share=0.5"):
        load_history(traj_cfg(folder, steps_per_epoch=1), {"What is 2+2?": "a", "What is 3+3?": "b"}, workers=1)
    half = load_history(traj_cfg(folder, steps_per_epoch=1, min_match_share=0.0), {"Something else entirely": "a",
                                                                                   "What is 3+3?": "b"}, workers=1)
    assert "a" in half.prompt_ids


def test_never_solved_score_is_the_issue_figure():
    """A 4-epoch toy probe whose mean rose 0.29 -> 0.46 gave a never-solved prompt 0.64 >= θ = 0.6."""
    import numpy as np

    from limr_exp.history import never_solved_score

    assert never_solved_score(np.linspace(0.29, 0.46, 4)) == pytest.approx(0.64, abs=0.01)
    assert never_solved_score(np.array([0.5, 0.6, 0.7])) < 0  # a high mean curve: never-solved prompts score low
    assert never_solved_score(np.zeros(3)) == 1.0
