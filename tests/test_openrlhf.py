"""The OpenRLHF backend by contract: its released argument parser, its reward-function loading
rules, trajectory reconstruction, and the vLLM evaluation backend against a fake engine."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
import threading
import types
from pathlib import Path

import pytest
from conftest import compose_cfg, released_source
from test_cli import cli

OPENRLHF_VERSION = "0.11.2"


def released_parser():
    """OpenRLHF's own argparse parser from the pinned release: the parser-building statements of
    openrlhf/cli/train_ppo_ray.py in its wheel, run without importing ray/vllm (which need CUDA)."""
    source = released_source("openrlhf", OPENRLHF_VERSION, "openrlhf/cli/train_ppo_ray.py")
    main = next(n for n in ast.parse(source).body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))
    statements = []
    for st in main.body:
        if ast.unparse(st).startswith("args = parser.parse_args"):
            break
        statements.append(ast.unparse(st))
    namespace: dict = {}
    exec("import argparse\nfrom datetime import datetime\n" + "\n".join(statements), namespace)
    return namespace["parser"]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory, shared_data_module):
    """The paper preset's dry run (2 nodes: its files on the shared folder): the folder OpenRLHF works in."""
    root = tmp_path_factory.mktemp("openrlhf")
    out, shared = root / "OUT", root / "shared"
    d = shared_data_module
    r = cli("stages=[select,train]", "experiment=limr_paper", "trainer=openrlhf", "trainer.dry_run=true",
            "selector=precomputed", f"selector.scores_path={d}/lim_scores.json", "theta=0.6", "dataset=file",
            f"dataset.path={d}/math_full_8523.json", f"data_root={d}", "logger=[]", f"hydra.run.dir={out}",
            f"trainer.shared_dir={shared}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "train" / "openrlhf_command.json").exists() and not (out / "train" / "prompts.jsonl").exists()
    return shared / "OUT"


@pytest.fixture(scope="module")
def shared_data_module():
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "math_full_8523.json").exists():
        pytest.skip("real LIMR data not found (set LIMR_DATA_DIR)")
    return SHARED_DATA


def test_every_flag_is_defined_by_the_released_parser_with_the_papers_values(dry_run):
    argv = json.loads((dry_run.parents[1] / "OUT" / "train" / "openrlhf_command.json").read_text())
    assert argv[1:3] == ["-m", "openrlhf.cli.train_ppo_ray"]
    args = vars(released_parser().parse_args(argv[3:]))  # exits (SystemExit) on any unknown flag or bad value
    expected = {"actor.model_name_or_path": "Qwen/Qwen2.5-Math-7B", "rollout.batch_size": 1024, "rollout.n_samples_per_prompt": 8,
                "rollout.temperature": 1.2, "train.batch_size": 256, "actor.adam.lr": 5e-7, "critic.adam.lr": 9e-6,
                "algo.kl.init_coef": 0.01, "actor.eps_clip": 0.2, "critic.value_clip": 0.2, "algo.advantage.lambd": 0.95,
                "algo.advantage.estimator": "gae", "ds.zero_stage": 3, "ds.param_dtype": "bf16", "vllm.num_engines": 4,
                "data.apply_chat_template": True, "data.label_key": "label", "rollout.micro_batch_size": 4,
                "train.micro_batch_size": 4, "ckpt.save_steps": 1, "eval.steps": 1}
    for key, value in expected.items():
        assert args[key] == value, key
    assert args["data.prompt_dataset"] == str(dry_run / "prompts.jsonl")
    assert len((dry_run / "prompts.jsonl").read_text().splitlines()) == 1389


class _Placed(Exception):
    """Raised by the fake PPOTrainer: every model has been placed by then."""


def openrlhf_placement(argv: list[str]) -> dict:
    """Run openrlhf/cli/train_ppo_ray.py from the released wheel as `python -m` runs it (its parser, its checks
    after parse_args, its real `hierarchize`, then `train()`), with Ray, vLLM and the model actors faked,
    and record what it asks Ray for. Returns {"gpus": whole GPUs asked for, "max_per_node": ...}."""
    source = released_source("openrlhf", OPENRLHF_VERSION, "openrlhf/cli/train_ppo_ray.py")
    config_source = released_source("openrlhf", OPENRLHF_VERSION, "openrlhf/utils/config.py")
    asked = {"pgs": [], "groups": [], "vllm": []}

    class PG:
        def __init__(self, bundles, strategy):
            self.bundles = bundles
            asked["pgs"].append(self)

        def ready(self):
            return self

    def group(num_nodes, num_gpus_per_node, cls, pg=None, num_gpus_per_actor=1, duplicate_actors=1):
        asked["groups"].append((cls, num_nodes, num_gpus_per_node, pg, num_gpus_per_actor))
        return types.SimpleNamespace()

    def vllm_engines(num_engines, tp, *args, **kwargs):
        asked["vllm"].append((num_engines, tp, args[6]))  # the 9th argument is the shared placement group
        return ["engine"] * num_engines

    class Trainer:
        @staticmethod
        def remote(*args, **kwargs):
            raise _Placed

    utils_config = types.ModuleType("openrlhf.utils.config")
    exec(config_source, utils_config.__dict__)
    fakes = {
        "ray": types.SimpleNamespace(is_initialized=lambda: True, init=lambda **kw: None, get=lambda x: x),
        "ray.util.placement_group": types.SimpleNamespace(placement_group=PG),
        "openrlhf": types.ModuleType("openrlhf"),
        "openrlhf.trainer.ray": types.SimpleNamespace(create_vllm_engines=vllm_engines),
        "openrlhf.trainer.ray.launcher": types.SimpleNamespace(RayActorGroup=group, ReferenceModelActor="ref",
                                                               RewardModelActor="reward"),
        "openrlhf.trainer.ray.ppo_actor": types.SimpleNamespace(PolicyModelActor="actor"),
        "openrlhf.trainer.ray.ppo_critic": types.SimpleNamespace(CriticModelActor="critic"),
        "openrlhf.utils": types.SimpleNamespace(get_strategy=lambda args: types.SimpleNamespace(print=lambda *a: None)),
        "openrlhf.utils.config": utils_config,
        "openrlhf.trainer.ppo_trainer": types.SimpleNamespace(PPOTrainer=Trainer),
    }
    saved_modules, saved_argv = {k: sys.modules.get(k) for k in fakes}, sys.argv
    sys.modules.update(fakes)
    sys.argv = ["train_ppo_ray"] + argv[3:]
    try:
        exec(compile(source, "train_ppo_ray.py", "exec"), {"__name__": "__main__"})
    except _Placed:
        pass
    finally:
        sys.argv = saved_argv
        for k, v in saved_modules.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    gpus = sum(len(pg.bundles) for pg in asked["pgs"])
    gpus += sum(nodes * per_node for _, nodes, per_node, pg, _ in asked["groups"] if pg is None)
    gpus += sum(n * tp for n, tp, pg in asked["vllm"] if pg is None)
    per_node = [len(pg.bundles) for pg in asked["pgs"]] + [per for _, _, per, pg, _ in asked["groups"] if pg is None]
    return {"gpus": gpus, "max_per_node": max(per_node + [tp for _, tp, _ in asked["vllm"]]),
            "groups": {cls: (nodes, per) for cls, nodes, per, _, _ in asked["groups"]}}


