"""Training of the MNIST-domain classifier behind the ``mnist`` extractor: deterministic for a given seed
(on CPU, for a given thread count), random-affine augmentation, Adam with a one-cycle schedule."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganeval.atomic import atomic_path, output_file, sha256_file
from ganeval.errors import GanevalError
from ganeval.features.base import resolve_device
from ganeval.features.mnist_net import MNISTNet
from ganeval.train.recipes import seed_problem
from ganeval.version import __version__


@dataclass
class TrainedClassifier:
    """A trained state dict (CPU, float32) with what identifies the run."""

    state_dict: dict[str, torch.Tensor]
    seed: int
    epochs: int
    n_train: int
    seconds: float
    test_accuracy: float | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def random_affine(x: torch.Tensor, gen: torch.Generator, max_deg: float = 10.0, max_shift_px: float = 2.0,
                  max_scale: float = 0.1) -> torch.Tensor:
    """Per-image random rotation (±``max_deg``), scale (1±``max_scale``) and shift (±``max_shift_px``), bilinear,
    zero fill; ``x`` is ``(B, 1, 28, 28)`` in ``[0, 1]``. Random numbers come from ``gen`` (CPU) only."""
    b, _, h, w = x.shape
    u = torch.rand(4, b, generator=gen, dtype=torch.float32) * 2 - 1
    ang, scale = u[0] * math.radians(max_deg), 1 + u[1] * max_scale
    tx, ty = u[2] * (2 * max_shift_px / w), u[3] * (2 * max_shift_px / h)
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1).to(x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _as_float(images: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    t = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.array(images, dtype=np.uint8))
    t = t.to(device)
    return (t.unsqueeze(1) if t.ndim == 3 else t).float().div_(255.0)


@torch.inference_mode()
def evaluate_accuracy(net: MNISTNet, images: np.ndarray, labels: np.ndarray, device: str | torch.device = "cpu",
                      batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``net`` (eval mode) on uint8 ``(N, 28, 28)`` images."""
    dev = resolve_device(device)
    net = net.to(dev).eval()
    correct = 0
    for s in range(0, len(images), batch_size):
        _, logits = net(_as_float(images[s : s + batch_size], dev))
        correct += int((logits.argmax(1).cpu() == torch.from_numpy(np.array(labels[s : s + batch_size])).long()).sum())
    return correct / len(images)


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    epochs: int = 12,
    seed: int = 0,
    device: str | torch.device = "cpu",
    batch_size: int = 128,
    max_lr: float = 4e-3,
    weight_decay: float = 1e-4,
    log: Callable[[str], None] | None = None,
) -> TrainedClassifier:
    """Train :class:`MNISTNet` on uint8 ``(N, 28, 28)`` ``images``; same seed, data and device → same weights.

    Raises :class:`ganeval.errors.GanevalError` for a seed outside 0 <= seed < 2**64."""
    if (problem := seed_problem(seed)) is not None:
        raise GanevalError(f"seed {problem}")
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    n = len(images)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2 or n < 2:
        raise GanevalError(f"training the classifier needs a batch size and at least 2 images (its BatchNorm1d cannot "
                           f"train on one), got batch size {batch_size!r} and {n} image(s)")
    # A last batch of one image (n % batch_size == 1, e.g. --limit 129) would make BatchNorm1d raise: leave that
    # image out of the epoch (a different one each epoch, as the order is reshuffled). n % batch_size == 1 never held
    # for a documented run (60,000 % 128 = 96), so their weights do not change.
    used = n - 1 if n % batch_size == 1 else n
    torch.manual_seed(seed)  # initialisation and dropout
    gen = torch.Generator().manual_seed(seed)  # shuffling and augmentation
    net = MNISTNet().to(dev)
    x_all = torch.from_numpy(np.array(images, dtype=np.uint8))  # a writable copy
    y_all = torch.from_numpy(np.array(labels)).long()
    steps = math.ceil(used / batch_size)
    opt = torch.optim.Adam(net.parameters(), lr=max_lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, epochs=epochs, steps_per_epoch=steps)
    t0 = time.time()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(n, generator=gen)
        total, correct = 0.0, 0
        for s in range(0, used, batch_size):
            idx = perm[s : min(s + batch_size, used)]
            x = random_affine(_as_float(x_all[idx], dev), gen)
            y = y_all[idx].to(dev)
            _, logits = net(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        if log:
            log(f"epoch {epoch + 1}/{epochs}: loss {total / used:.4f}, train acc (augmented) {correct / used:.4f}, "
                f"{time.time() - t0:.0f} s")
    state = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous().clone()
             for k, v in net.state_dict().items()}
    return TrainedClassifier(state, seed, epochs, n, time.time() - t0)


def save_classifier(path: str | os.PathLike[str], trained: TrainedClassifier, extra: dict[str, str] | None = None) -> str:
    """Write the weights as safetensors atomically, with run metadata; returns the file's SHA-256."""
    from safetensors.torch import save_file

    meta = {
        "format": "ganeval-mnist-classifier-v1",
        "seed": str(trained.seed),
        "epochs": str(trained.epochs),
        "n_train": str(trained.n_train),
        "train_seconds": f"{trained.seconds:.1f}",
        "test_accuracy": "" if trained.test_accuracy is None else f"{trained.test_accuracy:.4f}",
        "package_version": __version__,
        "torch_version": torch.__version__,
        **(extra or {}),
    }
    trained.metadata = meta
    with atomic_path(path) as tmp:
        save_file(trained.state_dict, str(tmp), metadata=meta)
        tmp.chmod(0o644)  # mkstemp makes 0600; the file is shipped as package data
    return sha256_file(path)


def train_and_save(
    out: str | os.PathLike[str],
    epochs: int = 12,
    seed: int = 0,
    device: str | torch.device = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    command: str | None = None,
) -> tuple[TrainedClassifier, str]:
    """Train on MNIST train (first ``limit`` images), measure accuracy on the full test set, save to ``out``
    (a folder or a file-blocked path there is refused before training)."""
    from ganeval.data import load_mnist

    output_file(out, "out")
    resolve_device(device)  # refused before the data is read
    x_tr, y_tr = load_mnist("train", data_dir)
    x_te, y_te = load_mnist("test", data_dir)
    if limit:
        x_tr, y_tr = x_tr[:limit], y_tr[:limit]
    trained = train_classifier(x_tr, y_tr, epochs, seed, device, log=lambda m: print(m, file=sys.stderr, flush=True))
    net = MNISTNet()
    net.load_state_dict(trained.state_dict)
    trained.test_accuracy = evaluate_accuracy(net, x_te, y_te, device)
    extra = {"device": resolve_device(device).type, "threads": str(torch.get_num_threads())}
    if command:
        extra["command"] = command
    return trained, save_classifier(Path(out), trained, extra)
