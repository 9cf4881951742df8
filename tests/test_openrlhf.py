"""The OpenRLHF backend by contract: its released argument parser, its reward-function loading
rules, trajectory reconstruction, and the vLLM evaluation backend against a fake engine."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

from limr_exp.training.openrlhf import trajectories_from_records

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
    out = tmp_path_factory.mktemp("openrlhf") / "OUT"
    d = shared_data_module
    r = cli("stages=[select,train]", "experiment=limr_paper", "trainer=openrlhf", "trainer.dry_run=true",
            "selector=precomputed", f"selector.scores_path={d}/lim_scores.json", "theta=0.6", "dataset=file",
            f"dataset.path={d}/math_full_8523.json", "logger=[]", f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def shared_data_module():
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "math_full_8523.json").exists():
        pytest.skip("real LIMR data not found (set LIMR_DATA_DIR)")
    return SHARED_DATA


def test_every_flag_is_defined_by_the_released_parser_with_the_papers_values(dry_run):
    argv = json.loads((dry_run / "train" / "openrlhf_command.json").read_text())
    assert argv[1:3] == ["-m", "openrlhf.cli.train_ppo_ray"]
    args = vars(released_parser().parse_args(argv[3:]))  # exits (SystemExit) on any unknown flag or bad value
    expected = {"actor.model_name_or_path": "Qwen/Qwen2.5-Math-7B", "rollout.batch_size": 1024, "rollout.n_samples_per_prompt": 8,
                "rollout.temperature": 1.2, "train.batch_size": 256, "actor.adam.lr": 5e-7, "critic.adam.lr": 9e-6,
                "algo.kl.init_coef": 0.01, "actor.eps_clip": 0.2, "critic.value_clip": 0.2, "algo.advantage.lambd": 0.95,
                "algo.advantage.estimator": "gae", "ds.zero_stage": 3, "ds.param_dtype": "bf16", "vllm.num_engines": 4,
                "data.apply_chat_template": True, "data.label_key": "label"}
    for key, value in expected.items():
        assert args[key] == value, key
    assert args["data.prompt_dataset"] == str(dry_run / "train" / "prompts.jsonl")
    assert len((dry_run / "train" / "prompts.jsonl").read_text().splitlines()) == 1389


def test_local_config_flags_also_parse(tmp_path):
    from limr_exp.training.openrlhf import build_command

    cfg = compose_cfg(["trainer=openrlhf", "ppo.advantage_estimator=group_norm",
                       "+trainer.extra={vllm.gpu_memory_utilization: 0.6, train.colocate_all: true}"])
    cfg.model.path = str(tmp_path)  # an existing local folder
    argv = build_command(cfg, tmp_path / "p.jsonl", "prompt", False, tmp_path / "r.py", tmp_path)
    args = vars(released_parser().parse_args(argv[3:]))
    assert args["algo.advantage.estimator"] == "group_norm" and args["data.input_template"] == "Q: {}\nA:"
    assert args["vllm.gpu_memory_utilization"] == 0.6 and args["train.colocate_all"] is True


def load_reward_module(path: Path):
    """As OpenRLHF's SingleTurnAgentExecutor loads `--reward.remote_url x.py`."""
    spec = importlib.util.spec_from_file_location("reward_func", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reward_file_under_openrlhfs_calling_convention(dry_run, tmp_path, monkeypatch):
    monkeypatch.setenv("LIMR_REWARD_RECORDS", str(tmp_path / "records"))
    module = load_reward_module(dry_run / "train" / "limr_reward.py")
    prompt = ("<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
              "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")
    cases = [(prompt + "2+2 = 4, so \\boxed{4}.<|im_end|>", "4", 1.0), (prompt + "\\boxed{5}<|im_end|>", "4", -0.5),
             (prompt + "no box<|endoftext|>", "4", -1.0), (prompt[:-3] + "so \\boxed{4}", "4", 1.0)]
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
    records = [json.loads(line) for f in (tmp_path / "records").glob("rewards-*.jsonl") for line in f.read_text().splitlines()]
    assert sorted(r["prompt_id"] for r in records) == ["q0", "q1", "q2", "q3"]


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
    from limr_exp.training.openrlhf import _run_logged, write_reward_file

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
        _run_logged([sys.executable, "-c", "import time; print('step'); time.sleep(30)"], tmp_path / "log", "OpenRLHF training", abort)


def test_trajectories_from_interleaved_process_records(tmp_path):
    rows_a = [("p1", 1.0, 1.0), ("p1", -0.5, 2.0), ("p2", 1.0, 2.5), ("p1", 1.0, 5.0), ("p2", -1.0, 6.0)]
    rows_b = [("p2", 1.0, 1.5), ("p1", 1.0, 4.0), ("p2", 1.0, 5.5), ("p1", -0.5, 7.0)]
    for name, rows in (("rewards-host-1.jsonl", rows_a), ("rewards-host-2.jsonl", rows_b)):
        (tmp_path / name).write_text("".join(json.dumps({"prompt_id": p, "reward": r, "correct": r == 1.0, "time": t}) + "\n"
                                             for p, r, t in rows) + '{"prompt_id": "p1", "rew')  # a cut-off last line
    h = trajectories_from_records(tmp_path, n_samples_per_prompt=2)
    got = sorted((h.prompt_ids[c], int(e), float(r)) for c, e, r in zip(h.codes, h.epoch, h.reward))
    # p1 in time order: 1.0(1) -0.5(2) | 1.0(4) 1.0(5) | -0.5(7)   p2: 1.0(1.5) 1.0(2.5) | 1.0(5.5) -1.0(6)
    assert got == sorted([("p1", 1, 1.0), ("p1", 1, -0.5), ("p1", 2, 1.0), ("p1", 2, 1.0), ("p1", 3, -0.5),
                          ("p2", 1, 1.0), ("p2", 1, 1.0), ("p2", 2, 1.0), ("p2", 2, -1.0)])


def test_vllm_backend_calls_against_a_fake_engine(monkeypatch):
    """A unit test with a fake `vllm` module: what the backend asks of vLLM and what it returns."""
    from limr_exp.evaluation import vllm_backend

    calls = {}

    class FakeLLM:
        def __init__(self, model, tensor_parallel_size, seed):
            calls["init"] = (model, tensor_parallel_size, seed)

        def generate(self, prompts, params):
            calls["params"] = params
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f"{p}-{k}") for k in range(params.n)]) for p in prompts]

    fake = types.SimpleNamespace(LLM=FakeLLM, SamplingParams=lambda **kw: types.SimpleNamespace(**kw))
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setattr(vllm_backend, "_ENGINES", {})
    out = vllm_backend.generate("/m", ["a", "b"], n=4, temperature=0.4, top_p=0.95, max_tokens=3072, tensor_parallel_size=2, seed=7)
    assert out == [[f"a-{k}" for k in range(4)], [f"b-{k}" for k in range(4)]]
    assert calls["init"] == ("/m", 2, 7)
    assert vars(calls["params"]) == {"n": 4, "temperature": 0.4, "top_p": 0.95, "max_tokens": 3072}
    greedy = vllm_backend.generate("/m", ["a"], n=1, temperature=0.0, top_p=0.95, max_tokens=10)
    assert greedy == [["a-0"]] and calls["params"].top_p == 1.0


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
    (["trainer=openrlhf", "model=qwen2.5_math_7b", "trainer.ray_address=ray://10.255.255.1:10001"], "needs OpenRLHF"),
])
def test_bad_openrlhf_input_is_one_line(tmp_path, overrides, message):
    r = cli("experiment=smoke", "stages=[train]", "logger=[]", f"cache_dir={tmp_path}/cache", f"hydra.run.dir={tmp_path}/run", *overrides)
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode != 0 and len(err) == 1 and message in err[0] and "Traceback" not in r.stderr, r.stderr