def dry_run_argv(tmp_path, *overrides, shared=None):
    from conftest import SHARED_DATA

    d = shared or SHARED_DATA
    out = tmp_path / "OUT"
    r = cli("stages=[select,train]", "trainer.dry_run=true", "selector=precomputed", f"selector.scores_path={d}/lim_scores.json",
            f"data_root={d}", "logger=[]", f"hydra.run.dir={out}", f"trainer.shared_dir={tmp_path}/shared", *overrides)
    assert r.returncode == 0, r.stderr[-2000:]
    argv = json.loads((out / "train" / "openrlhf_command.json").read_text())
    prompts = Path(argv[argv.index("--data.prompt_dataset") + 1])  # under trainer.shared_dir for several nodes
    n_prompts = len(prompts.read_text().splitlines())
    return argv, n_prompts


@pytest.mark.slow
@pytest.mark.parametrize("preset,overrides,capacity", [
    ("limr_paper", [], 16),                              # LIMR's layout: 4 actor + 4 ref + 4 critic + 4 vLLM, 2 x 8 GPUs
    ("limr_paper", ["trainer.num_nodes=1"], 8),          # one 8-GPU node: colocated
    ("limr_1gpu", [], 1),                                # one GPU: everything colocated, vLLM sleeps
])
def test_presets_fit_by_openrlhfs_own_placement_and_schedule_enough_steps(tmp_path, shared_data_module, preset, overrides,
                                                                           capacity):
    from limr_exp.training.openrlhf import effective_flag

    argv, n_prompts = dry_run_argv(tmp_path, f"experiment={preset}", *overrides, shared=shared_data_module)
    placed = openrlhf_placement(argv)  # OpenRLHF's own checks run too: an assert there fails this test
    assert placed["gpus"] <= capacity and placed["max_per_node"] <= min(capacity, 8)
    if preset == "limr_paper" and not overrides:
        assert placed["groups"] == {"actor": (1, 4), "ref": (1, 4), "critic": (1, 4)} and placed["gpus"] == 16
    batch = int(effective_flag(argv, "--rollout.batch_size", "0"))
    episodes = int(effective_flag(argv, "--train.num_episodes", "0"))
    assert n_prompts == 1389 and (n_prompts // batch) * episodes >= 100  # rollout steps, even counting full batches only
    args = vars(released_parser().parse_args(argv[3:]))
    for flag in ("ds.packing_samples", "ds.adam_offload", "reward.normalize_enable", "ckpt.load_enable"):
        assert args[flag] is True, flag
    assert args["rollout.temperature"] == 1.2 and args["actor.adam.lr"] == 5e-7 and args["critic.adam.lr"] == 9e-6
    assert args["rollout.n_samples_per_prompt"] == 8 and args["algo.kl.init_coef"] == 0.01 and args["algo.advantage.lambd"] == 0.95
    assert args["actor.lr_warmup_ratio"] > 0 and args["eval.dataset"] and args["eval.steps"] >= 1


@pytest.mark.slow  # a CLI run (the fast tier starts the CLI only for its one-line error contract)
def test_a_layout_that_does_not_fit_is_one_line_before_any_work(tmp_path, shared_data_module):
    r = cli("experiment=limr_paper", "trainer.num_nodes=1", "trainer.layout=separate", "trainer.dry_run=true", "logger=[]",
            f"data_root={shared_data_module}", f"hydra.run.dir={tmp_path}/run")
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(err) == 1 and "Traceback" not in r.stderr
    assert "asks Ray for 16 GPUs" in err[0] or "ask Ray for 16 GPUs" in err[0]
    assert "trainer.num_nodes x trainer.gpus_per_node = 1 x 8 = 8" in err[0] and "trainer.layout=colocate_all" in err[0]
    assert not (tmp_path / "run" / "train").exists()


def test_local_config_flags_also_parse(tmp_path):
    from limr_exp.training.openrlhf import build_command, effective_flag

    cfg = compose_cfg(["trainer=openrlhf", "ppo.advantage_estimator=group_norm", "trainer.gpus_per_node=4", "trainer.actor_gpus=1",
                       "trainer.ref_gpus=1", "trainer.vllm_num_engines=2",
                       "+trainer.extra={vllm.gpu_memory_utilization: 0.6, vllm.enforce_eager: true}"])
    cfg.model.path = str(tmp_path)  # an existing local folder
    argv = build_command(cfg, tmp_path / "p.jsonl", "prompt", False, tmp_path / "r.py", tmp_path, n_prompts=64)
    args = vars(released_parser().parse_args(argv[3:]))
    assert args["algo.advantage.estimator"] == "group_norm" and args["data.input_template"] == "Q: {}\nA:"
    assert args["vllm.gpu_memory_utilization"] == 0.6 and args["vllm.enforce_eager"] is True
    assert openrlhf_placement(argv)["gpus"] <= 4
    cfg.trainer.extra = {"rollout.n_samples_per_prompt": 2}  # the history must read n from the argv OpenRLHF gets
    argv = build_command(cfg, tmp_path / "p.jsonl", "prompt", False, tmp_path / "r.py", tmp_path, n_prompts=64)
    assert vars(released_parser().parse_args(argv[3:]))["rollout.n_samples_per_prompt"] == 2
    assert effective_flag(argv, "--rollout.n_samples_per_prompt", "1") == "2"


def load_reward_module(path: Path):
    """As OpenRLHF's SingleTurnAgentExecutor loads `--reward.remote_url x.py`."""
    spec = importlib.util.spec_from_file_location("reward_func", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reward_file_under_openrlhfs_calling_convention(dry_run, tmp_path):
    module = load_reward_module(dry_run / "limr_reward.py")
    prompt = ("<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
              "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")
    cases = [(prompt + "2+2 = 4, so \\boxed{4}.<|im_end|>", "4", 1.0), (prompt + "\\boxed{5}<|im_end|>", "4", -0.5),
             (prompt + "no box<|endoftext|>", "4", -1.0),
             (prompt[:-3] + "so \\boxed{4}<|im_end|>", "4", 1.0),  # the response found after the last assistant marker
             (prompt + "so \\boxed{4}", "4", -1.0)]  # cut at the token limit: the presets pay -1, as LIMR's RM server
    results = {}

    def call(i, query, answer):  # OpenRLHF: asyncio.to_thread(reward_func, [query], [prompt], [label])
        label = json.dumps({"answer": answer, "id": f"q{i}"})
        results[i] = module.reward_func([query], [prompt], [label])

    threads = [threading.Thread(target=call, args=(i, q, a)) for i, (q, a, _) in enumerate(cases)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i, (_, _, expected) in enumerate(cases):
        out = results[i]
        assert set(out) == {"rewards", "scores", "extra_logs"} and out["rewards"].tolist() == [expected]
    records = [json.loads(line) for f in (dry_run / "rewards").glob("rewards-*.jsonl") for line in f.read_text().splitlines()]
    assert sorted(r["prompt_id"] for r in records) == ["q0", "q1", "q2", "q3", "q4"]


def drive_like_openrlhf(reward_func, calls):
    """As OpenRLHF 0.11.2's SingleTurnExecutor (utils/agent.py, `_fetch_rewards_via_func`): one sample per
    call, `asyncio.to_thread(reward_func, [query], [prompt], [label])`, many samples in flight at once."""
    import asyncio

    async def main():
        return await asyncio.gather(*(asyncio.to_thread(reward_func, [q], [p], [label]) for q, p, label in calls),
                                    return_exceptions=True)

    return asyncio.run(main())


PROMPT = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"


def test_reward_file_pays_nothing_without_a_reference(tmp_path, monkeypatch):
    from limr_exp.training.openrlhf import write_reward_file

    write_reward_file(None, tmp_path / "limr_reward.py", tmp_path / "records")
    module = load_reward_module(tmp_path / "limr_reward.py")
    labels = [json.dumps({"answer": "", "id": "empty"}), json.dumps({"answer": None, "id": "null"}),
              json.dumps({"answer": "4", "id": "ok"}), json.dumps({"id": "missing"})]
    responses = ["\\boxed{?}", "\\boxed{None}", "\\boxed{4}", "\\boxed{}"]
    out = drive_like_openrlhf(module.reward_func, [(PROMPT + r + "<|im_end|>", PROMPT, label) for r, label in zip(responses, labels)])
    assert [o["rewards"].tolist() for o in out] == [[-1.0], [-1.0], [1.0], [-1.0]]
    records = {json.loads(line)["prompt_id"]: json.loads(line) for f in (tmp_path / "records").glob("rewards-*.jsonl")
               for line in f.read_text().splitlines()}
    assert {k: r["reason"] for k, r in records.items()} == {"empty": "no_reference", "null": "no_reference", "ok": "correct",
                                                          "missing": "no_reference"}


def test_prompt_file_never_carries_a_stand_in_answer(tmp_path):
    from limr_exp.data import ProblemSet
    from limr_exp.training.openrlhf import write_prompts

    problems = ProblemSet("p", [{"id": "a", "prompt": "1+1?", "answer": None}, {"id": "b", "prompt": "2+2?", "answer": "4"}])
    write_prompts(problems, compose_cfg([]).model, tmp_path / "prompts.jsonl")
    labels = [json.loads(json.loads(line)["label"]) for line in (tmp_path / "prompts.jsonl").read_text().splitlines()]
    assert labels == [{"answer": None, "id": "a"}, {"answer": "4", "id": "b"}]


def test_reward_file_stops_the_run_when_internal_errors_exceed_the_share(tmp_path):
    from limr_exp.errors import LimrError
    from limr_exp.training.base import run_logged
    from limr_exp.training.openrlhf import write_reward_file

    write_reward_file({"max_error_share": 0.01}, tmp_path / "limr_reward.py", tmp_path / "records")
    module = load_reward_module(tmp_path / "limr_reward.py")
    good = [(PROMPT + "\\boxed{4}", PROMPT, json.dumps({"answer": "4", "id": f"g{i}"})) for i in range(20)]
    assert all(o["rewards"].tolist() == [1.0] for o in drive_like_openrlhf(module.reward_func, good))
    one_bad = drive_like_openrlhf(module.reward_func, [(None, PROMPT, json.dumps({"answer": "4", "id": "bad"}))])
    assert one_bad[0]["rewards"].tolist() == [-1.0]  # one error in 21 samples: below 1 % of the 100-sample floor
    out = drive_like_openrlhf(module.reward_func, [(None, PROMPT, json.dumps({"answer": "4", "id": "bad2"}))])
    assert isinstance(out[0], RuntimeError) and "reward.max_error_share=0.01" in str(out[0])
    assert isinstance(drive_like_openrlhf(module.reward_func, good[:1])[0], RuntimeError)  # stays stopped
    abort = tmp_path / "records" / "ABORTED"
    assert "internal errors on 2 of 22 samples" in abort.read_text()
    with pytest.raises(LimrError, match="max_error_share"):  # the launcher stops the run with that one line
        run_logged([sys.executable, "-c", "import time; print('step'); time.sleep(30)"], tmp_path / "log", "OpenRLHF training", abort)


def simulate_openrlhf_steps(reward_path: Path, prompts: list[str], batch: int, n: int, steps: range, correct_at) -> None:
    """Rollout steps as OpenRLHF 0.11's synchronous loop makes them: each episode walks the prompts in
    batches of `batch` (the last one takes what is left), n samples each, every sample's reward fetched with
    asyncio.to_thread(reward_func, [query], [prompt], [label]); step s+1 starts after step s ends."""
    import time

    module = load_reward_module(reward_path)
    batches = [prompts[i:i + batch] for i in range(0, len(prompts), batch)]
    for step in steps:
        group = batches[(step - 1) % len(batches)]
        calls = [(PROMPT + ("\\boxed{4}" if correct_at(pid, step) else "\\boxed{5}"), PROMPT,
                  json.dumps({"answer": "4", "id": pid})) for pid in group for _ in range(n)]
        calls.append((PROMPT + "\\boxed{4}", PROMPT, json.dumps({"answer": "4", "id": "math500/1", "eval": True})))
        assert all(not isinstance(o, Exception) for o in drive_like_openrlhf(module.reward_func, calls))
        time.sleep(0.002)


def test_history_from_openrlhf_records_across_a_rerun_and_a_resume(tmp_path):
    from limr_exp.history import import_reward_records
    from limr_exp.training.openrlhf import start_launch, write_reward_file

    prompts, batch, n = ["a", "b", "c", "d", "e"], 2, 2  # 3 rollout steps an episode: a b | c d | e
    records, reward_path = tmp_path / "rewards", tmp_path / "limr_reward.py"
    correct_at = lambda pid, step: (ord(pid) + step) % 3 == 0  # noqa: E731

    write_reward_file(None, reward_path, records, start_launch(records, None))  # an earlier run in the same folder ...
    simulate_openrlhf_steps(reward_path, prompts, batch, n, range(1, 3), lambda pid, step: True)
    write_reward_file(None, reward_path, records, start_launch(records, None))  # ... is cleared by a fresh start
    simulate_openrlhf_steps(reward_path, prompts, batch, n, range(1, 5), correct_at)  # killed during step 5
    write_reward_file(None, reward_path, records, start_launch(records, 3))  # resumes from the checkpoint at step 3
    simulate_openrlhf_steps(reward_path, prompts, batch, n, range(4, 7), correct_at)

    h = import_reward_records(records, n, batch, len(prompts))
    got = sorted((h.prompt_ids[c], int(e), int(s), bool(k)) for c, e, s, k in zip(h.codes, h.epoch, h.step, h.correct))
    steps_of = {"a": (1, 4), "b": (1, 4), "c": (2, 5), "d": (2, 5), "e": (3, 6)}
    want = sorted((pid, 1 + (s > 3), s, correct_at(pid, s)) for pid, ss in steps_of.items() for s in ss for _ in range(n))
    assert got == want  # each step once, eval samples and the replaced step 4 left out
    assert (records / f"eval-{__import__('socket').gethostname()}-{__import__('os').getpid()}.jsonl").exists()


def test_vllm_backend_calls_against_a_fake_engine(monkeypatch, tmp_path):
    """A fake `vllm` module: what the backend asks of vLLM (dtype, memory share, TP that divides the heads,
    greedy n > 1 drawn once), and that one engine is alive at a time."""
    from limr_exp.evaluation import vllm_backend

    calls, alive = {}, []

    class FakeLLM:
        def __init__(self, model, tensor_parallel_size, dtype, gpu_memory_utilization, seed):
            calls["init"] = (model, tensor_parallel_size, dtype, gpu_memory_utilization, seed)
            alive.append(model)
            self.llm_engine = types.SimpleNamespace(engine_core=types.SimpleNamespace(shutdown=lambda: alive.remove(model)))

        def generate(self, prompts, params):
            calls["params"] = params
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f"{p}-{k}") for k in range(params.n)]) for p in prompts]

    fake = types.SimpleNamespace(LLM=FakeLLM, SamplingParams=lambda **kw: types.SimpleNamespace(**kw))
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setattr(vllm_backend, "_ENGINE", {})
    base, trained = tmp_path / "base", tmp_path / "trained"
    for folder in (base, trained):  # Qwen2.5-Math-7B's head counts, float32 weights
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"num_attention_heads": 28, "num_key_value_heads": 4, "torch_dtype": "float32"}))
    out = vllm_backend.generate(str(base), ["a", "b"], n=4, temperature=0.4, top_p=0.95, max_tokens=3072, tensor_parallel_size=2,
                                seed=7, gpu_memory_utilization=0.5)
    assert out == [[f"a-{k}" for k in range(4)], [f"b-{k}" for k in range(4)]]
    assert calls["init"] == (str(base), 2, "float32", 0.5, 7)
    assert vars(calls["params"]) == {"n": 4, "temperature": 0.4, "top_p": 0.95, "max_tokens": 3072, "seed": 7}
    greedy = vllm_backend.generate(str(trained), ["a"], n=3, temperature=0.0, top_p=0.95, max_tokens=10)
    assert greedy == [["a-0"] * 3] and calls["params"].n == 1 and calls["params"].top_p == 1.0
    assert alive == [str(trained)]  # the base model's engine was shut down first


