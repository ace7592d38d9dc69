"""The sample images a report shows beside the numbers: the samples nearest to the training set (copying test)
and the least and most realistic samples (realism score). Illustrations only: a failure here leaves the panel out,
never the numbers. A mixin of the evaluator, whose features, references and real features it reuses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ganeval.distributed import DistContext
from ganeval.extraction import extract
from ganeval.metrics.realism import realism_scores
from ganeval.metrics.registry import MetricInput, copying_reference
from ganeval.nearest import CLOSEST_SHOWN, sample_images

if TYPE_CHECKING:
    from ganeval.features.base import FeatureExtractor
    from ganeval.inputs import Series, Source
    from ganeval.metrics.fid import FIDReference
    from ganeval.options import ScoreOptions

#: Samples shown at each end of the realism ranking.
REALISM_SHOWN = 16
#: The realism metrics, in the order their extractor is preferred for the panel.
REALISM_METRICS = {"mnist_realism": "mnist", "realism": "inception"}


@dataclass
class RealismExamples:
    """A checkpoint's least and most realistic samples (gray ``(k, H, W)`` uint8) with their realism scores."""

    low: np.ndarray
    low_scores: np.ndarray
    high: np.ndarray
    high_scores: np.ndarray
    median: float
    extractor: str


def shown_checkpoints(df: pd.DataFrame) -> list[str]:
    """The checkpoints a report illustrates: the best, then the last."""
    ok = df[df["status"] != "error"]
    return list(dict.fromkeys([*ok.loc[ok["is_best"], "checkpoint"], *ok["checkpoint"].iloc[-1:]]))


class Illustrations:
    """Evaluator methods that pick and regenerate example samples."""

    series: Series
    opts: ScoreOptions
    device: torch.device
    extractors: dict[str, FeatureExtractor]
    refs: dict[str, FIDReference]
    memo: dict[str, Any]
    _real_for: Callable[..., torch.Tensor]
    _metric_inputs: Callable[[], dict[str, Any]]
    _dataset_for: Callable[..., torch.Tensor]

    def _source(self, name: str) -> Source:
        return next(s for s in self.series.sources if s.name == name)

    def _features(self, src: Source, extractor: str) -> torch.Tensor:
        """Features of ``src`` (from the cache, or extracted again: seconds for one checkpoint's MNIST features)."""
        got = extract(src, [self.extractors[extractor]], self.opts.num_samples, self.opts.seed, self.opts.batch_size,
                      self.device, DistContext(), self.opts.use_cache)
        return got.pool[extractor]

    def closest_samples(self, name: str) -> np.ndarray | None:
        """The ``CLOSEST_SHOWN`` samples of checkpoint ``name`` nearest to the training set in the copying test's
        feature space, as gray images (None when the MNIST copying test did not run for it)."""
        if "copying" not in self.opts.metrics or "mnist" not in self.extractors:
            return None
        src = self._source(name)
        try:
            pool = self._features(src, "mnist")
            x = MetricInput(pool, None, self.refs["mnist"], lambda: self._real_for("mnist", DistContext(), len(pool)),
                            self._metric_inputs(), dataset=lambda d: self._dataset_for("mnist", d, DistContext()),
                            memo=self.memo)
            ref = copying_reference(x)
            self.memo["closest-heldout"] = ref.closest(None, CLOSEST_SHOWN)
            return sample_images(src, ref.closest(x.pool, CLOSEST_SHOWN), self.device, self.opts)
        except Exception:  # noqa: BLE001 - the panel is an illustration; the numbers and their errors are in the table
            return None

    def realism_examples(self, name: str) -> RealismExamples | None:
        """The least and most realistic samples of checkpoint ``name`` (None without a realism metric)."""
        which = next((ex for m, ex in REALISM_METRICS.items() if m in self.opts.metrics and ex in self.extractors), None)
        if which is None:
            return None
        src = self._source(name)
        try:
            feats = self._features(src, which)  # against as many real images as the metric used: as many as samples
            scores = realism_scores(feats, self._real_for(which, DistContext(), len(feats)))
            order = torch.argsort(scores).tolist()
            low, high = order[:REALISM_SHOWN], order[::-1][:REALISM_SHOWN]
            return RealismExamples(sample_images(src, low, self.device, self.opts), scores[low].numpy(),
                                   sample_images(src, high, self.device, self.opts), scores[high].numpy(),
                                   float(scores.median()), which)
        except Exception:  # noqa: BLE001 - an illustration, as above
            return None
