"""Reference statistics made by another tool (a ``mu``/``sigma`` .npz from torch-fidelity or clean-fid), imported
with their origin recorded, so a FID against published or already-computed statistics needs no pass over real data.

Only tools whose Inception pipeline ganeval reproduces are accepted: their FIDs are then on ganeval's scale. What
ganeval cannot check (which images, which weights file) is recorded as the user's declaration, never as fact.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ganeval.atomic import sha256_file
from ganeval.errors import StatsError, as_path, refused_global, require_count
from ganeval.features.base import FeatureExtractor
from ganeval.sources.samples import open_npz
from ganeval.stats import RefStats, check_stats_out
from ganeval.version import __version__

#: Tools (and modes) whose statistics mean what ganeval's do, and the extractor that computes the same features.
MADE_BY = {
    "torch-fidelity": "inception",  # its own TF-1.x bilinear resize, the TF 2015-12-05 Inception (ganeval's default)
    "clean-fid-legacy-tensorflow": "inception",  # clean-fid mode="legacy_tensorflow": the same resize and network
    "clean-fid": "inception-clean",  # clean-fid's default mode="clean": PIL bicubic on float32
    # OpenAI guided-diffusion's evaluator (its reference batches, VIRTUAL_*.npz): the same TF 2015-12-05 graph, fed
    # at ExpandDims as torch-fidelity emulates it; mu/sigma are pool_3's, mu_s/sigma_s sFID's mixed_6/conv[..., :7]
    "guided-diffusion": "inception",
    "guided-diffusion-spatial": "inception-spatial",
}
#: The arrays a tool's file keeps its mean and covariance in, where not ``mu`` and ``sigma``.
KEYS = {"guided-diffusion-spatial": ("mu_s", "sigma_s")}
#: Tools whose resize ganeval does not reproduce: refused, with the reason, rather than compared wrongly.
NOT_COMPARABLE = {
    "pytorch-fid": "pytorch-fid resizes with torch's bilinear interpolation (clean-fid's legacy_pytorch), which is "
                   "neither of ganeval's resizes",
    "clean-fid-legacy-pytorch": "clean-fid's legacy_pytorch mode resizes with torch's bilinear interpolation, which is "
                                "neither of ganeval's resizes",
}
#: Relative asymmetry and negative eigenvalue (of the largest) a covariance written by numpy may have.
TOLERANCE = 1e-6
#: Largest FD between imported statistics and ganeval's own of the same images that counts as "the same pipeline".
#: For scale (shipped statistics): float32 rounding of sigma 2e-11; MNIST test vs train 1.02; the same test
#: images through the tf1x and the clean resize 31.9.
VERIFY_MAX_FD = 0.01


def _numpy_globals() -> list[Any]:
    """What ``torch.load(weights_only=True)`` must allow to rebuild numpy arrays (torch-fidelity's cache files hold
    them): numpy's array reconstructor under its numpy 2 and numpy 1 names, and the array and dtype classes of
    numbers (bool, integers, floats; complex ones so that they are refused by name). Data constructors only;
    nothing that runs code."""
    from numpy._core.multiarray import _reconstruct

    numeric = {type(np.dtype(code)) for code in "?" + np.typecodes["AllInteger"] + np.typecodes["AllFloat"]}
    return [_reconstruct, (_reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype,
            *sorted(numeric, key=lambda t: t.__name__)]


def _as_array(path: Path, key: str, value: Any) -> Any:
    """A tensor as a numpy array; one without a numpy dtype (bfloat16, float8, complex32) widened exactly to float64
    (complex128). Anything else is returned as it is."""
    import torch

    if not isinstance(value, torch.Tensor):
        return value
    t = value.detach()
    if t.is_meta:  # a shape without values: nothing to copy out
        raise StatsError(f"{path}: {key} is a tensor without data (meta device); mu and sigma must hold numbers")
    try:
        t = t.cpu()
        if t.layout != torch.strided:
            t = t.to_dense()
        try:
            return t.numpy()
        except TypeError:  # "Got unsupported ScalarType BFloat16"
            return t.to(torch.complex128 if t.is_complex() else torch.float64).numpy()
    except (TypeError, RuntimeError, ValueError, NotImplementedError) as exc:
        raise StatsError(f"{path}: {key} is a {t.dtype} tensor ganeval cannot read as numbers "
                         f"({exc.__class__.__name__})") from exc


def _read_pt(path: Path) -> dict[str, Any]:
    """torch-fidelity's cached statistics (``*-stat-fid-2048.pt``: a dict of numpy arrays), read without unpickling
    code: ``weights_only=True`` with numpy's array constructors allowed."""
    import torch

    try:
        with torch.serialization.safe_globals(_numpy_globals()), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Detected pickle protocol 4": a second line beside a refusal
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # torch's message advises weights_only=False: never passed on
        found = refused_global(exc)
        if not found and not zipfile.is_zipfile(path):  # torch.save's legacy format, or a plain pickle
            raise StatsError(f"{path}: not a statistics file torch.load(weights_only=True) can read (a pickle it "
                             "refused, or a damaged file); nothing in it was run") from exc
        if found and (dtype := re.fullmatch(r"numpy\.dtypes\.(\w+)DType", found)):  # arrays of strings, dates, objects
            raise StatsError(f"{path}: holds numpy arrays of dtype {dtype.group(1)} ({found}), not numbers; mu and "
                             "sigma must be numeric arrays") from exc
        what = f", such as {found}," if found else ""
        raise StatsError(f"{path}: holds objects other than tensors and numpy arrays{what} which are not unpickled "
                         "(torch.load with weights_only=True refused it); not a statistics file") from exc
    except Exception as exc:  # noqa: BLE001 - any other refusal (truncation, not a torch file) is one line
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        first = "" if "weights_only" in first else first  # torch's advice to turn the safety off: not passed on
        raise StatsError(f"{path}: not a statistics file torch.load(weights_only=True) can read "
                         f"({exc.__class__.__name__}{': ' + first if first else ''})") from exc
    if not isinstance(data, dict):
        raise StatsError(f"{path}: expected a dict with 'mu' and 'sigma', found {type(data).__name__}")
    return {k: _as_array(path, str(k), v) for k, v in data.items()}