@pytest.mark.parametrize("requested,visible,expected", [(None, 8, 4), (None, 1, 1), (None, 3, 2), (2, 8, 2), (4, 8, 4)])
def test_tensor_parallel_size_divides_the_heads(requested, visible, expected):
    from limr_exp.evaluation.vllm_backend import tensor_parallel_size

    assert tensor_parallel_size({"num_attention_heads": 28, "num_key_value_heads": 4}, requested, visible) == expected


@pytest.mark.slow  # a CLI run (the fast tier starts the CLI only for its one-line error contract)
def test_a_tensor_parallel_size_that_cannot_divide_the_heads_is_one_line(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"num_attention_heads": 28, "num_key_value_heads": 4}))
    r = cli("experiment=smoke", "eval.backend=vllm", "eval.tensor_parallel_size=8", f"model.path={model}", "logger=[]",
            f"hydra.run.dir={tmp_path}/run")
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(err) == 1 and "eval.tensor_parallel_size=8 must divide the model's 28 attention heads" in err[0]


@pytest.mark.gpu
def test_vllm_real_evaluation(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None:
        pytest.skip("needs CUDA and vLLM")
    from limr_exp.evaluation import evaluate
    from limr_exp.models import load_policy

    cfg = compose_cfg(["eval.backend=vllm", f"cache_dir={tmp_path}"])
    bundle = load_policy(cfg.model, cfg.cache_dir, "cuda", with_model=False)
    metrics = evaluate(cfg, bundle, tmp_path / "eval")
    assert metrics["benchmarks"]["toy_test"]["n_samples"] == cfg.dataset.toy.n_test


@pytest.mark.parametrize("overrides,message", [
    (["trainer=openrlhf", "model.path=/no/such/model"], "model.path"),
    (["trainer=openrlhf", "model=qwen2.5_math_7b"], "needs OpenRLHF"),
    (["trainer=openrlhf", "model=qwen2.5_math_7b", "trainer.ray_address=http://10.255.255.1:8265"], "needs trainer.shared_dir"),
    (["trainer=openrlhf", "model=qwen2.5_math_7b", "trainer.ray_address=http://10.255.255.1:8265", "trainer.shared_dir=/tmp"],
     "needs OpenRLHF"),
    (["trainer=openrlhf", "model=qwen2.5_math_7b", "ppo.max_steps=30"], "ppo.max_steps is a local-trainer setting"),
])
def test_bad_openrlhf_input_is_one_line(tmp_path, overrides, message):
    from limr_exp.errors import LimrError
    from limr_exp.pipeline import run

    cfg = compose_cfg(["experiment=smoke", "stages=[train]", "logger=[]", f"cache_dir={tmp_path}/cache", "trainer.gpus_per_node=1",
                       "ppo.max_steps=null", *overrides, *(["trainer.adam_offload=true"] if "trainer=openrlhf" in overrides else [])],
                      output_dir=tmp_path / "run")
    with pytest.raises(LimrError) as e:
        run(cfg)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "run" / "train").exists()  # nothing trained, nothing written


