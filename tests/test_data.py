"""MNIST loading (``ganeval.data.mnist``): real files, raw files, every corruption → ``DataError`` naming the
file (exit code 2 through the CLI), and the verified, atomic download from a local HTTP server."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from ganeval.data import MNIST_FILES, load_mnist, mnist_checksum
from ganeval.data.mnist import parse_idx
from ganeval.errors import DataError

TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


def _idx_bytes(array: np.ndarray) -> bytes:
    magic = {1: 2049, 3: 2051}[array.ndim]
    header = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture(scope="module")
def real_test(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    return load_mnist("test", mnist_dir, download=False)


@pytest.fixture
def raw_copy(mnist_dir: Path, tmp_path: Path) -> Path:
    """A folder with the real test split as raw (uncompressed) IDX files."""
    for name in (TEST_IMAGES, TEST_LABELS):
        with gzip.open(mnist_dir / f"{name}.gz", "rb") as src:
            (tmp_path / name).write_bytes(src.read())
    return tmp_path


# ------------------------------------------------------------------------------------------- real data


def test_real_splits_shapes_and_checksums(mnist_dir: Path, real_test: tuple[np.ndarray, np.ndarray]) -> None:
    x_train, y_train = load_mnist("train", mnist_dir, download=False)
    x_test, y_test = real_test
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert x_train.dtype == np.uint8 and y_test.dtype == np.uint8
    assert set(np.unique(y_train)) == set(range(10)) and set(np.unique(y_test)) == set(range(10))
    assert x_train.max() == 255 and x_train.min() == 0
    assert np.bincount(y_test).tolist()[:2] == [980, 1135]  # the canonical test split's class counts
    assert mnist_checksum("train") == MNIST_FILES["train-images-idx3-ubyte"]
    assert mnist_checksum("test") == MNIST_FILES[TEST_IMAGES]
    sums = mnist_dir / "SHA256SUMS.uncompressed"  # an independent record of the same digests, when present
    if sums.exists():
        recorded = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
        assert recorded == MNIST_FILES


def test_raw_files_load_like_gzipped(raw_copy: Path, real_test: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = load_mnist("test", raw_copy, download=False)
    np.testing.assert_array_equal(x, real_test[0])
    np.testing.assert_array_equal(y, real_test[1])


def test_unknown_split() -> None:
    with pytest.raises(DataError, match="unknown MNIST split"):
        load_mnist("validation")
    with pytest.raises(DataError, match="unknown MNIST split"):
        mnist_checksum("validation")


# ------------------------------------------------------------------------------------------- bad files


def test_missing_file(raw_copy: Path) -> None:
    (raw_copy / TEST_LABELS).unlink()
    with pytest.raises(DataError, match=TEST_LABELS) as err:
        load_mnist("test", raw_copy, download=False)
    assert "missing" in str(err.value)
    with pytest.raises(DataError, match="GANEVAL_OFFLINE"):  # conftest sets GANEVAL_OFFLINE=1: no download either
        load_mnist("test", raw_copy)


def test_truncated_gzip(mnist_dir: Path, tmp_path: Path) -> None:
    data = (mnist_dir / f"{TEST_IMAGES}.gz").read_bytes()
    (tmp_path / f"{TEST_IMAGES}.gz").write_bytes(data[: len(data) // 2])
    shutil.copy(mnist_dir / f"{TEST_LABELS}.gz", tmp_path)
    with pytest.raises(DataError, match=rf"{TEST_IMAGES}\.gz.*truncated or corrupted"):
        load_mnist("test", tmp_path, download=False)


@pytest.mark.parametrize("index", [20, 2258, -3])  # zlib.error in the deflate stream, CRC error, length error
def test_flipped_byte_in_gzip(mnist_dir: Path, tmp_path: Path, index: int) -> None:
    shutil.copy(mnist_dir / f"{TEST_IMAGES}.gz", tmp_path)
    data = bytearray((mnist_dir / f"{TEST_LABELS}.gz").read_bytes())
    data[index] ^= 0x5A
    (tmp_path / f"{TEST_LABELS}.gz").write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"{TEST_LABELS}\.gz: cannot read"):
        load_mnist("test", tmp_path, download=False)


def test_corrupted_byte_raw_is_checksum_mismatch(raw_copy: Path) -> None:
    path = raw_copy / TEST_IMAGES
    data = bytearray(path.read_bytes())
    data[5000] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"{TEST_IMAGES}: SHA-256 mismatch"):
        load_mnist("test", raw_copy, download=False)


def test_truncated_raw(raw_copy: Path) -> None:
    path = raw_copy / TEST_LABELS
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match=rf"{TEST_LABELS}: size .* does not match its header"):
        load_mnist("test", raw_copy, download=False)


def test_wrong_magic_number(raw_copy: Path) -> None:
    path = raw_copy / TEST_LABELS
    data = bytearray(path.read_bytes())
    data[3] = 0x02  # 0x00000802 instead of 0x00000801
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"{TEST_LABELS}: wrong magic number 0x00000802"):
        load_mnist("test", raw_copy, download=False)


def test_parse_idx_roundtrip_and_tiny_input() -> None:
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(_idx_bytes(arr)), arr)
    with pytest.raises(DataError, match="truncated IDX file"):
        parse_idx(b"\x00\x00\x08")


def test_header_sizes_that_overflow_int64_do_not_match(raw_copy: Path) -> None:
    """np.prod wrapped (2**31 * 2**31 * 4 == 2**64 → 0), so a 16-byte file "matched" and reshape raised ValueError."""
    crafted = (2051).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (2**31, 2**31, 4))
    with pytest.raises(DataError, match=r"<bytes>: size 16 bytes does not match its header \(18446744073709551632 bytes\)"):
        parse_idx(crafted)
    (raw_copy / TEST_IMAGES).write_bytes(crafted)
    with pytest.raises(DataError, match=rf"{TEST_IMAGES}: size 16 bytes does not match its header"):
        load_mnist("test", raw_copy, download=False)


def test_a_folder_or_an_unreadable_file_is_not_called_corrupted(raw_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both were reported as "file is truncated or corrupted": the message now says what the system said."""
    data = (raw_copy / TEST_IMAGES).read_bytes()
    (raw_copy / TEST_IMAGES).unlink()
    (raw_copy / TEST_IMAGES).mkdir()
    with pytest.raises(DataError) as err:
        load_mnist("test", raw_copy, download=False)
    assert str(err.value) == f"{raw_copy / TEST_IMAGES}: is a folder, not a data file"
    (raw_copy / TEST_IMAGES).rmdir()
    (raw_copy / TEST_IMAGES).write_bytes(data)

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(DataError) as err:
        load_mnist("test", raw_copy, download=False)
    assert str(err.value) == f"{raw_copy / TEST_IMAGES}: cannot read (Permission denied)"


