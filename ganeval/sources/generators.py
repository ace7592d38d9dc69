"""Generator files other than our checkpoints: TorchScript archives and ONNX models, plus Python callables.

Safety. A TorchScript file is a zip whose ``*.pkl`` entries are pickles. Before ``torch.jit.load`` (never
``torch.load``) every pickle in the archive is scanned with ``pickletools.genops``, without unpickling, and
the file is refused if any GLOBAL/STACK_GLOBAL/INST refers outside ``torch.*``, ``__torch__.*`` (TorchScript
classes), ``collections`` or a few ``builtins`` types, or uses the extension registry. ONNX models run in
onnxruntime with no custom-op library, and models with nodes outside the standard ONNX domains are refused.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import pickletools
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganeval.atomic import sha256_file
from ganeval.errors import CheckpointError, GanevalError, first_line

SAFE_BUILTINS = {"set", "frozenset", "list", "dict", "tuple", "int", "float", "complex", "bool", "str", "bytes",
                 "bytearray", "slice", "range"}
ONNX_DOMAINS = {"", "ai.onnx", "ai.onnx.ml"}
ZDIM_ATTRS = ("latent_dim", "z_dim", "nz", "latent_size")
META_FILE = "ganeval.json"
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}


def _global_allowed(module: str, name: str) -> bool:
    top = module.split(".")[0]
    if top in ("torch", "__torch__", "collections"):
        return True
    return module == "builtins" and name in SAFE_BUILTINS


def scan_pickle(data: bytes, where: str) -> None:
    """Refuse a pickle that references globals outside the allow-list (it is only parsed, never loaded)."""
    memo: dict[int, Any] = {}
    stack: list[Any] = []  # only recent string pushes matter, for STACK_GLOBAL
    try:
        for op, arg, _ in pickletools.genops(data):
            refs: list[tuple[str, str]] = []
            if op.name in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
                refs.append((module, name))
            elif op.name == "STACK_GLOBAL":
                if len(stack) < 2 or not all(isinstance(s, str) for s in stack[-2:]):
                    raise CheckpointError(f"{where}: STACK_GLOBAL with a computed name; refusing")
                refs.append((stack[-2], stack[-1]))
            elif op.name in ("EXT1", "EXT2", "EXT4"):
                raise CheckpointError(f"{where}: pickle uses the copyreg extension registry; refusing")
            if op.name in _STRING_OPS:
                stack.append(arg if isinstance(arg, str) else None)
            elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[int(arg)] = stack[-1] if stack else None
            elif op.name == "MEMOIZE":
                memo[len(memo)] = stack[-1] if stack else None
            elif op.name in ("BINGET", "LONG_BINGET", "GET"):
                stack.append(memo.get(int(arg)))
            else:
                stack.append(None)
            for module, name in refs:
                if not _global_allowed(module, name):
                    raise CheckpointError(f"{where}: refers to {module}.{name}, outside the allowed torch/collections/"
                                          "builtins globals; refusing to load this TorchScript file")
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - a pickle we cannot parse is refused, never loaded
        raise CheckpointError(f"{where}: malformed pickle ({exc.__class__.__name__}: {exc}); refusing") from exc


def check_torchscript(path: Path) -> dict[str, Any]:
    """Scan a TorchScript archive; return the ``extra/ganeval.json`` metadata it carries ({} when none)."""
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a TorchScript archive (not a zip file; legacy or pickled files are refused)")
    meta: dict[str, Any] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if not any(n.endswith("data.pkl") for n in names) or not any(n.endswith("constants.pkl") for n in names):
                raise CheckpointError(f"{path}: not a TorchScript archive (no data.pkl/constants.pkl; "
                                      "a torch.save state dict? pass its class: --generator MODULE:NAME)")
            for name in names:
                if name.endswith("pkl"):
                    scan_pickle(zf.read(name), f"{path}: {name}")
                elif name.endswith(f"extra/{META_FILE}"):
                    meta = json.loads(zf.read(name).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated TorchScript archive ({exc})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: extra/{META_FILE} is not valid JSON") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: extra/{META_FILE} is not a JSON object")
    return {k: meta[k] for k in ("z_dim", "z_type", "output_range") if meta.get(k) is not None}


def load_torchscript(path: Path, device: torch.device | str = "cpu") -> torch.jit.ScriptModule:
    """``torch.jit.load`` after ``check_torchscript``; eval mode."""
    check_torchscript(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export
            module = torch.jit.load(str(path), map_location=device)
    except Exception as exc:  # noqa: BLE001 - any load failure is one clear input error
        raise CheckpointError(f"{path}: cannot load TorchScript ({exc.__class__.__name__}: {first_line(exc)})") from exc
    return module.eval()


def zdim_attribute(obj: Any) -> int | None:
    """The latent size a module states as an int attribute ``latent_dim``, ``z_dim``, ``nz`` or ``latent_size``."""
    for attr in ZDIM_ATTRS:
        value = getattr(obj, attr, None)
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):  # numpy ints too
            return int(value)
    return None


def probe_torchscript(path: Path, z_dim_given: bool) -> dict[str, Any]:
    """The metadata a TorchScript file gives: its ``ganeval.json``, else a ``latent_dim``-like attribute."""
    found = check_torchscript(path)
    if "z_dim" not in found and not z_dim_given:
        z_dim = zdim_attribute(load_torchscript(path))
        if z_dim is not None:
            found["z_dim"] = z_dim
    return found


def _onnx_model(path: Path) -> Any:
    try:
        import onnx
    except ImportError:
        raise GanevalError("ONNX generators need onnx and onnxruntime: pip install 'ganeval[onnx]'") from None
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf parse errors have many types
        raise CheckpointError(f"{path}: not a readable ONNX model ({exc.__class__.__name__})") from exc


def _graph_domains(graph: Any) -> set[str]:
    domains = set()
    for node in graph.node:
        domains.add(node.domain)
        for attr in node.attribute:
            for sub in [attr.g, *attr.graphs] if attr.HasField("g") else attr.graphs:
                domains |= _graph_domains(sub)
    return domains


def probe_onnx(path: Path) -> dict[str, Any]:
    """Check an ONNX model (one input, standard domains only) and read z_dim from a static input shape."""
    model = _onnx_model(path)
    domains = _graph_domains(model.graph) | {o.domain for o in model.opset_import}
    for fn in model.functions:
        domains |= {fn.domain} | {n.domain for n in fn.node}
    custom = sorted(d for d in domains if d not in ONNX_DOMAINS)
    if custom:
        raise CheckpointError(f"{path}: uses custom-domain operators ({', '.join(custom)}); only standard ONNX operators "
                              "are run, refusing")
    init = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init]
    if len(inputs) != 1:
        raise CheckpointError(f"{path}: expected one input (the latent batch), found {len(inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 2:
        raise CheckpointError(f"{path}: input {inputs[0].name!r} has rank {len(dims)}; expected (B, z_dim)")
    found: dict[str, Any] = {}
    if dims[1].HasField("dim_value") and dims[1].dim_value > 0:
        found["z_dim"] = int(dims[1].dim_value)
    props = {p.key: p.value for p in model.metadata_props}
    for key in ("z_dim", "z_type", "output_range"):
        if key in props and key not in found:
            found[key] = props[key]
    if isinstance(found.get("z_dim"), str):
        if not found["z_dim"].strip().isdigit():
            raise CheckpointError(f"{path}: metadata z_dim {found['z_dim']!r} is not an integer")
        found["z_dim"] = int(found["z_dim"])
    return found


def onnx_function(path: Path, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """A latent batch → output function running ``path`` in onnxruntime (CUDA provider on a CUDA device)."""
    probe_onnx(path)
    try:
        import onnxruntime as ort
    except ImportError:
        raise GanevalError("ONNX generators need onnxruntime: pip install 'ganeval[onnx]'") from None
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise CheckpointError(f"{path}: onnxruntime cannot load this model ({str(exc).splitlines()[0]})") from exc
    inp, out_name = sess.get_inputs()[0], sess.get_outputs()[0].name
    dtype = {"tensor(float16)": np.float16, "tensor(double)": np.float64}.get(inp.type, np.float32)
    fixed = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None

    def run(z: torch.Tensor) -> torch.Tensor:
        arr = z.detach().cpu().numpy().astype(dtype)
        if fixed is None:
            return torch.from_numpy(np.asarray(sess.run([out_name], {inp.name: arr})[0]))
        parts = []
        for s in range(0, len(arr), fixed):
            chunk = arr[s:s + fixed]
            pad = np.zeros((fixed - len(chunk), arr.shape[1]), dtype)
            parts.append(np.asarray(sess.run([out_name], {inp.name: np.concatenate([chunk, pad])})[0])[:len(chunk)])
        return torch.from_numpy(np.concatenate(parts))

    return run


def file_digest(path: Path) -> str:
    """SHA-256 of a generator file."""
    try:
        return sha256_file(path)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def _graph_tensors(graph: Any) -> Iterator[Any]:
    """Every tensor an ONNX graph holds: initializers, sparse ones, node attributes, and those of sub-graphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for sub in [attr.g, *attr.graphs] if attr.HasField("g") else attr.graphs:
                yield from _graph_tensors(sub)


def onnx_external_digest(path: Path) -> str | None:
    """SHA-256 of the external data files an ONNX model's weights are stored in (``gen.onnx.data`` beside it, as large
    models and newer exporters save them), by location; None when every weight is inside the .onnx file.

    Why: the .onnx proto of a retrained model whose weights are external is byte-identical to the old one, so its
    own SHA-256 alone would serve the old model's cached features for the new weights."""
    model = _onnx_model(path)
    tensors = list(_graph_tensors(model.graph))
    for fn in model.functions:
        for node in fn.node:
            tensors += [a.t for a in node.attribute if a.HasField("t")]
    import onnx

    locations = sorted({e.value for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL
                        for e in t.external_data if e.key == "location"})
    if not locations:
        return None
    h = hashlib.sha256()
    for loc in locations:
        data = path.parent / loc
        try:
            digest = sha256_file(data)
        except OSError as exc:
            raise CheckpointError(f"{path}: cannot read its external weights file {loc} "
                                  f"({exc.strerror or exc.__class__.__name__})") from exc
        h.update(f"{loc}|{digest}\n".encode())
    return h.hexdigest()
