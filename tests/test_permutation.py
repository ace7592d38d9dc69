"""The permutation test of FD(A) − FD(B): the observed statistic, its size under a null, its power, and its
sequential (Besag–Clifford) stop: p = h / l at the h-th extreme re-labelling, the full test's p otherwise."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from ganeval.metrics.fid import FIDReference
from ganeval.metrics.permutation import _chunks, _relabelled_statistics, fd_difference_test, pooled_swapped


@pytest.fixture
def ref() -> FIDReference:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 6))
    return FIDReference(x.mean(0), np.cov(x, rowvar=False))


def _fd(x: torch.Tensor, ref: FIDReference) -> float:
    x = x.double()
    return ref.fid(x.mean(0).numpy(), torch.cov(x.T).numpy())


def _null(i: int, paired: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A and B from one distribution (paired: each pair shares a 'latent')."""
    g = torch.Generator().manual_seed(100 + i)
    z = torch.randn(200, 6, generator=g)
    a = z + 0.3 * torch.randn(200, 6, generator=g)
    b = (z + 0.3 * torch.randn(200, 6, generator=g)) if paired else torch.randn(200, 6, generator=g) * 1.044
    return a, b


@pytest.mark.parametrize("paired", [True, False])
def test_observed_difference_is_the_difference_of_the_fds(ref: FIDReference, paired: bool) -> None:
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(300, 6, generator=g), torch.randn(300, 6, generator=g) * 1.2 + 0.1
    r = fd_difference_test(a, b, ref, paired=paired, permutations=200)
    assert r.difference == pytest.approx(_fd(a, ref) - _fd(b, ref), rel=1e-9, abs=1e-12)
    # a clear difference: no re-labelling is as extreme, so the sequential test draws all P and gives 1 / (P + 1)
    assert r.p_value == pytest.approx(1 / 201) and r.drawn == 200 and r.extreme == 0 and not r.stopped
    assert r.describe() == "200 of 200 re-labellings"
    same = fd_difference_test(a, a.clone(), ref, paired=True, permutations=50)
    assert same.difference == 0 and same.p_value == 1.0
    assert same.drawn == 10 and same.stopped and same.describe() == "10 of 50 re-labellings, stopped at 10 as extreme"


#: Re-labellings at least as extreme of ``_null(i, paired)`` with 99 re-labellings and seed i, for i = 0…7, by
#: fd_difference_test before sequential stopping (commit 113543b): sequential=0 must reproduce them. Unpaired sets have
#: since been pooled in an order fixed by their contents: for i = 0, 4, 6, 7 the counts are those the old test gave
#: for (B, A).
BEFORE = {True: [17, 82, 64, 74, 79, 44, 48, 48], False: [8, 25, 8, 94, 96, 13, 4, 60]}


@pytest.mark.parametrize("paired", [True, False])
def test_sequential_0_is_the_test_as_it_was(ref: FIDReference, paired: bool) -> None:
    for i, k in enumerate(BEFORE[paired]):
        a, b = _null(i, paired)
        for memory in (2.5e8, 8 * 6 * 400 * 5):  # one batch, or batches of 5
            r = fd_difference_test(a, b, ref, paired=paired, permutations=99, seed=i, memory=memory, sequential=0)
            assert (r.p_value, r.drawn, r.extreme, r.stopped) == ((1 + k) / 100, 99, k, False)


@pytest.mark.parametrize("paired", [True, False])
@pytest.mark.parametrize("h", [1, 4, 10])
def test_sequential_stop_is_the_h_th_extreme_of_the_full_stream(ref: FIDReference, paired: bool, h: int) -> None:
    """Stopped: p = h / l, l the position of the h-th extreme statistic in the full run's stream (same seed);
    not stopped: the full run's p exactly."""
    cases = [(*_null(i, paired), i) for i in range(4)]
    for scale in (1.12, 1.14, 1.16):  # small to clear differences: 0 to 17 extreme of 99
        g = torch.Generator().manual_seed(7)
        cases += [(torch.randn(200, 6, generator=g) * scale, torch.randn(200, 6, generator=g), s) for s in range(4)]
    stops = full = 0
    for a, b, seed in cases:
        observed, stats = _relabelled_statistics(a, b, ref, paired, 99, seed=seed)
        hits = np.flatnonzero(stats.abs().numpy() >= abs(observed) * (1 - 1e-12))
        plain = fd_difference_test(a, b, ref, paired=paired, permutations=99, seed=seed, sequential=0)
        assert plain.p_value == (1 + len(hits)) / 100
        r = fd_difference_test(a, b, ref, paired=paired, permutations=99, seed=seed, sequential=h)
        assert r.difference == observed == plain.difference
        if len(hits) >= h:
            stops += 1
            assert r.stopped and r.drawn == hits[h - 1] + 1 and r.p_value == h / r.drawn
        else:
            full += 1
            assert not r.stopped and r.drawn == 99 and r.p_value == plain.p_value
    assert stops and full  # both branches were exercised