def _read_npz(path: Path, keys: tuple[str, str]) -> dict[str, Any]:
    """The arrays ``keys`` of ``path`` (None for the others it holds: a reference batch's images are not read)."""
    try:
        with open_npz(path, StatsError) as z:
            return {k: z[k] if k in keys else None for k in z.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:  # not an npz, a pickle inside, truncated
        raise StatsError(f"{path}: not a readable .npz of plain arrays ({exc})") from exc


def read_foreign_stats(path: str | os.PathLike[str], keys: tuple[str, str] = ("mu", "sigma")) -> tuple[np.ndarray, np.ndarray]:
    """The mean and covariance (arrays ``keys``: ``mu`` and ``sigma``, or a guided-diffusion batch's ``mu_s`` and
    ``sigma_s``) of a plain .npz (clean-fid, pytorch-fid, guided-diffusion) or of torch-fidelity's cached ``.pt``,
    checked to be a mean and a covariance. Nothing is unpickled beyond numpy arrays."""
    path = Path(path)
    if not path.is_file():
        raise StatsError(f"{path}: statistics file not found")
    data = _read_pt(path) if path.suffix.lower() in (".pt", ".pth") else _read_npz(path, keys)
    m, s = keys
    if not set(keys) <= set(data):
        where = ("the spatial statistics of guided-diffusion's reference batches" if m != "mu" else
                 "the format of torch-fidelity, clean-fid, pytorch-fid and guided-diffusion")
        raise StatsError(f"{path}: expected arrays '{m}' and '{s}' ({where}), found {sorted(data) or 'none'}")
    for key in keys:
        if np.iscomplexobj(data[key]):
            raise StatsError(f"{path}: {key} is complex ({np.asarray(data[key]).dtype}); a mean and a covariance are real")
        dtype = np.asarray(data[key]).dtype
        if dtype.kind not in "biuf":  # strings, dates, timedeltas, structured records: numpy would parse or cast them
            raise StatsError(f"{path}: {key} is a {dtype} array, not numbers; {m} and {s} must be numeric arrays")
    try:
        mu, sigma = np.asarray(data[m], np.float64), np.asarray(data[s], np.float64)
    except (TypeError, ValueError) as exc:
        raise StatsError(f"{path}: {m} and {s} must be numeric arrays ({exc})") from exc
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise StatsError(f"{path}: bad shapes mu {mu.shape}, sigma {sigma.shape} (want (D,) and (D, D))")
    if not mu.size:
        raise StatsError(f"{path}: mu and sigma are empty (D = 0)")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise StatsError(f"{path}: mu or sigma holds NaN or infinity")
    scale = float(np.abs(sigma).max()) or 1.0
    if float(np.abs(sigma - sigma.T).max()) > TOLERANCE * scale:
        raise StatsError(f"{path}: sigma is not symmetric, so it is not a covariance")
    eig = np.linalg.eigvalsh((sigma + sigma.T) / 2)
    if eig[0] < -TOLERANCE * max(float(eig[-1]), 1e-30):
        raise StatsError(f"{path}: sigma has a negative eigenvalue ({eig[0]:.3g}), so it is not a covariance")
    return mu, sigma


def extractor_for(made_by: str, path: str | os.PathLike[str]) -> str:
    """The extractor whose features statistics made by ``made_by`` hold; refuses tools whose resize ganeval lacks."""
    if isinstance(made_by, str) and made_by in NOT_COMPARABLE:
        raise StatsError(f"{Path(path).name}: statistics made by {made_by} are not on ganeval's scale: "
                         f"{NOT_COMPARABLE[made_by]}; compute them with 'ganeval stats --dataset …' instead")
    if not isinstance(made_by, str) or made_by not in MADE_BY:
        raise StatsError(f"unknown tool {made_by!r} (known: {', '.join([*MADE_BY, *NOT_COMPARABLE])})")
    return MADE_BY[made_by]


#: What a ganeval export's record (``FILE.ganeval.json``) gives an import of that file back: the images the
#: statistics were made from and how.
EXPORTED_KEYS = ("dataset", "split", "source", "recursive", "dataset_sha256", "image_shape", "n", "precision")


def export_record(path: Path, digest: str, extractor: FeatureExtractor) -> dict[str, Any] | None:
    """The statistics' provenance from ``path``'s ganeval export record, when there is one and it is of this very
    file (its recorded SHA-256 is ``digest``); refused when it says they were made another way than ``extractor``
    works (weights, resize: as ``load_stats`` refuses a reference), since the values would then be labelled wrongly."""
    from ganeval.stats import MATCH_KEYS

    side = path.with_name(path.name + ".ganeval.json")
    try:
        record = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none (a foreign file), or not readable: the file is imported as declared
        return None
    stats = record.get("statistics") if isinstance(record, dict) else None
    exported = record.get("exported") if isinstance(record, dict) else None
    if not isinstance(stats, dict) or not isinstance(exported, dict) or exported.get("file_sha256") != digest:
        return None
    prov = extractor.provenance()
    whole = getattr(getattr(extractor, "weights", None), "whole_sha256", None)  # identity before fc.* was left out
    for key in (k for k in MATCH_KEYS if k in prov and k in stats):
        if stats[key] != prov[key] and not (key == "weights_sha256" and whole and stats[key] == whole):
            raise StatsError(f"{path}: made with {key}={stats[key]!r} (its {side.name}), but {key}={prov[key]!r} was "
                             "asked for")
    out = {k: stats[k] for k in EXPORTED_KEYS if k in stats}
    if isinstance(stats.get("imported"), dict):  # statistics ganeval had imported itself: where they came from first
        out["imported"] = stats["imported"]
    return out


def import_stats(path: str | os.PathLike[str], made_by: str, extractor: FeatureExtractor, n: int | None = None,
                 description: str | None = None, command: str | None = None) -> RefStats:
    """Statistics from ``path`` as a ganeval reference for ``extractor`` (which must be ``MADE_BY[made_by]``).

    The sidecar keeps ``extractor``'s provenance (the pipeline ganeval scores with, which the tool's matches) and an
    ``imported`` record: the file's name and SHA-256, the tool, and what the user declared (``n``, ``description``).
    Such a reference has no real images, so KID, precision/recall and the other sample-based metrics refuse it.
    A file ganeval exported keeps what its ``FILE.ganeval.json`` records (``EXPORTED_KEYS``: its images, N and
    precision), so it has its real images again; one whose record names other weights or another resize is refused.
    """
    want, have = extractor_for(made_by, path), getattr(extractor, "stats_name", extractor.name)
    if have != want:
        raise StatsError(f"statistics made by {made_by} are {want} statistics, not {have}")
    mu, sigma = read_foreign_stats(path, KEYS.get(made_by, ("mu", "sigma")))
    if extractor.pool_dim is not None and mu.size != extractor.pool_dim:
        raise StatsError(f"{path}: {mu.size}-d statistics, but {have} features are {extractor.pool_dim}-d "
                         "(made with another layer or network?)")
    if n is not None:  # 5.5 was written into the sidecar, "5" raised a TypeError
        require_count(n, 2, "--n (the number of images the statistics were made from)", StatsError)
    src = Path(path)
    digest = sha256_file(src)
    exported = export_record(src, digest, extractor)
    if exported is not None and n is not None and exported.get("n") not in (None, n):
        raise StatsError(f"{src}: declared --n {n}, but its {src.name}.ganeval.json records n={exported['n']}")
    earlier = (exported or {}).pop("imported", None)  # exported after an import: that import's record travels on
    meta: dict[str, Any] = {
        "dataset": "imported",
        "n": n,
        **extractor.provenance(),
        **(exported or {}),
        "imported": {"file": src.name, "file_sha256": digest, "made_by": made_by,
                     "description": description, "n_declared": n is not None, "verified": False,
                     **({"export_record": f"{src.name}.ganeval.json"} if exported is not None else {}),
                     **({"previous": earlier} if earlier else {})},
        "package_version": __version__,
        "command": command or "",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return RefStats(mu, sigma, meta)


def verify_import(stats: RefStats, own: RefStats) -> RefStats:
    """``stats`` (imported) checked against ``own``, ganeval's statistics of the images the tool is said to have
    used: refused unless their Fréchet distance is at most ``VERIFY_MAX_FD``. The result keeps the tool's values and
    takes the images' identity from ``own``, so the reference has real images (KID, precision/recall can use it)."""
    from ganeval.metrics.fid import frechet_distance

    info = dict(stats.meta["imported"])
    declared = stats.meta.get("n")
    if declared is not None and declared != own.meta["n"]:
        raise StatsError(f"{info['file']}: declared --n {declared}, but the images to verify with are {own.meta['n']}")
    fd = frechet_distance(stats.mu, stats.sigma, own.mu, own.sigma, n2=own.meta["n"])  # own's count bounds the rank
    if not fd <= VERIFY_MAX_FD:
        raise StatsError(f"{info['file']}: FD {fd:.4g} from ganeval's statistics of {own.meta.get('dataset')} "
                         f"({own.meta.get('source', own.meta.get('split'))}), above {VERIFY_MAX_FD}: not made from these "
                         "images with this pipeline (other images, another subset or order, resize or weights)")
    info.update(verified=True, fd_to_ganeval=fd, verified_n=own.meta["n"])
    keep = {k: v for k, v in stats.meta.items() if k == "precision" or k not in ("dataset", *EXPORTED_KEYS)}
    images = {k: own.meta[k] for k in ("dataset", "split", "source", "dataset_sha256", "image_shape") if k in own.meta}
    return RefStats(stats.mu, stats.sigma, {**keep, **images, "n": own.meta["n"], "imported": info})


def imported_summary(meta: dict[str, Any]) -> str | None:
    """One line for reports: where an imported reference came from (None for statistics ganeval made)."""
    info = meta.get("imported")
    if not isinstance(info, dict):
        return None
    what = f", {info['description']}" if info.get("description") else ""
    check = (f"verified against the images by ganeval: FD {info.get('fd_to_ganeval', float('nan')):.2g} to its own statistics"
             if info.get("verified") else
             f"exported by ganeval from statistics it had imported, {imported_summary({'imported': info['previous']})}"
             if isinstance(info.get("previous"), dict) else
             f"exported by ganeval: images, N and weights as {info['export_record']} records"
             if info.get("export_record") else "images and weights as declared, not verified by ganeval")
    return (f"imported from {info.get('file')} (SHA-256 {str(info.get('file_sha256'))[:12]}…), made by "
            f"{info.get('made_by')}{what}; {check}")


def import_stats_file(path: str | os.PathLike[str], made_by: str, out: str | os.PathLike[str], n: int | None = None,
                      description: str | None = None, weights_path: str | os.PathLike[str] | None = None,
                      command: str | None = None, verify_with: str | os.PathLike[str] | None = None,
                      device: str = "auto", batch_size: int = 64, progress: bool = True,
                      data_dir: str | os.PathLike[str] | None = None) -> RefStats:
    """Import ``path`` (see :func:`import_stats`) and write it as ``out`` (.npz and .json sidecar, atomically), with
    sigma in float64 as the tool wrote it, so FIDs against it equal the tool's own. ``verify_with``: the real images
    the tool used (an MNIST split, read from ``data_dir``, or a folder, zip or uint8 .npz), checked by
    :func:`verify_import` with one Inception pass over them. Returns what was written."""
    from ganeval.features import get_extractor
    from ganeval.stats import compute_stats, save_stats

    path, out = as_path(path, "the statistics file", StatsError), as_path(out, "--out", StatsError)
    if weights_path is not None:
        as_path(weights_path, "--weights", StatsError)
    check_stats_out(out)  # before reading, and before an Inception pass over --verify-with
    if Path(path).resolve() in (Path(out).resolve(), Path(out).resolve().with_suffix(".json")):  # out is an .npz
        raise StatsError(f"--out {out}: is the file being imported (or its sidecar would replace it); write the "
                         "imported statistics elsewhere")
    extractor = get_extractor(extractor_for(made_by, path), device=device if verify_with else "cpu", weights_path=weights_path)
    stats = import_stats(path, made_by, extractor, n=n, description=description, command=command)
    if verify_with is not None:
        stats = verify_import(stats, compute_stats(verify_with, extractor, batch_size, data_dir, progress=progress))
    save_stats(out, stats, sigma_dtype="float64")
    return stats
