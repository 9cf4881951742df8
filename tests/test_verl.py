"""trainer=verl against verl 0.9.1's released code (read from its wheel, never installed): our config composes
onto its own ppo_trainer.yaml with every key verl's and every type verl's; its reward manager loads our reward
file and calls it as it does; the rollout dumps its trainer writes import with LIM scores exact."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import json
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import compose_cfg, released_folder, released_source

from limr_exp.errors import ConfigError

VERL = "0.9.1"
PROBLEMS = [("What is $1+1$?", "2"), ("Compute $\\frac{1}{2}+\\frac{1}{4}$.", "\\frac{3}{4}"),
            ("How many primes are less than 10?", "4"), ("Solve $x+3=5$.", "2"), ("What is $3 \\cdot 4$?", "12")]


def fake_model(tmp_path: Path) -> Path:
    folder = tmp_path / "Qwen2.5-Math-7B"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"num_hidden_layers": 28, "hidden_size": 3584, "num_attention_heads": 28,
                                                    "num_key_value_heads": 4, "vocab_size": 152064, "intermediate_size": 18944}))
    return folder


def data_root(tmp_path: Path) -> Path:
    """A data root with a problem set and the three benchmark files, in LIMR's formats."""
    root = tmp_path / "data"
    (root / "eval").mkdir(parents=True, exist_ok=True)
    (root / "math_full_8523.json").write_text(json.dumps([{"prompt": p, "answer": a} for p, a in PROBLEMS]))
    for bench in ("math500", "aime24", "amc23"):
        rows = [{"id": f"{bench}-{i}", "question": f"{bench} question {i}: what is {i} + {i}?", "answer": str(2 * i)} for i in range(3)]
        (root / "eval" / f"{bench}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def verl_cfg(tmp_path: Path, *overrides: str, preset: str = "limr_paper_verl", small: bool = True):
    """The preset on a data root of 5 problems (with `small`, batches that 5 prompts fill: 2 prompts a step)."""
    root = data_root(tmp_path)
    small_batches = ["ppo.rollout_batch_size=2", "ppo.train_batch_size=16"] if small else []
    cfg = compose_cfg([f"experiment={preset}", f"data_root={root}", f"dataset.path={root / 'math_full_8523.json'}",
                       f"model.path={fake_model(tmp_path)}", "selector=full", "stages=[train]", "trainer.dry_run=true",
                       f"trainer.shared_dir={tmp_path / 'shared'}",
                       *small_batches, *overrides], output_dir=tmp_path / "run")
    return cfg


def dry_run(tmp_path: Path, *overrides: str, preset: str = "limr_paper_verl") -> Path:
    """The pipeline's train stage with trainer=verl dry_run: the files verl would be started on."""
    from limr_exp.pipeline import run

    run(verl_cfg(tmp_path, *overrides, preset=preset))
    found = sorted(tmp_path.glob("*/**/verl_config.yaml"))  # run/train, or shared/run for a run over several nodes
    assert len(found) == 1 and (tmp_path / "run" / "train" / "verl_command.json").exists()
    return found[0].parent


@functools.cache
def verl_field_types() -> dict[str, dict[str, str]]:
    """class name -> {field: annotation} of verl's config dataclasses (the `_target_`s of ppo_trainer.yaml),
    read from the wheel's source with their base classes' fields (once a session)."""
    with tempfile.TemporaryDirectory() as tmp:
        return _field_types(released_folder("verl", VERL, "verl/", Path(tmp)))


def _field_types(root: Path) -> dict[str, dict[str, str]]:
    classes: dict[str, tuple[list[str], dict[str, str]]] = {}
    for path in [*(root / "workers" / "config").rglob("*.py"), *(root / "trainer" / "config").rglob("*.py"),
                 root / "base_config.py", *(root / "utils").glob("*.py"), *(root / "utils" / "profiler").glob("*.py")]:
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                fields = {n.target.id: ast.unparse(n.annotation) for n in node.body
                          if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
                classes.setdefault(node.name, ([ast.unparse(b).split(".")[-1] for b in node.bases], fields))

    def all_fields(name, seen=()):
        bases, fields = classes.get(name, ([], {}))
        merged = {}
        for b in bases:
            if b not in seen:
                merged.update(all_fields(b, (*seen, name)))
        return {**merged, **fields}

    return {name: all_fields(name) for name in classes}


def declared_type(tree: dict, key: str, annotations: dict) -> str | None:
    """The annotation verl's dataclass gives `key` (the field under the nearest `_target_` above it), or None."""
    parts = key.split(".")
    node, found = tree, None
    for i, part in enumerate(parts):
        if isinstance(node, dict) and "_target_" in node and i < len(parts):
            found = (node["_target_"].split(".")[-1], part)
        node = node.get(part) if isinstance(node, dict) else None
    if found is None or found[1] not in annotations.get(found[0], {}):
        return None
    return annotations[found[0]][found[1]]


def holds(annotation: str | None, default, value) -> bool:
    """`value` is of the declared type (a dataclass field's annotation), or, where verl declares none, of
    the type its YAML default has."""
    if annotation is not None:
        text = annotation.replace("typing.", "").replace(" ", "")
        optional = "None" in text or "Optional[" in text
        if value is None:
            return optional
        for name, types_ in (("bool", (bool,)), ("float", (int, float)), ("int", (int,)), ("str", (str,)), ("list", (list,)),
                             ("dict", (dict,))):
            if text.removeprefix("Optional[").lower().startswith(name):
                return isinstance(value, types_) and (name == "bool" or not isinstance(value, bool))
        return True  # a type of verl's own (a nested config, a Literal): YAML's shape was checked above
    if default is None or default == "???" or isinstance(default, str) and "${" in default:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return type(default) is type(value)


def composed_by_verl(tmp_path: Path, work: Path):
    """(verl's ppo_trainer alone, the run's verl_config.yaml) composed by Hydra against the wheel's config
    folder, as main_ppo composes them (`--config-dir <work> --config-name verl_config`), interpolations resolved."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    conf = released_folder("verl", VERL, "verl/trainer/config/", tmp_path / "verl_config")
    (conf / "limr_run.yaml").write_text((work / "verl_config.yaml").read_text())
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        base = compose(config_name="ppo_trainer")
        ours = compose(config_name="limr_run")
    OmegaConf.resolve(ours)
    return base, ours


def leaves(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from leaves(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1], node


@pytest.mark.parametrize("preset", ["limr_paper_verl", "limr_1gpu_verl"])
def test_the_config_composes_onto_verls_own_ppo_trainer_with_verls_keys_and_types(tmp_path, preset):
    """verl_config.yaml (`defaults: [ppo_trainer, _self_]`) composed with Hydra as verl's main_ppo composes it,
    against the wheel's config folder: every key we set is one of ppo_trainer's, of the type its default has,
    and reaches the composed config unchanged; the interpolations of verl's config still resolve."""
    from omegaconf import OmegaConf

    work = dry_run(tmp_path, preset=preset)
    base, ours = composed_by_verl(tmp_path, work)
    base_leaves = dict(leaves(OmegaConf.to_container(base, resolve=False)))
    settings = OmegaConf.to_container(OmegaConf.load(work / "verl_config.yaml"))
    settings.pop("defaults"), settings.pop("hydra")
    set_keys = dict(leaves(settings))
    assert len(set_keys) > 60
    unknown = [k for k in set_keys if k not in base_leaves and not any(b.startswith(k + ".") for b in base_leaves)]
    assert unknown == [], "not keys of verl 0.9.1's ppo_trainer"

    annotations = verl_field_types()
    base_tree = OmegaConf.to_container(base, resolve=False)
    wrong = [(k, v) for k, v in set_keys.items() if k in base_leaves and not holds(declared_type(base_tree, k, annotations),
                                                                                 base_leaves[k], v)]
    assert wrong == [], "values of another type than verl's dataclass field (or its YAML default) has"
    assert {k: OmegaConf.select(ours, k) for k in set_keys} == set_keys
    cfg = verl_cfg(tmp_path, preset=preset)
    p = cfg.ppo
    assert ours.data.train_batch_size == p.rollout_batch_size and ours.actor_rollout_ref.rollout.n == p.n_samples_per_prompt
    assert ours.actor_rollout_ref.actor.ppo_mini_batch_size * p.n_samples_per_prompt == p.train_batch_size
    assert ours.algorithm.adv_estimator == "gae" and ours.critic.optim.lr == p.critic_learning_rate
    assert ours.trainer.nnodes * ours.trainer.n_gpus_per_node == cfg.trainer.num_nodes * cfg.trainer.gpus_per_node
    assert ours.reward.custom_reward_function.path == str(work / "limr_reward.py")
    assert ours.trainer.rollout_data_dir == str(work / "rollouts") and ours.trainer.resume_mode == "auto"
    assert json.loads((tmp_path / "run" / "train" / "verl_command.json").read_text())[1:] == [
        "-m", "verl.trainer.main_ppo", "--config-dir", str(work), "--config-name", "verl_config"]


def test_extra_keys_reach_verl_and_a_path_is_never_an_interpolation(tmp_path):
    from omegaconf import OmegaConf

    work = dry_run(tmp_path, "+trainer.extra={actor_rollout_ref.actor.use_torch_compile: false}",
                   "trainer.logger=[console,wandb]")
    cfg = OmegaConf.load(work / "verl_config.yaml")
    assert cfg.actor_rollout_ref.actor.use_torch_compile is False and list(cfg.trainer.logger) == ["console", "wandb"]
    from limr_exp.training.engines.verl import write_verl_config

    odd = tmp_path / "a ${oc.env:HOME} 'b', c\\d"
    odd.mkdir()
    path = write_verl_config({"data": {"train_files": str(odd / "train.parquet")}}, odd / "verl_config.yaml")
    assert OmegaConf.load(path).data.train_files == str(odd / "train.parquet")


@contextlib.contextmanager
def modules_in_place(modules: dict):
    """`modules` in sys.modules for the block (the stand-ins for the verl package the released code imports)."""
    saved = {k: sys.modules.get(k) for k in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def released_lr_scheduler():
    """`_build_lr_scheduler` of verl 0.9.1's FSDP engine (workers/engine/fsdp/transformer_impl.py) with the two
    schedules it picks from (utils/torch_functional.py), from the wheel: the LR verl trains with."""
    def function(member, name, cls=None):
        tree = ast.parse(released_source("verl", VERL, member))
        body = next(c for c in tree.body if isinstance(c, ast.ClassDef) and c.name == cls).body if cls else tree.body
        return ast.unparse(next(f for f in body if isinstance(f, ast.FunctionDef) and f.name == name))

    torch_functional = types.ModuleType("verl.utils.torch_functional")
    exec("import math\nfrom torch.optim import Optimizer\nfrom torch.optim.lr_scheduler import LambdaLR\n"
         + function("verl/utils/torch_functional.py", "get_constant_schedule_with_warmup") + "\n"
         + function("verl/utils/torch_functional.py", "get_cosine_schedule_with_warmup"), torch_functional.__dict__)
    engine_source = ast.parse(released_source("verl", VERL, "verl/workers/engine/fsdp/transformer_impl.py"))
    engine = next(c.name for c in engine_source.body if isinstance(c, ast.ClassDef)
                  and any(isinstance(f, ast.FunctionDef) and f.name == "_build_lr_scheduler" for f in c.body))
    namespace: dict = {}
    exec(function("verl/workers/engine/fsdp/transformer_impl.py", "_build_lr_scheduler", engine), namespace)
    build = namespace["_build_lr_scheduler"]
    from omegaconf import OmegaConf

    defaults = OmegaConf.create(released_source("verl", VERL, "verl/trainer/config/_generated_ppo_trainer.yaml"))
    verl_optim = OmegaConf.to_container(defaults.actor_rollout_ref.actor.optim, resolve=True)  # verl's defaults of the rest

    def lrs(optim, total_steps: int) -> list[float]:
        """The LR of each rollout step 0 .. total_steps - 1 (verl steps the scheduler once a rollout step)."""
        import torch

        opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=optim["lr"])
        config = types.SimpleNamespace(**{**verl_optim, **optim, "total_training_steps": total_steps})
        with modules_in_place({"verl.utils.torch_functional": torch_functional}):
            schedule = build(types.SimpleNamespace(optimizer_config=config, rank=1), opt)
        out = []
        for _ in range(total_steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            schedule.step()
        return out

    return lrs


def test_the_lr_verls_own_scheduler_computes_is_limrs(tmp_path):
    """The paper preset's actor and critic LR as verl's engine computes them, stepped as verl steps them (once
    a rollout step): LIMR's step 1 trains at the peak (LIMR's 10 warm-up optimiser steps are a third of its
    first rollout step of 32: 0.86x on average) and every later step is at 1.00x, as LIMR's cosine over
    430,000 optimiser steps is (0.9995x at its step 200). OpenRLHF's default, cosine_with_min_lr, becomes
    verl's cosine falling to 0.1x of the peak at the end."""
    import math

    from limr_exp.training.engines.verl import verl_settings

    lrs = released_lr_scheduler()
    cfg = verl_cfg(tmp_path, small=False)
    settings = verl_settings(cfg, tmp_path, tmp_path / "t.parquet", None, tmp_path / "r.py", 1, 100, "x")
    steps = 200  # LIMR's 100 episodes of 2 rollout steps (ppo/limr_paper.yaml)
    for role, peak in (("actor", cfg.ppo.actor_learning_rate), ("critic", cfg.ppo.critic_learning_rate)):
        optim = settings["actor_rollout_ref"]["actor"]["optim"] if role == "actor" else settings["critic"]["optim"]
        got = lrs(optim, steps)
        assert got[0] == pytest.approx(peak) and all(x == pytest.approx(peak) for x in got), role
    cosine = verl_settings(verl_cfg(tmp_path, "ppo.lr_scheduler=cosine_with_min_lr", small=False), tmp_path, tmp_path / "t.parquet",
                           None, tmp_path / "r.py", 1, 100, "x")["actor_rollout_ref"]["actor"]["optim"]
    got = lrs(cosine, steps)
    peak = cfg.ppo.actor_learning_rate
    openrlhf = [peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / steps))) for k in range(steps)]  # per rollout step
    assert max(abs(g - o) / peak for g, o in zip(got, openrlhf)) < 0.01 and got[-1] < 0.11 * peak


