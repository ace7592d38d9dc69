"""What identifies your own code (a ``--generator`` or ``--feature-network`` factory) by the code that runs: the
source of its module and of the local modules that module imports, and whether those files still describe the code
loaded from them (an edit without a reload leaves old code running under a new file)."""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import inspect
import os
import site
import sys
import sysconfig
import types
from pathlib import Path
from typing import Any


def text_digest(obj: Any) -> str | None:
    """SHA-256 of the source text of ``obj`` (a module), or None when it cannot be read."""
    try:
        text = inspect.getsource(obj)
    except (OSError, TypeError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def _code_shape(code: types.CodeType) -> tuple[Any, ...]:
    """What a code object does, without its line numbers (an edit above it only moves it)."""
    consts = tuple(_code_shape(c) if isinstance(c, types.CodeType) else (type(c).__name__, repr(c)) for c in code.co_consts)
    return code.co_code, code.co_names, code.co_varnames, code.co_freevars, consts


def _compiled_shapes(code: types.CodeType, out: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Shapes of every function compiled from the file, by qualified name (a list: two lambdas share ``<lambda>``)."""
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out.setdefault(getattr(c, "co_qualname", c.co_name), []).append(_code_shape(c))
            _compiled_shapes(c, out)
    return out


def _live_shapes(module: Any) -> dict[str, Any]:
    """Shapes of the functions and methods the module's namespace holds now (its classes' too), by qualified name."""
    shapes: dict[str, Any] = {}
    seen: set[int] = set()
    filename = getattr(module, "__file__", None)

    def visit(obj: Any) -> None:
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        if isinstance(obj, property):
            for f in (obj.fget, obj.fset, obj.fdel):
                visit(f)
        elif isinstance(obj, types.FunctionType):
            if obj.__code__.co_filename == filename:  # not a decorator's wrapper made elsewhere (functools.wraps)
                shapes[getattr(obj.__code__, "co_qualname", obj.__qualname__)] = _code_shape(obj.__code__)
            visit(getattr(obj, "__wrapped__", None))
        elif isinstance(obj, type) and obj.__module__ == module.__name__ and id(obj) not in seen:
            seen.add(id(obj))
            for value in vars(obj).values():
                visit(value)

    for value in list(vars(module).values()):
        visit(value)
    return shapes


def _immutable(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(_immutable(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, complex, str, bytes))


def file_describes(module: Any) -> bool:
    """Whether compiling the module's file now gives the code its namespace runs (every function and method, and
    the literal constants assigned at its top level); True when there is no file to compare (nothing to digest)."""
    try:
        text = inspect.getsource(module)
        tree = ast.parse(text)
        compiled = _compiled_shapes(compile(tree, getattr(module, "__file__", None) or "<module>", "exec", dont_inherit=True), {})
    except (OSError, TypeError, SyntaxError, ValueError):
        return True  # no readable or parseable source: text_digest decides (None, or the digest of what is there)
    for name, shape in _live_shapes(module).items():
        if shape not in compiled.get(name, []):
            return False
    missing = object()
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else \
            node.target if isinstance(node, ast.AnnAssign) and node.value is not None else None
        if not isinstance(target, ast.Name):
            continue
        try:
            value = ast.literal_eval(node.value)  # type: ignore[union-attr, arg-type]
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        if not _immutable(value):
            continue  # a registry filled while the module runs ({} or [] in the file) says nothing about edits
        live = getattr(module, target.id, missing)
        if live is missing or type(live) is not type(value) or repr(live) != repr(value):  # repr: nan is nan
            return False
    return True


@functools.lru_cache(maxsize=1)
def _installed_roots() -> tuple[str, ...]:
    """Folders of installed code (the standard library, site-packages): modules there are not the user's."""
    paths = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *site.getsitepackages()}
    paths.add(site.getusersitepackages())
    ganeval_root = str(Path(__file__).resolve().parent)  # ganeval itself, wherever it is installed
    return tuple(sorted({os.path.realpath(p) for p in paths if p} | {ganeval_root}))


def _local_file(module: Any) -> str | None:
    """The module's source file when it is the user's own code (a .py outside installed folders), else None."""
    name = getattr(module, "__file__", None)
    if not name or not name.endswith(".py"):
        return None
    real = os.path.realpath(name)
    return None if any(real == r or real.startswith(r + os.sep) for r in _installed_roots()) else real


def _imported_names(module: Any, tree: ast.Module) -> list[str]:
    """Module names the source imports (``import a.b`` → a, a.b; ``from .x import y`` → pkg.x, pkg.x.y)."""
    names: list[str] = []
    package = getattr(module, "__package__", None) or ""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                names += [".".join(parts[: i + 1]) for i in range(len(parts))]
        elif isinstance(node, ast.ImportFrom):
            try:
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level \
                    else node.module or ""
            except (ImportError, ValueError):
                continue
            names += [base, *(f"{base}.{a.name}" for a in node.names if a.name != "*")]
    return [n for n in dict.fromkeys(names) if n]


def local_dependencies(module: Any) -> list[Any]:
    """The user's own modules that ``module`` imports, directly or through each other, deepest first: loaded ones
    from ``sys.modules``, not yet loaded top-level ones located without importing them (a ``ModuleType`` shell)."""
    out: dict[str, Any] = {}

    def visit(mod: Any) -> None:
        try:
            tree = ast.parse(inspect.getsource(mod))
        except (OSError, TypeError, SyntaxError, ValueError):
            return
        for name in _imported_names(mod, tree):
            if name in out or name == getattr(mod, "__name__", None):
                continue
            dep = sys.modules.get(name)
            if dep is None and "." not in name:
                try:
                    spec = importlib.util.find_spec(name)
                except (ImportError, ValueError):
                    spec = None
                if spec is not None and spec.origin and spec.origin.endswith(".py"):
                    dep = types.ModuleType(name)
                    dep.__file__ = spec.origin
            if dep is None or _local_file(dep) is None or _local_file(dep) == _local_file(module):
                continue
            out[name] = None  # placeholder against cycles
            visit(dep)
            out[name] = dep

    visit(module)
    return list(out.values())


def code_digest(module: Any) -> str | None:
    """SHA-256 of the module's source, and of its local dependencies' when it has any (name and SHA-256 of each);
    None when its source cannot be read, or when a file no longer describes the code loaded from it."""
    own = text_digest(module)
    if own is None or not file_describes(module):
        return None
    parts = []
    for dep in local_dependencies(module):
        if dep.__name__ in sys.modules and not file_describes(dep):
            return None
        try:
            parts.append(f"{dep.__name__}:{hashlib.sha256(Path(dep.__file__).read_bytes()).hexdigest()}")
        except OSError:
            return None
    if not parts:
        return own  # the module alone: its source text's SHA-256
    return hashlib.sha256("\n".join([own, *sorted(parts)]).encode()).hexdigest()


def stale_dependencies(module: Any) -> list[Any]:
    """Loaded local dependencies whose files were edited since they were loaded, deepest first (to reload)."""
    return [d for d in local_dependencies(module) if sys.modules.get(d.__name__) is d and not file_describes(d)]
