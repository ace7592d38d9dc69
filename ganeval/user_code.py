"""Your own code named on the command line (``MODULE:NAME`` or ``path/to/file.py:NAME``): a generator class for
weight files, a feature network for metrics in your domain. Imported once, built with JSON kwargs, and identified
by name, kwargs and the SHA-256 of its module's source text (and of the local modules it imports:
``ganeval.code_identity``), so editing the code invalidates what was cached.
A ``MODULE:NAME`` whose file was edited since it was imported is imported again, so that digest is always of the code
that runs; code whose source cannot be read (``python -c``, a notebook cell) has no digest and is never cached."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ganeval.code_identity import code_digest, stale_dependencies, text_digest
from ganeval.errors import GanevalError

#: Executed ``.py`` modules by (resolved path, mtime, size): an edited file is executed again.
_FILE_MODULES: dict[tuple[str, int, int], Any] = {}
#: Source SHA-256 of each ``MODULE`` of a ``MODULE:NAME`` when it was last (re)imported here: a later digest that
#: differs means the file was edited in this session (a notebook), and the module is reloaded before it is used.
_MODULE_DIGESTS: dict[str, str | None] = {}
#: What reports say in place of a source SHA-256 that cannot be computed.
SOURCE_UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class UserFactory:
    """A class or function returning an ``nn.Module``, its kwargs, and what identifies both."""

    factory: Callable[..., nn.Module]
    name: str
    kwargs: dict[str, Any]
    #: SHA-256 of its module's source text; None when that cannot be read (``python -c``, a notebook cell).
    source_sha256: str | None
    #: The flag it came from, for messages (``--generator``, ``--feature-network``).
    flag: str = "--generator"

    def identity(self, cache_key: str | None = None) -> str | None:
        """What caches are keyed on: changes when the factory's name, its module's source text or the kwargs change.
        Without a readable source nothing tells one definition from the next, so only an explicit ``cache_key``
        identifies it (as for a callable); without one, None: never cached."""
        code = self.source_sha256[:16] if self.source_sha256 else f"cache_key:{cache_key}" if cache_key else None
        return None if code is None else f"{self.name}|{code}|{self.kwargs_json()}"

    @property
    def source_label(self) -> str:
        """The source SHA-256 for reports and sidecars, or ``unavailable``."""
        return self.source_sha256 or SOURCE_UNAVAILABLE

    def uncached_note(self) -> str:
        """Why nothing made with it is cached (its source cannot be read)."""
        return (f"{self.flag} {self.name}: its source cannot be read (defined in python -c or a notebook cell, or its "
                "module was reloaded since it was made, or its file was edited since it was imported), so nothing "
                "made with it is cached and its source SHA-256 is unavailable; define it in a .py file (reload it after "
                "an edit), or pass cache_key=, to cache")

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
        module = _current_module(target, spec, flag)
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
    if key in _FILE_MODULES:
        sys.path.insert(0, str(path.parent.resolve()))  # where its sibling imports are found again
        try:
            if _reload_dependencies(_FILE_MODULES[key]):
                del _FILE_MODULES[key]  # a sibling module it imports was edited: run the file again against the new code
        except Exception as exc:
            raise GanevalError(f"{flag} {spec}: re-importing what {path} imports failed: {exc.__class__.__name__}: {exc}") from exc
        finally:
            sys.path.remove(str(path.parent.resolve()))
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


def _reload_dependencies(module: Any) -> bool:
    """Reload the local modules ``module`` imports whose files were edited since they were loaded (deepest first);
    True when any was, so that ``module`` is run again and binds their new code."""
    stale = stale_dependencies(module)
    for dep in stale:
        importlib.reload(dep)
    return bool(stale)


def _current_module(target: str, spec: str, flag: str) -> Any:
    """``import target``, reloaded when its source changed since it was imported (here, or, for a module imported
    before ganeval first saw it, when its file is newer than this process): the module cached in ``sys.modules``
    would otherwise run the old code under the edited file's digest."""
    preloaded = target in sys.modules
    try:
        module = _import_from_cwd(target)
        digest = text_digest(module)
        known = _MODULE_DIGESTS.get(target)
        stale = known != digest if target in _MODULE_DIGESTS else preloaded and _edited_this_session(module)
        if digest is not None and (stale or _reload_dependencies(module)):
            module = importlib.reload(module)
            digest = text_digest(module)
    except ImportError as exc:
        raise GanevalError(f"{flag} {spec}: cannot import {target} ({exc})") from exc
    except Exception as exc:  # the user's module failed to run: one line
        raise GanevalError(f"{flag} {spec}: importing {target} failed: {exc.__class__.__name__}: {exc}") from exc
    _MODULE_DIGESTS[target] = digest
    return module


def _import_from_cwd(target: str) -> Any:
    """``import target``, looking in the working directory too: ``python -m ganeval`` has it on ``sys.path``, the
    installed ``ganeval`` command does not (its own bin/ folder is there instead), and ``MODULE:NAME`` is meant to
    name a module of the project folder it is run from (as ``python -m`` would, the folder goes first)."""
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        cwd, top = os.getcwd(), target.split(".")[0]
        here = Path(cwd, f"{top}.py").is_file() or Path(cwd, top).is_dir()
        if not here or exc.name != top or any(os.path.abspath(p or os.curdir) == cwd for p in sys.path):
            raise
        sys.path.insert(0, cwd)
        importlib.invalidate_caches()
        return importlib.import_module(target)


def _process_start() -> float:
    """When this process started (Linux: /proc's start time, to within a second), else when ganeval was imported."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return _IMPORTED_AT


_IMPORTED_AT = time.time()


def _edited_this_session(module: Any) -> bool:
    """Whether the module's source file changed after this process started (it may be older than the code in it)."""
    try:
        return Path(inspect.getsourcefile(module) or "").stat().st_mtime > _process_start()
    except (OSError, TypeError):
        return False


def _source_digest(factory: Any) -> str | None:
    """SHA-256 of the source of the factory's module; None when it cannot be read, or when the file no longer
    describes the code that runs: the module was run again since the factory was made (a reload after an edit), or
    its file was edited since it was imported and not reloaded (a class object handed over in a notebook)."""
    module = inspect.getmodule(factory)
    if module is not None and "<locals>" not in getattr(factory, "__qualname__", "<locals>"):
        current: Any = module
        for part in factory.__qualname__.split("."):
            current = getattr(current, part, None)
        if current is not None and current is not factory:
            return None
    return code_digest(module) if module is not None else text_digest(factory)


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
