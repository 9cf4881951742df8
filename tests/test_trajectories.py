"""Reward-history importers: step dumps, verl rollout dumps, the Parquet table; format detection; errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from limr_exp.errors import DataError
from limr_exp.trajectories import COLUMNS, AccuracyCurves, History, load_history, read_table, unmatched_id, write_table

from conftest import compose_cfg, write_step_dumps


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
    ("truncated", "not valid JSON"),
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
