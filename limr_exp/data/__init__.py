"""Problem sets: loaders for json/jsonl/parquet/HF-arrow files, schema checks, and the toy world."""

from limr_exp.data.problems import ProblemSet, load_problem_file, load_problems, require_answers

__all__ = ["ProblemSet", "load_problem_file", "load_problems", "require_answers"]
