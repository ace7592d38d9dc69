"""What ``score`` and ``gate`` accept, resolved into an ordered series of sources to sample from.

Inputs (docs/inputs.md): ganeval checkpoints (``ckpt_*.safetensors``, a file or a folder); TorchScript
(``.pt``/``.ts``) and ONNX (``.onnx``) generators, a file or a folder of them; stored samples (a folder
or ``.zip`` of images, an ``.npz`` or ``.npy``); several targets at once (a series); from Python also a callable
``z → images`` and an image array. ``Source.open`` gives the source's samples (``ganeval.sources``).
"""

from __future__ import annotations

import errno
import hashlib
import numbers
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganeval.checkpoints import CKPT_RE, MAX_ITERATION, is_torchscript_archive, list_checkpoints, read_metadata
from ganeval.errors import CheckpointError, GanevalError, as_path, short
from ganeval.sources import generators as gens
from ganeval.sources.base import InputHints, Samples, merge_hints
from ganeval.sources.opening import OPENERS, generator_settings
from ganeval.sources.samples import image_files, is_image_name, natural_key, subfolder_images
from ganeval.sources.sizing import stored_set_plan
from ganeval.sources.state_dicts import STATE_EXTS, resolve_spec

GENERATOR_EXTS = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript"}
SAMPLE_FILE_EXTS = {".zip": "images", ".npz": "npz", ".npy": "npz"}  # kind npz: a stored array
#: Kinds whose samples are stored images (no latent control: unpaired bootstrap).
SAMPLE_KINDS = ("images", "npz", "array")


def printable(text: str) -> str:
    """``text`` with U+FFFD for surrogate escapes: a file name that is not UTF-8 (copied from a Latin-1 system)
    arrives with them, and no table, CSV, JSON or page can encode them (the path itself still opens the file)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass
class Source:
    """One element of a series: its name, iteration, kind and what ``open`` needs (``extra``)."""

    name: str
    path: Path | None
    iteration: int | None
    kind: str = "checkpoint"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.name = printable(self.name)

    def open(self, device: torch.device, n: int, seed: int) -> Samples:
        """The first ``n`` samples: generators draw rows of the seed's latent set, stored samples come in file order."""
        return OPENERS[self.kind](self, device, n, seed)


@dataclass
class Series:
    """The sources to score, in iteration order, and notes for the user (e.g. ignored files)."""

    sources: list[Source]
    notes: list[str]
    root: Path
    report_name: str = "report"  # the default report folder under ``root``; a folder's own is ``report``

    @property
    def report_dir(self) -> Path:
        """Where reports go without ``--out``: a folder's ``report/``; files picked from a folder get their own
        (``report_<names>/``), so scoring one checkpoint never replaces the whole run's report."""
        return self.root / self.report_name

    def stored_images(self, n: int, batch_size: int = 1) -> tuple[int, int | None, bool]:
        """What each image of the stored sample set here that holds the most at ``n`` samples holds as read, how
        many images that set has (``(0, None)``: none) and whether it is read batch by batch (of ``batch_size``), from
        headers alone (a folder or zip: its listing and one image's header): its first ``n`` images are held with
        their features, unless a folder or zip streams them (two batches held at a time)."""
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            return 0, None, False  # refused by the options' check, before the memory check
        sizes = [stored_set_plan(s.path, s.kind, int(n), _recursive(s)) for s in self.sources
                 if s.kind in ("images", "npz") and s.path]

        def held(size: tuple[int, int | None, bool]) -> int:
            count = min(int(n), n if size[1] is None else size[1])
            return size[0] * (min(count, 2 * batch_size) if size[2] else count)

        return max(sizes, key=held, default=(0, None, False))


def _recursive(src: Source) -> bool:
    """Whether a folder of samples is read with its whole tree (``--recursive``)."""
    hints = src.extra.get("hints")
    return bool(getattr(hints, "recursive", False))