class FakeDataProto:
    """The part of verl's DataProto the reward manager touches: `batch` (tensors), `non_tensor_batch` (numpy
    object arrays), slicing, item access."""

    def __init__(self, batch: dict, non_tensor_batch: dict):
        self.batch, self.non_tensor_batch = batch, non_tensor_batch

    def __getitem__(self, index):
        if isinstance(index, slice):
            return FakeDataProto({k: v[index] for k, v in self.batch.items()},
                                 {k: v[index] for k, v in self.non_tensor_batch.items()})
        return FakeDataProto({k: v[index] for k, v in self.batch.items()},
                             {k: v[index] for k, v in self.non_tensor_batch.items()})


class ByteTokenizer:
    """Token = byte; id 0 is the end token, dropped by skip_special_tokens as verl decodes."""

    def encode(self, text):
        return list(text.encode())

    def decode(self, ids, skip_special_tokens=False):
        ids = [int(i) for i in ids]
        return bytes(i for i in ids if not (skip_special_tokens and i == 0)).decode()


def released_reward_manager():
    """verl 0.9.1's load_reward_manager (trainer/ppo/reward.py: get_custom_reward_fn, load_extern_object of
    utils/import_utils.py), as its reward loop calls it, with its NaiveRewardManager on its base class
    (experimental/reward_loop/reward_manager/naive.py, base.py), all from the wheel; only the imports of the
    verl package itself (DataProto, the registry lookup, the event loop) are stand-ins."""
    stubs = {"verl": types.ModuleType("verl"), "verl.utils": types.ModuleType("verl.utils"),
             "verl.utils.ray_utils": types.ModuleType("verl.utils.ray_utils"),
             "verl.utils.reward_score": types.ModuleType("verl.utils.reward_score"),
             "verl.experimental": types.ModuleType("verl.experimental"),
             "verl.experimental.reward_loop": types.ModuleType("verl.experimental.reward_loop"),
             "verl.experimental.reward_loop.reward_manager": types.ModuleType("verl.experimental.reward_loop.reward_manager")}
    for package in ("verl", "verl.utils", "verl.experimental", "verl.experimental.reward_loop"):
        stubs[package].__path__ = []
    stubs["verl"].DataProto = FakeDataProto
    stubs["verl.utils.ray_utils"].get_event_loop = asyncio.new_event_loop
    stubs["verl.utils.reward_score"].default_compute_score = None
    stubs["verl.utils.reward_score"].get_default_compute_score = lambda name: None
    stubs["verl.experimental.reward_loop.reward_manager"].register = lambda name: (lambda cls: cls)

    def module(name, member):
        m = types.ModuleType(name)
        m.__file__ = member
        sys.modules[name] = m
        exec(compile(released_source("verl", VERL, member), member, "exec"), m.__dict__)
        return m

    base = "verl.experimental.reward_loop.reward_manager.base"
    with modules_in_place({**stubs, "verl.utils.import_utils": None, base: None}):
        stubs["verl.utils"].import_utils = stubs["verl.utils.import_utils"] = module("verl.utils.import_utils",
                                                                                  "verl/utils/import_utils.py")
        module(base, "verl/experimental/reward_loop/reward_manager/base.py")
        naive = module("verl_naive", "verl/experimental/reward_loop/reward_manager/naive.py")
        reward = module("verl_reward", "verl/trainer/ppo/reward.py")
    stubs["verl.experimental.reward_loop.reward_manager"].get_reward_manager_cls = {"naive": naive.NaiveRewardManager}.get
    return reward.load_reward_manager, stubs


