"""How the store splits a batch into SQLite INSERT statements (``ttlp.db.store.chunk_sizes``)."""

from __future__ import annotations

import pytest

from ttlp.db.store import chunk_sizes


def test_a_batch_goes_in_powers_of_two_largest_first() -> None:
    assert list(chunk_sizes(500, 2520)) == [256, 128, 64, 32, 16, 4]
    assert list(chunk_sizes(1, 2520)) == [1]
    assert list(chunk_sizes(0, 2520)) == []


def test_no_statement_exceeds_the_limit() -> None:
    assert list(chunk_sizes(3000, 7)) == [4] * 750
    assert list(chunk_sizes(5000, 2520)) == [2048, 2048, 512, 256, 128, 8]


@pytest.mark.parametrize("most", [1, 7, 2520])
def test_every_count_up_to_5000_adds_up_from_a_dozen_sizes(most: int) -> None:
    seen: set[int] = set()
    for total in range(5001):
        sizes = list(chunk_sizes(total, most))
        assert sum(sizes) == total
        assert all(size <= most and size & (size - 1) == 0 for size in sizes)
        seen.update(sizes)
    assert len(seen) <= most.bit_length()
