"""Reference statistics and real features for the metrics, resolved by name or path and verified."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganeval.cache import CACHE_READ_ERRORS, cache_dir, cache_write, discard
from ganeval.distributed import DistContext, HostRows
from ganeval.errors import GanevalError, StatsError, as_path, require_bool
from ganeval.features.base import FeatureExtractor, cacheable, iter_batches, refuse_nonfinite
from ganeval.real_data import RealBatches, streams
from ganeval.sources.image_stream import ImageStream, Recoloured
from ganeval.stats import DATASETS, MATCH_KEYS, RefStats, dataset_images, load_stats, real_images, stats_path
from ganeval.stats_import import imported_summary


def expected_provenance(extractor: FeatureExtractor) -> dict[str, Any]:
    """The sidecar fields a reference must share with ``extractor``."""
    prov = extractor.provenance()
    return {k: prov[k] for k in MATCH_KEYS if k in prov}


def reference_path(reference: str | os.PathLike[str], extractor_name: str) -> Path:
    """Shipped stats for ``mnist-train``/``mnist-test``; a folder's ``*_<extractor>.npz``; or an .npz path."""
    ref = str(reference)
    if ref in DATASETS:
        path = stats_path(ref, extractor_name)
        if not path.is_file():  # a feature network's, or a variant not shipped (sFID with clean-fid's resize)
            what, net = ("your feature network", " --feature-network …") if extractor_name == "custom" else (extractor_name, "")
            raise StatsError(f"no shipped {ref} statistics for {what}: make them with 'ganeval stats --dataset {ref} "
                             f"--extractor {extractor_name}{net} --out DIR/{ref}_{extractor_name}.npz' and pass --reference DIR")
        return path
    path = Path(ref)
    if path.is_dir():
        found = sorted(path.glob(f"*_{extractor_name}.npz"))
        if len(found) != 1:
            names = f": {', '.join(p.name for p in found[:4])}{' …' if len(found) > 4 else ''}; give the file" if found else ""
            raise StatsError(f"{path}: expected one *_{extractor_name}.npz, found {len(found)}{names}")
        return found[0]
    return path


def _network_id(spec: Any) -> Any:
    """A feature network's name without the way its file was spelled (``./x.py``, ``/abs/x.py``, ``x.py``: one
    ``x.py:NAME``); its source and weights are compared by SHA-256 beside it."""
    if isinstance(spec, str) and ".py:" in spec:
        file, _, attr = spec.rpartition(":")
        return f"{Path(file).name}:{attr}"
    return spec


def reference_stats(reference: str | os.PathLike[str], extractor: FeatureExtractor | str,
                    needs_images: bool = False) -> RefStats:
    """Load the reference statistics for ``extractor`` (an extractor, or a registered name such as ``"mnist"``, built
    with its defaults on the CPU), refusing ones made another way (named in the error), and with ``needs_images``
    ones without real images behind them (imported), before any scoring."""
    if isinstance(extractor, str):
        from ganeval.features import get_extractor

        extractor = get_extractor(extractor, device="cpu")
    elif not hasattr(extractor, "name"):  # None, a list: an AttributeError deep inside
        raise GanevalError(f"extractor must be a feature extractor or a registered name such as 'mnist', not {extractor!r}")
    require_bool(needs_images, "needs_images")
    as_path(reference, "reference")  # "" was the current folder
    path = reference_path(reference, getattr(extractor, "stats_name", extractor.name))  # extractors registered elsewhere may lack it
    expect = expected_provenance(extractor)
    network = expect.pop("network", None)
    try:
        stats = load_stats(path, expect)
    except StatsError as exc:
        # Made before the logits layer was left out of the weights' identity, with a file that has one: accepted
        # when that file's whole identity is this extractor's (the same pool network, so the same features).
        whole = getattr(getattr(extractor, "weights", None), "whole_sha256", None)
        if not whole or "weights_sha256" not in expect:
            raise
        try:
            stats = load_stats(path, {**expect, "weights_sha256": whole})
        except StatsError:
            raise exc from None
    made = stats.meta.get("network")
    if network is not None and _network_id(made) != _network_id(network):
        raise StatsError(f"{path}: made with network={made!r}, but network={network!r} was asked for")
    if needs_images:
        real_images_key(stats.meta)
    return stats