@pytest.mark.slow  # a CLI run (the fast tier starts the CLI only for its one-line error contract)
def test_bad_openrlhf_input_via_the_cli_is_one_line_on_stderr(tmp_path):
    r = cli("experiment=smoke", "stages=[train]", "logger=[]", f"cache_dir={tmp_path}/cache", f"hydra.run.dir={tmp_path}/run",
            "trainer.gpus_per_node=1", "trainer=openrlhf", "model=qwen2.5_math_7b", "ppo.max_steps=null", "trainer.adam_offload=true")
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(err) == 1 and "needs OpenRLHF" in err[0] and "Traceback" not in r.stderr, r.stderr


def released_single_turn_executor(reward_path: Path):
    """OpenRLHF 0.11.2's own SingleTurnAgentExecutor (utils/agent.py from the wheel), loading the reward
    file as it does; only its logger import is stubbed."""
    source = released_source("openrlhf", OPENRLHF_VERSION, "openrlhf/utils/agent.py")
    logging_utils = types.ModuleType("openrlhf.utils.logging_utils")
    logging_utils.init_logger = lambda name: __import__("logging").getLogger(name)
    saved = sys.modules.get("openrlhf.utils.logging_utils")
    sys.modules["openrlhf.utils.logging_utils"] = logging_utils
    try:
        namespace: dict = {"__name__": "openrlhf.utils.agent"}
        exec(compile(source, "agent.py", "exec"), namespace)
    finally:
        if saved is None:
            sys.modules.pop("openrlhf.utils.logging_utils", None)
        else:
            sys.modules["openrlhf.utils.logging_utils"] = saved
    return namespace["SingleTurnAgentExecutor"](remote_rm_url=str(reward_path))


