"""The loader's bulk CSV path and binary COPY stream give exactly what the line-by-line reader and psycopg would."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.model.artifacts import embeddings_csv
from recsys.vectordb.loader import (
    COPY_HEADER,
    ITEMS,
    USERS,
    EmbeddingsFileError,
    binary_copy_stream,
    iter_fast_blocks,
    read_embeddings,
    read_embeddings_exact,
    read_embeddings_fast,
)

DIM = 32
item_ids = st.lists(st.text("ABCS_0123456789xyzé", min_size=1, max_size=12), min_size=1, max_size=40, unique=True)
finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=item_ids, data=st.data())
def test_a_published_file_parses_in_bulk_to_exactly_what_the_exact_reader_gives(tmp_path, ids, data):
    ids = [i for i in ids if i.strip() == i and i.strip()]
    if not ids:
        return
    values = data.draw(st.lists(finite32, min_size=DIM * len(ids), max_size=DIM * len(ids)))
    vectors = np.asarray(values, dtype=np.float32).reshape(len(ids), DIM)
    path = tmp_path / "items.csv"
    path.write_bytes(embeddings_csv(ids, vectors))
    fast, exact = read_embeddings_fast(path, ITEMS), read_embeddings_exact(path, ITEMS)
    assert fast is not None
    assert fast.ids == exact.ids
    np.testing.assert_array_equal(fast.vectors, exact.vectors)


def test_integer_ids_and_the_user_file(tmp_path):
    vectors = np.random.default_rng(1).normal(size=(5, DIM)).astype(np.float32)
    path = tmp_path / "users.csv"
    path.write_bytes(embeddings_csv([103, 7, 42, 1000000, 5], vectors))
    fast = read_embeddings_fast(path, USERS)
    assert fast is not None
    assert fast.ids == [103, 7, 42, 1000000, 5]
    assert all(type(i) is int for i in fast.ids)


def good_lines() -> list[str]:
    vector = ",".join(["0.5"] * DIM)
    return ["id,embedding", *(f'P{i},"[{vector}]"' for i in range(4))]


MALFORMED = {
    "duplicate id": lambda lines: [*lines, lines[1]],
    "empty id": lambda lines: [*lines, ',"[' + ",".join(["1"] * DIM) + ']"'],
    "31 values": lambda lines: [*lines, 'P9,"[' + ",".join(["1"] * 31) + ']"'],
    "33 values": lambda lines: [*lines, 'P9,"[' + ",".join(["1"] * 33) + ']"'],
    "nan": lambda lines: [*lines, 'P9,"[' + ",".join(["nan"] + ["1"] * 31) + ']"'],
    "inf": lambda lines: [*lines, 'P9,"[' + ",".join(["1"] * 31 + ["inf"]) + ']"'],
    "not a number": lambda lines: [*lines, 'P9,"[' + ",".join(["x"] + ["1"] * 31) + ']"'],
    "no brackets": lambda lines: [*lines, 'P9,"' + ",".join(["1"] * DIM) + '"'],
    "third column": lambda lines: [*lines, 'P9,"[' + ",".join(["1"] * DIM) + ']",extra'],
    "blank line": lambda lines: [*lines[:2], "", *lines[2:]],
    "bad header": lambda lines: ["id,vector", *lines[1:]],
    # the id's comma removed: the quoted list glued to the id (found by the integration suite's "nan" case)
    "no separator": lambda lines: [*lines[:2], lines[2].replace(",", "", 1), *lines[3:]],
    "text after the list": lambda lines: [*lines[:2], lines[2] + "x", *lines[3:]],
    # totals that balance across lines: line 2 opens two lists and closes one, line 3 opens none and closes one
    "two lists, then none": lambda lines: [
        lines[0],
        'P0,"[' + ",".join(["1"] * 16) + ',"[' + ",".join(["1"] * 16) + ']"',
        "P1," + ",".join(["1"] * DIM) + ']"',
        *lines[3:],
    ],
}


@pytest.mark.parametrize("problem", sorted(MALFORMED))
def test_anything_unusual_goes_to_the_exact_reader_which_names_the_line(tmp_path, problem):
    path = tmp_path / "items.csv"
    path.write_text("\n".join(MALFORMED[problem](good_lines())) + "\n")
    assert read_embeddings_fast(path, ITEMS) is None
    with pytest.raises(EmbeddingsFileError) as exact:
        read_embeddings_exact(path, ITEMS)
    with pytest.raises(EmbeddingsFileError) as loaded:
        read_embeddings(path, ITEMS)
    assert str(loaded.value) == str(exact.value)
    assert "line" in str(exact.value)


def decode(stream: bytes, int_ids: bool) -> dict:
    """An independent reader of PostgreSQL's binary COPY format for (id, vector) rows."""
    assert stream.startswith(COPY_HEADER)
    at, rows = len(COPY_HEADER), {}
    while True:
        (fields,) = struct.unpack_from(">h", stream, at)
        at += 2
        if fields == -1:
            assert at == len(stream)
            return rows
        assert fields == 2
        (length,) = struct.unpack_from(">i", stream, at)
        raw = stream[at + 4 : at + 4 + length]
        at += 4 + length
        identifier = struct.unpack(">i", raw)[0] if int_ids else raw.decode()
        (length,) = struct.unpack_from(">i", stream, at)
        dim, unused = struct.unpack_from(">hh", stream, at + 4)
        assert (length, unused) == (4 + 4 * dim, 0)
        rows[identifier] = np.frombuffer(stream, dtype=">f4", count=dim, offset=at + 8).astype(np.float32)
        at += 4 + length


