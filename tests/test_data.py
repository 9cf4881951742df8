"""Problem-set loaders: json, jsonl, parquet, HF save_to_disk folders; ids, key mapping, bad files."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from conftest import compose_cfg

from limr_exp.data import load_problem_file, load_problems
from limr_exp.data.problems import stable_id
from limr_exp.errors import DataError

ROWS = [{"id": "a", "prompt": "What is 1+1?", "answer": "2", "level": 1},
        {"id": "b", "prompt": "What is 2+2?", "answer": 4, "level": 2}]


def write_arrow_folder(root, rows, split="train"):
    """The layout `datasets.DatasetDict.save_to_disk` writes (arrow streaming format)."""
    (root / split).mkdir(parents=True)
    (root / "dataset_dict.json").write_text(json.dumps({"splits": [split]}))
    table = pa.Table.from_pylist(rows)
    with ipc.new_stream(str(root / split / "data-00000-of-00001.arrow"), table.schema) as w:
        w.write_table(table)
    (root / split / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    return root


@pytest.mark.parametrize("fmt", ["json", "jsonl", "parquet", "arrow"])
def test_every_format_loads_the_same_problems(tmp_path, fmt):
    path = tmp_path / f"d.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(ROWS))
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist([{**r, "answer": str(r["answer"])} for r in ROWS]), path)
    else:
        path = write_arrow_folder(tmp_path / "hf", [{**r, "answer": str(r["answer"])} for r in ROWS])
    ps = load_problem_file(path)
    assert ps.ids == ["a", "b"]
    assert [r["answer"] for r in ps.rows] == ["2", "4"]  # answers are strings
    assert [r["level"] for r in ps.rows] == [1, 2]  # original fields kept


def test_key_mapping_and_stable_ids(tmp_path):
    path = tmp_path / "eval.jsonl"
    path.write_text('{"question": "Q1", "answer": "1"}\n{"question": "Q2", "answer": "2"}\n{"question": "Q1", "answer": "1"}\n')
    ps = load_problem_file(path, prompt_key="question", id_key="id")
    assert [r["prompt"] for r in ps.rows] == ["Q1", "Q2", "Q1"]
    assert ps.ids == [stable_id("Q1"), stable_id("Q2"), stable_id("Q1", 1)]
    assert load_problem_file(path, prompt_key="question").ids == ps.ids  # deterministic
    assert ps.rows[0]["question"] == "Q1"


def test_duplicate_texts_are_legal_duplicate_ids_are_not(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"id": "x", "prompt": "same", "answer": "1"}, {"id": "y", "prompt": "same", "answer": "1"}]))
    assert load_problem_file(path).text_to_ids() == {"same": ["x", "y"]}
    path.write_text(json.dumps([{"id": "x", "prompt": "p", "answer": "1"}, {"id": "x", "prompt": "q", "answer": "1"}]))
    with pytest.raises(DataError, match="id 'x' occurs twice"):
        load_problem_file(path)


@pytest.mark.parametrize("content,message", [
    ("", "is empty"),
    ("[]", "is empty"),
    ('[{"id": "a", "prompt": "p", "answ', "the file is truncated"),
    ('[{"id": "a", "prompt": "p"}]', "dataset.answer_key"),
    ('[{"id": "a", "text": "p", "answer": "1"}]', "dataset.prompt_key"),
    ('{"a": 1, "b": 2}', "JSON list"),
])
def test_bad_dataset_files_give_one_clear_line(tmp_path, content, message):
    path = tmp_path / "d.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as e:
        load_problem_file(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_missing_and_unreadable_paths(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_problem_file(tmp_path / "nope.json")
    with pytest.raises(DataError, match="cannot tell the format"):
        (tmp_path / "d.txt").write_text("x")
        load_problem_file(tmp_path / "d.txt")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="not a readable Parquet"):
        load_problem_file(bad)
    hf = write_arrow_folder(tmp_path / "hf", [{"id": "a", "prompt": "p", "answer": "1"}])
    with pytest.raises(DataError, match="dataset.split"):
        load_problem_file(hf, split="test")


def test_toy_dataset_splits_are_disjoint_and_seeded():
    cfg = compose_cfg()
    train, test = load_problems(cfg.dataset, "train"), load_problems(cfg.dataset, "test")
    assert len(train) == cfg.dataset.toy.n_train and len(test) == cfg.dataset.toy.n_test
    assert not {r["prompt"] for r in train.rows} & {r["prompt"] for r in test.rows}
    assert load_problems(cfg.dataset, "train").rows == train.rows
    from limr_exp.rewards.numeric import evaluate

    for r in train.rows + test.rows:
        assert evaluate(r["expression"].replace(" ", "")) == float(r["answer"])


def test_toy_families_have_exact_shares_and_distinct_problems():
    from collections import Counter

    from limr_exp.data.toy_arith import FAMILIES, split_counts

    cfg = compose_cfg(["dataset.toy.n_train=300", "dataset.toy.n_test=650"])
    shares = dict(cfg.dataset.toy.families)
    for split, n in (("train", 300), ("test", 650)):
        rows = load_problems(cfg.dataset, split).rows
        assert Counter(r["family"] for r in rows) == split_counts(n, shares, "x")
        assert sum(split_counts(n, shares, "x").values()) == n
        assert len({r["prompt"] for r in rows}) == n  # no problem twice
        assert [r["family"] for r in rows[:12]] != sorted(r["family"] for r in rows[:12])  # families interleaved
    assert split_counts(7, {"add": 1, "sub": 1}, "x") in ({"add": 4, "sub": 3}, {"add": 3, "sub": 4})
    for name, fam in FAMILIES.items():  # every family has room for a held-out set of >= 600 problems at a 0.3 share
        assert fam.size >= 100 and len({fam.problem(i)[0] for i in range(fam.size)}) == fam.size, name
    assert min(f.size for n, f in FAMILIES.items() if n in shares) >= 900


def test_toy_problems_rl_and_evaluation_see_are_new_to_the_model():
    """The pretraining draws only from each family's pretraining half, the splits only from the other: no
    trained or held-out problem occurs in the pretraining corpus (before, ~90 % of held-out add/sub did)."""
    from collections import Counter

    from limr_exp.models.toy import pretraining_corpus

    cfg = compose_cfg(["+model.toy.pretrain_families.add2=1.0", "+model.toy.pretrain_weights.add2=0.5",
                       "+dataset.toy.families.add2=0.2"])
    corpus = pretraining_corpus(cfg.model, cfg.model.toy.pretrain_examples, cfg.model.toy.seed)
    seen = set(seen_list(corpus))
    rows = load_problems(cfg.dataset, "train").rows + load_problems(cfg.dataset, "test").rows
    assert not seen & {r["expression"] for r in rows}
    # pretrain_weights set a family's share of the examples: add2 makes 0.5 / (1 + 1 + 1 + 0.5) of them
    share = Counter("+" in e and all(len(x) == 2 for x in e.split(" + ")) for e in seen_list(corpus))[True] / len(corpus)
    assert abs(share - 0.5 / 3.5) < 0.02
    # add2's held-out half is the odd left operands: structurally new to the model, not only unseen
    assert all(int(r["expression"].split()[0]) % 2 for r in rows if r["family"] == "add2")


def test_glimpsed_world_trains_on_half_seen_problems_and_tests_on_never_seen_ones():
    """experiment=toy_glimpsed: add2's train split is the problems the pretraining glimpsed, each shown
    pretrain_glimpses times with the right answer in a share glimpse_correct of them; its test split and every
    other family's splits never occur in the pretraining."""
    from collections import Counter, defaultdict

    from limr_exp.data.toy_arith import family
    from limr_exp.models.toy import pretraining_corpus

    cfg = compose_cfg(["experiment=toy_glimpsed"])
    train, test = load_problems(cfg.dataset, "train").rows, load_problems(cfg.dataset, "test").rows
    right = dict(family("add2").problem(i) for i in family("add2").glimpsed_problems())  # expression -> answer
    glimpsed = set(right)
    assert {r["expression"] for r in train if r["family"] == "add2"} <= glimpsed
    assert Counter(r["family"] for r in train)["add2"] == round(0.32 * cfg.dataset.toy.n_train) == len(glimpsed)
    assert not glimpsed & {r["expression"] for r in test}
    corpus = pretraining_corpus(cfg.model, cfg.model.toy.pretrain_examples, cfg.model.toy.seed)
    answers = defaultdict(list)
    for text in corpus:
        answers[seen_list([text])[0]].append(text.split("boxed{", 1)[1].split("}", 1)[0])
    for expr, answer in right.items():  # every glimpsed problem 4 times, right in 2 of them: each half-known alike
        assert len(answers[expr]) == 4 and answers[expr].count(answer) == 2, expr
    assert len(corpus) == cfg.model.toy.pretrain_examples + 4 * len(right)
    assert not set(answers) & {r["expression"] for r in test}
    assert not set(answers) & {r["expression"] for r in train if r["family"] != "add2"}


