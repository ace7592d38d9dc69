"""Generator checkpoints as safetensors: weights plus JSON metadata in the header, never pickle."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganeval.atomic import atomic_path, sha256_file
from ganeval.devices import resolve_device
from ganeval.errors import CheckpointError, first_line, require_bool, short
from ganeval.models import CONFIG_ERRORS, build_generator, build_meta
from ganeval.version import __version__

CKPT_RE = re.compile(r"^ckpt_([0-9]+)\.safetensors$")  # ASCII digits: \d takes ٣ too, and int() reads it
#: Largest iteration a table column (int64) holds.
MAX_ITERATION = 2**63 - 1
META_KEY = "ganeval"


def checkpoint_name(iteration: int) -> str:
    """``ckpt_{iteration:07d}.safetensors``."""
    return f"ckpt_{iteration:07d}.safetensors"


def save_checkpoint(
    path: str | os.PathLike[str],
    generator: nn.Module,
    meta: dict[str, Any],
    ema: nn.Module | None = None,
) -> Path:
    """Write generator (and EMA) weights with ``meta`` atomically; returns the path."""
    from safetensors.torch import save_file

    tensors = {f"g.{k}": v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    if ema is not None:
        tensors.update({f"g_ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    full = {"format": 1, "package_version": __version__, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **meta}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(full, sort_keys=True)})
    return path


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ganeval metadata of a checkpoint, read from the safetensors header alone."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path}: not a safetensors checkpoint (file too short)")
            n = int.from_bytes(head, "little")
            size = path.stat().st_size
            if n <= 0 or n > min(size - 8, 100 << 20):
                raise CheckpointError(f"{path}: not a safetensors checkpoint (bad header length; pickles are refused)")
            header = json.loads(fh.read(n))
    except OSError as exc:  # missing, a folder, unreadable: the system's reason, as score and gate say it
        raise CheckpointError(f"{path}: {exc.strerror or exc.__class__.__name__}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not a safetensors checkpoint ({exc.__class__.__name__})") from exc
    extra = header.get("__metadata__") if isinstance(header, dict) else None
    meta = extra.get(META_KEY) if isinstance(extra, dict) else None
    if meta is None:
        raise CheckpointError(f"{path}: safetensors file without ganeval metadata (not a ganeval checkpoint)")
    try:
        parsed = json.loads(meta)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: ganeval metadata is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise CheckpointError(f"{path}: ganeval metadata is not a JSON object")
    return parsed


def dtype_problem(state: dict[str, torch.Tensor], model: nn.Module, exact: bool) -> str | None:
    """Why ``state`` cannot load into ``model`` by dtype, or None: ``load_state_dict`` casts silently, which turned
    integer weights into a generator that scored. ``exact``: every dtype must match (ganeval's float32 checkpoints);
    otherwise floating weights of another width (half, bfloat16) load, integer ones into floating slots do not."""
    expected = model.state_dict()
    for key, value in state.items():
        want = expected.get(key)
        if want is None or value.dtype == want.dtype:
            continue
        if exact or value.is_floating_point() != want.is_floating_point():
            return f"{key} is {str(value.dtype).removeprefix('torch.')}, the model's is {str(want.dtype).removeprefix('torch.')}"
    return None


def layout_problem(model: nn.Module, shapes: Mapping[str, Sequence[int]]) -> str | None:
    """Why tensors of these names and ``shapes`` cannot load into ``model`` (``load_state_dict(strict=True)``), in
    torch's words, or None. ``model`` may be a meta-device skeleton (:func:`ganeval.models.build_meta`) and
    ``shapes`` a safetensors header's, so a file is checked before any of its weights is built or read."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in shapes]
    unexpected = [k for k in shapes if k not in expected]
    if missing or unexpected:
        parts = [f"{what} key(s) in state_dict: " + ", ".join(f'"{k}"' for k in keys[:5]) + (", …" if len(keys) > 5 else "")
                 for what, keys in (("Missing", missing), ("Unexpected", unexpected)) if keys]
        return "; ".join(parts)
    for key, want in expected.items():
        have = tuple(shapes[key])
        if have != want:
            return (f"size mismatch for {key}: copying a param with shape {torch.Size(have)} from checkpoint, the shape "
                    f"in current model is {torch.Size(want)}")
    return None


@contextlib.contextmanager
def utf8_path(path: Path) -> Iterator[str]:
    """``path`` as a string safetensors can open: its own, or, for a name that is not UTF-8 (copied from a Latin-1
    system; safetensors refuses it as "not valid UTF-8"), a temporary UTF-8 link to the same file."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        with tempfile.TemporaryDirectory(prefix="ganeval-link-") as tmp:
            link = os.path.join(tmp, "checkpoint.safetensors")
            os.symlink(os.path.abspath(text), link)
            yield link
    else:
        yield text


def _header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's name and shape, from the safetensors header alone (no tensor data is read)."""
    from safetensors import SafetensorError, safe_open

    try:
        with utf8_path(path) as name, safe_open(name, framework="pt", device="cpu") as fh:
            return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({first_line(exc)})") from exc


def refuse_changed(path: Path, before: str | None, after: str | None) -> None:
    """Refuse a file whose digest after it was loaded (``after``) is not the one taken before (``before``): written to
    or replaced while it was read, its weights could be another file's under this digest (and cached so)."""
    if after != before:
        raise CheckpointError(f"{path}: changed while it was read (written to or replaced); score it once it is complete")


def load_generator(
    path: str | os.PathLike[str], use_ema: bool = True, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint's generator (EMA weights when present and ``use_ema``) in eval mode, with its metadata, on
    ``device`` (``auto``: CUDA when present; checked before the file is read, as every command checks ``--device``).

    The metadata's model and config are checked against the file's header on a meta-device skeleton before any
    weight is built or read: an untrusted file cannot make ganeval allocate more than its own tensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    device = resolve_device(device, CheckpointError)
    require_bool(use_ema, "use_ema", CheckpointError)  # use_ema="no" loaded the EMA weights
    path = Path(path)
    try:  # before anything is read: a file replaced while it is read must not be scored under the new one's digest
        before = sha256_file(path)
    except OSError:
        before = None  # read_metadata names the problem
    meta = read_metadata(path)
    shapes = _header_shapes(path)
    model = meta.get("model")
    config = meta.get("config") or {}
    if not isinstance(model, str) or not isinstance(config, dict):
        raise CheckpointError(f"{path}: metadata lacks a model name or its config is not an object")
    try:
        skeleton = build_meta(model, config, file_tensors=len(shapes))
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    except CONFIG_ERRORS as exc:
        raise CheckpointError(f"{path}: config {short(config)} does not fit model {model!r} ({first_line(exc)})") from exc
    z_dim, built = meta.get("latent_dim"), getattr(skeleton, "latent_dim", None)
    if z_dim is not None and built is not None and z_dim != built:
        raise CheckpointError(f"{path}: metadata says latent_dim {short(z_dim)}, but model {model!r} with its config "
                              f"takes {built}")
    prefix = "g_ema." if use_ema and any(k.startswith("g_ema.") for k in shapes) else "g."
    if prefix == "g." and not any(k.startswith("g.") for k in shapes) and any(k.startswith("g_ema.") for k in shapes):
        raise CheckpointError(f"{path}: holds only the EMA generator (g_ema.*, as ganeval export writes it), no raw "
                              "weights; use the EMA weights (drop --raw / use_ema=False)")
    problem = layout_problem(skeleton, {k[len(prefix):]: v for k, v in shapes.items() if k.startswith(prefix)})
    if problem is not None:
        raise CheckpointError(f"{path}: weights do not fit model {model!r} ({problem[:200]})")
    try:
        with utf8_path(path) as name:
            tensors = load_file(name, device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({first_line(exc)})") from exc
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if (problem := dtype_problem(state, skeleton, exact=True)) is not None:
        raise CheckpointError(f"{path}: weights of the wrong type ({problem}; ganeval writes float32 checkpoints)")
    try:  # the skeleton fits the file's tensors, so this allocates no more than the file holds
        with torch.random.fork_rng(devices=[]):  # its initial weights, replaced at once: the caller's RNG untouched
            gen = build_generator(model, config)
        gen.load_state_dict(state, strict=True)
    except CONFIG_ERRORS as exc:  # torch's first line only names the class; the next one names the key and shapes
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0] if lines else exc.__class__.__name__
        raise CheckpointError(f"{path}: weights do not fit model {model!r} ({detail[:200]})") from exc
    try:
        after = sha256_file(path)
    except OSError:
        after = None  # removed meanwhile
    refuse_changed(path, before, after)
    meta = {**meta, "weights": prefix.rstrip("."), "sha256": before}
    return gen.to(device).eval(), meta


def export_generator(src: str | os.PathLike[str], dst: str | os.PathLike[str], use_ema: bool = True) -> Path:
    """Write ``src``'s generator alone (EMA weights when present and ``use_ema``) to a new file ``dst``.

    Why: a training checkpoint carries both the raw and the EMA generator; the one that is scored is half the
    size on its own, which is what to ship or hand on. The metadata is kept and records the source's SHA-256.
    """
    from safetensors.torch import save_file

    src, dst = Path(src), Path(dst)
    if dst.suffix.lower() != ".safetensors":  # read by its extension: under another, ganeval cannot load it back
        raise CheckpointError(f"{dst}: must end in .safetensors (an exported generator is a safetensors file)")
    if dst.exists():
        raise CheckpointError(f"{dst}: exists; refusing to overwrite it")
    gen, meta = load_generator(src, use_ema=use_ema)  # validates the source completely
    prefix = meta.pop("weights")
    sha = meta.pop("sha256")
    earlier = meta.get("exported_from")  # an export of an export keeps the chain back to the training checkpoint
    meta["exported_from"] = {"name": src.name, "sha256": sha, "weights": prefix, **({"exported_from": earlier} if earlier else {})}
    meta["ema"] = prefix == "g_ema"  # what this file holds: the EMA generator, or the raw one alone
    tensors = {f"{prefix}.{k}": v.detach().contiguous() for k, v in gen.state_dict().items()}
    with atomic_path(dst) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    return dst


@dataclass(frozen=True)
class CheckpointRef:
    """A checkpoint file and the iteration its name gives."""

    path: Path
    iteration: int


def list_checkpoints(directory: str | os.PathLike[str]) -> list[CheckpointRef]:
    """The ``ckpt_*.safetensors`` files of ``directory`` in iteration order."""
    directory = Path(directory)
    refs = []
    for entry in directory.iterdir() if directory.is_dir() else []:
        m = CKPT_RE.match(entry.name)
        if m and entry.is_file() and int(m.group(1)) <= MAX_ITERATION:
            refs.append(CheckpointRef(entry, int(m.group(1))))
    return sorted(refs, key=lambda r: (r.iteration, r.path.name))  # equal iterations: a fixed order, by name


def is_torchscript_archive(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (``torch.jit.save``: a zip holding constants.pkl), whatever its name."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("/constants.pkl") for n in zf.namelist())
    except (zipfile.BadZipFile, OSError, EOFError):
        return False