# -- resolving -----------------------------------------------------------------------------------------------
def _number(name: str) -> int | None:
    """The last number in ``name``; None when there is none, or when it is beyond what the table's int64 iteration
    column holds (then the series is ordered by position, as ``ckpt_`` names that large are never listed)."""
    nums = re.findall(r"[0-9]+", name)  # ASCII: \d also takes digits of other scripts
    return int(nums[-1]) if nums and int(nums[-1]) <= MAX_ITERATION else None


def _metadata_iteration(path: Path) -> int | None:
    """The ``iteration`` in a ganeval checkpoint's header (a renamed checkpoint keeps its iteration); else None."""
    try:
        value = read_metadata(path).get("iteration")
    except CheckpointError:
        return None  # reported as this file's error when it is scored
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _is_ganeval_checkpoint(path: Path) -> bool:
    """A safetensors file with ganeval's header: loaded as a checkpoint even when ``--generator`` is given."""
    if path.suffix.lower() != ".safetensors":
        return False
    try:
        read_metadata(path)
    except CheckpointError:
        return False
    return True


def _safetensors_like(path: Path) -> bool:
    """Whether a file of another name could be a ganeval checkpoint: a safetensors header (8-byte length, then JSON);
    an unreadable file too (its row then says why)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return True
    return len(head) == 9 and head[8:9] == b"{"


def _what_instead(path: Path, suffix: str) -> str:
    """Why a file of unknown kind is refused, and what ganeval scores instead."""
    if is_torchscript_archive(path):  # torch.jit.save(m, "G.pth"): its class is not needed, its name is the problem
        return "a TorchScript generator under a name ganeval does not read as one: name it .pt (or .ts) to score it"
    if suffix in STATE_EXTS:
        return f"a {suffix} weight file needs its generator class: pass --generator MODULE:NAME (generator= in Python)"
    return ("not a file ganeval scores: give a ganeval checkpoint (.safetensors), a TorchScript (.pt, .ts) or ONNX "
            "generator, weight files with --generator, a folder or .zip of images, or an .npz/.npy of samples")


def _file_source(path: Path, hints: InputHints) -> Source:
    suffix = path.suffix.lower()
    if hints.generator is not None and suffix in STATE_EXTS and not _is_ganeval_checkpoint(path):
        return Source(path.name, path, _number(path.stem), "state_dict", {"hints": hints})
    kind = GENERATOR_EXTS.get(suffix) or SAMPLE_FILE_EXTS.get(suffix)
    if kind is None:
        if is_image_name(path.name):
            raise GanevalError(f"{path}: a single image is not a sample set; give the folder (or a zip) of samples")
        if suffix != ".safetensors" and not _safetensors_like(path):
            raise GanevalError(f"{path}: {_what_instead(path, suffix)}")
        m = CKPT_RE.match(path.name)
        return Source(path.name, path, int(m.group(1)) if m else _metadata_iteration(path))
    extra: dict[str, Any] = {"hints": hints}
    if kind in GENERATOR_EXTS.values():
        try:
            extra["settings"] = generator_settings(kind, path, hints)
        except CheckpointError:
            pass  # unreadable or unsafe: reported as this file's error when it is scored
    return Source(path.name, path, _number(path.stem), kind, extra)


def _ordered(sources: list[Source], what: str, given: str) -> tuple[list[Source], list[str]]:
    """Iterations from the number in each name, else the position in ``given`` order (with a note)."""
    nums = [s.iteration for s in sources]
    if len(sources) > 1 and None not in nums and len(set(nums)) == len(nums):
        ordered = sorted(sources, key=lambda s: s.iteration)  # type: ignore[arg-type, return-value]
        first = ordered[0]
        how = "the number in its name or its checkpoint metadata"
        return ordered, [f"iteration of each {what} taken from {how} ({first.name} → {first.iteration})"]
    if len(sources) > 1:
        for i, s in enumerate(sources, 1):
            s.iteration = i
        return sources, [f"not every {what} name has a distinct number: iteration = position in {given} order (1, 2, …)"]
    return sources, []


def _numbered(sources: list[Source]) -> tuple[list[Source], list[str]]:
    """Weight files by the number in each name, kept where names share one (``D_100.pt`` beside ``G_100.pt``: the
    discriminator's row fails, the generator's keeps iteration 100, as ``watch`` has it); else :func:`_ordered`."""
    nums = [s.iteration for s in sources]
    if len(sources) < 2 or None in nums or len(set(nums)) == len(nums):
        return _ordered(sources, "weight file", "file-name")
    ordered = sorted(sources, key=lambda s: (s.iteration, natural_key(s.name)))
    return ordered, [f"iteration of each weight file taken from the number in its name ({ordered[0].name} → "
                     f"{ordered[0].iteration})", *_same_iteration(ordered)]


def _ignored(path: Path, names: list[str], what: str) -> list[str]:
    if not names:
        return []
    shown = ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
    return [f"ignored {len(names)} {what} file(s) in {path}: {shown}"]


def _folder(path: Path, hints: InputHints) -> Series:
    files = sorted((p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")), key=lambda p: natural_key(p.name))
    if hints.generator is not None:
        weights = [p for p in files if p.suffix.lower() in STATE_EXTS]
        if not weights:
            raise GanevalError(f"{path}: no weight files ({', '.join(STATE_EXTS)}) for --generator {hints.generator.name}")
        sources, notes = _numbered([_file_source(p, hints) for p in weights])
        return Series(sources, notes + _ignored(path, [p.name for p in files if p not in weights], "non-weight"), path)
    refs = list_checkpoints(path)
    if refs:
        others = sorted(p.name for p in files if not CKPT_RE.match(p.name))
        sources = sorted([Source(r.path.name, r.path, r.iteration) for r in refs] + _unlisted(path, refs),
                         key=lambda s: (s.iteration is None, s.iteration or 0, s.name))
        return Series(sources, _ignored(path, others, "non-checkpoint") + _same_iteration(refs), path)
    generators = [p for p in files if p.suffix.lower() in GENERATOR_EXTS]
    if generators:
        sources, notes = _ordered([_file_source(p, hints) for p in generators], "generator file", "file-name")
        others = [p.name for p in files if p not in generators]
        return Series(sources, notes + _ignored(path, others, "non-generator"), path)
    if image_files(path, bool(hints.recursive)):
        others = [p.name for p in files if not is_image_name(p.name)]
        src = Source(path.name, path, _number(path.name), "images", {"hints": hints})
        return Series([src], _ignored(path, others, "non-image"), path)
    ours = [p.name for p in files if p.suffix.lower() == ".safetensors" and _is_ganeval_checkpoint(p)]
    weights = [p.name for p in files if p.suffix.lower() in STATE_EXTS and p.name not in ours]
    hint = f"; for weight files ({', '.join(weights[:3])}) pass their class, --generator MODULE:NAME" if weights else ""
    if ours:  # renamed ganeval checkpoints: scored as a series when given as files
        hint = (f"; {', '.join(ours[:3])}{' …' if len(ours) > 3 else ''} are ganeval checkpoints not named "
                f"ckpt_*.safetensors: give the files ({path}/*.safetensors) to score them as a series{hint}")
    if not hint and subfolder_images(path):
        hint = (f"; its subfolders hold images: pass --recursive (recursive=True) to score the whole tree as one sample "
                f"set, or give the subfolders ({path}/*/) to score each as one set of a series")
    raise GanevalError(f"{path}: no checkpoints (ckpt_*.safetensors), generator files (.onnx, .pt, .ts) or images to "
                       f"score{hint}")


def _unlisted(path: Path, refs: list[Any]) -> list[Source]:
    """Checkpoint-named entries that are no checkpoint file (a folder, a link to nothing, an iteration beyond int64):
    error rows in their place, so they are seen rather than silently left out."""
    listed = {r.path.name for r in refs}
    out = []
    for p in sorted(path.iterdir(), key=lambda q: natural_key(q.name)):
        if not CKPT_RE.match(p.name) or p.name in listed:
            continue
        why = ("is a folder, not a checkpoint file" if p.is_dir() else _dangling(p)
               if p.is_symlink() and not p.exists() else "names an iteration beyond 2^63 - 1" if p.is_file()
               else "is not a regular file")
        it = int(CKPT_RE.match(p.name).group(1))  # type: ignore[union-attr]
        out.append(Source(p.name, None, it if it <= MAX_ITERATION else None, "failed", {"error": f"{p}: {why}"}))
    return out


def _dangling(link: Path) -> str:
    """Why a link opens nothing: its target is missing, or the links go round in a loop."""
    try:
        os.stat(link)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symlink loop (its links lead back to themselves)"
    return "is a link to nothing (its target is missing)"


def _same_iteration(refs: list[Any]) -> list[str]:
    """A note per iteration that several checkpoint files share (all are scored; the last by name counts as later)."""
    by_it: dict[int, list[str]] = {}
    for r in refs:
        by_it.setdefault(r.iteration, []).append(r.path.name)
    return [f"{', '.join(names)} share iteration {it}: all scored, ordered by name (the last counts as the later one)"
            for it, names in by_it.items() if len(names) > 1]


def scorable(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is something ``score`` takes (a file, or a folder of checkpoints, generators or images, or a
    tree of images, read with ``--recursive``)."""
    p = Path(path)
    if p.is_file():
        return True
    if not p.is_dir():
        return False
    exts = {*GENERATOR_EXTS, *STATE_EXTS}  # weight files too: scored with --generator, else refused by name
    return bool(list_checkpoints(p) or image_files(p) or any(q.suffix.lower() in exts for q in p.iterdir())
                or subfolder_images(p))