def test_verls_reward_manager_loads_our_reward_file_and_gets_limrs_rewards(tmp_path):
    """The reward file of a dry run, loaded by verl's load_reward_manager from the config we wrote, called by
    verl's NaiveRewardManager.run_single on samples as its rollout hands them over (response tokens padded,
    end token dropped by the decode): LIMR's 1 / -0.5 / -1, a missing reference never paid, eval samples 1 / 0."""
    import torch
    from omegaconf import OmegaConf

    work = dry_run(tmp_path)
    _, config = composed_by_verl(tmp_path, work)
    load_reward_manager, stubs = released_reward_manager()
    tok = ByteTokenizer()
    with modules_in_place(stubs):
        manager = load_reward_manager(config, tok, reward_router_address=None, reward_model_tokenizer=None)
    assert type(manager).__name__ == "NaiveRewardManager"
    import pyarrow.parquet as pq

    from limr_exp.data import ProblemSet
    from limr_exp.training.engines.verl import write_dataset

    rows = pq.read_table(work / "train.parquet").to_pylist()
    val = pq.read_table(work / "val.parquet").to_pylist()
    unanswered = ProblemSet("x", [{"id": "u", "prompt": "A problem whose answer is missing.", "answer": None}])
    rows += pq.read_table(write_dataset(unanswered, OmegaConf.create({"use_chat_template": True, "system_prompt": None}),
                                        tmp_path / "unanswered.parquet")).to_pylist()

    def reward(row, text):
        ids = tok.encode(text) + [0]  # the end token
        width = len(ids) + 5
        responses = torch.tensor([ids + [0] * (width - len(ids))])
        attention = torch.tensor([[1] * 3 + [1] * len(ids) + [0] * (width - len(ids))])  # prompt (3) + response
        data = FakeDataProto({"responses": responses, "attention_mask": attention},
                             {"data_source": np.array([row["data_source"]], dtype=object),
                              "reward_model": np.array([row["reward_model"]], dtype=object),
                              "extra_info": np.array([dict(row["extra_info"])], dtype=object)})
        return manager.loop.run_until_complete(manager.run_single(data))

    first = reward(rows[0], "So $1+1=2$, and the answer is $\\boxed{2}$.")
    assert first["reward_score"] == 1.0 and first["reward_extra_info"]["acc"] == 1.0
    assert reward(rows[1], "The sum is $\\boxed{0.75}$.")["reward_score"] == 1.0
    assert reward(rows[2], "There are $\\boxed{5}$ primes.")["reward_score"] == -0.5
    assert reward(rows[3], "x is two.")["reward_score"] == -1.0  # no \boxed: LIMR's format error
    assert rows[5]["reward_model"]["ground_truth"] is None
    assert reward(rows[5], "\\boxed{}")["reward_score"] < 1.0 and reward(rows[5], "\\boxed{None}")["reward_score"] < 1.0
    assert reward(val[1], "\\boxed{2}")["reward_score"] == 1.0 and reward(val[1], "\\boxed{3}")["reward_score"] == 0.0
    assert {r["data_source"] for r in val} == {"math500", "aime24", "amc23"}


