"""The plan line: what it promises before MNIST FD is known."""

from __future__ import annotations

from ganeval.planning import plan_line


def _inception_part(k: int, top_k: int, inception_all: bool = False) -> str:
    line = plan_line(k, 1000, "cpu", "fp32", ["mnist", "inception"], ["fid"], inception_all, top_k, "tf1x")
    return line.split("; ")[-1]


def test_top_k_plus_last_is_a_bound_when_the_best_may_be_the_last() -> None:
    """With more checkpoints than top-k, the last may be among the best: top-k + 1 is an upper bound."""
    assert "(up to 4 × 1000 images" in _inception_part(10, 3)


def test_exact_counts_say_no_bound() -> None:
    assert "(3 × 1000 images" in _inception_part(3, 3)  # every checkpoint is scored: an exact count
    assert "(10 × 1000 images" in _inception_part(10, 3, inception_all=True)
    assert "Inception metrics on all" in _inception_part(10, 3, inception_all=True)
