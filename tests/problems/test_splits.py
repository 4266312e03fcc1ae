"""Splits of a dataset over clients: sizes, order, seeds, padding."""

from __future__ import annotations

import pytest
import torch

import commpress as cp
import commpress.problems  # noqa: F401
from commpress.problems._splits import block_sizes, partition
from tests.problems._shared import need


@pytest.mark.parametrize("N,n,expected", [(10, 4, [3, 3, 2, 2]), (8, 4, [2, 2, 2, 2]), (5, 5, [1] * 5), (7, 1, [7])])
def test_block_sizes(N, n, expected):
    assert block_sizes(N, n).tolist() == expected


def test_block_sizes_of_the_cq_paper_table():
    # a9a over 264 clients: 123 or 124 rows; splice over 16: 62 or 63 (spec problems.md §5)
    assert set(block_sizes(32561, 264).tolist()) == {123, 124}
    assert set(block_sizes(1000, 16).tolist()) == {62, 63}
    assert block_sizes(32561, 264)[: 32561 % 264].eq(124).all()


def _rows_of(data):
    return [data.rows[i, : int(m)].tolist() for i, m in enumerate(data.counts)]


def test_contiguous_shuffled_label_skew():
    N, n = 23, 5
    X = torch.arange(N, dtype=torch.float64)[:, None].expand(N, 3).clone()
    y = torch.tensor([1.0, -1.0] * 11 + [1.0])
    c = partition(X, y, n, "contiguous", 0, "t")
    assert _rows_of(c) == [list(range(0, 5)), list(range(5, 10)), list(range(10, 15)), list(range(15, 19)), list(range(19, 23))]
    assert torch.equal(c.features[:, :, 0][c.mask], torch.arange(N, dtype=torch.float64))
    assert not c.mask[3, 4] and bool((c.features[3, 4] == 0).all()) and c.rows[3, 4] == -1 and c.targets[3, 4] == 0

    s = partition(X, y, n, "shuffled", 7, "t")
    flat = sum(_rows_of(s), [])
    assert sorted(flat) == list(range(N)) and flat != list(range(N))
    assert s.counts.tolist() == c.counts.tolist()
    assert _rows_of(partition(X, y, n, "shuffled", 7, "t")) == _rows_of(s)  # seeded
    assert _rows_of(partition(X, y, n, "shuffled", 8, "t")) != _rows_of(s)
    for i, rows in enumerate(_rows_of(s)):  # features follow their rows
        assert s.features[i, : len(rows), 0].tolist() == [float(r) for r in rows]
        assert s.targets[i, : len(rows)].tolist() == y[rows].tolist()

    k = partition(X, y, n, "label_skew", 0, "t")
    labels = [k.targets[i, : int(m)].tolist() for i, m in enumerate(k.counts)]
    assert sum(labels, []) == sorted(y.tolist())
    assert all(len(set(lab)) <= 2 for lab in labels) and sum(len(set(lab)) == 1 for lab in labels) >= n - 1
    # stable: within a label the file order is kept
    assert _rows_of(k)[0] == [1, 3, 5, 7, 9]


def test_split_errors():
    X, y = torch.zeros(4, 2), torch.zeros(4)
    with pytest.raises(cp.ConfigError, match="n_clients=5 exceeds"):
        partition(X, y, 5, "contiguous", 0, "t")
    with pytest.raises(cp.ConfigError, match="split"):
        partition(X, y, 2, "dirichlet", 0, "t")


def test_label_skew_on_a_dataset():
    need("splice")
    p = cp.problems.make("logreg", dataset="splice", n_clients=10, split="label_skew")
    per_client = [set(p.targets[i, : int(m)].tolist()) for i, m in enumerate(p.num_samples())]
    assert sum(len(s) == 2 for s in per_client) == 1  # 483 negatives: one boundary client
    assert per_client[0] == {-1.0} and per_client[-1] == {1.0}
