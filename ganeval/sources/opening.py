"""Opening a resolved ``Source`` (``ganeval.inputs``): its samples, by kind: a ganeval checkpoint, a TorchScript or ONNX
file, a Python callable, a state dict of the user's generator class, stored images, an ``.npz``/``.npy`` or an array.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ganeval.checkpoints import load_generator, refuse_changed
from ganeval.errors import GanevalError
from ganeval.interrupts import held_signals
from ganeval.sources import generators as gens
from ganeval.sources.base import GeneratorSamples, InputHints, Samples, merge_hints
from ganeval.sources.samples import array_images, open_array, read_npy, read_npz
from ganeval.sources.state_dicts import load_state_dict_generator
from ganeval.sources.streamed_samples import open_image_set

if TYPE_CHECKING:
    from ganeval.inputs import Source


def _open_checkpoint(src: Source, device: torch.device, n: int, seed: int) -> Samples:
    assert src.path is not None
    gen, meta = load_generator(src.path, device=device)
    if device.type == "cpu":  # oneDNN's convolutions: the DCGANs sample 1.1-1.45x faster (benchmarks/cpu_layout.py)
        gen = gen.to(memory_format=torch.channels_last)
    sha = meta["sha256"]
    return GeneratorSamples(gen, name=src.name, n=n, seed=seed, z_dim=int(meta.get("latent_dim") or gen.latent_dim),
                            z_type="normal", output_range="-1,1", device=device, sha256=sha, cache_key=sha, meta=meta)


def generator_settings(kind: str, path: Path, hints: InputHints) -> dict[str, Any]:
    """A TorchScript or ONNX file's z_dim, z_type and output range: what it says, completed by the hints."""
    found = gens.probe_onnx(path) if kind == "onnx" else gens.probe_torchscript(path, hints.z_dim is not None)
    if found.get("z_dim") is None and hints.z_dim is None:
        how = ("its input shape is dynamic" if kind == "onnx" else
               f"save it with torch.jit.save(m, path, _extra_files={{'{gens.META_FILE}': '{{\"z_dim\": N}}'}}) or give the "
               "module a latent_dim attribute")
        raise GanevalError(f"{path}: cannot tell the latent size of this {kind} generator ({how}); pass --z-dim N "
                           "(z_dim=N in Python)")
    return merge_hints(str(path), found, hints)


def _open_generator_file(src: Source, device: torch.device, n: int, seed: int) -> Samples:
    assert src.path is not None
    hints: InputHints = src.extra["hints"]
    settings = src.extra.get("settings") or generator_settings(src.kind, src.path, hints)
    sha = gens.file_digest(src.path)
    if src.kind == "onnx":
        fn: Callable[[torch.Tensor], Any] = gens.onnx_function(src.path, device)
    else:
        fn = gens.load_torchscript(src.path, device)
    refuse_changed(src.path, sha, gens.file_digest(src.path))
    meta: dict[str, Any] = {"format": src.kind}
    key = f"{sha}|z{settings['z_dim']}|{settings['output_range']}"
    if src.kind == "onnx" and (external := gens.onnx_external_digest(src.path)) is not None:
        meta["external_data_sha256"] = external  # weights beside the .onnx: part of what identifies the model
        key += f"|external{external}"
    return GeneratorSamples(fn, name=src.name, n=n, seed=seed, z_dim=settings["z_dim"], z_type=settings["z_type"],
                            output_range=settings["output_range"], device=device, sha256=sha, cache_key=key, meta=meta)


def _open_callable(src: Source, device: torch.device, n: int, seed: int) -> Samples:
    fn, s = src.extra["fn"], src.extra["settings"]
    restore = _restorer(fn) if isinstance(fn, nn.Module) else None
    key = src.extra.get("cache_key")
    key = f"callable:{key}|z{s['z_dim']}|{s['output_range']}" if key else None
    try:
        if isinstance(fn, nn.Module):
            fn = (fn.to(device) if len(_devices(fn)) <= 1 else fn).eval()  # one spread over devices stays put
        samples = GeneratorSamples(fn, name=src.name, n=n, seed=seed, z_dim=s["z_dim"], z_type=s["z_type"],
                                   output_range=s["output_range"], device=device, sha256=None, cache_key=key,
                                   meta={"format": "callable"})
    except BaseException:  # not opened (no memory for the latents, the device full): no close() will restore it
        if restore is not None:
            with held_signals():
                restore()
        raise
    samples.restore = restore
    return samples


