"""How SQLite inserts split an append into multi-row statements (writing.chunk_sizes)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventkeep.backends.sqlite.writing import chunk_sizes


@given(count=st.integers(1, 5000), most=st.integers(1, 30000))
def test_chunks_cover_every_row_within_the_parameter_limit(count: int, most: int) -> None:
    sizes = chunk_sizes(count, most)
    assert sum(sizes) == count
    assert all(0 < size <= most for size in sizes)


@given(count=st.integers(1, 32))
def test_up_to_32_rows_are_one_statement(count: int) -> None:
    assert chunk_sizes(count, 22_727) == [count]


def test_a_connection_prepares_few_statement_texts_whatever_the_counts() -> None:
    texts = {size for count in range(1, 2000) for size in chunk_sizes(count, 22_727)}
    assert texts == set(range(1, 33)) | {64, 128}
    assert chunk_sizes(100, 22_727) == [64, 32, 4]
    assert chunk_sizes(128, 22_727) == [128]
    assert chunk_sizes(100, 90) == [64, 32, 4]  # a build limited to 999 parameters
