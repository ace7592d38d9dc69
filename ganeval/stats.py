"""Reference statistics of real data: computed by streaming, saved with a provenance sidecar, verified on load."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganeval.atomic import output_file, write_set
from ganeval.distributed import DistContext, HostRows
from ganeval.errors import StatsError, require_count
from ganeval.feature_stats import FeatureStats
from ganeval.features.base import FeatureExtractor, refuse_nonfinite, run_pass, shared_passes
from ganeval.memory import check_stats_memory
from ganeval.real_data import (  # noqa: F401 - re-exported: where statistics' callers have always found them
    DATASETS,
    SPLIT_SIZES,
    RealBatches,
    RealImages,
    dataset_images,
    dataset_shape,
    real_images,
    streams,
)
from ganeval.sources.image_stream import Recoloured
from ganeval.sources.samples import open_npz
from ganeval.version import __version__


def _shipped_dir() -> Path:
    """The shipped statistics: inside the installed package (a wheel carries them as ``ganeval/reference_stats``),
    else the source tree's top-level ``reference_stats/`` (a checkout or an editable install)."""
    package = Path(__file__).resolve().parent
    inside = package / "reference_stats"
    return inside if inside.is_dir() else package.parent / "reference_stats"


SHIPPED_DIR = _shipped_dir()
#: Provenance keys that must agree between a statistic and the extractor asked for.
MATCH_KEYS = ("extractor", "network", "network_kwargs", "network_source_sha256", "weights_sha256", "resize", "channels")


@dataclass
class RefStats:
    """Mean (float64) and covariance of real features, plus the sidecar metadata."""

    mu: np.ndarray
    sigma: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    #: Every image's pool features (float32, in dataset order), kept by ``compute_stats(keeps_features=True)`` on the
    #: main process for ``--save-features``; None otherwise.
    features: torch.Tensor | None = field(default=None, repr=False, compare=False)


def stats_path(dataset: str, extractor: str, root: Path = SHIPPED_DIR) -> Path:
    """Where the shipped statistics of ``dataset`` for ``extractor`` live."""
    return root / f"{dataset}_{extractor}.npz"


def check_stats_out(path: str | os.PathLike[str], what: str = "--out") -> Path:
    """``path`` as where statistics go, refused before any work unless it is an ``.npz`` that can be written (not a
    folder, no file blocking a parent; its ``.json`` sidecar likewise)."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise StatsError(f"{what} {path}: statistics are written as an .npz (with a .json sidecar beside it); "
                         f"name it *.npz")
    output_file(path, what, StatsError)
    if path.with_suffix(".json").is_dir():
        raise StatsError(f"{what} {path}: its sidecar {path.with_suffix('.json')} is a folder; give another name")
    return path


def stats_files(path: str | os.PathLike[str], stats: RefStats, sigma_dtype: str = "float32") -> dict[Path, bytes]:
    """The bytes of ``PATH.json`` (the sidecar, recording the npz's SHA-256) and ``PATH`` (.npz), in the order
    :func:`ganeval.atomic.write_set` writes them: the npz last, as the set's mark (a folder of statistics is read by
    its ``*.npz``), so other files (``--save-features``) can join the set."""
    path = check_stats_out(path, "statistics file")
    buf = io.BytesIO()
    np.savez_compressed(buf, mu=stats.mu.astype(np.float64), sigma=stats.sigma.astype(sigma_dtype))
    meta = {**stats.meta, "sigma_dtype": sigma_dtype, "file_sha256": hashlib.sha256(buf.getvalue()).hexdigest()}
    return {path.with_suffix(".json"): (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8"),
            path: buf.getvalue()}


def save_stats(path: str | os.PathLike[str], stats: RefStats, sigma_dtype: str = "float32") -> None:
    """Write ``PATH`` (.npz) and ``PATH.json`` as one set (:func:`ganeval.atomic.write_set`): both new or both as
    they were, also when the npz's rename fails after the sidecar's (its sidecar is put back)."""
    write_set(stats_files(path, stats, sigma_dtype))


def load_stats(path: str | os.PathLike[str], expect: dict[str, Any] | None = None) -> RefStats:
    """Load and verify statistics; ``expect`` (provenance keys) must match the sidecar or the load is refused."""
    path = Path(path)
    side = path.with_suffix(".json")
    if path.suffix.lower() == ".json" and path.with_suffix(".npz").is_file():
        raise StatsError(f"{path}: this is the statistics' sidecar (their provenance); give the statistics file "
                         f"{path.with_suffix('.npz').name}")
    if not path.is_file():
        raise StatsError(f"{path}: statistics file not found")
    if not side.is_file():
        raise StatsError(f"{side}: sidecar missing (provenance unknown, refusing {path.name})")
    try:
        meta = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StatsError(f"{side}: sidecar is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise StatsError(f"{side}: sidecar must be a JSON object of provenance keys, found a {type(meta).__name__}")
    try:  # read once: the bytes hashed are the bytes loaded, also when the file is replaced meanwhile
        data = path.read_bytes()
    except OSError as exc:
        raise StatsError(f"{path}: unreadable statistics ({exc.strerror or exc})") from exc
    digest = hashlib.sha256(data).hexdigest()
    if meta.get("file_sha256") != digest:
        raise StatsError(f"{path}: SHA-256 {digest[:16]}… does not match its sidecar; file corrupted or replaced")
    for key, want in (expect or {}).items():
        have = meta.get(key)
        if have != want:
            raise StatsError(f"{path}: made with {key}={have!r}, but {key}={want!r} was asked for")
    try:
        with open_npz(io.BytesIO(data), StatsError, name=path) as z:
            mu, sigma = z["mu"].astype(np.float64), z["sigma"].astype(np.float64)
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise StatsError(f"{path}: unreadable statistics ({exc})") from exc
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise StatsError(f"{path}: bad shapes mu {mu.shape}, sigma {sigma.shape}")
    if mu.size == 0:
        raise StatsError(f"{path}: mu and sigma are empty (D = 0): statistics of no features")
    return RefStats(mu, sigma, meta)


def check_dataset_memory(dataset: str | os.PathLike[str], extractor: FeatureExtractor, batch_size: int,
                         limit: int | None = None, keeps_features: bool = False,
                         shape: tuple[int, ...] | None = None, processes: int | None = None,
                         streamed: bool | None = None) -> None:
    """Refuse, before any work, statistics of ``dataset`` whose images (unless ``streamed``: read batch by batch, a
    folder or zip; None: :func:`streams`), batch and kept features cannot fit in memory
    (:func:`ganeval.memory.check_stats_memory`). ``shape``: the images' (N, …) where known already; else
    :func:`dataset_shape`'s."""
    if shape is None:
        shape = dataset_shape(dataset)
    if not shape or len(shape) < 2:
        return
    n = min(int(shape[0]), limit) if limit else int(shape[0])
    channels = 3 if len(shape) == 4 and 3 in shape[1:] else 1
    check_stats_memory(n, int(np.prod(shape[1:], dtype=object)), batch_size, extractor.stats_name, extractor.pool_dim,
                       extractor.device, dataset=str(dataset), logits=1008 if extractor.name == "inception" and
                       extractor.has_logits else 10 if extractor.name == "mnist" else 0, channels=channels,
                       keeps_features=keeps_features, precision=getattr(extractor, "precision", "fp32"),
                       processes=processes, held=not (streams(dataset) if streamed is None else streamed), error=StatsError)


