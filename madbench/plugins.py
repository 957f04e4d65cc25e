"""Plug-ins: your own mitigation, regime, metric, corpus or model, without forking madbench.

    madbench --plugin my_filter.py list mitigations       # a single file (or: --plugin mypkg.module)
    madbench run --plugin my_filter.py --preset smoke 'loop.mitigations=[none,my_filter]'
    madbench regress --plugin mypkg --mitigations my_filter --seeds 0 1
    # a config file may say:  plugins: [my_filter.py]

Two ways in:

* **Entry points** of an installed package, one group per kind; the entry's name
  is the registry name::

      [project.entry-points."madbench.mitigations"]
      length_filter = "madbench_length_filter:LengthFilter"

  Groups: ``madbench.mitigations``, ``madbench.regimes``, ``madbench.metrics``,
  ``madbench.corpora``, ``madbench.models``. They load in every madbench process.
* **A file or module** named by ``--plugin`` (any command) or ``plugins:`` (config
  file) that registers with the decorators (``@MITIGATIONS.register("name")``...).

The contract of each kind (checked when the plug-in loads):

* mitigation: a subclass of :class:`madbench.mitigations.Mitigation` whose
  ``params`` is a dict of defaults and which builds with them; hooks ``oversample``,
  ``logits_processors``, ``filter_samples``, ``transform_mix`` (see that module).
* regime: :class:`RegimeFn`, ``fn(ctx: RegimeContext) -> list[Doc]``, the training mix.
* metric: :class:`MetricFn`, ``fn(ctx: MetricContext) -> float | dict | None`` registered with
  ``@METRICS.register(name, higher_is_better=True/False/None, needs='samples'|'model'|'human')``
  (an entry point's function carries them as attributes instead); madbench keeps them as a
  :class:`madbench.metrics.MetricSpec`.
* corpus: :class:`CorpusFn`, ``fn() -> list[str]`` of raw texts (madbench cuts them).
* model: :class:`ModelFn`, ``fn(cfg, split) -> str``, a transformers folder or hub name (``split``: the CorpusSplit).

A plug-in may not reuse a built-in name. A plug-in that fails to import, clashes or
breaks its contract is reported in one line naming it; its entries are removed and
madbench's own keep working (an installed entry point is skipped with a warning, a
``--plugin`` is an error).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional, Protocol, Tuple, runtime_checkable

from madbench.errors import MadbenchError
from madbench.registry import BUILTIN, CURRENT_ORIGIN

# kind -> (module holding the registry, registry attribute)
KINDS: Dict[str, Tuple[str, str]] = {
    "mitigations": ("madbench.mitigations", "MITIGATIONS"),
    "regimes": ("madbench.loop.regimes", "REGIMES"),
    "metrics": ("madbench.metrics", "METRICS"),
    "corpora": ("madbench.data.corpus", "CORPORA"),
    "models": ("madbench.models.base_model", "MODELS"),
}
GROUP = "madbench."  # entry point group prefix: madbench.mitigations, ...


@runtime_checkable
class RegimeFn(Protocol):
    def __call__(self, ctx: Any) -> list: ...  # RegimeContext -> the generation's training mix (list of Doc)


@runtime_checkable
class MetricFn(Protocol):
    higher_is_better: Optional[bool]
    needs: str

    def __call__(self, ctx: Any) -> Any: ...  # MetricContext -> float, dict of floats, or None (undefined)


@runtime_checkable
class CorpusFn(Protocol):
    def __call__(self) -> List[str]: ...


@runtime_checkable
class ModelFn(Protocol):
    def __call__(self, cfg: Any, split: Any) -> str: ...  # RunConfig, CorpusSplit -> model folder or hub name


_loaded_entry_points = False
_specs: List[str] = []  # --plugin / plugins: specs loaded in this process, as given (paths made absolute)
WARNINGS: List[str] = []  # one line per skipped entry point (printed by the CLI)


def registry(kind: str):
    module, attr = KINDS[kind]
    return getattr(importlib.import_module(module), attr)


def _loaded_registries():
    """The registries whose modules are imported now (a plug-in cannot have touched the others)."""
    return [(kind, getattr(sys.modules[m], a)) for kind, (m, a) in KINDS.items() if m in sys.modules]


def _arity_ok(fn, n: int) -> bool:
    try:
        inspect.signature(fn).bind(*([None] * n))
        return True
    except TypeError:
        return False
    except ValueError:  # builtins without a signature: trust them
        return True


def check_entry(kind: str, name: str, obj: Any) -> None:
    """Raise MadbenchError when ``obj`` breaks the contract of ``kind``."""
    if kind == "mitigations":
        from madbench.mitigations import Mitigation

        if not (inspect.isclass(obj) and issubclass(obj, Mitigation)):
            raise MadbenchError(f"mitigation '{name}' must be a subclass of madbench.mitigations.Mitigation, got {obj!r}")
        if not isinstance(obj.params, dict):
            raise MadbenchError(f"mitigation '{name}': params must be a dict of default values")
        if getattr(obj, "name", None) in (None, "base"):
            obj.name = name  # error messages and results name it
        try:
            obj()
        except MadbenchError as exc:
            raise MadbenchError(f"mitigation '{name}' does not build with its default params: {exc}")
        return
    if not callable(obj):
        raise MadbenchError(f"{kind[:-1] if kind != 'corpora' else 'corpus'} '{name}' must be callable, got {obj!r}")
    if kind == "regimes" and not _arity_ok(obj, 1):
        raise MadbenchError(f"regime '{name}' must take one argument (a RegimeContext) and return the training mix")
    if kind == "metrics":
        if not _arity_ok(obj, 1):
            raise MadbenchError(f"metric '{name}' must take one argument (a MetricContext)")
        from madbench.metrics import METRICS
        from madbench.metrics.specs import from_attributes

        # registered: its MetricSpec (built, and its direction checked, when it registered); else the function's attributes
        spec = METRICS.spec(name) if name in METRICS and METRICS.get(name) is obj else from_attributes(name, obj)
        if spec.needs not in ("samples", "model", "human"):
            raise MadbenchError(f"metric '{name}': needs must be 'samples', 'model' or 'human', got {spec.needs!r}")
    if kind == "corpora" and not _arity_ok(obj, 0):
        raise MadbenchError(f"corpus '{name}' must take no arguments and return a list of texts")
    if kind == "models" and not _arity_ok(obj, 2):
        raise MadbenchError(f"model '{name}' must take (cfg, split) and return a model folder or hub name")


def _check_all(origin: str) -> None:
    for kind, reg in _loaded_registries():
        for name, obj in reg.items():
            if reg.origin(name) == origin:
                check_entry(kind, name, obj)
    if "madbench.mitigations" in sys.modules and "madbench.metrics" in sys.modules:
        from madbench.metrics import METRICS
        from madbench.mitigations import MITIGATIONS

        for name, cls in MITIGATIONS.items():
            if MITIGATIONS.origin(name) == origin and cls.target_metric not in METRICS:
                raise MadbenchError(f"mitigation '{name}': target_metric '{cls.target_metric}' is not a registered metric")


def _rollback(origin: str) -> None:
    for _, reg in _loaded_registries():
        for name in [n for n in reg.names() if reg.origin(n) == origin]:
            reg.remove(name)


def _load(origin: str, label: str, load) -> None:
    """Run ``load()`` with registrations attributed to ``origin``; all or nothing."""
    token = CURRENT_ORIGIN.set(origin)
    try:
        load()
        _check_all(origin)
    except MadbenchError as exc:
        _rollback(origin)
        raise MadbenchError(f"plugin {label}: {exc}")
    except Exception as exc:  # the plug-in's own bug: name it, in one line
        _rollback(origin)
        first = (str(exc).strip().splitlines() or [""])[0]
        raise MadbenchError(f"plugin {label} failed to load: {type(exc).__name__}: {first}")
    finally:
        CURRENT_ORIGIN.reset(token)


def load_entry_points() -> List[str]:
    """Load every installed ``madbench.*`` entry point once; return a warning line per skipped one."""
    global _loaded_entry_points
    if _loaded_entry_points:
        return []
    _loaded_entry_points = True
    skipped = []
    for kind in KINDS:
        for ep in sorted(metadata.entry_points(group=GROUP + kind), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            origin = f"entry point {dist} {version}"

            def load(ep=ep, kind=kind, origin=origin):
                registry(kind).add(ep.name, ep.load(), origin)

            try:
                _load(origin, f"'{ep.name}' (entry point {ep.value} of {dist}, group {ep.group})", load)
            except MadbenchError as exc:
                skipped.append(f"{exc}; skipped")
    WARNINGS.extend(skipped)
    return skipped


def load_plugin(spec: str, base: Optional[Path] = None) -> str:
    """Import a plug-in file, package folder or module; return the spec as recorded (paths absolute)."""
    spec = str(spec).strip()
    path = Path(spec).expanduser()
    if base is not None and not path.is_absolute() and not path.exists() and (base / path).exists():
        path = base / path
    looks_like_path = spec.endswith(".py") or "/" in spec or path.exists()
    if looks_like_path:
        path = path.resolve()
        if path.is_dir():
            path = path / "__init__.py"
        if not path.is_file():
            raise MadbenchError(f"plugin '{spec}' not found; give a .py file, a package folder or an importable module name")
        recorded, origin = str(path.parent if path.name == "__init__.py" else path), f"file {path}"
        if recorded in _specs:
            return recorded
        module_name = "madbench_plugin_" + "".join(c if c.isalnum() else "_" for c in path.parent.name + "_" + path.stem)

        def load():
            package = [str(path.parent)] if path.name == "__init__.py" else None  # a package folder: relative imports work
            mod_spec = importlib.util.spec_from_file_location(module_name, path, submodule_search_locations=package)
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[module_name] = module
            try:
                mod_spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(module_name, None)
                raise
    else:
        recorded, origin = spec, f"module {spec}"
        if recorded in _specs:
            return recorded

        def load():
            try:
                importlib.import_module(spec)
            except ModuleNotFoundError as exc:
                if exc.name and spec.split(".")[0] == exc.name.split(".")[0]:
                    raise MadbenchError(f"no module named '{exc.name}'; pip install the plug-in package, or give a path to a .py file")
                raise

    _load(origin, f"'{spec}'", load)
    if not any(reg.origin(n) == origin or _from_module(reg, n, spec) for _, reg in _loaded_registries() for n in reg.names()):
        raise MadbenchError(f"plugin '{spec}' registered nothing; decorate its entries (e.g. @MITIGATIONS.register(\"name\")) or declare entry points")
    _specs.append(recorded)
    return recorded


def _from_module(reg, name: str, module: str) -> bool:
    """An entry of an installed package named by --plugin: its entry point already registered it."""
    obj = reg.get(name)
    mod = getattr(obj, "__module__", "") or ""
    return reg.origin(name) != BUILTIN and (mod == module or mod.startswith(module + "."))


def load_all(specs=(), base: Optional[Path] = None) -> List[str]:
    """Entry points, then each spec; return the warning lines of skipped entry points."""
    warnings = load_entry_points()
    for spec in specs or ():
        load_plugin(spec, base)
    return warnings


def loaded_specs() -> List[str]:
    """The --plugin / plugins: specs loaded in this process (written to a run's config.json for --resume)."""
    return list(_specs)


def origins() -> Dict[str, Dict[str, str]]:
    """kind -> {name: origin} of every non-built-in entry (for results and ``madbench list``)."""
    out: Dict[str, Dict[str, str]] = {}
    for kind, reg in _loaded_registries():
        found = {n: reg.origin(n) for n in reg.names() if reg.origin(n) != BUILTIN}
        if found:
            out[kind] = found
    return out
