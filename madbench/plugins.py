"""Plug-ins: your own mitigation, regime, metric, corpus, model, tracker or lm-eval model, without forking madbench.

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
  ``madbench.corpora``, ``madbench.models``, ``madbench.trackers``, ``madbench.lm_eval_models``,
  ``madbench.monitor_rules``.
  They load in every madbench process.
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
* tracker: a class with the :class:`madbench.reporting.tracker_backends.Tracker` methods, built as
  ``cls(run_dir, name, run_id=None)``; optional ``requires``/``install`` attributes (``--report-to NAME``).
* lm-eval model: an lm-eval ``LM`` subclass (or a factory returning one) built as
  ``entry(model, tokenizer, batch_size=N)`` around the in-memory model (``eval.lm_eval_model=NAME``).
* monitor rule: an object (or a class building with no arguments) with ``needs`` and
  ``first_alarm(panel, alpha)`` (madbench/monitoring/rules.py; ``monitor.rule=NAME``).

A plug-in may not reuse a built-in name. A plug-in that fails to import (``sys.exit()``
included), clashes or breaks its contract is reported in one line naming it; its entries
are removed and madbench's own keep working (a broken installed entry point is skipped with
a warning and drops only itself, a ``--plugin`` is an error).

Safety switches: ``MADBENCH_DISABLE_PLUGIN_AUTOLOAD=1`` loads no entry point. Plug-ins named by
a config's ``plugins:`` or a run folder (``--resume``) print one line before their code runs,
and ``run --dry-run`` imports them only with ``--load-plugins``. A run's config.json records
each plug-in file's sha256 (``plugin_sha256``); ``--resume`` warns when a file changed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from madbench.errors import MadbenchError
from madbench.plugin_contracts import CorpusFn, MetricFn, ModelFn, RegimeFn, check_entry  # noqa: F401  (re-exported)
from madbench.registry import BUILTIN, CURRENT_ORIGIN

# kind -> (module holding the registry, registry attribute)
KINDS: Dict[str, Tuple[str, str]] = {
    "mitigations": ("madbench.mitigations", "MITIGATIONS"),
    "regimes": ("madbench.loop.regimes", "REGIMES"),
    "metrics": ("madbench.metrics", "METRICS"),
    "corpora": ("madbench.data.corpus", "CORPORA"),
    "models": ("madbench.models.base_model", "MODELS"),
    "trackers": ("madbench.reporting.trackers", "TRACKERS"),
    "lm_eval_models": ("madbench.evaluation.lm_models", "LM_EVAL_MODELS"),
    "monitor_rules": ("madbench.monitoring", "MONITOR_RULES"),
}
GROUP = "madbench."  # entry point group prefix: madbench.mitigations, ...


_loaded_entry_points = False
_specs: List[str] = []  # --plugin / plugins: specs loaded in this process, as given (paths made absolute)
WARNINGS: List[str] = []  # one line per skipped entry point (printed by the CLI)


def registry(kind: str):
    module, attr = KINDS[kind]
    return getattr(importlib.import_module(module), attr)


def _loaded_registries():
    """The registries whose modules are imported now (a plug-in cannot have touched the others)."""
    return [(kind, getattr(sys.modules[m], a)) for kind, (m, a) in KINDS.items() if m in sys.modules]


def _check_all(origin: str) -> None:
    for kind, reg in _loaded_registries():
        for name in reg.names():
            if reg.origin(name) == origin:  # only the plug-in's own: a lazy built-in stays unimported
                check_entry(kind, name, reg.get(name))
    if "madbench.mitigations" in sys.modules and "madbench.metrics" in sys.modules:
        from madbench.metrics import METRICS
        from madbench.mitigations import MITIGATIONS

        for name, cls in MITIGATIONS.items():
            if MITIGATIONS.origin(name) == origin and cls.target_metric not in METRICS:
                raise MadbenchError(f"mitigation '{name}': target_metric '{cls.target_metric}' is not a registered metric")


def _names() -> set:
    """(registry kind, name) of every entry registered now."""
    return {(kind, n) for kind, reg in _loaded_registries() for n in reg.names()}


def _rollback(before: set) -> None:
    """Remove the plug-in entries registered since ``before`` (built-ins imported meanwhile stay)."""
    for kind, reg in _loaded_registries():
        for name in [n for n in reg.names() if (kind, n) not in before and reg.origin(n) != BUILTIN]:
            reg.remove(name)


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r}); a plug-in must not end the process"
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"


def _load(origin: str, label: str, load) -> None:
    """Run ``load()`` with registrations attributed to ``origin``; all or nothing, never ending the process."""
    before = _names()
    token = CURRENT_ORIGIN.set(origin)
    try:
        load()
        _check_all(origin)
    except MadbenchError as exc:
        _rollback(before)
        raise MadbenchError(f"plugin {label}: {exc}")
    except (Exception, SystemExit) as exc:  # the plug-in's own bug, or its sys.exit(): name it, in one line
        _rollback(before)
        raise MadbenchError(f"plugin {label} failed to load: {_first_line(exc)}")
    finally:
        CURRENT_ORIGIN.reset(token)


AUTOLOAD_SWITCH = "MADBENCH_DISABLE_PLUGIN_AUTOLOAD"  # =1: installed entry points are not loaded (--plugin still is)
EP_ORDER = ("metrics", "corpora", "models", "regimes", "mitigations")  # what others name first (a target metric)


def autoload_disabled() -> bool:
    return os.environ.get(AUTOLOAD_SWITCH, "").strip().lower() not in ("", "0", "false", "no")


def load_entry_points() -> List[str]:
    """Load every installed ``madbench.*`` entry point once; return a warning line per skipped one.

    Each entry point loads on its own: a broken one (an import error, ``sys.exit``, a clash, a broken
    contract) is skipped with one warning and the other entries of its package stay.
    ``MADBENCH_DISABLE_PLUGIN_AUTOLOAD=1`` skips them all (like pytest's PYTEST_DISABLE_PLUGIN_AUTOLOAD).
    """
    global _loaded_entry_points
    if _loaded_entry_points or autoload_disabled():
        return []
    _loaded_entry_points = True
    skipped = []
    for kind in [*EP_ORDER, *(k for k in KINDS if k not in EP_ORDER)]:
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


_deferred: Optional[List[str]] = None  # None: plug-ins named by a config or run folder load; a list: deferred (--dry-run)


def defer_named_plugins() -> None:
    """``--dry-run`` without ``--load-plugins``: plug-ins named by a config or a run folder are not imported."""
    global _deferred
    _deferred = []


def deferred() -> List[str]:
    """The plug-ins a config or run folder named that were not imported (``--dry-run``)."""
    return list(_deferred or [])


def load_named(specs, source: str, base: Optional[Path] = None, log=None) -> None:
    """Plug-ins named by ``source`` (a config file's ``plugins:``, a run folder's config.json): one line says
    they are about to run their code, or, under ``--dry-run``, that they are not imported."""
    specs = [str(s) for s in specs or ()]
    if not specs:
        return
    say = log or (lambda line: print(line, file=sys.stderr))
    if _deferred is not None:
        _deferred.extend(specs)
        say(f"madbench: not importing the plug-ins named by {source} on --dry-run: {', '.join(specs)} "
            f"(add --load-plugins to run their code)")
        return
    say(f"madbench: loading the plug-ins named by {source} (their code runs now): {', '.join(specs)}")
    load_all(specs, base)


def file_digest(recorded: str) -> Optional[str]:
    """sha256 of a --plugin file (a package folder: of its .py files, by relative path), None for a module."""
    path = Path(recorded)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if not path.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(path.rglob("*.py")):
        h.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def digests() -> Dict[str, str]:
    """{recorded spec: sha256} of every --plugin / plugins: file loaded in this process (config.json records it)."""
    return {s: d for s in _specs if (d := file_digest(s))}


def changed_since(recorded: Dict[str, str]) -> List[str]:
    """One line per plug-in file whose content differs from the sha256 a run recorded."""
    out = []
    for spec, digest in (recorded or {}).items():
        now = file_digest(spec)
        if now != digest:
            state = "is gone" if now is None else f"changed since the run started (sha256 {digest[:12]} -> {now[:12]})"
            out.append(f"plug-in {spec} {state}")
    return out


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
