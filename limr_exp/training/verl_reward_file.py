"""LIMR's rule-based reward for verl's `reward.custom_reward_function` (name `compute_score`): a fixed file
that limr-exp copies into the run (from limr_exp/training/verl_reward_file.py, never generated); its settings
are the JSON file beside it (limr_reward.json). verl 0.9 loads it with `load_extern_object` in each reward
worker and its NaiveRewardManager calls `compute_score(data_source=, solution_str=, ground_truth=, extra_info=)`."""

import json
import os

from limr_exp.training.engines.verl import SETTINGS_FILE, VerlReward

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), SETTINGS_FILE), encoding="utf-8") as _settings:
    compute_score = VerlReward(**json.load(_settings))
