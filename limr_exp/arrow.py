"""Build pyarrow arrays straight from numpy buffers, and write the select stage's scores table.

`pa.array(...)` imports pandas on first use (≈0.5 s here) to check for pandas objects; the select
stage never needs pandas, so the arrays it writes are built from buffers instead. pyarrow itself is
imported inside the functions: importing this module costs nothing until a table is built.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _bitmap(mask: np.ndarray):
    import pyarrow as pa

    return pa.py_buffer(np.packbits(mask.astype(bool), bitorder="little"))


def numeric_array(values: np.ndarray, valid: np.ndarray | None = None):
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    validity = None if valid is None or valid.all() else _bitmap(valid)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [validity, pa.py_buffer(values)])


def float_array_nan_as_null(values: np.ndarray):
    values = np.asarray(values, dtype=np.float64)
    return numeric_array(values, ~np.isnan(values))


def bool_array(values: np.ndarray):
    import pyarrow as pa

    values = np.asarray(values, dtype=bool)
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, _bitmap(values)])


def string_array(values: Sequence[str]):
    import pyarrow as pa

    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.large_string(), len(encoded), buffers).cast(pa.string())


def dictionary_array(codes: np.ndarray, dictionary: Sequence[str]):
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(numeric_array(np.asarray(codes, dtype=np.int32)), string_array(dictionary))


def write_scores_table(path, ids: Sequence[str], scores: np.ndarray, selected: np.ndarray) -> None:
    """`selection/scores.parquet` (prompt_id, score, selected), written atomically; NaN scores (unscored
    prompts) are written as nulls."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from limr_exp.io import atomic_path

    table = pa.Table.from_arrays([string_array(ids), float_array_nan_as_null(scores), bool_array(selected)],
                                 names=["prompt_id", "score", "selected"])
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
