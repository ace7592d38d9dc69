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

from ganeval.devices import local_processes
from ganeval.errors import GanevalError
from ganeval.metrics.registry import FD_COLUMN, INCEPTION_EXTRACTORS, METRICS

#: Features kept per sample by each extractor, float32 (pool, logits): Inception's 2048 and 1008, the MNIST
#: classifier's (``ganeval.features.mnist_net``: 128 and 10, not imported here, which would load every extractor
#: with the options), sFID's 7×17×17 spatial features; a feature network's are unknown before it runs.
FEATURE_DIMS = {"inception": (2048, 1008), "inception-spatial": (2023, 0), "mnist": (128, 10)}
#: Bytes per image of a batch an extractor holds at once on its device, at least (float32): the MNIST classifier its
#: first two 32×28×28 activation maps; Inception the 3×299×299 resized input and its first 32×149×149 activation.
BATCH_BYTES = {"mnist": 2 * 32 * 28 * 28 * 4, "inception": (3 * 299 * 299 + 32 * 149 * 149) * 4}
#: Inception on a CPU runs a batch this many images at a time (``ganeval.features.inception.CPU_CHUNK``).
INCEPTION_CPU_CHUNK = 32
#: Activations per image a batch holds at once on a CUDA device, where the whole batch runs in one call, at least:
#: Inception's second convolution's output (32×147×147) while its third's (64×147×147) is written, the largest
#: pair in the network (more than the 299×299 resized input and the first convolution's 32×149×149 together);
#: the MNIST classifier's first convolution and BatchNorm outputs (32×28×28 each). 4 bytes each, 2 in bf16.
GPU_BATCH_ELEMENTS = {"inception": (32 + 64) * 147 * 147, "inception-spatial": (32 + 64) * 147 * 147,
                      "mnist": 2 * 32 * 28 * 28}


def cuda_free(device: torch.device) -> int | None:
    """Memory a batch on CUDA ``device`` can have now, None for a CPU: the device's free memory
    (``torch.cuda.mem_get_info``) plus what this process's caching allocator holds unused (``memory_reserved`` −
    ``memory_allocated``: an earlier checkpoint's or arm's batch, kept for reuse and counted as used by the device).
    Under torchrun, before the process group is joined, a bare ``cuda`` is this rank's GPU (``LOCAL_RANK``), the one
    the run will use."""
    if device.type != "cuda":
        return None
    index = device.index if device.index is not None else int(os.environ.get("LOCAL_RANK", torch.cuda.current_device()))
    cached = torch.cuda.memory_reserved(index) - torch.cuda.memory_allocated(index)
    return int(torch.cuda.mem_get_info(index)[0]) + max(0, int(cached))


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
    another). On a GPU only clean-fid's resize, done on the host before the network; the rest is :func:`gpu_batch_bytes`."""
    extractors = {METRICS[m].extractor for m in metrics if m in METRICS}
    inception = bool(extractors & set(INCEPTION_EXTRACTORS))  # sFID's network too: the same first layers
    images = min(batch_size, num_samples)
    clean = images * 299 * 299 * 4 if resize == "clean" and inception else 0  # the whole batch 299×299
    if device.type != "cpu":
        return clean
    need = [images * BATCH_BYTES["mnist"]] if "mnist" in extractors else []
    if inception:  # 32 images at a time
        need.append(min(images, INCEPTION_CPU_CHUNK) * BATCH_BYTES["inception"] + clean)
    return max(need, default=0)


def gpu_batch_bytes(extractors: Iterable[str], images: int, precision: str = "fp32") -> int:
    """GPU bytes one batch of ``images`` holds at least in the feature networks (:data:`GPU_BATCH_ELEMENTS`; the
    largest of them). Not counted: the generator's own activations, unknown before it runs, and cuDNN's workspace."""
    width = 2 if precision == "bf16" else 4
    return images * width * max((GPU_BATCH_ELEMENTS.get(e, 0) for e in extractors), default=0)


