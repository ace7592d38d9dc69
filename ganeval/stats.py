"""Reference statistics of real data: computed by streaming, saved with a provenance sidecar, verified on load."""

from __future__ import annotations

import hashlib
import io
import json
import numbers
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

from ganeval.atomic import output_file, sha256_file, write_set
from ganeval.data import load_mnist, mnist_checksum
from ganeval.distributed import DistContext, HostRows
from ganeval.errors import GanevalError, StatsError, require_count
from ganeval.feature_stats import FeatureStats
from ganeval.features.base import FeatureExtractor, iter_batches, refuse_nonfinite, run_pass, shared_passes
from ganeval.memory import check_stats_memory
from ganeval.sources.samples import array_header, first_images, load_npy, open_npz
from ganeval.sources.sizing import image_set_shape
from ganeval.version import __version__

DATASETS = {"mnist-train": "train", "mnist-test": "test"}
#: Images in each MNIST split (28×28 uint8).
SPLIT_SIZES = {"mnist-train": 60_000, "mnist-test": 10_000}


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
    digest = sha256_file(path)
    if meta.get("file_sha256") != digest:
        raise StatsError(f"{path}: SHA-256 {digest[:16]}… does not match its sidecar; file corrupted or replaced")
    for key, want in (expect or {}).items():
        have = meta.get(key)
        if have != want:
            raise StatsError(f"{path}: made with {key}={have!r}, but {key}={want!r} was asked for")
    try:
        with open_npz(path, StatsError) as z:
            mu, sigma = z["mu"].astype(np.float64), z["sigma"].astype(np.float64)
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise StatsError(f"{path}: unreadable statistics ({exc})") from exc
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise StatsError(f"{path}: bad shapes mu {mu.shape}, sigma {sigma.shape}")
    return RefStats(mu, sigma, meta)