def released_dump_writer():
    """verl 0.9.1's v1 trainer `_write_generations` (trainer/ppo/v1/trainer_base.py: the default trainer,
    use_v1=true), which writes `trainer.rollout_data_dir/{step}.jsonl`, taken out of the wheel and run as it is."""
    source = released_source("verl", VERL, "verl/trainer/ppo/v1/trainer_base.py")
    tree = ast.parse(source)
    fn = next(f for c in tree.body if isinstance(c, ast.ClassDef) for f in c.body
              if isinstance(f, ast.FunctionDef) and f.name == "_write_generations")
    fn.decorator_list = []
    namespace: dict = {}
    exec("import json, os\nimport numpy as np\n" + ast.unparse(fn), namespace)
    return namespace["_write_generations"]


def test_the_rollout_dumps_verl_writes_import_with_exact_lim_scores(tmp_path):
    """A run's dumps as verl writes them (its writer, chat-templated inputs decoded without special tokens,
    `score` = our reward) -> read_rollouts -> the history; LIM's scores equal those of the history built
    directly from which samples were correct."""
    from test_trajectories import chat_tokenizer

    from limr_exp.data import ProblemSet
    from limr_exp.history import AccuracyCurves, History
    from limr_exp.models.loading import chat_messages
    from limr_exp.selection.lim import lim_scores
    from limr_exp.training.engines.verl import VerlReward, read_rollouts

    cfg = verl_cfg(tmp_path)
    problems = ProblemSet("math", [{"id": f"q{i}", "prompt": p, "answer": a} for i, (p, a) in enumerate(PROBLEMS)])
    tok = chat_tokenizer("qwen", [p for p, _ in PROBLEMS] + [str(cfg.model.system_prompt)])
    inputs = {}
    for r in problems.rows:  # as verl's RLHFDataset templates the prompt and its dump decodes it
        ids = tok.apply_chat_template(chat_messages(cfg.model, r["prompt"]), add_generation_prompt=True, tokenize=True)
        inputs[r["id"]] = tok.decode(ids if isinstance(ids, list) else list(ids["input_ids"]), skip_special_tokens=True)
    score = VerlReward({})
    write = released_dump_writer()
    rng = np.random.default_rng(3)
    n, batch, epochs = 4, 2, 5  # 5 prompts, batch 2: 2 steps an epoch, the fifth prompt dropped each epoch (drop_last)
    truth = []  # (id, epoch, step, correct)
    step = 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(problems))
        for s in range(len(problems) // batch):
            step += 1
            rows = [problems.rows[i] for i in order[s * batch:(s + 1) * batch] for _ in range(n)]
            correct = [bool(rng.random() < 0.15 * epoch + 0.1 * int(r["id"][1:])) for r in rows]
            outputs = [f"\\boxed{{{r['answer']}}}" if c else "\\boxed{-1}" for r, c in zip(rows, correct)]
            scores = [score(solution_str=o, ground_truth=r["answer"], extra_info={"id": r["id"]})["score"] for r, o in zip(rows, outputs)]
            write([inputs[r["id"]] for r in rows], outputs, [r["answer"] for r in rows], scores, {"uid": list(range(len(rows)))},
                  str(tmp_path / "rollouts"), step)
            truth += [(r["id"], epoch, step, c) for r, c in zip(rows, correct)]
    history = read_rollouts(tmp_path / "rollouts", problems, steps_per_epoch=len(problems) // batch)
    ids = sorted({t[0] for t in truth})
    direct = History.build(ids, [ids.index(t[0]) for t in truth], [t[1] for t in truth], [t[2] for t in truth],
                           [1.0 if t[3] else -0.5 for t in truth])

    def scores_of(h):
        c = AccuracyCurves.from_history(h)
        order = np.argsort(c.prompt_ids)
        return np.array(c.prompt_ids)[order].tolist(), lim_scores(c.acc, c.mean)[order]

    (ids_read, read), (ids_direct, expected) = scores_of(history), scores_of(direct)
    assert history.num_rows == len(truth) and ids_read == ids_direct == ids
    assert np.array_equal(read, expected, equal_nan=True) and np.isfinite(read).sum() >= 3  # a prompt missing an epoch is unscored


@pytest.mark.parametrize("overrides, key", [
    (["reward.require_end_token=true"], "reward.require_end_token"),
    (["model.use_chat_template=false"], "model.use_chat_template"),
    (["ppo.advantage_estimator=rloo"], "ppo.advantage_estimator"),
    (["ppo.lr_scheduler=polynomial"], "ppo.lr_scheduler"),
    (["ppo.train_batch_size=12"], "ppo.train_batch_size"),
    (["trainer.shared_dir=null"], "trainer.num_nodes"),
    (["ppo.max_steps=5"], "ppo.max_steps"),
    (["model.path=/no/such/model"], "model.path"),
    (["trainer.dry_run=false"], "needs verl, which is not installed"),
])
def test_verls_own_checks_name_the_key(tmp_path, overrides, key):
    from limr_exp.plugins import validate

    cfg = verl_cfg(tmp_path, *overrides)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as e:
        validate(cfg)
    assert "\n" not in str(e.value)


def test_both_presets_pass_the_checks_and_a_too_large_rollout_batch_is_one_line(tmp_path):
    from limr_exp.plugins import validate

    validate(verl_cfg(tmp_path, "trainer.shared_dir=/nfs/limr"))
    validate(verl_cfg(tmp_path, preset="limr_1gpu_verl"))
    with pytest.raises(ConfigError, match="rollout_batch_size=8 is more prompts than the 5"):
        dry_run(tmp_path, "ppo.rollout_batch_size=8", "trainer.shared_dir=/nfs/limr", preset="limr_1gpu_verl")