def check_gpu_batch(extractors: Iterable[str], batch_size: int, num_samples: int, device: torch.device, free: int | None,
                    precision: str = "fp32", error: type[GanevalError] = GanevalError, default: int = 100) -> None:
    """Refuse a ``--batch-size`` whose batch cannot fit in the ``free`` bytes of CUDA ``device`` (a CPU, or
    ``free`` None: nothing checked), in one line naming the largest batch size that fits."""
    extractors = set(extractors)
    images = min(int(batch_size), int(num_samples))
    need = gpu_batch_bytes(extractors, images, precision)
    if device.type != "cuda" or free is None or need <= free:
        return
    each = gpu_batch_bytes(extractors, 1, precision)
    where = f"{device.type}:{device.index if device.index is not None else os.environ.get('LOCAL_RANK', 'current')}"
    fix = (f"give --batch-size {free // each} or less" if free >= each else
           "not even one image fits: free memory on it, or use --device cpu")
    raise error(f"--batch-size {batch_size}: one batch of {images} images in the feature networks would hold at least "
                f"{size_text(need)} on {where}, more than its {size_text(free)} free; {fix} (default {default})")


def _processes_text(processes: int) -> str:
    return f" in each of the {processes} processes on this host (LOCAL_WORLD_SIZE)" if processes > 1 else ""