#: How the real images behind KID, precision/recall, density/coverage, realism, Vendi and per-digit FD are chosen
#: from the reference's images: part of every cache key and of the provenance, so a change of method never reuses
#: values made the old way (before, the first N images were used: biased for ordered files, see real_subset).
REAL_SUBSET = "uniform-v1"
#: Seed words of that draw: fixed, so every run, seed and N compares with one draw of the reference.
REAL_SUBSET_SEED = (0, 0x5265616C)


def real_subset(total: int, n: int) -> np.ndarray:
    """Which ``n`` of a reference's ``total`` real images the sample-based metrics compare with: the first ``n``
    of one fixed seeded permutation, in file order (a smaller N's images are inside a larger N's).

    Not the first ``n`` files: image sets are often ordered (MNIST's test split has NIST SD-3's writers first and
    SD-1's last; a folder of class subfolders is sorted by class), and the first N would be a biased reference.
    """
    if n >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(REAL_SUBSET_SEED).permutation(total)[:n])


def real_total(meta: dict[str, Any], data_dir: str | os.PathLike[str] | None = None) -> int:
    """How many real images the reference statistics were made from (an MNIST split's size, read from ``data_dir``,
    when not recorded)."""
    n = int(meta.get("n") or 0)
    key = real_images_key(meta)
    return n or (len(dataset_images(key, data_dir)) if key in DATASETS else 0)


def real_subset_info(meta: dict[str, Any], n: int) -> dict[str, Any]:
    """Provenance of the real images a run's sample-based metrics use (``meta``: the reference's sidecar): how
    many, of how many, drawn how, and the SHA-256 of their indices."""
    total = real_total(meta)
    idx = real_subset(total, min(n, total))
    return {"n": int(len(idx)), "of": total, "method": REAL_SUBSET if len(idx) < total else "all",
            "seed": list(REAL_SUBSET_SEED), "indices_sha256": hashlib.sha256(idx.astype("<i8").tobytes()).hexdigest()}


def _real_path(dataset: str, extractor: FeatureExtractor, n: int, total: int | None = None) -> Path:
    # The precision too: a reference may be shared across precisions, features never are (bf16 moves them ~1 %).
    prov = json.dumps({**expected_provenance(extractor), "precision": extractor.provenance().get("precision", "fp32")},
                      sort_keys=True)
    subset = "" if total is None or n >= total else f"|{REAL_SUBSET}|{total}"  # every image: the order needs no name
    key = hashlib.sha256(f"{dataset}|{prov}|{n}{subset}".encode()).hexdigest()[:24]
    return cache_dir("real_features", create=False) / f"{dataset}_{extractor.name}_{n}_{key}.npy"


def cache_real_features(dataset: str, extractor: FeatureExtractor, feats: np.ndarray) -> Path:
    """Store features of every image of ``dataset`` (e.g. saved by ``stats --save-features``), in file order."""
    path = _real_path(dataset, extractor, len(feats))
    if not cacheable(extractor):
        return path
    if unsaved := cache_write(path, lambda fh: np.save(fh, np.ascontiguousarray(feats, dtype=np.float32))):
        warnings.warn(f"real features of {dataset} [{extractor.name}]: {unsaved}", RuntimeWarning, stacklevel=2)
    return path


def _custom_key(pixel_sha256: str) -> str:
    """Cache name of your own real images: ``custom-`` and the start of their pixels' SHA-256."""
    return f"custom-{pixel_sha256[:16]}"


def real_images_key(meta: dict[str, Any]) -> str:
    """Cache name of a reference's real images: the MNIST split, or ``custom-<pixel SHA-256>``."""
    dataset = meta.get("dataset")
    if dataset in DATASETS:
        return str(dataset)
    if dataset == "custom" and meta.get("source") and meta.get("dataset_sha256"):
        return _custom_key(str(meta["dataset_sha256"]))
    if dataset == "imported":
        raise StatsError(f"the reference statistics were imported from {(meta.get('imported') or {}).get('file')} and "
                         "come without their real images, which KID, precision/recall and the other sample-based "
                         "metrics need: score only FID against them, or make the reference with 'ganeval stats --dataset'")
    raise StatsError(f"reference dataset {dataset!r} has no real images here; KID and precision/recall need them")


