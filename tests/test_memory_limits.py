"""The memory check past its first floor: a batch on a CUDA device against the device's free memory, torchrun's
processes on one host sharing its memory, and ``ganeval stats`` (which held no check: ``--batch-size 10000000`` or a
dataset past memory failed in an allocation, halfway). Each refusal is one line naming the option and the most that
fits. There is no GPU here: the free memory is the checking function's parameter (the CLI passes
``torch.cuda.mem_get_info``'s)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import write_bank_checkpoint

from ganeval.errors import GanevalError
from ganeval.memory import GPU_BATCH_ELEMENTS, check_memory, check_stats_memory

GIB = 2**30
CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)
INCEPTION_IMAGE = (32 + 64) * 147 * 147 * 4  # bytes per image on the GPU: 8.3 MB


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)


def test_a_batch_past_the_gpus_free_memory_names_the_largest_batch_size_that_fits() -> None:
    free = 8 * GIB
    most = free // INCEPTION_IMAGE  # 1035 images of 8.3 MB
    check_memory(50_000, 10, ("fid", "is"), most, CUDA, have=24 * GIB, gpu_free=free)
    with pytest.raises(GanevalError, match=rf"^--batch-size {most + 1}: one batch of {most + 1} images in the feature "
                       rf"networks would hold at least .* on cuda:0, more than its 8 GiB free; give --batch-size "
                       rf"{most} or less \(default 100\)$"):
        check_memory(50_000, 10, ("fid", "is"), most + 1, CUDA, have=24 * GIB, gpu_free=free)
    # bf16 activations are half the size; the MNIST classifier's batch is its own size
    check_memory(50_000, 10, ("fid",), 2 * most, CUDA, have=24 * GIB, gpu_free=free, precision="bf16")
    mnist = free // (GPU_BATCH_ELEMENTS["mnist"] * 4)
    with pytest.raises(GanevalError, match=rf"give --batch-size {mnist} or less"):
        check_memory(10**6, 0, ("mnist_fd",), 10**6, CUDA, have=24 * GIB, gpu_free=free)


def test_the_gpu_check_leaves_a_cpu_run_as_it_was() -> None:
    """No GPU budget applies on a CPU: the huge batch a CPU runs 32 images at a time still passes."""
    check_memory(50_000, 100, ("fid", "is"), 10**12, CPU, have=24 * GIB, gpu_free=1)


def test_not_even_one_image_fitting_on_the_gpu_says_so() -> None:
    with pytest.raises(GanevalError, match="not even one image fits: free memory on it, or use --device cpu"):
        check_memory(1000, 0, ("fid",), 1, CUDA, have=24 * GIB, gpu_free=2**20)


def test_torchruns_processes_on_one_host_share_its_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """200,000 MNIST samples (2.6 KB each) fit in 2 GiB for one process, not for eight (each gathers every feature)."""
    check_memory(200_000, 0, ("mnist_fd",), 100, CPU, have=2 * GIB)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    with pytest.raises(GanevalError, match=r"^--num-samples 200000 would hold at least .* in each of the 8 processes on "
                       r"this host \(LOCAL_WORLD_SIZE\), more than this machine's 2 GiB; lower it \(at most (\d+) could"):
        check_memory(200_000, 0, ("mnist_fd",), 100, CPU, have=2 * GIB)
    try:
        check_memory(200_000, 0, ("mnist_fd",), 100, CPU, have=2 * GIB)
    except GanevalError as exc:
        most = int(str(exc).rsplit("at most ", 1)[1].split()[0])
    check_memory(most, 0, ("mnist_fd",), 100, CPU, have=2 * GIB)  # the largest that fits does fit
    with pytest.raises(GanevalError):
        check_memory(most + 1, 0, ("mnist_fd",), 100, CPU, have=2 * GIB)


def test_the_cli_counts_local_world_size(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    write_bank_checkpoint(tmp_path / "run", 1000)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(10**6))  # a million processes × 100,000 samples: no host holds it
    code, _, err = cli("score", tmp_path / "run", "--metrics", "mnist_fd", "--device", "cpu", "--no-progress",
                       "--num-samples", 100_000, "--bootstrap", 0)
    assert code == 2 and "in each of the 1000000 processes on this host (LOCAL_WORLD_SIZE)" in err, err
    assert err.strip().count("\n") == 0 and not (tmp_path / "run" / "report").exists()


def _stats(images: int, batch: int = 64, **kw: object) -> None:
    check_stats_memory(images, 784, batch, "inception", 2048, kw.pop("device", CPU), dataset="mnist-train", logits=1008,
                       **kw)  # type: ignore[arg-type]


def test_stats_save_features_counts_every_images_features_once_and_names_the_largest_limit() -> None:
    """MNIST-train's Inception statistics stream in ~0.25 GB; --save-features keeps 60,000 × 2048 float32 once more
    (0.46 GiB, written into one array as each batch is computed): that fits in 1 GiB, where counted twice (the
    batches and their join, 1.14 GiB) it was refused."""
    _stats(60_000, have=GIB // 2)
    _stats(60_000, keeps_features=True, have=GIB)
    with pytest.raises(GanevalError, match=r"^--dataset mnist-train: 60000 images would hold at least 700 MiB in "
                       r"memory \(8\.77 KiB per image: the images and their saved features\), more than this machine's "
                       r"512 MiB; give --limit (\d+) or less$") as got:
        _stats(60_000, keeps_features=True, have=GIB // 2)
    most = int(str(got.value).rsplit("--limit ", 1)[1].split()[0])
    _stats(most, keeps_features=True, have=GIB // 2)
    with pytest.raises(GanevalError):
        _stats(most + 1, keeps_features=True, have=GIB // 2)


def test_stats_batch_on_a_gpu_and_in_each_process() -> None:
    with pytest.raises(GanevalError, match=r"^--batch-size 10000000: one batch of 60000 images .* on cuda:0, more than "
                       r"its 80 GiB free; give --batch-size 10351 or less \(default 64\)$"):
        _stats(60_000, 10_000_000, device=CUDA, gpu_free=80 * GIB, have=24 * GIB)
    _stats(60_000, 10_000, device=CUDA, gpu_free=80 * GIB, have=24 * GIB)
    _stats(60_000, have=2 * GIB, processes=4)
    with pytest.raises(GanevalError, match="in each of the 10 processes on this host"):
        _stats(60_000, have=2 * GIB, processes=10)


def _header_only_npy(path: Path, shape: tuple[int, ...]) -> Path:
    """A .npy whose header says ``shape`` (its data absent: the check reads the header, before the data)."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return path


