"""Reward history (DESIGN.md "Contracts"): one long-format table, one row per sample, that every trainer
writes, every importer produces and selectors alone read.

  table.py             the History in memory and its Parquet file
  matcher.py           a log's prompt texts -> the problem set's ids
  dumps.py             step dumps (LIMR/OpenRLHF step_{n}.json) and verl rollout dumps ({step}.jsonl)
  openrlhf_records.py  the records our OpenRLHF reward function writes during a run
  loading.py           the `trajectories` config block -> one checked History (IMPORTERS by format)
  curves.py            per-prompt accuracy curves a_i^k and Figure 2a's groups
"""

from limr_exp.history.curves import AccuracyCurves, curve_groups, curve_summary, never_solved_score
from limr_exp.history.dumps import import_numbered_dumps
from limr_exp.history.loading import IMPORTERS, check_coverage, check_values, history_format, load_history
from limr_exp.history.matcher import TextMatcher, unmatched_id
from limr_exp.history.openrlhf_records import import_reward_records
from limr_exp.history.table import COLUMNS, History, arrow_schema, read_table, write_table

__all__ = ["AccuracyCurves", "COLUMNS", "History", "IMPORTERS", "TextMatcher", "arrow_schema", "check_coverage", "check_values",
           "curve_groups", "curve_summary", "history_format", "import_numbered_dumps", "import_reward_records", "load_history",
           "never_solved_score", "read_table", "unmatched_id", "write_table"]