def compute_stats(dataset: str | os.PathLike[str], extractor: FeatureExtractor, batch_size: int = 64,
                  data_dir: str | os.PathLike[str] | None = None, **options: Any) -> RefStats:
    """Mean and covariance of ``extractor``'s pool features over ``dataset`` (see :func:`real_images`):
    :func:`compute_stats_set` of one extractor, with its ``options`` (``limit``: the first N images, ``command``,
    ``dist``, ``progress``, ``on_batch``).

    ``keeps_features=True`` (``--save-features``): every image's pool features are also returned, as ``features``
    on the main process: each batch's written into one tensor as it is computed (under torchrun the other ranks hold
    their share until it is sent to rank 0), so they are held once, not as batches and then their join.
    """
    return compute_stats_set(dataset, [extractor], batch_size, data_dir, **options)[0]


def compute_stats_set(
    dataset: str | os.PathLike[str],
    extractors: Sequence[FeatureExtractor],
    batch_size: int = 64,
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    on_batch: Callable[[int, dict[str, Any]], None] | None = None,
    command: str | None = None,
    dist: DistContext | None = None,
    progress: bool = True,
    keeps_features: bool = False,
    recursive: bool = False,
) -> list[RefStats]:
    """The statistics of each of ``extractors`` over the same images of ``dataset``, read once, each batch through
    each network pass once (FID's and sFID's from one Inception pass: :func:`~ganeval.features.base.shared_passes`).
    A folder (``recursive``: its whole tree) or zip is decoded batch by batch (:class:`~ganeval.real_data.RealBatches`),
    never held whole.

    Refused before any work when the held images, a batch or (``keeps_features``: the first extractor's) features cannot
    fit in memory (:func:`check_dataset_memory`). ``on_batch`` sees the first extractor's features. Under torchrun
    (``dist``) rank r takes global batches r, r+W, … and the float64 sums are added over ranks, so every rank returns
    the statistics of the whole dataset: the single-process result up to float64 summation order.
    """
    from tqdm import tqdm

    dist = dist or DistContext()
    require_count(batch_size, 1, "--batch-size", StatsError)
    names = [getattr(ex, "stats_name", ex.name) for ex in extractors]  # inception and inception-clean: two
    if not extractors or len(set(names)) < len(extractors):
        raise StatsError("statistics need one or more extractors, each once")
    shape, streamed = dataset_shape(dataset, recursive), streams(dataset)  # sized once (a folder listed, its headers read)
    for i, ex in enumerate(extractors):
        check_dataset_memory(dataset, ex, batch_size, limit, keeps_features and i == 0, shape, streamed=streamed)
    real = RealBatches(dataset, data_dir, limit, recursive)
    if real.held is not None:
        for i, ex in enumerate(extractors):
            check_dataset_memory(dataset, ex, batch_size, limit, keeps_features and i == 0, tuple(real.held.images.shape))
        _enough(dataset, real, dist)
    mine = dist.my_batches(-(-real.expected // batch_size))
    name = f"{real.held.meta['dataset'] if real.held is not None else 'custom'} [{', '.join(names)}]"
    for ex in extractors:
        if ex.pool_dim is None:  # a custom network's width is known once it has seen an image: every rank, even
            dist.my_share(lambda ex=ex: ex(real.first()), name)  # one without a batch, sizes its sums
    passes = shared_passes(list(extractors))
    t0 = time.time()
    accs: list[FeatureStats] = []
    kept: list[HostRows] = []

    def my_batches() -> None:
        with tqdm(total=real.expected, unit="img", desc=name, file=sys.stderr,
                  disable=not (progress and dist.is_main)) as bar:
            while True:  # once, or again where a stream's colour turned out other than its headers said
                accs[:] = [FeatureStats(int(ex.pool_dim)) for ex in extractors]
                kept[:] = [HostRows(real.expected, batch_size, f"{name}: the pool features to save",
                                    None if dist.is_main else mine, torch.float32, ragged=streamed)] if keeps_features else []
                try:
                    for index, batch in real.batches(batch_size, mine):
                        _one_batch(index, batch, passes, extractors, accs, kept, on_batch)
                        bar.update(len(batch) * dist.world)
                    return
                except Recoloured:
                    bar.reset()

    dist.my_share(my_batches, name)  # a failed rank fails every rank here, not in the sum below
    if real.held is None:
        _enough(dataset, real, dist)
        for k in kept:
            k.settle(real.n)  # a stream's unreadable files: fewer rows than its headers promised
    seconds, out = round(time.time() - t0, 1), []
    for i, (ex, acc) in enumerate(zip(extractors, accs, strict=True)):
        acc.all_reduce(dist.all_reduce_sum)  # every rank's sums about one shared shift, added up
        refuse_nonfinite(ex, acc.sum.cpu(), name, per_image=False)  # NaN/Inf in any image's features
        meta = {
            **real.meta,  # a stream's pixel SHA-256 is known once it has been read
            "n": acc.n,
            **ex.provenance(),
            "accumulation": "float64",
            "world_size": dist.world,
            "package_version": __version__,
            "command": command or " ".join(sys.argv),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": seconds,
            **({"computed_with": [n for n, e in zip(names, extractors, strict=True) if e is not ex]} if len(extractors) > 1 else {}),
        }
        out.append(RefStats(acc.mean, acc.cov, meta, kept[0].to_main(dist) if kept and i == 0 else None))
    return out


def _enough(dataset: str | os.PathLike[str], real: RealBatches, dist: DistContext) -> None:
    """Print the read's notes (on the main process); refuse fewer than 2 images."""
    for note in real.notes if dist.is_main else []:
        print(f"note: {note}", file=sys.stderr)
    if real.n < 2:
        raise StatsError(f"{dataset}: {real.n} image(s); statistics need at least 2 (a covariance)")


def _one_batch(index: int, batch: torch.Tensor, passes: list[tuple[FeatureExtractor, list[FeatureExtractor]]],
               extractors: Sequence[FeatureExtractor], accs: list[FeatureStats], kept: list[HostRows],
               on_batch: Callable[[int, dict[str, Any]], None] | None) -> None:
    """One batch through each network pass once, into every extractor's sums (and the first's kept features)."""
    outs = [run_pass(host, riders, batch) for host, riders in passes]
    feats = [_features_of(passes, ex, outs) for ex in extractors]  # by extractor, not name: two passes may each
    for f, acc in zip(feats, accs, strict=True):  # give an 'inception' (tf1x and clean resize)
        acc.update(f["pool"])
    for k in kept:
        k.put(index, feats[0]["pool"])
    if on_batch:
        on_batch(index, feats[0])


def _features_of(passes: list[tuple[FeatureExtractor, list[FeatureExtractor]]], ex: FeatureExtractor,
                 outs: list[dict[str, dict[str, torch.Tensor]]]) -> dict[str, torch.Tensor]:
    """``ex``'s features from the outputs of ``passes`` (one per pass, keyed by name within it)."""
    return next(out[ex.name] for (host, riders), out in zip(passes, outs, strict=True)
                if any(ex is e for e in (host, *riders)))