@pytest.mark.parametrize("kind", [".npy", ".npz"])
def test_stats_of_a_dataset_past_memory_is_refused_before_reading_it(tmp_path: Path, cli, kind: str) -> None:
    """Ten billion 28×28 images (7 TiB) are refused from the header alone, naming --limit; with --batch-size 10000000
    the batch (2 TB of MNIST-classifier activations) is what is named."""
    data = _header_only_npy(tmp_path / "big.npy", (10**10, 28, 28))
    if kind == ".npz":
        import zipfile

        with zipfile.ZipFile(tmp_path / "big.npz", "w") as z:
            z.write(data, "images.npy")
        data = tmp_path / "big.npz"
    out = tmp_path / "ref" / "big_mnist.npz"
    base = ("stats", "--dataset", data, "--extractor", "mnist", "--device", "cpu", "--no-progress", "--out", out)
    code, _, err = cli(*base)
    assert code == 2 and f"--dataset {data}: 10000000000 images would hold at least" in err and "give --limit" in err, err
    code, _, err = cli(*base, "--batch-size", 10_000_000)
    assert code == 2 and "error: --batch-size 10000000: one batch of 10000000 images would hold" in err, err
    assert "give --batch-size" in err and err.strip().count("\n") == 0 and not out.exists()


def test_the_gpu_check_counts_this_process_s_cached_memory_as_free(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second checkpoint (watch, early stopping, compare's next arm) is checked after the first one's batch: torch's
    caching allocator keeps that memory reserved for reuse, and the device counts it as used. Read as not free, the
    default batch that fit at the first checkpoint was refused at the second; it fits there as it did."""
    free, cached = 500 * 2**20, GIB  # 500 MiB free on the device; 1 GiB held unused by this process's allocator
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index=None: (free, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda index=None: 3 * GIB)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda index=None: 3 * GIB - cached)
    check_memory(10_000, 10, ("fid",), 100, CUDA, have=24 * GIB)  # 100 images: 830 MB, within 500 MiB + 1 GiB
    with pytest.raises(GanevalError, match=r"^--batch-size 200: .* more than its 1\.49 GiB free; give --batch-size 192 "):
        check_memory(10_000, 10, ("fid",), 200, CUDA, have=24 * GIB)


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_stats_limit_reads_only_the_images_it_keeps(tmp_path: Path, suffix: str) -> None:
    """The check counts --limit's N images of a .npy/.npz (and names --limit as the way to fit), but the whole array
    was read before the first N were kept: following its advice still read every image. Now only the first N are."""
    import tracemalloc

    from ganeval.stats import real_images

    images = np.random.default_rng(0).integers(0, 256, (3000, 28, 28), dtype=np.uint8)  # 2.35 MB
    path = tmp_path / f"real{suffix}"
    np.save(path, images) if suffix == ".npy" else np.savez_compressed(path, images=images, labels=np.zeros(3000))
    tracemalloc.start()
    try:
        got = real_images(path, limit=10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(got.images.squeeze(1).numpy(), images[:10]) and got.notes == []
    assert peak < images.nbytes // 4, f"{peak} bytes traced reading 10 of 3000 images"
    assert len(real_images(path, limit=5000).notes) == 1  # fewer than asked: still said, with the count the file holds
