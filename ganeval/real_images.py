"""Which real images the evaluator's sample-based metrics compare with (as many as each checkpoint was really
scored with), and the held-out real floor scored like one more checkpoint: the evaluator's real-data side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ganeval.distributed import DistContext
from ganeval.errors import GanevalError
from ganeval.features.base import FeatureExtractor
from ganeval.inputs import Source
from ganeval.metrics.fid import FIDReference
from ganeval.metrics.registry import Metric
from ganeval.options import ScoreOptions
from ganeval.real_floor import floor_source, floor_summary
from ganeval.reference import real_features, real_subset_info, real_total


class RealImages:
    """Evaluator methods for real images: how many each checkpoint is compared with, their features, the floor."""

    opts: ScoreOptions
    dist: DistContext
    metrics: list[Metric]
    notes: list[str]
    extractors: dict[str, FeatureExtractor]
    refs: dict[str, FIDReference]
    ref_meta: dict[str, dict[str, Any]]
    rows: dict[str, dict[str, Any]]
    grids: dict[str, Any]
    replicates: dict[str, Any]
    kept: dict[str, Any]
    _real: dict[tuple[str, int], torch.Tensor]
    floor: tuple[Source, dict[str, Any]] | None
    run_stage: Callable[..., None]

    def compares_real(self, name: str) -> bool:
        """Whether a requested metric of extractor ``name`` compares samples with real images (KID, PR, …)."""
        return any(m.needs_real and m.extractor == name for m in self.metrics)

    def scored_sizes(self) -> list[int]:
        """The sample counts the checkpoints were really scored at (a short sample set is scored whole), ascending."""
        return sorted({int(r["n_samples"]) for r in self.rows.values() if r["status"] in ("ok", "nan_samples")})

    def real_provenance(self, name: str) -> dict[str, Any]:
        """Which real images this extractor's sample-based metrics compare with (nothing when none does): as many
        as each checkpoint's samples; a run scored at several N names the largest set (the smaller are inside it)."""
        if not self.compares_real(name):
            return {}
        sizes = self.scored_sizes() or [self.opts.num_samples]
        info = {"real_subset": real_subset_info(self.ref_meta[name], self._real_n(name, sizes[-1]))}
        if len(sizes) > 1:
            info["real_subset_n_per_checkpoint"] = sorted({self._real_n(name, n) for n in sizes})
        return info

    def _real_n(self, name: str, n: int) -> int:
        """How many real images the sample-based metrics of extractor ``name`` compare ``n`` samples with: as many
        (so a short sample set is not set against more real images than it has), at most 60,000 and the reference's."""
        n = min(n, 60_000)
        return min(n, real_total(self.ref_meta[name]) or n)

    def _real_for(self, name: str, dist: DistContext | None = None, n: int | None = None) -> torch.Tensor:
        """The real features of extractor ``name`` for ``n`` samples (default: --num-samples); ``dist``: a rank alone
        (rank 0's illustrations) passes its own."""
        key = (name, min(self.opts.num_samples if n is None else n, 60_000))
        if key not in self._real:
            from ganeval.stats import RefStats

            stats = RefStats(self.refs[name].mu, self.refs[name].sigma, self.ref_meta[name])
            self._real[key] = real_features(stats, self.extractors[name], key[1], self.opts.batch_size,
                                            write_cache=self.opts.use_cache and self.dist.is_main, dist=dist or self.dist,
                                            notes=self.notes, read_cache=self.opts.use_cache)
        return self._real[key]

    def score_floor(self) -> dict[str, Any] | None:
        """Score the held-out real images with every extractor and metric; their row stays out of the table."""
        if self.floor is None:
            return None
        sizes = self.scored_sizes()
        if len(sizes) > 1:  # a floor is only comparable at one N: a Fréchet distance's bias depends on it
            self.notes.append(f"real floor not scored: the checkpoints were scored at different N ({sizes[0]}–{sizes[-1]}), "
                              "and a floor at one N would be set against the others as if it were theirs; score sample "
                              "sets of one size (or --num-samples at most the smallest) for a floor")
            return None
        n = sizes[0] if sizes else self.opts.num_samples
        if n != len(self.floor[0].extra["array"]):  # short sample sets: the floor at the N they were really scored at
            try:
                self.floor = floor_source(self.opts.real_floor, self.ref_meta, n, self.opts.seed)
            except GanevalError as exc:  # too few held-out images for this N: the checkpoints' rows stand
                self.notes.append(f"real floor not scored: {exc}")
                return None
        src, info = self.floor
        self.run_stage([src], list(self.extractors), "real floor", n)
        row = self.rows.pop(src.name)
        for kept in (self.grids, self.replicates, self.kept):
            kept.pop(src.name, None)
        if row["status"] != "ok":  # the verdict then names no floor: say why
            self.notes.append(f"real floor not usable ({row['status']}): {row['error']}")
        return floor_summary(row, info)
