"""LIMR's rule-based reward for OpenRLHF's `--reward.remote_url`: a fixed file that limr-exp copies into
the run (from limr_exp/training/openrlhf_reward_file.py, never generated); its settings, the records
folder and the launch number are the JSON file beside it (limr_reward.json). OpenRLHF 0.11 loads it
with `spec_from_file_location` in each vLLM engine and calls `reward_func(queries, prompts, labels)`."""

import json
import os

from limr_exp.training.openrlhf_reward import SETTINGS_FILE, RewardFunction

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), SETTINGS_FILE), encoding="utf-8") as _settings:
    reward_func = RewardFunction(**json.load(_settings))
