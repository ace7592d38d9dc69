"""What a generator may return: float images in its ``output_range`` (tensor or NumPy array alike) or uint8 0..255;
integer, bool and tuple outputs are refused in one line rather than scored as something else."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from synthetic import BankGenerator, bank_images

import ganeval

FAST = {"metrics": ("mnist_fd",), "num_samples": 200, "bootstrap": 0, "device": "cpu", "progress": False}


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


@pytest.fixture(scope="module")
def gen() -> BankGenerator:
    g = BankGenerator()
    g.bank.copy_(bank_images(n=500))
    return g.eval()


def _row(df: Any) -> tuple[str, str, list[str]]:
    error = df["error"].iloc[0] if "error" in df else ""
    return df["status"].iloc[0], error if isinstance(error, str) else "", df.attrs["summary"]["notes"]


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
def test_integer_and_bool_outputs_are_refused(gen: BankGenerator, dtype: torch.dtype) -> None:
    """{0, 1} as int64 or bool once became 0/1 of 255 (black images, mnist_fd 112 against 12.9 as float), no note."""

    def binary(z: torch.Tensor) -> torch.Tensor:
        return (gen(z) > 0).to(dtype)

    status, error, _ = _row(ganeval.score(binary, z_dim=16, output_range="0,1", **FAST))
    name = str(dtype).replace("torch.", "")
    assert status == "error" and error == (f"binary: generator returned {name} images; return float images in "
                                           "--output-range 0,1 or uint8 0..255")

    def as_uint8(z: torch.Tensor) -> torch.Tensor:
        return (gen(z) > 0).to(torch.uint8) * 255

    assert _row(ganeval.score(as_uint8, z_dim=16, **FAST))[0] == "ok"  # uint8 stays 0..255


def test_a_numpy_output_gets_the_range_note_a_tensor_gets(gen: BankGenerator) -> None:
    def as_array(z: torch.Tensor) -> np.ndarray:
        return ((gen(z) + 1) / 2).numpy()  # [0, 1] without output_range="0,1"

    status, _, notes = _row(ganeval.score(as_array, z_dim=16, **FAST))
    assert status == "ok" and "as_array: outputs are all >= 0 (0..1); if they are in [0, 1] pass --output-range 0,1" in notes


@pytest.mark.parametrize("kind", [tuple, list])
def test_a_tuple_output_says_what_is_expected(gen: BankGenerator, kind: type) -> None:
    """(images, extra) once failed with NumPy's 'inhomogeneous shape' message."""

    def pair(z: torch.Tensor) -> Any:
        return kind((gen(z), z))

    status, error, _ = _row(ganeval.score(pair, z_dim=16, **FAST))
    assert status == "error" and error == (f"pair: generator returned a {kind.__name__}; expected one (B, 1|3, H, W) "
                                           "tensor or array of images (return only the images)")


@pytest.mark.parametrize(("given", "scale", "hint"), [("0,1", lambda x: x, "looks like [-1, 1], not [0, 1]: pass --output-range -1,1"),
                                                      ("0,255", lambda x: (x + 1) / 2, "looks like [0, 1] or [-1, 1], not 0..255")])
def test_outputs_read_in_a_narrower_range_get_a_note(gen: BankGenerator, given: str, scale: Any, hint: str) -> None:
    """[-1, 1] outputs read as [0, 1] lose every negative value to the clamp (the shipped DCGAN's MNIST FD 0.60 →
    0.68, with no note); [0, 1] read as 0..255 is a black image. Only the opposite mistake got a note."""
    def wrong(z: torch.Tensor) -> torch.Tensor:
        return scale(gen(z))

    status, _, notes = _row(ganeval.score(wrong, z_dim=16, output_range=given, **FAST))
    assert status == "ok" and any(n.startswith("wrong: outputs span [") and hint in n for n in notes), notes
    _, _, right = _row(ganeval.score(wrong, z_dim=16, output_range="-1,1" if given == "0,1" else "0,1", **FAST))
    assert not any("looks like" in n or "span" in n for n in right), right