def _custom_images(meta: dict[str, Any], positions: np.ndarray) -> torch.Tensor:
    """The reference's own real images at ``positions``, re-read from their source and verified: a folder or zip
    in one pass that keeps those images alone (memory grows with the subset, not the set)."""
    src = Path(str(meta["source"]))
    if not src.exists():
        raise StatsError(f"{src}: the reference's real images are gone; KID and precision/recall need them")
    limit = int(meta.get("n") or 0) or None
    if streams(src):
        try:
            stream = ImageStream(src, limit, bool(meta.get("recursive")))
            images, digest = stream.subset(positions), stream.digest()
        except GanevalError as exc:
            raise StatsError(str(exc)) from exc
    else:
        real = real_images(src, limit=limit)
        every, digest = torch.as_tensor(real.images), real.meta["dataset_sha256"]
        images = every if len(positions) == len(every) else every[torch.from_numpy(positions)]
    if digest != meta["dataset_sha256"]:
        raise StatsError(f"{src}: the real images changed since the reference statistics were made (pixel SHA-256 "
                         f"{digest[:12]}…, statistics made from {str(meta['dataset_sha256'])[:12]}…)")
    return images


def real_features(stats: RefStats, extractor: FeatureExtractor, n: int, batch_size: int = 64, write_cache: bool = True,
                  dist: DistContext | None = None, notes: list[str] | None = None,
                  data_dir: str | os.PathLike[str] | None = None, read_cache: bool = True) -> torch.Tensor:
    """Pool features of ``n`` of the images the reference was made from (at most as many as it has; a fixed
    seeded subset, :func:`real_subset`), computed once and cached (``write_cache=False`` on non-zero distributed
    ranks, which never write; ``read_cache=False``: recomputed, as ``--no-cache`` says; ``dist`` splits the work
    over the ranks). A cache that cannot be written is a note
    appended to ``notes`` (a ``RuntimeWarning`` without it); ``data_dir``: where an MNIST split is read from."""
    key = real_images_key(stats.meta)
    total = real_total(stats.meta, data_dir)
    n = min(n, total)

    def images() -> Any:
        idx = real_subset(total, n)
        if key not in DATASETS:
            return _custom_images(stats.meta, idx)
        every = dataset_images(key, data_dir)[:total]
        return every if len(idx) == len(every) else every[idx]

    return _features(key, _held_batches(images, batch_size), extractor, n, batch_size, write_cache, dist, total=total,
                     notes=notes, read_cache=read_cache)


Batches = Callable[[range], Iterator[tuple[int, Any]]]


def _held_batches(images: Callable[[], Any], batch_size: int) -> Batches:
    """The batches ``mine`` of images held whole (read only once the features turn out not to be cached)."""
    return lambda mine: zip(mine, iter_batches(images(), batch_size, mine), strict=True)


