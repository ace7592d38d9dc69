"""Opened sources: ``n`` uint8 samples in a fixed order, read by global batch (see ``ganeval.extraction``).

Two kinds: ``GeneratorSamples`` (a latent → image function sampled from the seed's shared latent set, so
sources are paired across a series) and ``ImageSamples`` (stored images in a fixed order, no latent control).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ganeval.errors import GanevalError
from ganeval.interrupts import held_signals
from ganeval.sampling import SampleBatch, forward_noise, latents, to_uint8

Z_TYPES = ("normal", "uniform")
OUTPUT_RANGES = ("-1,1", "0,1", "0,255")
HINT_KEYS = ("z_dim", "z_type", "output_range", "cache_key", "generator", "generator_kwargs", "state_key", "recursive")
LUMA = torch.tensor([0.299, 0.587, 0.114])


@dataclass
class InputHints:
    """What a file cannot always tell: latent size and distribution, output range; ``cache_key`` for callables;
    for state-dict files, the generator class (``generator``, a ``GeneratorSpec`` once resolved), its kwargs and
    which entry of the file holds its weights (``state_key``); ``recursive``: a folder of samples is its whole tree."""

    z_dim: int | None = None
    z_type: str | None = None
    output_range: str | None = None
    cache_key: str | None = None
    generator: Any = None
    generator_kwargs: Any = None
    state_key: str | None = None
    recursive: bool | None = None

    def __post_init__(self) -> None:
        if self.recursive is not None and not isinstance(self.recursive, bool):
            raise GanevalError(f"recursive must be True or False, not {self.recursive!r}")
        if self.z_dim is not None:
            if isinstance(self.z_dim, bool) or not str(self.z_dim).isdigit() or int(self.z_dim) < 1:
                raise GanevalError(f"--z-dim must be a positive integer, not {self.z_dim!r}")
            self.z_dim = int(self.z_dim)
        if self.z_type is not None and self.z_type not in Z_TYPES:
            raise GanevalError(f"--z-type must be one of {', '.join(Z_TYPES)}, not {self.z_type!r}")
        if self.output_range is not None:
            self.output_range = str(self.output_range).replace(" ", "").strip("[]()")
            if self.output_range not in OUTPUT_RANGES:
                raise GanevalError(f"--output-range must be one of {', '.join(OUTPUT_RANGES)}, not {self.output_range!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputHints:
        """Only the hint keys of ``d`` (e.g. ``ScoreOptions.extra``)."""
        return cls(**{k: d[k] for k in HINT_KEYS if d.get(k) is not None})


def merge_hints(what: str, found: dict[str, Any], hints: InputHints, need_z: bool = True) -> dict[str, Any]:
    """The file's own metadata completed by the user's hints; a hint that contradicts the file is an input error."""
    out: dict[str, Any] = {}
    for key, default in (("z_dim", None), ("z_type", "normal"), ("output_range", "-1,1")):
        have, given = found.get(key), getattr(hints, key)
        if have is not None and given is not None and str(have) != str(given):
            flag = "--" + key.replace("_", "-")
            raise GanevalError(f"{what}: {flag} {given} contradicts the model, which says {key} = {have}")
        out[key] = have if have is not None else given if given is not None else default
    if need_z and out["z_dim"] is None:
        raise GanevalError(f"{what}: cannot tell the latent size of this generator; pass --z-dim N (z_dim=N in Python)")
    InputHints(out["z_dim"], out["z_type"], out["output_range"])  # validates file metadata too
    return out


def convert_output(out: Any, output_range: str, what: str) -> tuple[torch.Tensor, int]:
    """Generator output → uint8 ``(B, C, H, W)`` and the number of samples with NaN/Inf.

    ``-1,1``: ``round((x + 1) · 127.5)``; ``0,1``: ``round(255 x)``; ``0,255``: ``round(x)``; clamped, half to even.
    uint8 output is used as is; other integer and bool output is refused (``{0, 1}`` read as 0..255 pixels would be
    black images, as 0..1 a guess); ``(B, H, W)`` is taken as grayscale.
    """
    images, bad = convert_output_async(out, output_range, what)
    return images, int(bad)


def convert_output_async(out: Any, output_range: str, what: str) -> tuple[torch.Tensor, torch.Tensor | int]:
    """:func:`convert_output` with the NaN/Inf count left on the output's device (no host synchronisation)."""
    x = output_tensor(out, what)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise GanevalError(f"{what}: generator output has shape {tuple(x.shape)}; expected (B, 1|3, H, W)")
    if x.dtype == torch.uint8:
        return x, 0
    if not x.is_floating_point():
        raise GanevalError(f"{what}: generator returned {str(x.dtype).replace('torch.', '')} images; return float images "
                           f"in --output-range {output_range} or uint8 0..255")
    bad = (~torch.isfinite(x)).flatten(1).any(dim=1).sum()
    if output_range == "-1,1":
        return to_uint8(torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)), bad
    scale = 255.0 if output_range == "0,1" else 1.0
    x = torch.nan_to_num(x.float(), nan=0.0, posinf=255.0 / scale, neginf=0.0)
    return (x * scale).round().clamp(0, 255).to(torch.uint8), bad