def _in_memory(target: Any, hints: InputHints) -> Source:
    if isinstance(target, (np.ndarray, torch.Tensor)):
        return Source("array", None, None, "array", {"array": target, "hints": hints})
    name = getattr(target, "__name__", None) or type(target).__name__
    z_dim = gens.zdim_attribute(target)
    settings = merge_hints(f"callable {name}", {"z_dim": z_dim} if z_dim is not None else {}, hints)
    return Source(name, None, None, "callable", {"fn": target, "settings": settings, "cache_key": hints.cache_key})


def _resolve_one(target: Any, hints: InputHints) -> Series:
    if isinstance(target, Series):
        return target
    if isinstance(target, (np.ndarray, torch.Tensor)) or (callable(target) and not isinstance(target, (str, os.PathLike))):
        return Series([_in_memory(target, hints)], [], Path.cwd())
    if not isinstance(target, (str, os.PathLike)):
        raise GanevalError(f"cannot score the {type(target).__name__} {short(target)}: give a path (checkpoint, generator "
                           "file, sample folder, zip, .npz or .npy), a list of them, a callable z -> images or an image array")
    path = Path(target)
    if not path.exists():
        raise GanevalError(f"{path}: no such file or directory")
    if path.is_file():
        return Series([_file_source(path, hints)], [], path.parent, _report_name([path]))
    return _folder(path, hints)


