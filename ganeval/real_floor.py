"""The real-data floor of a scoring run: held-out real images scored like one more checkpoint, at the same N,
seed, extractors, reference and bootstrap, so every number in the table can be read against what real data gets.

Fréchet distances are biased upwards at finite N (real MNIST test against train: FID ≈ 1.0 at N = 10,000, far
more at N = 1,000), precision/recall/coverage of real data stay below 1, and the copying test's C_T is ≈ 0 for
held-out data by construction. A static table at one N (``reference_stats/floors.json``) cannot say what "as
good as real" is at the user's N; this row can. It is never ranked, gated on or shown as a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganeval.errors import GanevalError
from ganeval.inputs import Source
from ganeval.real_data import streams
from ganeval.sources.base import InputHints, image_digest
from ganeval.sources.image_stream import ImageStream
from ganeval.stats import DATASETS, dataset_images, real_images
from ganeval.summary import row_dict

#: ``--real-floor`` without a value: the MNIST split the reference statistics were not made from.
AUTO = "auto"
OTHER_SPLIT = {"mnist-train": "mnist-test", "mnist-test": "mnist-train"}
#: Second seed word of the subset draw, so that it does not share a stream with the latents.
SUBSET_STREAM = 0x466C6F6F72
#: Table columns of a row that say nothing about the floor's metrics.
BOOKKEEPING = ("iteration", "path", "status", "error", "sha256")


def _floor_dataset(choice: str, ref_meta: dict[str, dict[str, Any]]) -> str:
    """The held-out set for ``choice`` (``auto``: the other MNIST split of an MNIST reference)."""
    if choice != AUTO:
        return choice
    splits = {str(meta.get("dataset")) for meta in ref_meta.values()}
    if len(splits) == 1 and (only := splits.pop()) in OTHER_SPLIT:
        return OTHER_SPLIT[only]
    raise GanevalError("--real-floor: the reference statistics are not of an MNIST split, so there is no default held-out "
                       "set: pass --real-floor DATA (a folder, zip or uint8 .npz of real images not in the reference)")


def floor_indices(total: int, n: int, seed: int) -> np.ndarray:
    """Which ``n`` of ``total`` held-out images form the floor: a seeded uniform subset, in file order.

    Not the first ``n``: files are often ordered (MNIST's test split has NIST SD-3's digits first and SD-1's last,
    while the training split mixes both: either half's MNIST FD to the training statistics is 0.24, a random
    5,000's 0.061), and a folder may be sorted by class.
    """
    if n >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng([seed, SUBSET_STREAM]).choice(total, n, replace=False))


def floor_source(choice: str, ref_meta: dict[str, dict[str, Any]], n: int, seed: int = 0,
                 n_known: bool = True) -> tuple[Source, dict[str, Any]]:
    """The floor as a series element (stored uint8 images), and its identity for the summary.

    Refuses the reference's own images: they are not held out, and would score far below a true floor. With
    ``n_known`` False (stored sample sets may be scored at fewer than ``n``), fewer than ``n`` held-out images are
    drawn whole rather than refused: the floor is drawn again, and checked, at the N really scored.
    """
    if choice is True:
        choice = AUTO
    if not isinstance(choice, str | Path) or not str(choice):
        raise GanevalError(f"--real-floor must be 'auto' or a dataset (mnist-train, mnist-test, a folder, zip or .npz), not {choice!r}")
    dataset = _floor_dataset(str(choice), ref_meta)
    try:
        total, meta_of, subset = _held_out(dataset)
    except GanevalError as exc:
        raise GanevalError(f"--real-floor: {exc}") from exc
    for extractor, meta in ref_meta.items():
        same = (dataset in DATASETS and meta.get("dataset") == dataset) or meta.get("dataset_sha256") == meta_of.get("dataset_sha256")
        if not same and (meta.get("dataset") in DATASETS) != (dataset in DATASETS):  # an MNIST split beside a file of it
            same = pixels_sha256(meta) == pixels_sha256(meta_of)  # a floor of a split: the whole split
        if same:
            raise GanevalError(f"--real-floor {dataset}: these are the images the {extractor} reference statistics were made "
                               "from, not held-out ones; pick real images outside the reference")
    if total < n and n_known:  # a floor at a smaller N is biased upwards against the checkpoints' N: never mix them
        raise GanevalError(f"--real-floor {dataset}: {total} held-out images, fewer than the {n} samples per "
                           "checkpoint; the floor must be scored at the same N (lower --num-samples or give more images)")
    idx = floor_indices(total, n, seed)
    try:
        images = subset(idx)
    except GanevalError as exc:
        raise GanevalError(f"--real-floor: {exc}") from exc
    name = f"real held-out ({dataset if dataset in DATASETS else 'your images'})"
    src = Source(name, None, None, "array", {"array": images, "hints": InputHints(output_range="0,255")})
    info = {"dataset": meta_of["dataset"], "source": meta_of.get("source", dataset),
            "dataset_sha256": meta_of["dataset_sha256"], "n_available": total, "name": name,
            "subset": "all" if len(idx) == total else f"{len(idx)} drawn uniformly without replacement, seed {seed}"}
    return src, info


def pixels_sha256(meta: dict[str, Any]) -> str | None:
    """The SHA-256 of the pixels behind statistics or a floor, as your own images are identified: recorded for them;
    for an MNIST split (whose record holds its file's checksum) computed from its first ``n`` images, read as a
    folder or .npz of them would be."""
    if meta.get("dataset") in DATASETS:
        images = dataset_images(meta["dataset"])
        return image_digest(torch.from_numpy(np.array(images[: meta.get("n") or None])).unsqueeze(1))  # a copy: read-only
    return meta.get("dataset_sha256")


def _held_out(dataset: str) -> tuple[int, dict[str, Any], Callable[[np.ndarray], Any]]:
    """How many images ``dataset`` holds, how it is identified, and a reader of the images at given positions: a
    folder or zip counted and hashed in one decode-only pass and read again for the subset alone (never held
    whole), any other set read whole."""
    if streams(dataset):
        stream = ImageStream(Path(dataset))
        meta = {"dataset": "custom", "source": str(Path(dataset).resolve()), "dataset_sha256": stream.digest()}
        return stream.n, meta, stream.subset
    real = real_images(dataset)
    images = real.images

    def subset(idx: np.ndarray) -> Any:
        return images[torch.from_numpy(idx)] if isinstance(images, torch.Tensor) else images[idx]  # copies

    return len(images), real.meta, subset


def floor_summary(row: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """The summary's ``real_floor`` entry: where the images come from, how many were scored, every metric value."""
    values = {k: v for k, v in row_dict(row).items() if k not in BOOKKEEPING and k not in ("checkpoint", "n_samples", "seconds")}
    return {**info, "n": row_dict(row).get("n_samples"), "status": row.get("status"), "error": row.get("error"),
            "seconds": row.get("seconds"), "values": values}