def output_tensor(out: Any, what: str) -> torch.Tensor:
    """A generator's output as a tensor (a NumPy array shares its memory); a tuple, list or dict is refused in one line."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list, dict)):
        raise GanevalError(f"{what}: generator returned a {type(out).__name__}; expected one (B, 1|3, H, W) tensor or "
                           "array of images (return only the images)")
    arr = np.asarray(out)
    if arr.dtype == object:
        raise GanevalError(f"{what}: generator returned {type(out).__name__}; expected a (B, 1|3, H, W) tensor or array")
    return torch.as_tensor(arr)


def gray_grid(images: torch.Tensor) -> np.ndarray:
    """uint8 ``(k, C, H, W)`` → ``(k, H, W)`` for the report grids (RGB shown as luma)."""
    if images.shape[1] == 3:
        w = LUMA.to(images.device).view(1, 3, 1, 1)
        return (images.float() * w).sum(1).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    return images[:, 0].cpu().numpy()


def image_digest(images: torch.Tensor | np.ndarray) -> str:
    """SHA-256 of uint8 image bytes and their shape (the content key of stored samples)."""
    arr = np.ascontiguousarray(images.cpu().numpy() if isinstance(images, torch.Tensor) else images)
    h = hashlib.sha256(f"{arr.dtype}{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def samples_key(images: torch.Tensor | np.ndarray, nonfinite: np.ndarray | None) -> str:
    """Content key of stored samples: ``image_digest`` of their uint8 pixels, and which images held NaN/Inf when any
    did (NaN is converted to a finite pixel, so the pixels alone cannot tell a NaN sample from a clean one)."""
    key = image_digest(images)
    flags = np.ascontiguousarray(np.asarray(nonfinite) != 0) if nonfinite is not None else None
    if flags is None or not flags.any():
        return key
    return hashlib.sha256(f"{key}|nonfinite|{flags.shape}|".encode() + flags.tobytes()).hexdigest()


@dataclass
class Samples:
    """An opened source. ``cache_key`` None: never cached; ``paired``: drawn from the shared latent set."""

    n: int
    sha256: str | None
    cache_key: str | None
    z_type: str
    paired: bool
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    n_bad: int | None = None
    shape: tuple[int, int, int] | None = None  # (C, H, W), known once a batch was read

    def rows(self, start: int, stop: int) -> SampleBatch:
        """uint8 samples ``start:stop`` of the fixed order."""
        raise NotImplementedError

    def batch(self, b: int, batch_size: int) -> SampleBatch:
        """Global batch ``b``: rows ``b·bs : (b+1)·bs``."""
        return self.rows(b * batch_size, min((b + 1) * batch_size, self.n))

    def scored_rows(self, indices: Sequence[int], batch_size: int) -> torch.Tensor:
        """uint8 samples ``indices`` (on the host) exactly as scoring saw them: read in scoring's batches of
        ``batch_size``, each once, since noise a generator draws in ``forward`` is seeded per batch."""
        indices = [int(i) for i in indices]  # a list, range, array or tensor of positions
        if not indices:
            return self.rows(0, 0).images.cpu()
        read = {b: self.batch(b, batch_size).images.cpu() for b in sorted({i // batch_size for i in indices})}
        return torch.cat([read[i // batch_size][i % batch_size:i % batch_size + 1] for i in indices])

    def grid(self, k: int, batch_size: int) -> np.ndarray:
        """The first ``k`` samples as scored (``scored_rows``), ``(k, H, W)`` uint8 for the report."""
        return gray_grid(self.scored_rows(range(min(k, self.n)), batch_size))

    def close(self) -> None:
        """Release what ``open`` loaded."""


class GeneratorSamples(Samples):
    """``fn(z)`` on rows of the seed's latent set (the same rows for every generator with this latent size); the global
    RNG is seeded from the seed and the rows around each call (``forward_noise``), so noise drawn inside ``fn`` is the
    same in every run, one process or several."""

    def __init__(self, fn: Callable[[torch.Tensor], Any], *, name: str, n: int, seed: int, z_dim: int, z_type: str,
                 output_range: str, device: torch.device, sha256: str | None, cache_key: str | None,
                 meta: dict[str, Any] | None = None) -> None:
        super().__init__(n, sha256, cache_key, z_type, True, dict(meta or {}))
        self.fn, self.name, self.device, self.output_range, self.seed = fn, name, device, output_range, seed
        self.meta.update(latent_dim=z_dim, z_type=z_type, output_range=output_range)
        self.z = latents(n, z_dim, seed, z_type=z_type)
        if device.type == "cuda":
            self.z = self.z.pin_memory()  # asynchronous host-to-device copies of each batch's latents
        self._checked = False
        #: Undoes what opening did to the caller's own module (``ganeval.inputs``: its device and training mode).
        self.restore: Callable[[], None] | None = None

    def close(self) -> None:
        restore, self.restore = self.restore, None
        if restore is not None:
            with held_signals():  # a Ctrl-C as the module is moved back would leave it half on each device
                restore()

    @torch.inference_mode()
    def rows(self, start: int, stop: int) -> SampleBatch:
        z = self.z[start:stop].to(self.device, non_blocking=True)
        with forward_noise(self.device, self.seed, start, stop):  # noise drawn in forward: a function of the rows
            out = output_tensor(self.fn(z), self.name)  # an array too gets the range check below
        images, bad = convert_output_async(out, self.output_range, self.name)
        if images.shape[0] != z.shape[0]:
            raise GanevalError(f"{self.name}: generator returned {images.shape[0]} samples for {z.shape[0]} latents")
        self.shape = tuple(images.shape[1:])  # type: ignore[assignment]
        if not self._checked and out.is_floating_point() and out.numel():
            self._checked = True
            self._range_note(out)
        return SampleBatch(images, bad)

    def _range_note(self, out: torch.Tensor) -> None:
        note = range_note(out, self.output_range, self.name)
        if note:
            self.notes.append(note)


def range_note(x: torch.Tensor, output_range: str, name: str, what: str = "outputs") -> str | None:
    """A note when float images do not look like ``output_range`` (say [0, 1] read as [-1, 1]), else None."""
    finite = x[torch.isfinite(x)]
    if not finite.numel():
        return None
    lo, hi = float(finite.min()), float(finite.max())
    if output_range == "-1,1" and lo >= 0 and hi > 1.5:
        return f"{name}: {what} span [{lo:.3g}, {hi:.3g}], not [-1, 1]: pass --output-range 0,255?"
    if output_range == "-1,1" and lo >= 0:
        return f"{name}: {what} are all >= 0 ({lo:.3g}..{hi:.3g}); if they are in [0, 1] pass --output-range 0,1"
    if output_range == "0,1" and lo < -0.5:  # [-1, 1] read as [0, 1]: every value below 0 would be clamped to 0
        return f"{name}: {what} span [{lo:.3g}, {hi:.3g}], which looks like [-1, 1], not [0, 1]: pass --output-range -1,1"
    if output_range == "0,255" and hi <= 1 and hi - lo > 0.1:  # [0, 1] or [-1, 1] read as 0..255: a black image
        return (f"{name}: {what} span [{lo:.3g}, {hi:.3g}], which looks like [0, 1] or [-1, 1], not 0..255: pass "
                "--output-range 0,1 or -1,1")
    if output_range != "0,255" and (hi > 1.5 or lo < -1.5):
        return f"{name}: {what} span [{lo:.3g}, {hi:.3g}], outside --output-range {output_range}; they are clamped"
    return None


class ImageSamples(Samples):
    """Stored uint8 images ``(N, C, H, W)`` on the CPU, in the source's fixed order."""

    def __init__(self, images: torch.Tensor, *, sha256: str | None = None, meta: dict[str, Any] | None = None,
                 notes: list[str] | None = None, n_bad: int | None = None, nonfinite: np.ndarray | None = None) -> None:
        key = samples_key(images, nonfinite)
        super().__init__(len(images), sha256 or key, key, "samples", False, dict(meta or {}), list(notes or []), n_bad,
                         tuple(images.shape[1:]))  # type: ignore[arg-type]
        self.images = images
        self.nonfinite = nonfinite

    def rows(self, start: int, stop: int) -> SampleBatch:
        bad = int(self.nonfinite[start:stop].sum()) if self.nonfinite is not None else 0
        return SampleBatch(self.images[start:stop], bad)


def shape_note(shape: tuple[int, ...]) -> str | None:
    """The report note for samples that are not 28×28 grayscale (None when they are)."""
    c, h, w = shape
    if (c, h, w) == (1, 28, 28):
        return None
    kind = "RGB" if c == 3 else "grayscale"
    conv = "converted to luma (0.299, 0.587, 0.114), then " if c == 3 else ""
    how = "resized to 28×28 (bilinear, antialiased)" if (h, w) != (28, 28) else "kept at 28×28"
    return (f"samples are {h}×{w} {kind}, not 28×28 grayscale: for the MNIST classifier they are {conv}{how}, which only "
            "makes sense for digit-like images; Inception resizes them to 299×299 itself")
