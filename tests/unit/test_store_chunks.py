"""How the store splits a batch into SQLite INSERT statements (``ttlp.db.store.chunk_sizes``)."""

from __future__ import annotations

import pytest

from ttlp.db.store import EXACT_ROWS, chunk_sizes


def test_a_live_batch_goes_in_one_statement_of_its_size() -> None:
    assert [list(chunk_sizes(n, 2520)) for n in (1, 17, EXACT_ROWS)] == [[1], [17], [EXACT_ROWS]]
    assert list(chunk_sizes(0, 2520)) == []


def test_a_larger_batch_goes_in_powers_of_two_down_to_a_small_rest() -> None:
    assert list(chunk_sizes(500, 2520)) == [256, 128, 64, 32, 20]
    assert list(chunk_sizes(5000, 2520)) == [2048, 2048, 512, 256, 128, 8]


def test_no_statement_exceeds_the_limit() -> None:
    assert list(chunk_sizes(3000, 7)) == [4] * 750
    assert list(chunk_sizes(3001, 7)) == [4] * 749 + [5]


@pytest.mark.parametrize("most", [1, 7, 2520])
def test_every_count_up_to_5000_uses_the_small_sizes_and_a_few_powers_of_two(most: int) -> None:
    seen: set[int] = set()
    for total in range(5001):
        sizes = list(chunk_sizes(total, most))
        assert sum(sizes) == total
        assert all(0 < size <= most for size in sizes)
        assert all(size & (size - 1) == 0 for size in sizes[:-1])
        seen.update(sizes)
    large = {size for size in seen if size > EXACT_ROWS}
    assert all(size & (size - 1) == 0 for size in large)
    assert len(large) <= most.bit_length()
