"""Datasets: MNIST from the canonical IDX files, verified by SHA-256."""

from ganeval.data.mnist import MNIST_FILES, load_mnist, mnist_checksum, resolve_data_dir

__all__ = ["MNIST_FILES", "load_mnist", "mnist_checksum", "resolve_data_dir"]