class _CharTokenizer:
    """One token per character, special tokens spelled out: decode(encode(text)) == text."""

    def __call__(self, text, add_special_tokens=False, return_tensors="pt"):
        import torch

        return {"input_ids": torch.tensor([[ord(c) for c in text]])}

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i) for i in ids)


class _Engine:
    """A vLLM engine that answers every prompt with a fixed continuation and finish reason."""

    def __init__(self, text: str, finish_reason: str):
        self.text, self.finish_reason = text, finish_reason

    async def generate(self, prompt_token_ids, params, multi_modal_data=None):
        output = types.SimpleNamespace(token_ids=[ord(c) for c in self.text], finish_reason=self.finish_reason, logprobs=None)
        return types.SimpleNamespace(outputs=[output])


CHAT_PROMPT = ("<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
               "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize("continuation,finish,expected", [
    ("2+2 = 4, so \\boxed{4}.<|im_end|>", "stop", 1.0),
    ("2+2 = 4, so \\boxed{5}.<|endoftext|>", "stop", -0.5),
    ("2+2 = 4, so the answer is \\boxed{4}", "length", -1.0),  # cut at the token limit
    # a base model that does not stop at <|im_end|>: judged up to the first end token ...
    ("so \\boxed{4}.<|im_end|> and \\boxed{4} \\boxed{4} \\boxed{4} \\boxed{4} \\boxed{4}", "length", 1.0),
    ("so \\boxed{4}.<|im_end|>\n<|im_start|>user\nsure? no box", "length", 1.0),
    # ... of the last assistant turn, when it runs on into turns of its own
    ("so \\boxed{4}.<|im_end|>\n<|im_start|>user\nAgain?<|im_end|>\n<|im_start|>assistant\n"
     "\\boxed{5} \\boxed{5} \\boxed{5} \\boxed{5} \\boxed{5}<|im_end|>", "stop", -1.0),
    ("so \\boxed{4}.<|im_end|>\n<|im_start|>user\nAgain?<|im_end|>\n<|im_start|>assistant\nstill \\boxed{4}", "length", -1.0),
], ids=["ended", "ended-wrong", "truncated", "continued", "continued-and-cut", "new-turn", "new-turn-cut"])
def test_truncated_and_continued_responses_as_limrs_rm_server_scores_them(tmp_path, continuation, finish, expected):
    """Driven by OpenRLHF 0.11.2's own agent code (generation, decode with special tokens, reward call) with
    the paper preset's reward settings; the expected values are those of LIMR's serve_rm.py: -1 without
    <|im_end|>/<|endoftext|>, judged up to the first of them."""
    import asyncio
    import copy

    from limr_exp.training.openrlhf import write_reward_file

    cfg = compose_cfg(["experiment=limr_paper"])
    assert cfg.reward.require_end_token is True
    write_reward_file(cfg.reward, tmp_path / "limr_reward.py", tmp_path / "records")
    executor = released_single_turn_executor(tmp_path / "limr_reward.py")
    params = types.SimpleNamespace(max_tokens=512, logprobs=None)
    out = asyncio.run(executor.execute(CHAT_PROMPT, json.dumps({"answer": "4", "id": "q"}), copy.deepcopy(params), 2048,
                                       _CharTokenizer(), _Engine(continuation, finish)))
    assert out["truncated"] == (finish == "length")
    assert out["reward"].tolist() == [expected]