@pytest.mark.parametrize("paired", [True, False])
def test_relabelling_stream_does_not_depend_on_batch_sizes(ref: FIDReference, paired: bool) -> None:
    """One re-labelling drawn at a time by hand (membership, then the two FDs) equals every batching."""
    a, b = _null(3, paired)
    n = len(a)
    gen = torch.Generator().manual_seed(5)
    by_hand = []
    sign = -1.0 if not paired and pooled_swapped(a, b) else 1.0
    pa, pb = (b, a) if sign < 0 else (a, b)  # stored samples are pooled in the order of their contents' digests
    for _ in range(12):
        if paired:
            swap = torch.randint(0, 2, (1, n), generator=gen)[0].bool()
            sa, sb = torch.where(swap[:, None], b, a), torch.where(swap[:, None], a, b)
        else:
            z, member = torch.cat([pa, pb]), torch.rand(1, 2 * n, generator=gen).argsort(1)[0] < n
            sa, sb = z[member], z[~member]
        by_hand.append(sign * (_fd(sa, ref) - _fd(sb, ref)))
    row = 8 * 6 * 2 * n  # memory of one re-labelling in a batch
    streams = [_relabelled_statistics(a, b, ref, paired, 40, seed=5, memory=m, first=f)[1]
               for m, f in ((row, 1), (2.5e8, 40), (7 * row, 3), (2.5e8, 1))]
    torch.testing.assert_close(streams[0][:12], torch.tensor(by_hand, dtype=torch.float64), rtol=1e-7, atol=1e-10)
    for s in streams[1:]:
        torch.testing.assert_close(s, streams[0], rtol=1e-12, atol=1e-14)
    for h in (0, 4):  # the test itself: the same p and count whatever the batches
        assert len({fd_difference_test(a, b, ref, paired=paired, permutations=40, seed=5, memory=m, sequential=h)
                    for m in (row, 3 * row, 2.5e8)}) == 1


@pytest.mark.parametrize("paired", [True, False])
def test_swapping_the_sets_negates_the_difference_and_keeps_p(ref: FIDReference, paired: bool) -> None:
    """compare's arm order must not decide a verdict: T(B, A) = −T(A, B) with the same p and the same draws (before,
    unpaired sets pooled as [A, B] drew other re-labellings when swapped: p 0.6667 vs 0.625 on two MNIST sample sets)."""
    swapped = 0
    for i in range(8):
        a, b = _null(i, paired)
        swapped += pooled_swapped(a, b)
        for h in (0, 10):
            ab = fd_difference_test(a, b, ref, paired=paired, permutations=99, seed=i, sequential=h)
            ba = fd_difference_test(b, a, ref, paired=paired, permutations=99, seed=i, sequential=h)
            assert ba.difference == -ab.difference and (ba.p_value, ba.drawn, ba.extreme) == (ab.p_value, ab.drawn, ab.extreme)
        oa, sa = _relabelled_statistics(a, b, ref, paired, 30, seed=i)
        ob, sb = _relabelled_statistics(b, a, ref, paired, 30, seed=i)
        assert ob == -oa
        torch.testing.assert_close(sb, -sa, rtol=1e-9, atol=1e-12)
    assert paired or 0 < swapped < 8  # both pooling orders were exercised


def test_batches_start_small_and_double() -> None:
    assert list(_chunks(1000, 10, 12)) == [10] + [12] * 82 + [6]
    assert list(_chunks(1000, 10, 10_000)) == [10, 20, 40, 80, 160, 320, 370]
    assert list(_chunks(5, 0, 3)) == [1, 2, 2] and list(_chunks(0, 10, 10)) == []


@pytest.mark.parametrize("paired", [True, False])
@pytest.mark.parametrize("h", [0, 10])
def test_size_under_the_null(ref: FIDReference, paired: bool, h: int) -> None:
    """A and B from one distribution: p < 0.05 about 5 % of the time, with or without the sequential stop,
    which under the null draws a small fraction of the re-labellings."""
    results = [fd_difference_test(*_null(i, paired), ref, paired=paired, permutations=99, seed=i, sequential=h)
               for i in range(60)]
    pvals = [r.p_value for r in results]
    rejected = sum(p < 0.05 for p in pvals)
    assert rejected <= 8  # 5 % of 60 is 3; P(X ≥ 9) < 0.5 % for a calibrated test
    assert 0.3 < float(np.mean(pvals)) < 0.7  # roughly uniform
    drawn = np.mean([r.drawn for r in results])
    assert drawn == 99 if h == 0 else drawn < 60  # E[min(h / p, P)] ≈ 33 for uniform p


