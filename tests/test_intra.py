"""Per-digit MNIST FD: its definition, the classes it leaves out, and that it finds a digit drawn badly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ganeval.data import load_mnist
from ganeval.evaluate import score
from ganeval.metrics.fid import frechet_distance
from ganeval.metrics.intra import MIN_PER_CLASS, intra_metrics, per_class_fd


def test_definition_and_too_small_classes() -> None:
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 6, generator=g) * 5
    real_y = torch.arange(400) % 4
    real = centers[real_y] + torch.randn(400, 6, generator=g)
    gen_y = torch.cat([torch.full((100,), 0), torch.full((100,), 1), torch.full((100,), 2), torch.full((MIN_PER_CLASS - 1,), 3)])
    gen = centers[gen_y] + torch.randn(len(gen_y), 6, generator=g) * torch.tensor([1.0, 1.0, 2.0, 1.0])[gen_y, None]
    fds = per_class_fd(gen, torch.nn.functional.one_hot(gen_y, 4).float(), real, torch.nn.functional.one_hot(real_y, 4).float(),
                       num_classes=4)
    r1, g1 = real[real_y == 1].double(), gen[gen_y == 1].double()
    want = frechet_distance(r1.mean(0).numpy(), torch.cov(r1.T).numpy(), g1.mean(0).numpy(), torch.cov(g1.T).numpy())
    assert fds[1] == pytest.approx(want, rel=1e-12)
    assert math.isnan(fds[3])  # too few samples of class 3: not measured (``modes`` reports it)
    m = intra_metrics(fds)
    assert m["mnist_worst_digit"] == 2 and m["mnist_intra_fd"] == pytest.approx(np.nanmean(fds[:3]))
    assert m["mnist_intra_digits"] == 3
    assert math.isnan(intra_metrics(np.full(4, np.nan))["mnist_intra_fd"])


def test_finds_the_digit_drawn_badly(tmp_path: Path, mnist_dir: Path) -> None:
    images, labels = load_mnist("test")
    images, labels = images[:3000].copy(), labels[:3000]
    np.savez(tmp_path / "real.npz", images=images)
    thick = images.copy()
    sevens = thick[labels == 7]
    thick[labels == 7] = np.maximum.reduce([sevens, *(np.roll(sevens, s, a) for s in (1, -1) for a in (1, 2))])  # bold 7s
    np.savez(tmp_path / "bold7.npz", images=thick)
    opts = dict(num_samples=3000, metrics=("mnist_fd", "mnist_intra", "modes"), bootstrap=0, device="cpu", progress=False)
    good = score(tmp_path / "real.npz", **opts).iloc[0]
    bad = score(tmp_path / "bold7.npz", **opts).iloc[0]
    assert good["mnist_worst_digit_fd"] < 1.5 and good["mnist_intra_fd"] < 1.0  # real test digits against train
    assert bad["mnist_worst_digit"] == 7 and bad["mnist_worst_digit_fd"] > 2.5
    assert bad["modes_covered"] == 10 and bad["mnist_intra_fd"] > good["mnist_intra_fd"]
    assert good["mnist_intra_digits"] == bad["mnist_intra_digits"] == 10


def test_per_digit_columns_and_report_table(tmp_path: Path, mnist_dir: Path) -> None:
    """Each digit's distance is a column, and the report's per-digit table names the digit that got worse from
    the best to the last checkpoint."""
    import re

    images, labels = load_mnist("test")
    images, labels = images[:3000].copy(), labels[:3000]
    np.savez(tmp_path / "a_real.npz", images=images)
    thick = images.copy()
    threes = thick[labels == 3]
    thick[labels == 3] = np.maximum.reduce([threes, *(np.roll(threes, s, a) for s in (1, -1) for a in (1, 2))])
    np.savez(tmp_path / "b_bold3.npz", images=thick)
    opts = dict(num_samples=3000, metrics=("mnist_fd", "mnist_intra"), bootstrap=0, device="cpu", progress=False)
    df = score([tmp_path / "a_real.npz", tmp_path / "b_bold3.npz"], out=tmp_path / "rep", **opts)
    good, bad = df.iloc[0], df.iloc[1]
    digits = [f"mnist_fd_digit_{c}" for c in range(10)]
    assert bad["mnist_fd_digit_3"] == bad["mnist_worst_digit_fd"] and int(bad["mnist_worst_digit"]) == 3
    assert np.nanmean(bad[digits].astype(float)) == pytest.approx(bad["mnist_intra_fd"])
    changed = bad[digits].astype(float) - good[digits].astype(float)
    assert changed.idxmax() == "mnist_fd_digit_3" and changed.max() > 5 * changed.drop("mnist_fd_digit_3").abs().max()
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert "Per-digit MNIST FD" in html
    last_row = re.search(r"<tr><td><i>last − best</i></td>(.*?)</tr>", html)
    assert last_row is not None
    cells = re.findall(r"<td class=n>(.*?)</td>", last_row.group(1))
    assert len(cells) == 10 and cells[3].startswith("<b>") and sum(c.startswith("<b>") for c in cells) == 1
    assert "mnist_fd_digit_9" in (tmp_path / "rep" / "scores.csv").read_text().splitlines()[0]