def _report_name(paths: list[Path]) -> str:
    """``report`` for sample folders (a series of them is the run); ``report_<file stems>`` for files picked from one
    folder. A long list (``report_<first>_and_<k>_more``) or files from several folders get a digest of the selection
    too: the stems alone named other selections alike, whose reports then silently replaced each other."""
    if any(p.is_dir() for p in paths):
        return "report"
    stems = sorted((p.stem for p in paths), key=natural_key)
    joined = "_".join(stems)
    parents = {str(p.resolve().parent) for p in paths}
    if len(joined) <= 80 and len(parents) == 1:
        return f"report_{joined}"
    root = os.path.commonpath(sorted(parents))
    chosen = "\n".join(sorted(os.path.relpath(p.resolve(), root) for p in paths))
    digest = hashlib.sha256(os.fsencode(chosen)).hexdigest()[:8]  # fsencode: names that are not UTF-8 too
    if len(joined) <= 80:
        return f"report_{joined}_{digest}"
    first = os.fsencode(stems[0])[:60].decode(errors="ignore")  # a long stem cut (in bytes: names end at 255 of them)
    return f"report_{first}{f'_and_{len(stems) - 1}_more' if len(stems) > 1 else ''}_{digest}"


def resolve_target(target: Any, *, z_dim: int | None = None, z_type: str | None = None, output_range: str | None = None,
                   cache_key: str | None = None, generator: Any = None, generator_kwargs: Any = None,
                   state_key: str | None = None, recursive: bool | None = None) -> Series:
    """A path (file or folder), several paths (a series), a callable or an image array → a ``Series``.

    With ``generator`` (``"MODULE:NAME"``, ``"file.py:NAME"`` or a class), weight files (.pt, .pth, .ckpt, .bin,
    .safetensors) are state dicts of that generator (``ganeval.sources.state_dicts``). ``recursive``: a folder of
    samples is read with its whole tree (a class-per-folder tree: one sample set).
    Nothing to score, or a generator whose latent size is unknown → ``GanevalError`` (exit 2).
    """
    if generator is None and (generator_kwargs is not None or state_key is not None):
        raise GanevalError("--generator-kwargs and --state-key need --generator MODULE:NAME")
    spec = resolve_spec(generator, generator_kwargs) if generator is not None else None
    hints = InputHints(z_dim, z_type, output_range, cache_key, spec, None, state_key, recursive)
    series = _resolve_many(target, hints)
    if spec is not None and any(s.kind == "state_dict" for s in series.sources):
        # Its latent size, known from the class: a missing or contradicting --z-dim is a usage error before any work
        # (as for a TorchScript file), not the same error row for every weight file.
        z = gens.zdim_attribute(spec.build())
        merge_hints(f"{spec.flag} {spec.name}", {"z_dim": z} if z is not None else {}, hints)
    return series