@pytest.mark.parametrize("overrides,message", [
    (["dataset.toy.glimpsed_train=[sub]"], "dataset.toy.glimpsed_train: family sub has no glimpsed problems"),
    (["dataset.toy.glimpsed_train=[add2]"], "dataset.toy.glimpsed_train names add2, which is not in dataset.toy.families"),
    (["experiment=toy_glimpsed", "dataset.toy.n_train=500"], "toy family add2 has 128 glimpsed problems"),
])
def test_glimpsed_split_errors_are_one_line(overrides, message):
    from limr_exp.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_problems(compose_cfg(overrides).dataset)


def test_a_benchmark_of_families_holds_exactly_their_test_problems():
    """toy_glimpsed's headline benchmark, `families: [add2]`: add2's never-seen test problems, all of them."""
    from limr_exp.evaluation.run import benchmark_problems

    cfg = compose_cfg(["experiment=toy_glimpsed"])
    bench = cfg.eval.benchmarks[0]
    ids = [r["id"] for r in benchmark_problems(cfg, bench).rows]
    assert bench.name == "toy_add2" and list(bench.families) == ["add2"]
    assert ids == [r["id"] for r in load_problems(cfg.dataset, "test").rows if r["family"] == "add2"] and len(ids) == 328


@pytest.mark.parametrize("overrides,message", [
    (["+model.toy.pretrain_glimpses.add2=4"], "model.toy.pretrain_glimpses.add2: add2 is not in model.toy.pretrain_families"),
    (["+model.toy.pretrain_glimpses.sub=4"], "model.toy.pretrain_glimpses.sub: family sub has no glimpsed problems"),
    (["experiment=toy_glimpsed", "model.toy.pretrain_glimpses.add2=-1"], "add2=-1 must be a whole number of examples"),
    (["experiment=toy_glimpsed", "model.toy.glimpse_correct=1.5"], "glimpse_correct=1.5 must be a share"),
])
def test_glimpse_pretraining_errors_are_one_line(overrides, message):
    from limr_exp.errors import ConfigError
    from limr_exp.models.toy import pretraining_corpus

    cfg = compose_cfg(overrides)
    with pytest.raises(ConfigError, match=message):
        pretraining_corpus(cfg.model, 10, 0)