def test_cli_bad_data_dir_exit_code_2(mnist_dir: Path, tmp_path: Path, cli) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    out = tmp_path / "run"
    code, _, err = cli("train", "--model", "mlp", "--iterations", "2", "--data-dir", bad, "--out", out)
    assert code == 2
    assert err.count("\n") == 1 and "train-images-idx3-ubyte" in err and "missing" in err
    assert not out.exists()
    (bad / "train-images-idx3-ubyte.gz").symlink_to(mnist_dir / "train-images-idx3-ubyte.gz")
    with gzip.open(mnist_dir / "train-labels-idx1-ubyte.gz", "rb") as fh:
        labels = bytearray(fh.read())
    labels[3] = 0x07
    (bad / "train-labels-idx1-ubyte").write_bytes(bytes(labels))
    code, _, err = cli("train", "--model", "mlp", "--iterations", "2", "--data-dir", bad, "--out", out)
    assert code == 2
    assert err.count("\n") == 1 and "train-labels-idx1-ubyte: wrong magic number" in err
    assert not out.exists()


# ------------------------------------------------------------------------------------------- download


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A local HTTP mirror serving ``tmp_path/www``: ``(url, folder, requested paths)``."""
    www = tmp_path / "www"
    www.mkdir()
    handler = type("Handler", (_Handler,), {"requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", www, handler.requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def tiny_split(server: tuple[str, Path, list[str]], monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, np.ndarray]:
    """Small gzipped IDX files on the server, with ``MNIST_FILES`` patched to their digests; downloads allowed."""
    monkeypatch.delenv("GANEVAL_OFFLINE", raising=False)
    _, www, _ = server
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 6, dtype=np.uint8)
    for name, arr in ((TEST_IMAGES, images), (TEST_LABELS, labels)):
        raw = _idx_bytes(arr)
        (www / f"{name}.gz").write_bytes(gzip.compress(raw))
        monkeypatch.setitem(MNIST_FILES, name, hashlib.sha256(raw).hexdigest())
    return images, labels


def test_download_verifies_and_caches(server, tiny_split, tmp_path: Path) -> None:
    url, _, requests = server
    cache = tmp_path / "cache" / "mnist"
    x, y = load_mnist("test", cache, mirrors=(url,))
    np.testing.assert_array_equal(x, tiny_split[0])
    np.testing.assert_array_equal(y, tiny_split[1])
    assert sorted(p.name for p in cache.iterdir()) == [f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"]
    assert sorted(requests) == [f"/{TEST_IMAGES}.gz", f"/{TEST_LABELS}.gz"]
    load_mnist("test", cache, mirrors=(url,))  # second time from the cache
    assert len(requests) == 2


def test_download_falls_back_to_next_mirror(server, tiny_split, tmp_path: Path) -> None:
    url, _, requests = server
    cache = tmp_path / "cache"
    x, _ = load_mnist("test", cache, mirrors=(url + "missing/", url))
    np.testing.assert_array_equal(x, tiny_split[0])
    assert f"/missing/{TEST_IMAGES}.gz" in requests


def test_bad_download_leaves_nothing(server, tiny_split, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, www, _ = server
    monkeypatch.setitem(MNIST_FILES, TEST_IMAGES, "0" * 64)  # the served file no longer matches
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"download failed from every mirror.*SHA-256 mismatch"):
        load_mnist("test", cache, mirrors=(url,))
    assert not cache.exists() or list(cache.iterdir()) == []
    (www / f"{TEST_IMAGES}.gz").write_bytes(b"not gzip at all")  # and a file that is not gzip
    with pytest.raises(DataError, match="not valid gzip"):
        load_mnist("test", cache, mirrors=(url,))
    assert not cache.exists() or list(cache.iterdir()) == []


def test_offline_refuses_to_download(server, tiny_split, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, _, requests = server
    monkeypatch.setenv("GANEVAL_OFFLINE", "1")
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=rf"{TEST_IMAGES}\.gz: missing, and GANEVAL_OFFLINE=1 forbids downloading"):
        load_mnist("test", cache, mirrors=(url,))
    assert requests == []
    assert not cache.exists() or list(cache.iterdir()) == []
