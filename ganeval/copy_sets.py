"""The copying test's training and held-out image sets: the defaults (the MNIST splits when the reference is one),
the user's own sets, and their content identities for the metric cache."""

from __future__ import annotations

from typing import Any

from ganeval.errors import GanevalError
from ganeval.metrics.registry import COPYING_CT
from ganeval.options import ScoreOptions
from ganeval.reference import dataset_key
from ganeval.stats import DATASETS


def resolve_copy_sets(opts: ScoreOptions, ref_meta: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{"options": {copy_train, copy_heldout, copy_cells}, "ids": {... content identities}}``, or ``{}`` when no
    copying metric is requested. Your own sets are read (and checked) here, once, so a bad path fails at once."""
    if not any(m in COPYING_CT for m in opts.metrics):
        return {}
    if isinstance(opts.copy_cells, bool) or not isinstance(opts.copy_cells, int) or opts.copy_cells < 1:
        raise GanevalError(f"--copy-cells must be an integer >= 1 (got {opts.copy_cells})")
    mnist_ref = any(meta.get("dataset") in DATASETS for meta in ref_meta.values())
    train = opts.copy_train or ("mnist-train" if mnist_ref else None)
    heldout = opts.copy_heldout or ("mnist-test" if mnist_ref else None)
    sets: dict[str, Any] = {"copy_train": train, "copy_heldout": heldout, "copy_cells": opts.copy_cells}
    ids = {k: dataset_key(v) if v else None for k, v in sets.items() if k != "copy_cells"}
    if ids["copy_train"] and ids["copy_train"] == ids["copy_heldout"]:
        raise GanevalError(f"--copy-train and --copy-heldout are the same images ({train}): the held-out set must be "
                           "real images the generator was not trained on")
    return {"options": sets, "ids": {**ids, "copy_cells": opts.copy_cells}}