def _resolve_many(target: Any, hints: InputHints) -> Series:
    """``resolve_target`` once the hints are checked: one target, or several forming one series."""
    if isinstance(target, bytes | str):  # b"path" was a series of ints; "" the current folder
        as_path(target, "target")
    if not isinstance(target, Sequence) or isinstance(target, str):
        return _resolve_one(target, hints)
    targets = list(target)
    if not targets:
        raise GanevalError("nothing to score: no target given")
    if len(targets) == 1:
        return _resolve_one(targets[0], hints)
    parts = [_resolve_one(t, hints) for t in targets]
    sources = [s for p in parts for s in p.sources]
    held = [s.path.resolve() for s in sources if s.path is not None]
    if twice := next((p for i, p in enumerate(held) if p in held[:i]), None):  # `score run run/`, a file and its folder
        raise GanevalError(f"{twice}: given more than once (the same file or folder twice in one series would be scored "
                           "twice, its iterations replaced by positions); give each once")
    notes = [n for p in parts for n in p.notes]
    paths = [Path(t) for t in targets if isinstance(t, (str, os.PathLike))]
    root = Path(os.path.commonpath([str(p.resolve().parent) for p in paths])) if paths else Path.cwd()
    names = [s.name for s in sources]
    if len(set(names)) < len(names):
        for s in sources:
            if s.path is not None:
                s.name = os.path.relpath(s.path.resolve(), root)
        seen: dict[str, int] = {}
        for s in sources:
            seen[s.name] = seen.get(s.name, 0) + 1
            s.name += f" ({seen[s.name]})" if seen[s.name] > 1 else ""
    sources, order = _ordered(sources, "input", "the given")
    return Series(sources, order + notes, _as_given(paths, root), _report_name(paths) if len(paths) == len(targets) else "report")


def _as_given(paths: list[Path], root: Path) -> Path:
    """``root`` as the paths spelled it (relative where they were), where that names the same folder: the report path
    printed was absolute for several files alone."""
    try:
        given = Path(os.path.commonpath([str(p.parent) for p in paths]))
    except ValueError:  # absolute and relative paths mixed
        return root
    return given if given.resolve() == root else root