def dataset_images(dataset: str, data_dir: str | os.PathLike[str] | None = None) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` images of a named real dataset."""
    if dataset not in DATASETS:
        raise StatsError(f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)})")
    return load_mnist(DATASETS[dataset], data_dir)[0]


@dataclass
class RealImages:
    """Real images and how they are identified in a statistic's sidecar (``dataset``, ``dataset_sha256``, …)."""

    images: np.ndarray | torch.Tensor
    meta: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _short_note(what: str, have: int, limit: int | None) -> list[str]:
    """The note that fewer images exist than ``--limit`` asked for."""
    if limit and have < limit:
        return [f"{what}: only {have} images, fewer than the {limit} asked for; using those {have}"]
    return []


def _npz_images(path: Path) -> np.ndarray:
    """The image array of an .npz, chosen as ``ganeval score`` chooses it (its only array, else the first of
    ``sources.samples.NPZ_KEYS``), which must be uint8 (float real images would need a guessed value range)."""
    from ganeval.sources.samples import NPZ_KEYS, npz_image_key

    try:
        with open_npz(path, StatsError) as z:
            keys = list(z.files)
            key = npz_image_key(keys)
            if key is None:
                raise StatsError(f"{path}: {len(keys)} arrays ({', '.join(keys[:6])}); name the images one of "
                                 f"{', '.join(NPZ_KEYS)}")
            arr = z[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise StatsError(f"{path}: not a readable .npz of images ({exc}; object arrays/pickles are refused)") from exc
    if arr.dtype != np.uint8 or not arr.size:
        raise StatsError(f"{path}: real images in an .npz must be a non-empty uint8 array (0..255); "
                         f"{key!r} is {arr.dtype} of shape {arr.shape}")
    return arr


def _npy_images(path: Path) -> np.ndarray:
    """The image array of a ``.npy`` file (one array, as ``ganeval score`` reads a sample set), uint8 as in an .npz."""
    arr = load_npy(path, StatsError)
    if arr.dtype != np.uint8 or not arr.size:
        raise StatsError(f"{path}: real images in a .npy must be a non-empty uint8 array (0..255); it is {arr.dtype} of "
                         f"shape {arr.shape}")
    return arr


def _is_uint8(dtype: np.dtype) -> bool:
    return dtype == np.uint8  # real images: only uint8 (a float's value range would have to be guessed)


def real_images(dataset: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None,
                limit: int | None = None) -> RealImages:
    """A named MNIST split, or your own real images: a folder or zip of PNG/JPEG files, or a uint8 ``.npz``.

    Your own images are identified by the SHA-256 of their decoded pixels (file order as ``ganeval score`` reads
    samples), so statistics record what they were made from and KID/precision-recall can re-read and verify them.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 1):
        raise StatsError(f"--limit must be a positive number of images (got {limit!r})")
    if str(dataset) in DATASETS:
        images = dataset_images(str(dataset), data_dir)
        notes = _short_note(str(dataset), len(images), limit)
        images = images[:limit] if limit else images
        name = str(dataset)
        return RealImages(images, {"dataset": name, "split": DATASETS[name], "dataset_sha256": mnist_checksum(DATASETS[name])},
                          notes)
    from ganeval.sources.base import image_digest
    from ganeval.sources.samples import array_images, read_image_set

    path = Path(dataset)
    if not path.exists():
        raise StatsError(f"{path}: no such dataset (use mnist-train, mnist-test, or a folder, zip or .npz of real images)")
    try:
        if path.suffix.lower() in (".npz", ".npy") and path.is_file():
            first = first_images(path, limit, _is_uint8) if limit else None  # --limit N: only N images read
            arr, total = first or ((a := _npz_images(path) if path.suffix.lower() == ".npz" else _npy_images(path)), len(a))
            notes = _short_note(path.name, total, limit)
            images = array_images(arr[:limit] if limit else arr, "0,255", str(path))[0]
        else:
            got = read_image_set(path, limit or 2**62)
            images, notes = got.images, list(got.notes)
            if not limit:  # no N was asked for: all readable images are used, and that is no shortfall
                notes = [n for n in notes if "fewer than the" not in n]
    except GanevalError as exc:
        raise StatsError(str(exc)) from exc
    meta = {"dataset": "custom", "source": str(path.resolve()), "dataset_sha256": image_digest(images),
            "image_shape": list(images.shape[1:])}
    return RealImages(images, meta, notes)


def _array_shape(path: Path) -> tuple[int, ...] | None:
    """The image array's shape in a ``.npy`` or ``.npz`` from its header alone (None: not one that can be read so;
    reading it says why), so an array past memory is refused before it is loaded."""
    found = array_header(path)
    return None if found is None else found[0]


def dataset_shape(dataset: str | os.PathLike[str]) -> tuple[int, ...] | None:
    """The images' (N, …) before reading them: an MNIST split's, a ``.npy``/``.npz``'s from its header, a folder's or
    zip's from its listing and headers (:func:`ganeval.sources.sizing.image_set_shape`); None where none tells."""
    path = Path(dataset)
    array = path.suffix.lower() in (".npy", ".npz") and path.is_file()
    return ((SPLIT_SIZES[str(dataset)], 28, 28) if str(dataset) in SPLIT_SIZES else _array_shape(path) if array else
            image_set_shape(path) if path.is_dir() or (path.is_file() and zipfile.is_zipfile(path)) else None)


def check_dataset_memory(dataset: str | os.PathLike[str], extractor: FeatureExtractor, batch_size: int,
                         limit: int | None = None, keeps_features: bool = False,
                         shape: tuple[int, ...] | None = None, processes: int | None = None) -> None:
    """Refuse, before any work, statistics of ``dataset`` whose images, batch and kept features cannot fit in memory
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
                       processes=processes, error=StatsError)


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
) -> list[RefStats]:
    """The statistics of each of ``extractors`` over the same images of ``dataset``, read once, each batch through
    each network pass once (FID's and sFID's from one Inception pass: :func:`~ganeval.features.base.shared_passes`).

    Refused before any work when the images, a batch or (``keeps_features``: the first extractor's) features cannot
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
    shape = dataset_shape(dataset)  # sized once (a folder listed, its headers read), checked for each extractor
    for i, ex in enumerate(extractors):
        check_dataset_memory(dataset, ex, batch_size, limit, keeps_features and i == 0, shape)
    real = real_images(dataset, data_dir, limit)
    for i, ex in enumerate(extractors):
        check_dataset_memory(dataset, ex, batch_size, limit, keeps_features and i == 0, tuple(real.images.shape))
    if len(real.images) < 2:
        raise StatsError(f"{dataset}: {len(real.images)} image(s); statistics need at least 2 (a covariance)")
    for note in real.notes if dist.is_main else []:
        print(f"note: {note}", file=sys.stderr)
    n_batches = -(-len(real.images) // batch_size)
    mine = dist.my_batches(n_batches)
    name = f"{real.meta['dataset']} [{', '.join(names)}]"
    for ex in extractors:
        if ex.pool_dim is None:  # a custom network's width is known once it has seen an image: every rank, even
            dist.my_share(lambda ex=ex: ex(next(iter_batches(real.images[:1], 1))), name)  # one without a batch, sizes its sums
    accs = [FeatureStats(int(ex.pool_dim)) for ex in extractors]
    kept = HostRows(len(real.images), batch_size, f"{name}: the pool features to save", None if dist.is_main else mine,
                    torch.float32) if keeps_features else None
    passes = shared_passes(list(extractors))
    t0 = time.time()

    def my_batches() -> None:
        with tqdm(total=len(real.images), unit="img", desc=name, file=sys.stderr,
                  disable=not (progress and dist.is_main)) as bar:
            for index, batch in zip(mine, iter_batches(real.images, batch_size, mine), strict=True):
                outs = [run_pass(host, riders, batch) for host, riders in passes]
                feats = [_features_of(passes, ex, outs) for ex in extractors]  # by extractor, not name: two passes
                # may each give an 'inception' (tf1x and clean resize)
                for f, acc in zip(feats, accs, strict=True):
                    acc.update(f["pool"])
                if kept is not None:
                    kept.put(index, feats[0]["pool"])
                if on_batch:
                    on_batch(index, feats[0])
                bar.update(len(batch) * dist.world)

    dist.my_share(my_batches, name)  # a failed rank fails every rank here, not in the sum below
    seconds, out = round(time.time() - t0, 1), []
    for i, (ex, acc) in enumerate(zip(extractors, accs, strict=True)):
        acc.all_reduce(dist.all_reduce_sum)  # every rank's sums about one shared shift, added up
        refuse_nonfinite(ex, acc.sum.cpu(), name, per_image=False)  # NaN/Inf in any image's features
        meta = {
            **real.meta,
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
        out.append(RefStats(acc.mean, acc.cov, meta, kept.to_main(dist) if kept is not None and i == 0 else None))
    return out


def _features_of(passes: list[tuple[FeatureExtractor, list[FeatureExtractor]]], ex: FeatureExtractor,
                 outs: list[dict[str, dict[str, torch.Tensor]]]) -> dict[str, torch.Tensor]:
    """``ex``'s features from the outputs of ``passes`` (one per pass, keyed by name within it)."""
    return next(out[ex.name] for (host, riders), out in zip(passes, outs, strict=True)
                if any(ex is e for e in (host, *riders)))