@pytest.mark.parametrize("spec", [ITEMS, USERS])
def test_the_binary_copy_stream_carries_every_row_exactly(spec, monkeypatch):
    monkeypatch.setattr("recsys.vectordb.loader.COPY_CHUNK_ROWS", 7)  # several chunks and id lengths per chunk
    rng = np.random.default_rng(3)
    ids = list(rng.choice(10**6, 40, replace=False)) if spec is USERS else [f"S{'é' * (i % 3)}_{i}" for i in range(40)]
    ids = [int(i) for i in ids] if spec is USERS else ids
    vectors = rng.normal(size=(40, DIM)).astype(np.float32)
    rows = decode(b"".join(binary_copy_stream(ids, vectors, spec)), int_ids=spec is USERS)
    assert set(rows) == set(ids)
    for identifier, vector in zip(ids, vectors, strict=True):
        np.testing.assert_array_equal(rows[identifier], vector)


@pytest.mark.parametrize("newline_at_end", [True, False])
def test_blocks_split_only_between_lines_and_give_what_the_exact_reader_gives(tmp_path, monkeypatch, newline_at_end):
    monkeypatch.setattr("recsys.vectordb.loader.FAST_BLOCK_BYTES", 1000)  # a line is ~600 bytes: many blocks
    rng = np.random.default_rng(5)
    ids = [f"S{i}" for i in range(50)]
    body = embeddings_csv(ids, rng.normal(size=(50, DIM)).astype(np.float32))
    path = tmp_path / "items.csv"
    path.write_bytes(body if newline_at_end else body.rstrip(b"\n"))
    blocks = list(iter_fast_blocks(path, ITEMS))
    assert len(blocks) > 10
    fast, exact = read_embeddings_fast(path, ITEMS), read_embeddings_exact(path, ITEMS)
    assert fast is not None
    assert fast.ids == exact.ids == ids
    np.testing.assert_array_equal(fast.vectors, exact.vectors)


def test_an_id_repeated_in_another_block_is_left_to_the_exact_reader(tmp_path, monkeypatch):
    monkeypatch.setattr("recsys.vectordb.loader.FAST_BLOCK_BYTES", 1000)
    vectors = np.zeros((30, DIM), dtype=np.float32)
    path = tmp_path / "items.csv"
    path.write_bytes(embeddings_csv([f"S{i}" for i in range(29)] + ["S0"], vectors))
    assert read_embeddings_fast(path, ITEMS) is None
    with pytest.raises(EmbeddingsFileError, match="line 31: duplicate id 'S0'"):
        read_embeddings(path, ITEMS)


@pytest.mark.parametrize("identifier", ["2147483648", "-2147483649", "99999999999999999999999"])
def test_a_user_id_outside_the_id_column_is_named_with_its_line(tmp_path, identifier):
    path = tmp_path / "users.csv"
    vector = ",".join(["0.5"] * DIM)
    path.write_text(f'id,embedding\n7,"[{vector}]"\n{identifier},"[{vector}]"\n')
    assert read_embeddings_fast(path, USERS) is None
    with pytest.raises(EmbeddingsFileError, match=rf"line 3: id '{identifier}' is outside the id column's range"):
        read_embeddings(path, USERS)