def test_stored_sets_of_different_sizes_are_tested(ref: FIDReference) -> None:
    """compare skipped the test, silently, for two stored sets of other sizes (250 and 150 samples): the pool is now
    split back at their sizes. The observed difference is the FDs', swapping negates it and keeps p, and under the
    null p < 0.05 about 5 % of the time."""
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(250, 6, generator=g), torch.randn(150, 6, generator=g) * 1.3 + 0.1
    r = fd_difference_test(a, b, ref, paired=False, permutations=200)
    assert r.difference == pytest.approx(_fd(a, ref) - _fd(b, ref), rel=1e-9) and r.p_value == pytest.approx(1 / 201)
    back = fd_difference_test(b, a, ref, paired=False, permutations=200)
    assert back.difference == pytest.approx(-r.difference, rel=1e-12) and back.p_value == r.p_value
    pvals = []
    for i in range(60):
        g = torch.Generator().manual_seed(200 + i)
        pvals.append(fd_difference_test(torch.randn(250, 6, generator=g), torch.randn(120, 6, generator=g), ref,
                                        paired=False, permutations=99, seed=i, sequential=0).p_value)
    assert sum(p < 0.05 for p in pvals) <= 8 and 0.3 < float(np.mean(pvals)) < 0.7


def test_refuses_sets_of_different_shapes(ref: FIDReference) -> None:
    with pytest.raises(ValueError, match="one shape"):
        fd_difference_test(torch.zeros(3, 6), torch.zeros(4, 6), ref, paired=True)


def _sets_differing_in(rows: int, n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, FIDReference]:
    """Paired sets equal but for ``rows`` rows (two generators that differ on a few latents), and a reference."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, d)) * 2 + 1
    a = rng.normal(size=(n, d)) * 2 + 1
    b = a.copy()
    b[rng.choice(n, rows, replace=False)] = rng.normal(size=(rows, d)) * 2 + 1
    return torch.from_numpy(a).float(), torch.from_numpy(b).float(), FIDReference(x.mean(0), np.cov(x, rowvar=False))


@pytest.mark.parametrize(("n", "d"), [(300, 32), (500, 128), (40, 64)])  # the last: d > n, zero eigenvalues
def test_sets_differing_in_one_row_are_never_significant(n: int, d: int) -> None:
    """Every paired swap then gives exactly ±T: all re-labellings tie with the observed, so p = 1 (rounding of the
    re-labelled sums, ~1e-12 of the FD terms but not of T, once made some ties look less extreme: p = 0.008)."""
    for seed in range(3):
        a, b, ref = _sets_differing_in(1, n, d, seed)
        r = fd_difference_test(a, b, ref, paired=True, permutations=200, sequential=0)
        assert r.difference != 0 and (r.p_value, r.extreme) == (1.0, 200), (seed, r)


def test_ties_are_counted_as_exact_enumeration_says() -> None:
    """Three differing rows: T* takes 2³ values. Each re-labelled statistic is matched to the nearest of them, computed
    exactly from the swapped sets' own sums; the test counts as extreme exactly those whose value has |T*| ≥ |T|."""
    n, d, k = 300, 32, 3
    mixed = 0
    for seed in range(3):
        a, b, ref = _sets_differing_in(k, n, d, seed)
        rows = np.flatnonzero((a != b).any(1).numpy())
        values = []
        for pattern in itertools.product([False, True], repeat=k):
            swap = torch.zeros(n, dtype=torch.bool)
            swap[rows[list(pattern)]] = True
            values.append(_fd(torch.where(swap[:, None], b, a), ref) - _fd(torch.where(swap[:, None], a, b), ref))
        exact = np.array(values)
        observed, stats = _relabelled_statistics(a, b, ref, True, 300)
        nearest = exact[np.abs(stats.numpy()[:, None] - exact[None]).argmin(1)]
        extreme = np.abs(nearest) >= abs(exact[0]) - 1e-9 * abs(exact[0])  # pattern 0: nothing swapped, the observed
        r = fd_difference_test(a, b, ref, paired=True, permutations=300, sequential=0)
        assert observed == pytest.approx(exact[0], rel=1e-9)
        assert r.extreme == int(extreme.sum()), seed
        mixed += not extreme.all()
    assert mixed  # some sets also had less extreme re-labellings: ties and non-ties both judged
