"""Build pyarrow arrays straight from numpy buffers.

`pa.array(...)` imports pandas on first use (≈0.5 s here) to check for pandas objects; the select
stage never needs pandas, so the arrays it writes are built from buffers instead.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

_NUMERIC = {np.dtype(np.int32): pa.int32(), np.dtype(np.int64): pa.int64(), np.dtype(np.float64): pa.float64(),
            np.dtype(np.float32): pa.float32()}


def _bitmap(mask: np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(mask.astype(bool), bitorder="little"))


def numeric_array(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    values = np.ascontiguousarray(values)
    validity = None if valid is None or valid.all() else _bitmap(valid)
    return pa.Array.from_buffers(_NUMERIC[values.dtype], len(values), [validity, pa.py_buffer(values)])


def float_array_nan_as_null(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype=np.float64)
    return numeric_array(values, ~np.isnan(values))


def bool_array(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype=bool)
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, _bitmap(values)])


def string_array(values: Sequence[str]) -> pa.Array:
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return pa.Array.from_buffers(pa.large_string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]).cast(pa.string())


def dictionary_array(codes: np.ndarray, dictionary: Sequence[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(numeric_array(np.asarray(codes, dtype=np.int32)), string_array(dictionary))
