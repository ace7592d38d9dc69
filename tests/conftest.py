"""Shared test setup: tests never download (``GANEVAL_OFFLINE=1``), and find MNIST in ``GANEVAL_DATA_DIR``
(defaulting to ``../shared/data/mnist`` beside the checkout, as the Makefile does)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("GANEVAL_OFFLINE", "1")
    default = REPO.parent / "shared" / "data" / "mnist"
    if "GANEVAL_DATA_DIR" not in os.environ and default.is_dir():
        os.environ["GANEVAL_DATA_DIR"] = str(default)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder with the four real MNIST files (the test is skipped without them)."""
    from ganeval.data import resolve_data_dir

    path = resolve_data_dir()
    if not all((path / f"{name}.gz").exists() or (path / name).exists() for name in _MNIST_NAMES):
        pytest.skip(f"real MNIST not found in {path} (set GANEVAL_DATA_DIR)")
    return path


_MNIST_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``ganeval ARGS...`` in-process; returns ``(exit_code, stdout, stderr)``."""
    from ganeval.cli.app import main

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def weights():
    """The offline Inception weights (converted once into the user cache)."""
    from ganeval.features.inception_weights import offline_copy

    return offline_copy()


@pytest.fixture(scope="session")
def extractor(weights):
    """A CPU Inception extractor with the offline weights, shared by the Inception tests."""
    from ganeval.features.inception import InceptionExtractor

    return InceptionExtractor(weights, device="cpu")


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """SIGINT raising KeyboardInterrupt, as in a terminal: a test run started in the background (``cmd &`` from a
    script, ``nohup``) inherits SIGINT ignored, and Python then leaves it ignored."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A feature cache of the test's own (``GANEVAL_CACHE_DIR``): no test reads entries another one wrote."""
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"