def _devices(module: nn.Module) -> set[torch.device]:
    """The devices of ``module``'s parameters and buffers."""
    return {t.device for t in [*module.parameters(), *module.buffers()]}


def _restorer(module: nn.Module) -> Callable[[], None]:
    """What puts the caller's module back as it was given once it is scored: each submodule's training mode, and its
    device when it was on one (``ganeval.score(G)`` from a training loop left G in eval mode, or moved). A module
    spread over several devices (model parallel, parts offloaded or on ``meta``) is not moved at all: moving it to
    the scoring device left it there (nothing said where each part belonged), broke a forward that moves its
    activations between parts, and failed on ``meta`` tensors."""
    modes = [(m, m.training) for m in module.modules()]
    devices = _devices(module)
    home = devices.pop() if len(devices) == 1 else None

    def restore() -> None:
        if home is not None:
            module.to(home)
        for m, training in modes:
            m.training = training

    return restore


def _open_state_dict(src: Source, device: torch.device, n: int, seed: int) -> Samples:
    assert src.path is not None
    hints: InputHints = src.extra["hints"]
    spec = hints.generator
    sha = gens.file_digest(src.path)
    model, key = load_state_dict_generator(src.path, spec, hints.state_key, device)
    refuse_changed(src.path, sha, gens.file_digest(src.path))
    z_dim = gens.zdim_attribute(model)
    s = merge_hints(str(src.path), {"z_dim": z_dim} if z_dim is not None else {}, hints)
    ident = spec.identity(hints.cache_key)  # None: its source cannot be read, and no cache_key names it
    cache = f"{sha}|{ident}|{key}|z{s['z_dim']}|{s['output_range']}" if ident else None
    samples = GeneratorSamples(model, name=src.name, n=n, seed=seed, z_dim=s["z_dim"], z_type=s["z_type"],
                               output_range=s["output_range"], device=device, sha256=sha, cache_key=cache,
                               meta={"format": "state_dict", "generator": spec.name, "generator_kwargs": spec.kwargs,
                                     "generator_source_sha256": spec.source_label, "state_key": key})
    if spec.source_sha256 is None:
        samples.notes.append(spec.uncached_note() if ident is None else f"{spec.flag} {spec.name}: its source cannot be "
                             f"read; cached under cache_key={hints.cache_key!r}")
    return samples


def _open_images(src: Source, device: torch.device, n: int, seed: int) -> Samples:
    assert src.path is not None
    return open_image_set(src.path, n, bool(src.extra["hints"].recursive))


def _open_npz(src: Source, device: torch.device, n: int, seed: int) -> Samples:
    assert src.path is not None
    read = read_npy if src.path.suffix.lower() == ".npy" else read_npz
    images, flags, notes = read(src.path, src.extra["hints"].output_range or "-1,1", n)  # only the first n read
    return open_array(images, flags, n, src.path.name, notes)


def _open_array(src: Source, device: torch.device, n: int, seed: int) -> Samples:
    images, flags, notes = array_images(src.extra["array"], src.extra["hints"].output_range or "-1,1", src.name)
    return open_array(images, flags, n, src.name, notes)


def _open_failed(src: Source, device: torch.device, n: int, seed: int) -> Samples:
    """A run that could not be formed (e.g. compare's ``--pick best`` of a folder where nothing scored): its row says why."""
    raise GanevalError(src.extra["error"])


OPENERS: dict[str, Callable[[Source, torch.device, int, int], Samples]] = {
    "checkpoint": _open_checkpoint, "torchscript": _open_generator_file, "onnx": _open_generator_file,
    "callable": _open_callable, "state_dict": _open_state_dict, "images": _open_images, "npz": _open_npz, "array": _open_array,
    "failed": _open_failed,
}
