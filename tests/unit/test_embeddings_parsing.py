"""Property tests of the embeddings CSV parsing (wide inputs: any floats, any dimensions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.vectordb.loader import EmbeddingsFileError, parse_embedding
from recsys_serving.bundle import vector_literal

finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


@given(st.lists(finite, min_size=32, max_size=32))
def test_written_vectors_parse_back_exactly(values):
    vector = np.asarray(values, dtype=np.float32)
    np.testing.assert_array_equal(parse_embedding(vector_literal(vector), "f, line 2"), vector)


@given(st.lists(finite, min_size=0, max_size=64).filter(lambda v: len(v) != 32))
def test_other_dimensions_are_rejected_with_the_count(values):
    with pytest.raises(EmbeddingsFileError, match=f"has {max(len(values), 1)} values"):
        parse_embedding(vector_literal(np.asarray(values, dtype=np.float32)), "f, line 2")


@given(st.lists(finite, min_size=31, max_size=31), st.sampled_from([math.nan, math.inf, -math.inf]), st.integers(0, 31))
def test_non_finite_values_are_rejected_with_their_position(values, bad, position):
    values = list(values)
    values.insert(position, bad)
    text = "[" + ",".join(repr(v) for v in values) + "]"
    with pytest.raises(EmbeddingsFileError, match=f"value {position + 1} is"):
        parse_embedding(text, "f, line 7")
