"""``ganeval stats --save-features``: every image's pool features written into one float32 tensor as each batch is
computed and saved from it (the batches were kept and joined at the end: held twice), with the same file as the
batch-by-batch features gave; ``HostRows`` keeping one rank's share only, and sending it to rank 0."""

from __future__ import annotations

import ast
import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_distributed import _env, _run

from ganeval.distributed import DistContext, HostRows
from ganeval.errors import GanevalError
from ganeval.features.base import iter_batches
from ganeval.features.custom import CustomExtractor
from ganeval.stats import real_images
from ganeval.user_code import resolve_factory

WATCHED_PY = """
import weakref

from torch import nn


class Watched(nn.Module):
    '''Features of every 4th pixel; how many of its earlier outputs are still alive at each call.'''

    returned = []
    most_alive = 0

    def forward(self, x):
        Watched.most_alive = max(Watched.most_alive, sum(r() is not None for r in Watched.returned))
        pool = x.flatten(1)[:, ::4] * 3.0 + 0.5
        Watched.returned.append(weakref.ref(pool))
        return pool
"""

pytestmark = pytest.mark.usefixtures("own_cache")


def test_saved_features_are_the_batchwise_features_and_each_batch_is_dropped_once_copied(tmp_path: Path, cli) -> None:
    (tmp_path / "watched.py").write_text(WATCHED_PY)
    spec = f"{tmp_path / 'watched.py'}:Watched"
    feats = tmp_path / "feats.npy"
    code, _, err = cli("stats", "--dataset", "mnist-test", "--extractor", "custom", "--feature-network", spec,
                       "--limit", 300, "--batch-size", 32, "--device", "cpu", "--no-progress",
                       "--out", tmp_path / "ref_custom.npz", "--save-features", feats)
    assert code == 0, err
    net = resolve_factory(spec, None, "--feature-network").factory  # the class the run used (its file, imported once)
    # 10 batches (the last of 12 images); kept until the end, all 9 earlier ones were alive at the last call
    assert len(net.returned) == 1 + 10 and net.most_alive <= 1  # 1: the width probe, then the loop's previous batch
    ex = CustomExtractor(spec, device="cpu")
    parts = [ex(b)["pool"] for b in iter_batches(real_images("mnist-test", limit=300).images, 32)]
    want = io.BytesIO()
    np.save(want, torch.cat(parts).numpy())  # what the batches joined at the end gave
    assert feats.read_bytes() == want.getvalue()
    got = np.load(feats)
    assert got.shape == (300, 196) and got.dtype == np.float32 and got.flags.c_contiguous


def test_rows_of_a_share_are_packed_in_its_batch_order() -> None:
    """A torchrun rank's share (batches 1, 3 of 4, the last one short) takes its rows only, in that order."""
    rows = HostRows(10, 3, "src: pool features", batches=range(1, 4, 2), dtype=torch.float32)
    rows.put(3, torch.full((1, 2), 3, dtype=torch.float64))
    rows.put(1, torch.full((3, 2), 1, dtype=torch.float64))
    assert rows.data is not None and rows.data.dtype == torch.float32
    assert rows.data[:, 0].tolist() == [1, 1, 1, 3]
    with pytest.raises(GanevalError, match=r"^src: pool features: batch 2 is not one of this process's$"):
        rows.put(2, torch.zeros(3, 2))
    with pytest.raises(GanevalError, match=r"holds its own batches only; use to_main$"):
        rows.joined(DistContext())


def test_to_main_in_one_process_is_the_tensor_as_written() -> None:
    rows = HostRows(5, 2, "src: pool features")
    for b in range(3):
        rows.put(b, torch.arange(2 * b, min(2 * b + 2, 5), dtype=torch.float32).view(-1, 1))
    got = rows.to_main(DistContext())
    assert got is rows.data and got.view(-1).tolist() == [0, 1, 2, 3, 4]


SHARE_SCRIPT = """
import sys
import torch
import ganeval.distributed as gd
gd.GATHER_ROWS = 6  # 2 batches of 3 rows per rank per gather: rank 1's 5 batches go to rank 0 in 3 gathers
dist = gd.from_env(True)
rows = gd.HostRows(29, 3, "test rows", None if dist.is_main else dist.my_batches(10))  # batch 9 (2 rows): rank 1's
for b in dist.my_batches(10):
    r = rows.rows(b)
    rows.put(b, torch.arange(r.start, r.stop, dtype=torch.float32).view(-1, 1).repeat(1, 2))
held = list(rows.data.shape)
got = rows.to_main(dist)
with open(f"{sys.argv[1]}/rank{dist.rank}.txt", "w") as fh:
    fh.write(repr((held, None if got is None else got[:, 1].tolist(), rows.data is None)))
gd.leave_together(0)
"""


def test_rows_go_to_rank_0_alone_and_no_other_rank_holds_more_than_its_share(tmp_path: Path) -> None:
    """``HostRows.to_main`` (``stats --save-features``): rank 1 holds its 5 batches' 14 rows only, sends them in rounds,
    and drops them; rank 0 gets every row in order, into its own tensor."""
    (tmp_path / "share.py").write_text(SHARE_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(tmp_path / "share.py"),
           str(tmp_path)]
    res = _run(cmd, env=_env(tmp_path), timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    main = ast.literal_eval((tmp_path / "rank0.txt").read_text())
    other = ast.literal_eval((tmp_path / "rank1.txt").read_text())
    assert main == ([29, 2], [float(i) for i in range(29)], False)
    assert other == ([14, 2], None, True)