# -- the paper's schedule, memory, storage and in-training evaluation, by OpenRLHF 0.11.2's own code ----

def released_hierarchize(argv: list[str]):
    """The argv parsed by 0.11.2's parser and nested by its own `hierarchize` (args.actor.lr_scheduler ...)."""
    config = types.ModuleType("openrlhf.utils.config")
    exec(released_source("openrlhf", OPENRLHF_VERSION, "openrlhf/utils/config.py"), config.__dict__)
    return config.hierarchize(released_parser().parse_args(argv[3:]))


def released_lr_multipliers(argv: list[str], n_prompts: int, optimiser_steps: list[int], role: str = "actor") -> list[float]:
    """The learning rate (over the peak) that OpenRLHF 0.11.2 gives at each optimiser step: `max_steps` by
    its prepare_datasets formula, the scheduler by its DeepspeedStrategy code (get_scheduler partial), both
    read from the wheel and run on our argv."""
    import math
    from functools import partial

    import torch
    from transformers.trainer import get_scheduler

    args = released_hierarchize(argv)
    trainer_src = released_source("openrlhf", OPENRLHF_VERSION, "openrlhf/trainer/ppo_trainer.py")
    fn = next(n for n in ast.parse(trainer_src).body if isinstance(n, ast.FunctionDef) and n.name == "prepare_datasets")
    assign = next(st for st in fn.body if isinstance(st, ast.Assign) and ast.unparse(st.targets[0]) == "max_steps")
    max_steps = eval(compile(ast.Expression(assign.value), "ppo_trainer.py", "eval"), {"args": args, "prompts_dataset": range(n_prompts)})
    strategy_src = released_source("openrlhf", OPENRLHF_VERSION, "openrlhf/utils/deepspeed/deepspeed.py")
    lines = strategy_src.splitlines()
    start = next(i for i, line in enumerate(lines) if 'scheduler_steps = cfg["scheduler_steps"]' in line)
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == ")" and "sched_factory" in "".join(lines[start:i + 1]))
    import textwrap

    block = textwrap.dedent("\n".join(lines[start:end + 1]))
    model = getattr(args, role)
    cfg = dict(lr_scheduler=model.lr_scheduler, lr_warmup_ratio=model.lr_warmup_ratio, min_lr_ratio=model.min_lr_ratio,
               scheduler_steps=max_steps)  # as ppo_actor.py / ppo_critic.py build actor_cfg
    namespace = {"cfg": cfg, "math": math, "partial": partial, "get_scheduler": get_scheduler}
    exec(block, namespace)
    optimiser = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=model.adam.lr)
    return lr_over_steps(optimiser, namespace["sched_factory"](optimiser), optimiser_steps)


def lr_over_steps(optimiser, scheduler, optimiser_steps: list[int]) -> list[float]:
    """The learning rate over its peak after each count of optimiser steps."""
    peak = optimiser.param_groups[0]["initial_lr"]
    out, step = [], 0
    for target in optimiser_steps:
        while step < target:
            optimiser.step()
            scheduler.step()
            step += 1
        out.append(optimiser.param_groups[0]["lr"] / peak)
    return out