def check_memory(num_samples: int, bootstrap: int, metrics: Iterable[str] = (), batch_size: int = 1,
                 device: torch.device | None = None, *, inception_logits: bool = True, z_dim: int | None = None,
                 resize: str = "tf1x", have: int | None = None, error: type[GanevalError] = GanevalError,
                 gpu_free: int | None = None, precision: str = "fp32", processes: int | None = None,
                 image_bytes: int = 0, stored_images: int | None = None, streamed: bool = False) -> None:
    """Refuse an N (``--num-samples``) or a ``--batch-size`` whose floor of memory (:func:`per_sample_bytes` × N, plus
    ``image_bytes``, what each image of a stored sample set holds as read, × its first N images (all
    ``stored_images`` of them where fewer; None: N; ``streamed``: a set read batch by batch holds two batches of
    them at a time), + :func:`batch_bytes`, times ``processes``:
    :func:`local_processes`) is more than this machine's (``have``: its physical memory), or whose batch is more than
    a CUDA device's free memory (``gpu_free``: :func:`cuda_free`), in one line naming the option and the most it may be."""
    # Python integers: a numpy integer's product would wrap past 2**63 and pass
    metrics, num_samples, batch_size, bootstrap = list(metrics), int(num_samples), int(batch_size), int(bootstrap)
    device = device or torch.device("cpu")
    if device.type == "cuda":
        check_gpu_batch({METRICS[m].extractor for m in metrics if m in METRICS}, batch_size, num_samples, device,
                        cuda_free(device) if gpu_free is None else gpu_free, precision, error)
    have = physical_memory() if have is None else have
    if have is None:
        return
    processes = local_processes() if processes is None else max(1, int(processes))
    each, image_bytes = per_sample_bytes(metrics, bootstrap, inception_logits, z_dim), int(image_bytes)
    cap = num_samples if stored_images is None else int(stored_images)
    held = min(num_samples, cap)  # a shorter stored set is read whole, and holds no more images than it has
    network = batch = batch_bytes(metrics, num_samples, batch_size, device, resize)
    per_decoded = 2 * image_bytes if streamed else 0  # the batch scored and the one being decoded, whatever N
    decoded = image_bytes * min(held, 2 * batch_size) if streamed else 0
    if streamed:  # part of the batch's memory, not the samples'
        batch, image_bytes, held = batch + decoded, 0, 0
    if processes * (each * num_samples + image_bytes * held + batch) <= have:
        return
    machine = f"{_processes_text(processes)}, more than this machine's {size_text(have)}"
    share = have // processes
    images = min(batch_size, num_samples)
    if batch > share // 2:  # the batch is what does not fit: a smaller one does the same work
        most = max(1, (share // 2) * images // (network + images * per_decoded))
        where = " (and two of them decoded from the stored set)" if decoded else ""
        raise error(f"--batch-size {batch_size}: one batch of {images} images in the feature networks{where} "
                    f"would hold at least {size_text(batch)}{machine}; give --batch-size {most} or less (default 100)")
    room, whole = share - batch, (each + image_bytes) * cap  # past the set's ``cap`` images, a sample adds only ``each``
    most = max(0, room // max(each + image_bytes, 1) if room < whole else cap + (room - whole) // max(each, 1))
    kept = ", ".join(["features"] + (["their float64 copies"] if fd_dim(metrics) else []) + (["resampled indices"] if bootstrap
                     else []) + (["latents"] if z_dim else []))
    asked = f"per sample with the metrics asked and --bootstrap {bootstrap}: {kept}"
    if not image_bytes:
        per = f"{size_text(each)} {asked}"
    elif held == num_samples:
        per = f"{size_text(each + image_bytes)} {asked}, the stored images"
    else:  # a stored set shorter than N: its images counted once each
        per = f"{size_text(each)} {asked}; {size_text(image_bytes * held)} for the stored set's {held} images as read"
    raise error(f"--num-samples {num_samples} would hold at least {size_text(each * num_samples + image_bytes * held + batch)} "
                f"in memory ({per}){machine}; {f'lower it (at most {most} could fit here)' if most else 'not even one sample fits here'}")


def check_stats_memory(images: int, image_bytes: int, batch_size: int, extractor: str, pool_dim: int | None,
                       device: torch.device, *, dataset: str, logits: int = 0, channels: int = 1,
                       keeps_features: bool = False, precision: str = "fp32", have: int | None = None,
                       gpu_free: int | None = None, processes: int | None = None, held: bool = True,
                       error: type[GanevalError] = GanevalError) -> None:
    """Refuse ``ganeval stats`` over ``images`` real images (uint8, ``image_bytes`` each) whose floor of memory is
    more than this machine's or, on CUDA, whose batch is more than the device's free memory, in one line naming
    ``--batch-size`` or ``--limit`` and the most that fits.

    The statistics are streamed (float64 sums: the mean and the ``pool_dim``² outer products, plus their matrix
    product's temporary); every process holds the images (unless not ``held``: a folder or zip, decoded batch by
    batch), and one batch: its uint8 copy, the network's
    activations (:func:`batch_bytes`), its features and their two float64 copies; ``keeps_features``
    (``--save-features``) adds every image's pool features (float32), once, on the main process (written into one
    tensor as each batch is computed; the other ranks' shares of them, sent to it, are not counted).
    """
    images, batch_size, image_bytes, pool, logits = int(images), int(batch_size), int(image_bytes), int(pool_dim or 0), int(logits)
    net = "inception" if extractor.startswith("inception") else extractor
    resize = "clean" if extractor.endswith("-clean") else "tf1x"
    metric = {"inception": "fid", "mnist": "mnist_fd"}.get(net)
    if device.type == "cuda":
        check_gpu_batch({net}, batch_size, images, device, cuda_free(device) if gpu_free is None else gpu_free, precision,
                        error, default=64)
    have = physical_memory() if have is None else have
    if have is None:
        return
    processes = local_processes() if processes is None else max(1, int(processes))
    b = min(batch_size, images)
    network = batch_bytes([metric] if metric else [], b, b, device, resize) * (channels if resize == "clean" else 1)
    batch = b * (image_bytes + 4 * (pool + logits) + 2 * 8 * pool) + network
    fixed = 2 * 8 * pool * pool
    kept = 4 * pool if keeps_features else 0
    per_image = processes * image_bytes * held + kept  # what each image adds: held, and its saved features
    need = processes * (batch + fixed) + images * per_image
    if need <= have:
        return
    machine = f"{_processes_text(processes)}, more than this machine's {size_text(have)}"
    if processes * batch > have // 2:  # the batch is what does not fit: a smaller one does the same work
        most = max(1, b * (have // 2 // processes) // batch)
        raise error(f"--batch-size {batch_size}: one batch of {b} images would hold at least {size_text(batch)} in memory "
                    f"(the images, the network's activations, their features){machine}; give --batch-size {most} or less "
                    f"(default 64)")
    most = max(0, (have - processes * (batch + fixed)) // max(1, per_image))
    what = " and ".join((["the images"] if held else []) + (["their saved features"] if keeps_features else [])) or "none"
    raise error(f"--dataset {dataset}: {images} images would hold at least {size_text(need)} in memory "
                f"({size_text(per_image)} per image: {what}){machine}; give --limit {most} or less")