def seen_list(corpus: list[str]) -> list[str]:
    return [t.split("What is ", 1)[1].split("?", 1)[0] for t in corpus]


def test_toy_dataset_is_a_function_of_its_seed():
    a, b = compose_cfg(), compose_cfg(["dataset.toy.seed=1"])
    assert load_problems(a.dataset).rows == load_problems(compose_cfg().dataset).rows
    assert load_problems(a.dataset).rows != load_problems(b.dataset).rows


@pytest.mark.parametrize("overrides,message", [
    (["+dataset.toy.families.div=0.5"], "toy family 'div' does not exist"),
    (["dataset.toy.families.add=-1"], "dataset.toy.families.add=-1.0 must be a non-negative share"),
    (["dataset.toy.n_train=5000", "dataset.toy.families.add=1", "dataset.toy.families.sub=0", "dataset.toy.families.mul=0"],
     "toy family add has 450 problems outside the pretraining"),
])
def test_toy_dataset_errors_are_one_line(overrides, message):
    from limr_exp.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_problems(compose_cfg(overrides).dataset)


def test_real_datasets_load(shared_data):
    full = load_problems(compose_cfg(["dataset=math_full", f"data_root={shared_data}"]).dataset)
    assert len(full) == 8523 and len({r["prompt"] for r in full.rows}) == 8522
    limr = load_problems(compose_cfg(["dataset=limr", f"data_root={shared_data}"]).dataset)
    assert len(limr) == 1389 and set(limr.ids) <= set(full.ids)
    for name, n in (("math500", 500), ("aime24", 30), ("amc23", 40)):
        ps = load_problem_file(shared_data / "eval" / f"{name}.jsonl", prompt_key="question")
        assert len(ps) == n and len(set(ps.ids)) == n


UNANSWERED = [{"id": "a", "prompt": "What is 1+1?", "answer": "2"}, {"id": "b", "prompt": "Name the prime.", "answer": ""},
              {"id": "c", "prompt": "What is 2+2?", "answer": None}, {"id": "d", "prompt": "What is 3+3?", "answer": " "}]


def test_unanswered_problems_load_for_selection_and_stop_training(tmp_path):
    from limr_exp.data import require_answers

    path = tmp_path / "d.json"
    path.write_text(json.dumps(UNANSWERED))
    problems = load_problem_file(path)  # selection needs only the texts: they load
    assert [r["answer"] for r in problems.rows] == ["2", "", None, " "]
    with pytest.raises(DataError, match=r"3 problem\(s\) have no reference answer \(row 1 \(id b\), row 2 \(id c\), row 3 \(id d\)\)"
                                        r".*dataset.drop_unanswered=true"):
        require_answers(problems, "dataset", drop=False)


def test_drop_unanswered_keeps_the_answered_and_logs_the_count(tmp_path, caplog):
    from limr_exp.data import require_answers

    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in UNANSWERED))
    with caplog.at_level("WARNING", logger="limr_exp"):
        kept = require_answers(load_problem_file(path), "dataset", drop=True)
    assert kept.ids == ["a"] and "dropped 3 problem(s) without a reference answer" in caplog.text


def test_a_missing_answer_key_is_not_confused_with_a_null_answer(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"id": "a", "prompt": "x", "solution": "2"}]))
    with pytest.raises(DataError, match="row 0 has no 'answer' \\(answer\\) key \\(it has id, prompt, solution\\)"):
        load_problem_file(path)