def limrs_lr_multipliers(optimiser_steps: list[int]) -> list[float]:
    """LIMR's schedule (its fork of OpenRLHF, ppo_actor.py, with scripts/train_limr.sh's values): transformers'
    cosine_with_min_lr, 10 warm-up steps, min 0.1 x, over 10,000 episodes of 1,389 x 8 // 256 optimiser steps."""
    import torch
    from transformers.optimization import get_scheduler

    optimiser = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=5e-7)
    scheduler = get_scheduler("cosine_with_min_lr", optimiser, num_warmup_steps=10, num_training_steps=10_000 * (1389 * 8 // 256),
                              scheduler_specific_kwargs={"min_lr": 5e-8})
    return lr_over_steps(optimiser, scheduler, optimiser_steps)


@pytest.mark.slow
def test_the_paper_presets_learning_rate_is_limrs_by_openrlhfs_own_scheduler(dry_run):
    """At LIMR's rollout steps 0 / 50 / 100 / 200 (32 optimiser steps each: 1,024 x 8 samples / 256) and just
    after the warm-up, OpenRLHF 0.11.2's scheduler on our argv gives LIMR's learning rate within 5 %."""
    argv = json.loads((dry_run.parents[1] / "OUT" / "train" / "openrlhf_command.json").read_text())
    steps = [0, 5, 10, 11, 50 * 32, 100 * 32, 200 * 32]
    limr = limrs_lr_multipliers(steps)
    for role in ("actor", "critic"):
        ours = released_lr_multipliers(argv, 1389, steps, role)
        for step, a, b in zip(steps, ours, limr):
            assert abs(a - b) <= 0.05 * max(b, 1e-9) or (a == b == 0), (role, step, a, b)
    assert limr[-1] > 0.99  # LIMR's cosine over 430,000 steps has barely moved at its step 200


@pytest.mark.slow
def test_a_finite_cosine_would_not_be_limrs_schedule(tmp_path):
    """The check above can fail: OpenRLHF's default cosine over the preset's 100 episodes halves the LR by step 100."""
    from limr_exp.training.openrlhf import build_command

    cfg = compose_cfg(["experiment=limr_paper", "trainer.num_nodes=1", "ppo.lr_scheduler=cosine_with_min_lr"])
    argv = build_command(cfg, tmp_path / "p.jsonl", "prompt", False, tmp_path / "r.py", tmp_path, n_prompts=1389)
    ours = released_lr_multipliers(argv, 1389, [100 * 32])
    assert ours[0] < 0.75 * limrs_lr_multipliers([100 * 32])[0]


@pytest.mark.slow
def test_warm_up_is_exactly_the_configured_optimiser_steps(tmp_path):
    from limr_exp.training.openrlhf import build_command

    for episodes in (1, 3, 100, 10_000):
        cfg = compose_cfg(["experiment=limr_paper", "trainer.num_nodes=1", f"ppo.num_episodes={episodes}"])
        argv = build_command(cfg, tmp_path / "p.jsonl", "prompt", False, tmp_path / "r.py", tmp_path, n_prompts=1389)
        lr = released_lr_multipliers(argv, 1389, [9, 10, 11])
        assert lr[0] < 1.0 and lr[1] == pytest.approx(1.0) and lr[2] == pytest.approx(1.0), episodes


@pytest.mark.parametrize("overrides,fits", [
    ([], True),                                                          # 2 nodes, LIMR's separate layout
    (["trainer.num_nodes=1"], True),                                     # colocated on 8 x 80 GB at vLLM 0.5
    (["trainer.num_nodes=1", "trainer.vllm_gpu_memory_utilization=0.8"], True),
    (["trainer.num_nodes=1", "trainer.vllm_gpu_memory_utilization=0.95"], False),  # vLLM's default, colocated
    (["trainer.num_nodes=1", "trainer.adam_offload=false", "trainer.gpu_memory_gb=24"], False),
])
def test_gpu_memory_of_the_7b_preset(tmp_path, overrides, fits):
    """The start-up check (config.validate calls it after the placement check) on the paper's 7B preset."""
    from limr_exp.errors import ConfigError
    from limr_exp.training import memory, placement

    cfg = compose_cfg(["experiment=limr_paper", f"trainer.shared_dir={tmp_path}", *overrides], output_dir=tmp_path / "run")
    layout = placement.plan(cfg.trainer, True, True)
    estimate = memory.estimate(cfg, layout, True, True)
    if fits:
        memory.check(estimate, cfg.trainer)
    else:
        with pytest.raises(ConfigError) as e:
            memory.check(estimate, cfg.trainer)
        assert "\n" not in str(e.value) and "GPU memory" in str(e.value) and "trainer." in str(e.value)


def test_gpu_memory_is_read_from_a_local_models_config(tmp_path):
    from limr_exp.training import memory, placement

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps({  # Qwen2.5-7B's shape
        "hidden_size": 3584, "num_hidden_layers": 28, "intermediate_size": 18944, "num_attention_heads": 28,
        "num_key_value_heads": 4, "vocab_size": 152064, "tie_word_embeddings": False}))
    cfg = compose_cfg(["experiment=limr_paper", "trainer.num_nodes=1", f"model.path={tmp_path / 'm'}"])
    size = memory.model_size(cfg.model)
    assert 7.5e9 < size.params < 7.7e9 and size.head_dim == 128 and size.kv_bytes_per_token == 2 * 28 * 4 * 128 * 2
    e = memory.estimate(cfg, placement.plan(cfg.trainer, True, True), True, True)
    assert e.colocated and e.share == 0.5 and "GPU memory per GPU" in memory.summary(e)


@pytest.mark.slow  # a CLI run (the fast tier starts the CLI only for its one-line error contract)
def test_a_two_node_preset_without_shared_storage_is_one_line(tmp_path, shared_data_module):
    r = cli("experiment=limr_paper", "trainer.dry_run=true", "logger=[]", f"data_root={shared_data_module}",
            f"hydra.run.dir={tmp_path}/run", "stages=[select,train]", "selector=precomputed",
            f"selector.scores_path={shared_data_module}/lim_scores.json")
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(err) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "trainer.num_nodes=2" in err[0] and "trainer.shared_dir" in err[0]
    assert not (tmp_path / "run" / "train").exists()