def _features(key: str, batches: Batches, extractor: FeatureExtractor, n: int, batch_size: int,
              write_cache: bool, dist: DistContext | None = None, total: int | None = None,
              notes: list[str] | None = None, read_cache: bool = True) -> torch.Tensor:
    """Cached features of ``n`` images, else computed from ``batches(mine)`` (``(index, batch)`` of the batches of
    ``batch_size`` in ``mine``); under torchrun (``dist``) every rank computes its share of the batches and all
    receive the whole, so the first distributed run does not repeat the work on every rank."""
    dist = dist or DistContext()
    path = _real_path(key, extractor, n, total)
    arr = None
    if read_cache and cacheable(extractor) and path.is_file():
        try:
            arr = np.load(path, allow_pickle=False)
            if not isinstance(arr, np.ndarray):  # an archive under the .npy name
                arr.close()
                raise ValueError("not a .npy array")
            width = extractor.pool_dim or (arr.shape[1] if arr.ndim == 2 else -1)  # a custom network's: its key's
            arr = arr if arr.shape == (n, width) else None
        except CACHE_READ_ERRORS:  # damaged (truncated, empty): a miss, removed so it is written again
            discard(path)
            arr = None
    if dist.all_ok(arr is not None):  # every rank takes the same path, or the collective below would hang
        return torch.from_numpy(arr)
    n_batches = -(-n // batch_size)
    mine = dist.my_batches(n_batches)
    kept = HostRows(n, batch_size, f"{key}: the {extractor.name} extractor's features")

    def my_share() -> None:
        for i, b in batches(mine):
            kept.put(i, extractor(b)["pool"])  # into one tensor at once: per-batch tensors fragmented the heap

    dist.my_share(my_share, f"{key} [{extractor.name}]")
    feats = kept.joined(dist)
    refuse_nonfinite(extractor, feats, f"the real images ({key})")
    if write_cache and cacheable(extractor) and (unsaved := cache_write(path, lambda fh: np.save(fh, feats.numpy()))):
        if notes is None:
            warnings.warn(f"real features of {key} [{extractor.name}]: {unsaved}", RuntimeWarning, stacklevel=3)
        elif unsaved not in notes:
            notes.append(unsaved)
    return feats


def dataset_key(dataset: str | os.PathLike[str]) -> str:
    """Cache identity of a real image set: the MNIST split's name, or ``custom-<pixel SHA-256>`` of your images
    (read and verified here, so a bad path fails at once with one line)."""
    if str(dataset) in DATASETS:
        return str(dataset)
    if streams(dataset):  # hashed as it is read, never held
        try:
            return _custom_key(ImageStream(Path(dataset)).digest())
        except GanevalError as exc:
            raise StatsError(str(exc)) from exc
    return _custom_key(real_images(dataset).meta["dataset_sha256"])


def dataset_features(dataset: str | os.PathLike[str], extractor: FeatureExtractor, batch_size: int = 64,
                     write_cache: bool = True, dist: DistContext | None = None, read_cache: bool = True) -> torch.Tensor:
    """Pool features of every image of a real image set (an MNIST split, or a folder/zip/uint8 .npz of your
    images), computed once per extractor and content and cached (``dist``: split over the torchrun ranks;
    ``read_cache=False``: recomputed)."""
    if str(dataset) in DATASETS:
        images = dataset_images(str(dataset))
        return _features(str(dataset), _held_batches(lambda: images, batch_size), extractor, len(images), batch_size,
                         write_cache, dist, read_cache=read_cache)
    real = RealBatches(dataset)  # a folder or zip: read batch by batch, never held (a pass for its SHA-256 first)
    digest = real.meta["dataset_sha256"]
    if real.stream is not None:
        real.stream.expected = real.stream.n  # the features' pass hashes the count read: checked against the first

    def batches(mine: range) -> Iterator[tuple[int, Any]]:
        try:
            yield from real.batches(batch_size, mine)
        except Recoloured as exc:  # its colour was final after the SHA-256 pass: a file changed since
            raise StatsError(f"{dataset}: its images changed while being read ({exc})") from exc
        if real.stream is not None and real.stream.pass_digest != digest:  # not cached under the first pass's key
            raise StatsError(f"{dataset}: its images changed while being read (pixel SHA-256 "
                             f"{str(real.stream.pass_digest)[:12]}… now, {digest[:12]}… before)")

    return _features(_custom_key(digest), batches, extractor, real.n, batch_size, write_cache, dist, read_cache=read_cache)


def reference_provenance(meta: dict[str, Any]) -> dict[str, Any]:
    """What a report says about the reference: dataset, statistics file SHA-256, N; for your own images also
    where they are and the SHA-256 of their pixels."""
    out = {"reference": meta.get("dataset"), "reference_sha256": meta.get("file_sha256"), "reference_n": meta.get("n"),
           "reference_precision": meta.get("precision", "fp32")}  # may differ from the features' (a note says so)
    if meta.get("dataset") == "custom":
        out.update(reference_source=meta.get("source"), reference_images_sha256=meta.get("dataset_sha256"))
    if (imported := imported_summary(meta)) is not None:
        out["reference_imported"] = imported
    return out
