"""A folder or zip of stored samples scored batch by batch, never held whole: sample sets larger than memory.

:func:`open_image_set` reads a set into one array (:func:`~ganeval.sources.samples.read_image_set`: one decoding
pass) where its first N images hold at most :func:`~ganeval.sources.sizing.hold_limit` bytes, and otherwise opens
it as :class:`StreamedImageSamples`: one decode-only pass for its SHA-256 (the content key every cache lookup needs
first), then the images decoded again batch by batch as scoring asks for them. Samples, SHA-256, notes and counts are
those of the one-array read, so features, cache entries and scores are the same either way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from ganeval.errors import GanevalError
from ganeval.sampling import SampleBatch
from ganeval.sources.base import Samples, gray_grid
from ganeval.sources.image_stream import ImageStream, Recoloured
from ganeval.sources.samples import read_image_set
from ganeval.sources.sizing import streams_samples


class StreamedImageSamples(Samples):
    """The first ``n`` readable images of a folder or zip as uint8 ``(B, C, H, W)`` batches, decoded as asked for.

    Global batches are served in increasing order from one pass (what ``ganeval.extraction`` asks for, on one rank or
    many); asking for an earlier batch, or another batch size, starts a new pass."""

    def __init__(self, path: Path, n: int, recursive: bool = False) -> None:
        stream = ImageStream(path, n, recursive, keep=False)  # streamed to hold a batch, not the set
        digest = stream.digest()  # every image decoded once, not kept; the colour and count are final after it
        notes = [note for note in stream.notes if note not in stream.unread_notes]  # as read_image_set's
        meta = {"files": stream.n + stream.n_bad, "first": stream.first_name, "last": stream.last_name}
        super().__init__(stream.n, digest, digest, "samples", False, meta, notes, stream.n_bad,
                         tuple(stream.shape[1:]))  # type: ignore[arg-type]
        stream.expected = stream.n  # later passes hash the count read, so that the last batch can check the SHA-256
        self.stream = stream
        self._pass: Iterator[tuple[int, torch.Tensor]] | None = None
        self._pass_size, self._next = 0, 0

    def batch(self, b: int, batch_size: int) -> SampleBatch:
        if self._pass is None or batch_size != self._pass_size or b < self._next:
            self.close()
            self._pass, self._pass_size = self.stream.batches(batch_size), batch_size
        try:
            for index, images in self._pass:
                if index == b:
                    self._next = b + 1
                    if b == -(-self.n // batch_size) - 1:
                        self._check_unchanged()
                    return SampleBatch(images, 0)
        except Recoloured as exc:  # its colour was final after the SHA-256 pass: a file changed since
            raise self._changed(str(exc)) from exc
        raise self._changed(f"{self.stream.n} readable images now, {self.n} when opened")

    def _check_unchanged(self) -> None:
        """With the last batch, the pass ends: its SHA-256 must be the one the features are cached under (a file
        changed, added or removed meanwhile would otherwise put other images' features in the cache under it)."""
        for _ in self._pass:  # type: ignore[union-attr]
            pass
        now = self.stream.pass_digest
        if self.stream.n != self.n or now != self.sha256:
            raise self._changed(f"pixel SHA-256 {str(now)[:12]}… now, {str(self.sha256)[:12]}… when opened")

    def _changed(self, why: str) -> GanevalError:
        return GanevalError(f"{self.stream.path}: its images changed while being scored ({why}); score it again")

    def rows(self, start: int, stop: int) -> SampleBatch:
        return SampleBatch(self.scored_rows(range(start, min(stop, self.n)), 1), 0)

    def scored_rows(self, indices: Sequence[int], batch_size: int) -> torch.Tensor:
        """Images ``indices`` from one pass (stored images take no per-batch seeding, so ``batch_size`` plays no part)."""
        positions = np.asarray([int(i) for i in indices], dtype=np.int64)
        if not len(positions):
            return torch.empty((0, *self.shape), dtype=torch.uint8)  # type: ignore[misc]
        return self.stream.subset(positions)

    def grid(self, k: int, batch_size: int) -> np.ndarray:
        """The first ``k`` images, decoding only those."""
        head = self.stream.head(min(k, self.n))
        assert head is not None  # the SHA-256 pass read n >= 1 images
        return gray_grid(head)

    def close(self) -> None:
        if self._pass is not None:
            self._pass.close()  # type: ignore[attr-defined]
        self._pass, self._next = None, 0


def open_image_set(path: Path, n: int, recursive: bool = False) -> Samples:
    """The first ``n`` readable images of a folder (``recursive``: its tree) or zip: held in one array, or streamed
    where that would hold more than :func:`~ganeval.sources.sizing.hold_limit` bytes."""
    if streams_samples(path, n, recursive=recursive):
        return StreamedImageSamples(path, n, recursive)
    return read_image_set(path, n, recursive)
