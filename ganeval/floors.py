"""Real-data floors: what the metrics give for real MNIST (test against train), the scale on which a
generator's numbers should be read. Recorded in ``reference_stats/floors.json`` and in the sidecars."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganeval.atomic import write_set
from ganeval.errors import GanevalError
from ganeval.features.base import iter_batches
from ganeval.metrics.fid import FIDReference
from ganeval.metrics.inception_score import inception_score
from ganeval.stats import SHIPPED_DIR, dataset_images, load_stats, stats_path
from ganeval.version import __version__


def _fd_from_features(test: np.ndarray, train: np.ndarray) -> float:
    t, r = test.astype(np.float64), train.astype(np.float64)
    return FIDReference(r.mean(0), np.cov(r, rowvar=False), len(r)).fid(t.mean(0), np.cov(t, rowvar=False), len(t))


def _logits_is(extractor_name: str, device: str) -> dict[str, Any]:
    from ganeval.features import get_extractor

    ex = get_extractor(extractor_name, device=device)
    if getattr(ex, "spatial", False):
        return {"available": False, "reason": "sFID's spatial features have no classifier: the Inception Score is the "
                                              "inception extractor's"}
    if not ex.has_logits:
        from ganeval.features.inception_weights import FULL_WEIGHTS_HINT

        return {"available": False, "reason": f"no logits layer in the weights in use. {FULL_WEIGHTS_HINT}"}
    logits = torch.cat([ex(b)["logits"].cpu() for b in iter_batches(dataset_images("mnist-test"), 500)])
    mean, std = inception_score(logits, splits=10)
    return {"available": True, "mean": mean, "std": std, "n": int(len(logits)), "splits": 10}


def _knn_floors(name: str, root: Path, n: int, device: str) -> dict[str, Any]:
    """KID, precision/recall and density/coverage of ``n`` test images against ``n`` train images: the same real
    features (each split's fixed uniform subset) ``score`` compares samples with, so the scale is the scoring one."""
    from ganeval.features import get_extractor
    from ganeval.metrics.kid import kid
    from ganeval.metrics.prc import density_coverage, precision_recall
    from ganeval.options import ScoreOptions
    from ganeval.reference import real_features

    ex = get_extractor(name, device=device)
    test, train = (real_features(load_stats(stats_path(f"mnist-{s}", name, root)), ex, n) for s in ("test", "train"))
    kid_mean, kid_std = kid(test, train)
    precision, recall = precision_recall(test, train)
    density, coverage = density_coverage(test, train)
    # as score leaves it: at N ≤ the subset size every subset is all N against all N, their spread only round-off
    spread = kid_std if len(test) > ScoreOptions.kid_subset_size else None
    return {"n": len(test), "kid_mean": kid_mean, "kid_std": spread, "precision": precision, "recall": recall,
            "density": density, "coverage": coverage}


def _matching_features(path: Path, stats: Any) -> np.ndarray:
    """Per-image features that are those behind ``stats`` (as many rows, the same width and mean), else one line:
    features of another N or extractor gave a float64 "check" off by 3 that ``--write`` would have recorded."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise GanevalError(f"{path}: not a readable .npy of features ({exc})") from exc
    n, dim = stats.meta.get("n"), len(stats.mu)
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[1] != dim or (n is not None and len(arr) != int(n)):
        raise GanevalError(f"{path}: features of shape {getattr(arr, 'shape', '?')}, but the statistics are of "
                           f"{n} images × {dim}; save them with `stats --save-features` from the same run")
    mean = arr.astype(np.float64).mean(axis=0)
    if not np.allclose(mean, stats.mu, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(stats.mu).max()))):
        raise GanevalError(f"{path}: the features' mean is not the statistics' mu (max |Δ| "
                           f"{float(np.abs(mean - stats.mu).max()):.3g}): features of other images or another network")
    return arr


def compute_floors(root: Path = SHIPPED_DIR, features_dir: Path | None = None, device: str = "cpu",
                   extractors: tuple[str, ...] = ("inception", "inception-clean", "mnist"), knn_n: int = 0) -> dict[str, Any]:
    """FID of mnist-test against mnist-train per extractor (from the shipped float32-covariance files and,
    when per-image features are given, in float64 too), the Inception Scores of real MNIST test, and with
    ``knn_n`` > 0 the sample-based metrics (KID, precision/recall, density/coverage) of test against train at that N."""
    from ganeval.features import EXTRACTORS

    if unknown := [n for n in extractors if n not in EXTRACTORS]:  # was "mnist-test_foo.npz: not found"
        raise GanevalError(f"--extractors: unknown extractor {unknown[0]!r} (known: {', '.join(sorted(EXTRACTORS))})")
    out: dict[str, Any] = {"package_version": __version__, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for name in extractors:
        test, train = load_stats(stats_path("mnist-test", name, root)), load_stats(stats_path("mnist-train", name, root))
        entry: dict[str, Any] = {
            "fid_test_vs_train": FIDReference(train.mu, train.sigma, train.meta.get("n")).fid(test.mu, test.sigma, test.meta.get("n")),
            "weights_sha256": train.meta.get("weights_sha256"),
            "n_test": test.meta.get("n"), "n_train": train.meta.get("n"),
        }
        feats = [features_dir / f"mnist-{s}_{name}.npy" for s in ("test", "train")] if features_dir else []
        if missing := [p for p in feats if not p.is_file()]:  # the float64 check was skipped, nothing said
            raise GanevalError(f"--features-dir {features_dir}: no {missing[0].name} (stats --save-features writes it); "
                               f"the float64 check needs both splits' features")
        if feats:
            arrays = [_matching_features(p, st) for p, st in zip(feats, (test, train), strict=True)]
            fid64 = _fd_from_features(*arrays)
            entry.update(fid_test_vs_train_float64=fid64, float32_minus_float64=entry["fid_test_vs_train"] - fid64)
        entry["inception_score_real_test"] = _logits_is(name, device)
        if knn_n > 0:
            entry["knn_test_vs_train"] = _knn_floors(name, root, knn_n, device)
        out[name] = entry
    return out


#: What says which statistics a floor entry was measured on (with its FID test vs train, equal but for another
#: machine's round-off): values kept from a record of other statistics are dropped.
IDENTITY_KEYS = ("n_test", "n_train", "weights_sha256")


def merge_floors(recorded: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` over ``recorded``, per extractor: values this run did not compute (the float64 check needs the
    per-image features) are kept while they were measured on the same statistics (the same FID test vs train, N and
    weights; a float64 check of N = 300 beside an FID of N = 1,000 said they agreed to 6e-8), and the date and
    version say when the file last changed."""
    out = {**recorded, **{k: v for k, v in new.items() if not isinstance(v, dict)}}
    for name, entry in new.items():
        if isinstance(entry, dict):
            old = recorded.get(name, {})
            fids = [e.get("fid_test_vs_train") for e in (old, entry)]
            same = all(old.get(k) == entry.get(k) for k in IDENTITY_KEYS) and all(isinstance(f, float) for f in fids) \
                and math.isclose(fids[0], fids[1], rel_tol=1e-9, abs_tol=1e-12)
            out[name] = {**(old if same else {}), **entry}
    return out


def record_floors(floors: dict[str, Any], root: Path = SHIPPED_DIR) -> Path:
    """Write ``floors.json`` and copy each extractor's floors into its two sidecars, as one set
    (:func:`ganeval.atomic.write_set`): a failure or an interrupt part-way leaves every file as it was, never new
    floors in some sidecars and old ones in ``floors.json``. ``floors.json`` is renamed last (the set's mark)."""
    files: dict[Path, bytes] = {}
    for name, entry in floors.items():
        if not isinstance(entry, dict):
            continue
        for split in ("test", "train"):
            side = stats_path(f"mnist-{split}", name, root).with_suffix(".json")
            meta = json.loads(side.read_text())
            meta["floors"] = entry
            files[side] = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8")
    path = root / "floors.json"
    files[path] = (json.dumps(floors, indent=2) + "\n").encode("utf-8")
    write_set(files)
    return path
