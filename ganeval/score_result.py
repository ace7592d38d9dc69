"""What scoring a series returns: the table, the summary, and what the reports draw (grids, replicates, examples)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ganeval.illustrations import RealismExamples
from ganeval.metrics.fid import FIDReference
from ganeval.nearest import Neighbours


@dataclass
class ScoreResult:
    """The per-checkpoint table, the summary, and what the report needs (sample grids, replicates)."""

    table: pd.DataFrame
    summary: dict[str, Any]
    grids: dict[str, np.ndarray] = field(default_factory=dict)
    replicates: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    failed: bool = False
    #: Nearest training images of the best and last checkpoints' samples, and the held-out distance scale.
    neighbours: dict[str, Neighbours] = field(default_factory=dict)
    neighbour_scale: float | None = None
    #: With ``keep_features``: each source's pooled features per extractor, and the references they were scored against.
    features: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    refs: dict[str, FIDReference] = field(default_factory=dict)
    #: Each generator's latent size and type (``ranking.off_the_run_latents``): differences pair equal ones only.
    latents: dict[str, str] = field(default_factory=dict)
    #: Least and most realistic samples of the best and last checkpoints (with a realism metric).
    realism: dict[str, RealismExamples] = field(default_factory=dict)