def test_multi_node_records_are_gathered_into_the_run_folder(tmp_path, monkeypatch):
    """Every file an engine touches lives under trainer.shared_dir; the records come back at the end."""
    from limr_exp.data import ProblemSet
    from limr_exp.training import openrlhf

    cfg = compose_cfg(["experiment=limr_paper", f"trainer.shared_dir={tmp_path / 'nfs'}", "trainer.eval_steps=-1",
                       "ppo.num_episodes=1"], output_dir=tmp_path / "run")
    problems = ProblemSet("p", [{"id": f"q{i}", "prompt": f"{i}+1?", "answer": str(i + 1)} for i in range(4)])
    monkeypatch.setattr(openrlhf, "_require_openrlhf", lambda: None)

    def fake_run(argv, log_path, what, abort_file=None):  # the engines: every sample of one episode rewarded once
        reward = Path(argv[argv.index("--reward.remote_url") + 1])
        assert reward.is_relative_to(tmp_path / "nfs")
        module = load_reward_module(reward)
        calls = [(PROMPT + "\\boxed{1}<|im_end|>", PROMPT, json.dumps({"answer": r["answer"], "id": r["id"]}))
                 for r in problems.rows for _ in range(8)]
        drive_like_openrlhf(module.reward_func, calls)

    monkeypatch.setattr(openrlhf, "run_logged", fake_run)
    result = openrlhf.train_openrlhf(cfg, problems, tmp_path / "run" / "train")
    assert result.history.num_rows == 4 * 8
    gathered = list((tmp_path / "run" / "train" / "rewards").glob("rewards-*.jsonl"))
    assert gathered and sum(len(f.read_text().splitlines()) for f in gathered) == 32


@pytest.mark.parametrize("name", ['run "quoted"', "run\\back\\slash", "run with spaces", 'a"""b', "tab\\N{x}", "x'); import os; os.system('touch pwned') #"])  # noqa: E501
def test_a_hostile_run_folder_path_is_data_not_code(tmp_path, name):
    """The reward file is fixed; the path travels as JSON: OpenRLHF's own executor loads it and it works."""
    from limr_exp.training.openrlhf import write_reward_file

    folder = tmp_path / name
    folder.mkdir()
    write_reward_file({"require_end_token": True}, folder / "limr_reward.py", folder / "rewards")
    source = (folder / "limr_reward.py").read_text()
    assert name not in source  # no path, no setting in the code
    executor = released_single_turn_executor(folder / "limr_reward.py")
    out = drive_like_openrlhf(executor.reward_func, [(PROMPT + "\\boxed{4}<|im_end|>", PROMPT, json.dumps({"answer": "4", "id": "q"}))])
    assert out[0]["rewards"].tolist() == [1.0] and list((folder / "rewards").glob("rewards-*.jsonl"))
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_a_comma_in_the_reward_files_path_is_one_line(tmp_path):
    from limr_exp.errors import ConfigError
    from limr_exp.training.openrlhf import write_reward_file

    with pytest.raises(ConfigError, match="comma") as e:
        write_reward_file(None, tmp_path / "a,b" / "limr_reward.py", tmp_path / "rewards")
    assert "\n" not in str(e.value)


def test_in_training_evaluation_as_limr_ran_it(tmp_path, shared_data_module):
    """T 0.7, one sample, each benchmark its own datasource, and OpenRLHF 0.11.2's own eval metric
    (compute_eval_metrics, from the wheel) on our rewards is each benchmark's accuracy."""
    from limr_exp.training.openrlhf import build_command, write_eval_prompts, write_reward_file

    cfg = compose_cfg(["experiment=limr_paper", "trainer.num_nodes=1", f"data_root={shared_data_module}", "trainer.eval_problems=20"])
    path = write_eval_prompts(cfg, tmp_path / "eval_prompts.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    by_source = {}
    for r in rows:
        by_source.setdefault(r["datasource"], []).append(r)
    assert sorted(by_source) == ["aime24", "amc23", "math500"] and all(len(v) == 20 for v in by_source.values())
    argv = build_command(cfg, tmp_path / "p.jsonl", "prompt", False, tmp_path / "r.py", tmp_path, n_prompts=1389, eval_path=path)
    args = released_hierarchize(argv)
    assert args.eval.temperature == 0.7 and args.eval.n_samples_per_prompt == 1 and args.eval.dataset == str(path)

    write_reward_file(cfg.reward, tmp_path / "limr_reward.py", tmp_path / "records")
    module = load_reward_module(tmp_path / "limr_reward.py")
    samples, correct = [], {}
    for k, r in enumerate(rows):
        right = k % 3 == 0
        answer = json.loads(r["label"])["answer"]
        response = f"so \\boxed{{{answer if right else 'wrong' + str(k)}}}<|im_end|>"
        out = module.reward_func([PROMPT + response], [PROMPT], [r["label"]])
        prompt = json.dumps(r.get("context_messages", r.get("prompt")))  # what the dataloader would hand over
        samples.append(types.SimpleNamespace(prompts=[prompt], rewards=out["rewards"][0], response_length=None, truncated=None))
        correct.setdefault(r["datasource"], []).append(right)
    prompts = [json.dumps(r.get("context_messages", r.get("prompt"))) for r in rows]
    loader = [([r["datasource"] for r in rows], prompts, [r["label"] for r in rows], [None] * len(rows))]
    source = released_source("openrlhf", OPENRLHF_VERSION, "openrlhf/trainer/ppo_trainer.py")
    fn = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "compute_eval_metrics")
    import torch

    namespace = {"torch": torch}
    exec(compile(ast.Module([fn], []), "ppo_trainer.py", "exec"), namespace)
    logs = namespace["compute_eval_metrics"](loader, samples, 1)
    for ds, flags in correct.items():
        assert logs[f"eval_{ds}_pass1"] == pytest.approx(sum(flags) / len(flags))
    assert not list((tmp_path / "records").glob("rewards-*.jsonl"))  # evaluation stays out of the history
