"""Your own code named on the command line (``MODULE:NAME`` or ``path/to/file.py:NAME``): a generator class for
weight files, a feature network for metrics in your domain. Imported once, built with JSON kwargs, and identified
by name, kwargs and the SHA-256 of its module's source text, so editing the code invalidates what was cached."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ganeval.errors import GanevalError

#: Executed ``.py`` modules by (resolved path, mtime, size): an edited file is executed again.
_FILE_MODULES: dict[tuple[str, int, int], Any] = {}


@dataclass(frozen=True)
class UserFactory:
    """A class or function returning an ``nn.Module``, its kwargs, and what identifies both."""

    factory: Callable[..., nn.Module]
    name: str
    kwargs: dict[str, Any]
    source_sha256: str
    #: The flag it came from, for messages (``--generator``, ``--feature-network``).
    flag: str = "--generator"

    def identity(self) -> str:
        """Changes when the factory's name, its module's source text or the kwargs change."""
        return f"{self.name}|{self.source_sha256[:16]}|{self.kwargs_json()}"

    def kwargs_json(self) -> str:
        """The kwargs as canonical JSON."""
        return json.dumps(self.kwargs, sort_keys=True, default=str)

    def build(self) -> nn.Module:
        """A fresh module from the factory; anything but an ``nn.Module`` is an input error."""
        try:
            model = self.factory(**self.kwargs)
        except Exception as exc:  # the user's constructor: report it in one line
            raise GanevalError(f"{self.flag} {self.name}: building it with {self.kwargs} failed: "
                               f"{exc.__class__.__name__}: {exc}") from exc
        if not isinstance(model, nn.Module):
            raise GanevalError(f"{self.flag} {self.name}: returned {type(model).__name__}, not a torch.nn.Module")
        return model


def _import(spec: str, flag: str) -> Any:
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise GanevalError(f"{flag} must be MODULE:NAME or path/to/file.py:NAME (got {spec!r})")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise GanevalError(f"{flag} {spec}: {path}: no such file")
        module = _file_module(path, spec, flag)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise GanevalError(f"{flag} {spec}: cannot import {target} ({exc})") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise GanevalError(f"{flag} {spec}: {target} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _file_module(path: Path, spec: str, flag: str) -> Any:
    """The module of a ``.py`` file, executed once per version of the file (a watch scores it for every checkpoint)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _FILE_MODULES:
        name = f"ganeval_user_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
        loader = importlib.util.spec_from_file_location(name, path)
        if loader is None or loader.loader is None:
            raise GanevalError(f"{flag} {spec}: {path} cannot be imported")
        module = importlib.util.module_from_spec(loader)
        sys.modules[name] = module
        sys.path.insert(0, str(path.parent.resolve()))  # so the file's own sibling imports resolve
        try:
            loader.loader.exec_module(module)
        except Exception as exc:
            raise GanevalError(f"{flag} {spec}: importing {path} failed: {exc.__class__.__name__}: {exc}") from exc
        finally:
            sys.path.remove(str(path.parent.resolve()))
        _FILE_MODULES[key] = module
    return _FILE_MODULES[key]


def _source_digest(factory: Any) -> str:
    try:
        text = inspect.getsource(inspect.getmodule(factory) or factory)
    except (OSError, TypeError):
        text = ""
    return hashlib.sha256(text.encode()).hexdigest()


def resolve_factory(spec: Any, kwargs: Any = None, flag: str = "--generator") -> UserFactory:
    """``spec`` as ``"MODULE:NAME"``, ``"file.py:NAME"`` or a callable; ``kwargs`` a dict or a JSON object string.

    Built once here, so a wrong name or arguments is a usage error before any work starts.
    """
    if isinstance(spec, UserFactory):
        return spec
    if isinstance(kwargs, str):
        try:
            kwargs = json.loads(kwargs)
        except json.JSONDecodeError as exc:
            raise GanevalError(f"{flag}-kwargs is not valid JSON ({exc.msg}): {kwargs!r}") from exc
    if kwargs is not None and not isinstance(kwargs, dict):
        raise GanevalError(f"{flag}-kwargs must be a JSON object, e.g. '{{\"nz\": 100}}'")
    if isinstance(spec, str):
        factory, name = _import(spec, flag), spec
    else:
        factory = spec
        name = f"{getattr(spec, '__module__', '?')}:{getattr(spec, '__qualname__', type(spec).__name__)}"
    if not callable(factory):
        raise GanevalError(f"{flag} {name}: not a class or function")
    made = UserFactory(factory, name, dict(kwargs or {}), _source_digest(factory), flag)
    made.build()
    return made


__all__ = ["UserFactory", "resolve_factory"]
