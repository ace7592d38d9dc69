"""What a run's sample count and batch size hold in memory at least, checked against this machine before any work.

A run keeps every sample's features until its metrics are computed, draws its resampled indices up front, and
passes each batch through the feature networks at once: an N or a batch size far past this machine's memory was
a MemoryError traceback, an error row per checkpoint or an OOM kill, possibly hours into the run, instead of one
line before it. The sizes counted are floors (what the code surely holds at once, not allocator overhead or a
metric's temporaries), so a run the check passes may still need more, but one it refuses cannot fit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch

from ganeval.errors import GanevalError
from ganeval.metrics.registry import FD_COLUMN, METRICS

#: Features kept per sample by each extractor, float32 (pool, logits): Inception's 2048 and 1008, the MNIST
#: classifier's (``ganeval.features.mnist_net``: 128 and 10, not imported here, which would load every extractor
#: with the options); a feature network's are unknown before it runs.
FEATURE_DIMS = {"inception": (2048, 1008), "mnist": (128, 10)}
#: Bytes per image of a batch an extractor holds at once on its device, at least (float32): the MNIST classifier its
#: first two 32×28×28 activation maps; Inception the 3×299×299 resized input and its first 32×149×149 activation.
BATCH_BYTES = {"mnist": 2 * 32 * 28 * 28 * 4, "inception": (3 * 299 * 299 + 32 * 149 * 149) * 4}
#: Inception on a CPU runs a batch this many images at a time (``ganeval.features.inception.CPU_CHUNK``).
INCEPTION_CPU_CHUNK = 32


def physical_memory() -> int | None:
    """This machine's physical memory in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def size_text(n: float) -> str:
    """``n`` bytes in binary units: ``728 TiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"


def per_sample_bytes(metrics: Iterable[str], bootstrap: int, inception_logits: bool = True, z_dim: int | None = None) -> int:
    """Host bytes each sample holds at least: its features (float32, every extractor the metrics use), the float64
    copies a Fréchet distance makes of one extractor's features (the features and their centred copy, or with
    ``bootstrap`` their product with the reference's factor), its resampled indices (int64) and its latent."""
    extractors = {METRICS[m].extractor for m in metrics if m in METRICS} & set(FEATURE_DIMS)  # unknown: the evaluator says
    kept = sum(FEATURE_DIMS[e][0] + (FEATURE_DIMS[e][1] if e != "inception" or inception_logits else 0) for e in extractors)
    return 4 * kept + 2 * 8 * fd_dim(metrics) + 8 * bootstrap + 4 * (z_dim or 0)


def fd_dim(metrics: Iterable[str]) -> int:
    """The largest feature size among the Fréchet distances asked for (0: none, or only a feature network's)."""
    fds = [METRICS[m].extractor for m in metrics if m in METRICS and METRICS[m].columns[0] == FD_COLUMN.get(METRICS[m].extractor)]
    return max((FEATURE_DIMS[e][0] for e in fds if e in FEATURE_DIMS), default=0)


def batch_bytes(metrics: Iterable[str], num_samples: int, batch_size: int, device: torch.device, resize: str = "tf1x") -> int:
    """Host bytes one batch holds at least in the feature networks (the largest of them: they run one after
    another); 0 on a GPU, where a batch too large is CUDA's out-of-memory error for each checkpoint."""
    if device.type != "cpu":
        return 0
    extractors = {METRICS[m].extractor for m in metrics if m in METRICS}
    images = min(batch_size, num_samples)
    need = [images * BATCH_BYTES["mnist"]] if "mnist" in extractors else []
    if "inception" in extractors:  # 32 images at a time; clean-fid's resize first makes the whole batch 299×299
        need.append(min(images, INCEPTION_CPU_CHUNK) * BATCH_BYTES["inception"]
                    + (images * 299 * 299 * 4 if resize == "clean" else 0))
    return max(need, default=0)


def check_memory(num_samples: int, bootstrap: int, metrics: Iterable[str] = (), batch_size: int = 1,
                 device: torch.device | None = None, *, inception_logits: bool = True, z_dim: int | None = None,
                 resize: str = "tf1x", have: int | None = None, error: type[GanevalError] = GanevalError) -> None:
    """Refuse an N (``--num-samples``) or a ``--batch-size`` whose floor of memory (:func:`per_sample_bytes` ×
    N + :func:`batch_bytes`) is more than this machine's (``have``: its physical memory), in one line naming the
    option and the most it may be."""
    # Python integers: a numpy integer's product would wrap past 2**63 and pass
    metrics, num_samples, batch_size, bootstrap = list(metrics), int(num_samples), int(batch_size), int(bootstrap)
    have = physical_memory() if have is None else have
    if have is None:
        return
    device = device or torch.device("cpu")
    each = per_sample_bytes(metrics, bootstrap, inception_logits, z_dim)
    batch = batch_bytes(metrics, num_samples, batch_size, device, resize)
    if each * num_samples + batch <= have:
        return
    machine = f"more than this machine's {size_text(have)}"
    images = min(batch_size, num_samples)
    if batch > have // 2:  # the batch is what does not fit: a smaller one does the same work
        most = max(1, images * (have // 2) // batch)
        raise error(f"--batch-size {batch_size}: one batch of {images} images in the feature networks "
                    f"would hold at least {size_text(batch)}, {machine}; give --batch-size {most} or less (default 100)")
    most = max(0, (have - batch) // max(each, 1))
    held = ", ".join(["features"] + (["their float64 copies"] if fd_dim(metrics) else []) + (["resampled indices"] if bootstrap
                     else []) + (["latents"] if z_dim else []))
    raise error(f"--num-samples {num_samples} would hold at least {size_text(each * num_samples + batch)} in memory "
                f"({size_text(each)} per sample with the metrics asked and --bootstrap {bootstrap}: {held}), {machine}; "
                f"lower it (at most {most} could fit here)")
