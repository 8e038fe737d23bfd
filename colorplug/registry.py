"""The backend registry: built-in and third-party plugins loaded through pluggy.

Built-in backends are plugin modules registered exactly like third-party ones; third-party
plugins arrive through the entry-point group ``colorplug``. A plugin that fails to import
or to register (a hookimpl matching no colorplug hook, e.g. a misspelled hook name, included)
is recorded (see `Registry.failures`) and warned about; the others load.
``COLORPLUG_STRICT_PLUGINS=1`` turns such failures into errors and
``COLORPLUG_DISABLE_PLUGINS=a,b`` skips plugins by entry-point or distribution name.

Plugins may also declare downloadable weights (``colorplug_register_weights``); they are
collected here with the same containment and listed by ``colorplug weights list``.

Containment: a plugin's import or registration may raise anything (``sys.exit`` included,
only Ctrl-C passes); built-in backend names cannot be taken by a plugin; a plugin whose
import takes longer than `SLOW_PLUGIN_SECONDS` is named in a warning; and `Registry.get`
returns the backend wrapped in a `CheckedColorizer`, so every result of every backend is
checked for shape, dtype and finite values before a host sees it.
"""
from __future__ import annotations

import difflib
import importlib
import os
import re
import sys
import threading
import time
import traceback
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

import pluggy

from . import hookspecs
from .checked import CheckedColorizer
from .errors import (BackendConflictError, BackendError, ColorplugError, PluginError,
                     UnknownBackendError, UnknownOptionError, WeightsError)
from .protocol import COMMON_OPTIONS, BackendInfo, Colorizer
from .weights import WeightsSpec

#: Plugin modules shipped with colorplug, registered like any third-party plugin.
BUILTIN_PLUGINS = (
    "colorplug.backends.gray",
    "colorplug.backends.autoencoder",
    "colorplug.backends.fusion",
    "colorplug.backends.cgan",
    "colorplug.backends.exemplar",
    "colorplug.backends.guided",
)
ENTRY_POINT_GROUP = "colorplug"
BUILTIN_DISTRIBUTION = "colorplug (built-in)"
#: A plugin whose import takes longer is named in a warning.
SLOW_PLUGIN_SECONDS = 2.0
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


@dataclass(frozen=True)
class BackendEntry:
    """A registered backend and where it came from."""

    name: str
    factory: Callable[..., Colorizer]
    info: BackendInfo
    plugin: str
    distribution: str  # "colorplug (built-in)" for built-ins


@dataclass(frozen=True)
class WeightsEntry:
    """Downloadable weights a plugin declared through ``colorplug_register_weights``."""

    spec: WeightsSpec
    plugin: str
    distribution: str


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded, with the error it raised."""

    plugin: str
    distribution: str
    stage: str  # "import", "register" (an unknown hook too) or "conflict"
    error: str
    details: str = ""
    load_seconds: float = 0.0


def _contained(exc: BaseException) -> bool:
    """Whether a plugin's exception is contained: everything but Ctrl-C (SystemExit too)."""
    return not isinstance(exc, KeyboardInterrupt)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit: the plugin called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class PluginRecord:
    """A plugin that loaded, with the backends it registered."""

    plugin: str
    distribution: str
    backends: tuple[str, ...]
    load_seconds: float = 0.0
    weights: tuple[str, ...] = ()


def _env_list(name: str) -> set[str]:
    return {part.strip() for part in os.environ.get(name, "").split(",") if part.strip()}


def _strict() -> bool:
    return os.environ.get("COLORPLUG_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes"}


class Registry:
    """Holds the plugin manager and every backend registered through the hook."""

    def __init__(self, *, builtins: bool = True, entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._origin: dict[str, str] = {}  # plugin name -> distribution
        self._backends: dict[str, BackendEntry] = {}
        self._conflicts: dict[str, list[BackendEntry]] = {}
        self._weights: dict[str, WeightsEntry] = {}
        self._weights_conflicts: dict[str, list[WeightsEntry]] = {}
        self.failures: list[PluginFailure] = []
        self.plugins: list[PluginRecord] = []
        self.disabled: list[str] = []
        blocked = _env_list("COLORPLUG_DISABLE_PLUGINS")
        if builtins:
            for module_name in BUILTIN_PLUGINS:
                plugin_name = module_name.rsplit(".", 1)[-1]
                if plugin_name in blocked:
                    self.disabled.append(plugin_name)
                    continue
                self.add_plugin(importlib.import_module(module_name), plugin_name,
                                BUILTIN_DISTRIBUTION)
        if entry_points:
            self._load_entry_points(blocked)

    # ------------------------------------------------------------------ loading
    def _fail(self, failure: PluginFailure) -> None:
        if _strict():
            raise PluginError(
                f"plugin {failure.plugin!r} from {failure.distribution!r} failed to "
                f"{failure.stage}: {failure.error}"
            )
        self.failures.append(failure)
        warnings.warn(
            f"colorplug plugin {failure.plugin!r} ({failure.distribution}) failed to "
            f"{failure.stage} and was skipped: {failure.error}",
            RuntimeWarning,
            stacklevel=3,
        )

    def _load_entry_points(self, blocked: set[str]) -> None:
        seen: set[tuple[str, str]] = set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else "unknown distribution"
            if (ep.name, dist) in seen:
                continue  # the same distribution found twice on sys.path
            seen.add((ep.name, dist))
            if ep.name in blocked or dist in blocked:
                self.disabled.append(ep.name)
                continue
            started = time.perf_counter()
            watchdog = self._watchdog(ep.name, dist)
            try:
                plugin = ep.load()
            except BaseException as exc:  # noqa: BLE001 - any plugin bug, sys.exit too
                watchdog.cancel()
                if not _contained(exc):
                    raise
                seconds = time.perf_counter() - started
                self._warn_if_slow(ep.name, dist, seconds)
                self._fail(PluginFailure(ep.name, dist, "import", _describe(exc),
                                         traceback.format_exc(), seconds))
                continue
            watchdog.cancel()
            seconds = time.perf_counter() - started
            self._warn_if_slow(ep.name, dist, seconds)
            self.add_plugin(plugin, ep.name, dist, load_seconds=seconds)

    @staticmethod
    def _watchdog(name: str, distribution: str) -> threading.Timer:
        """A timer that says, while a plugin's import is still running after
        `SLOW_PLUGIN_SECONDS`, which plugin every command waits for and how to skip it (a
        plugin that hangs at import would otherwise hang every command without a word)."""
        def say() -> None:
            print(f"colorplug: still importing plugin {name!r} ({distribution}) after "
                  f"{SLOW_PLUGIN_SECONDS:g} s; every colorplug command waits for it. To skip "
                  f"it: COLORPLUG_DISABLE_PLUGINS={name}", file=sys.stderr, flush=True)

        timer = threading.Timer(SLOW_PLUGIN_SECONDS, say)
        timer.daemon = True
        timer.start()
        return timer

    @staticmethod
    def _warn_if_slow(name: str, distribution: str, seconds: float) -> None:
        if seconds > SLOW_PLUGIN_SECONDS:
            warnings.warn(
                f"colorplug plugin {name!r} ({distribution}) took {seconds:.1f} s to import; "
                f"every colorplug command waits for it. If you do not use it, set "
                f"COLORPLUG_DISABLE_PLUGINS={name} (see `colorplug plugins`)",
                RuntimeWarning, stacklevel=4)

    def add_plugin(self, plugin: Any, name: str, distribution: str = "unknown", *,
                   load_seconds: float = 0.0) -> None:
        """Register a plugin object (module or class instance) and collect its backends."""
        try:
            self.pm.register(plugin, name=name)
        except BaseException as exc:  # noqa: BLE001 - pluggy validation, duplicate names
            if not _contained(exc):
                raise
            self._fail(PluginFailure(name, distribution, "register", _describe(exc),
                                     load_seconds=load_seconds))
            return
        if not self._check_hooks(name, distribution, load_seconds):
            return
        self._origin[name] = distribution
        impls = [i for i in self.pm.hook.colorplug_register_colorizers.get_hookimpls()
                 if i.plugin_name == name]
        weight_impls = [i for i in self.pm.hook.colorplug_register_weights.get_hookimpls()
                        if i.plugin_name == name]
        added: list[BackendEntry] = []
        added_weights: list[WeightsEntry] = []
        try:
            for impl in impls:
                impl.function(register=self._make_register(name, distribution, added))
            for impl in weight_impls:
                impl.function(register=self._make_weights_register(name, distribution,
                                                                   added_weights))
        except BaseException as exc:  # noqa: BLE001 - sys.exit too
            if not _contained(exc):
                raise
            for entry in added:  # a plugin either registers fully or not at all
                self._drop(entry)
            for wentry in added_weights:
                self._drop_weights(wentry)
            self.pm.unregister(name=name)
            self._fail(PluginFailure(name, distribution, "register", _describe(exc),
                                     traceback.format_exc(), load_seconds))
            return
        self.plugins.append(PluginRecord(name, distribution, tuple(e.name for e in added),
                                         load_seconds,
                                         tuple(w.spec.public_name for w in added_weights)))

    def _check_hooks(self, name: str, distribution: str, load_seconds: float) -> bool:
        """pluggy's ``check_pending`` right after each registration, before any of the
        plugin's hooks run: a hookimpl that matches no colorplug hook (a misspelling such as
        ``colorplug_register_colorizer``) would otherwise be ignored without a word. The
        plugin is unregistered and reported like one that failed to register (a
        RuntimeWarning, `failures`, ``colorplug plugins``); the others, built-ins included,
        load. Returns whether plugin `name` passed."""
        while True:
            try:
                self.pm.check_pending()
                return True
            except pluggy.PluginValidationError as exc:
                offender = self.pm.get_name(exc.plugin) or name
                message = self._unknown_hooks_message(exc.plugin) or str(exc)
                self.pm.unregister(exc.plugin)
                if offender == name:
                    self._fail(PluginFailure(name, distribution, "register", message,
                                             load_seconds=load_seconds))
                    return False
                # registered on `pm` directly, bypassing add_plugin
                self._fail(PluginFailure(offender, self._origin.get(offender, "unknown"),
                                         "register", message))

    def _unknown_hooks_message(self, plugin: Any) -> str:
        known = sorted(n for n, hook in vars(self.pm.hook).items()
                       if not n.startswith("_") and hook.has_spec())
        unknown = sorted({hook.name for hook in self.pm.get_hookcallers(plugin) or []
                          if not hook.has_spec()
                          for impl in hook.get_hookimpls()
                          if impl.plugin is plugin and not impl.optionalhook})
        if not unknown:
            return ""
        parts = []
        for hook in unknown:
            close = difflib.get_close_matches(hook, known, n=1)
            parts.append(f"{hook!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return (f"unknown hook {', '.join(parts)}: colorplug's hooks are "
                f"{', '.join(known)}; a hook of a newer colorplug can be marked "
                "@colorplug.hookimpl(optionalhook=True)")

    def _make_weights_register(self, plugin: str, distribution: str,
                               added: list[WeightsEntry]):
        def register(spec: WeightsSpec) -> None:
            if not isinstance(spec, WeightsSpec):
                raise TypeError(f"register() takes a colorplug.weights.WeightsSpec; got "
                                f"{type(spec).__name__}")
            spec.validate()
            if not spec.url or not spec.name:
                raise WeightsError(f"weights {spec.public_name!r}: a declared WeightsSpec "
                                   "needs a name, a url and a sha256")
            from .cache import shipped_specs

            if spec.name in {s.public_name for s in shipped_specs()}:
                raise WeightsError(f"weights name {spec.name!r} belongs to weights shipped "
                                   "with colorplug; choose another name")
            entry = WeightsEntry(spec, plugin, distribution)
            name = spec.name
            taken = self._weights.get(name)
            if name in self._weights_conflicts:
                self._weights_conflicts[name].append(entry)
            elif taken is not None and taken.spec != spec:
                self._weights_conflicts[name] = [self._weights.pop(name), entry]
                self._fail(PluginFailure(plugin, distribution, "conflict",
                                         self._weights_conflict_message(name)))
            elif taken is None:
                self._weights[name] = entry
            added.append(entry)  # the same file declared twice is harmless

        return register

    def _drop_weights(self, entry: WeightsEntry) -> None:
        name = entry.spec.name
        if self._weights.get(name) is entry:
            del self._weights[name]
        elif name in self._weights_conflicts:
            rest = [e for e in self._weights_conflicts[name] if e is not entry]
            if len(rest) == 1:
                del self._weights_conflicts[name]
                self._weights[name] = rest[0]
            else:
                self._weights_conflicts[name] = rest

    def _weights_conflict_message(self, name: str) -> str:
        owners = " and ".join(f"{e.distribution!r} (plugin {e.plugin!r})"
                              for e in self._weights_conflicts[name])
        return (f"weights name {name!r} is declared with different files by {owners}; "
                "uninstall one or set COLORPLUG_DISABLE_PLUGINS to the plugin you do not want")

    def _make_register(self, plugin: str, distribution: str, added: list[BackendEntry]):
        def register(name: str, factory: Callable[..., Colorizer], info: BackendInfo) -> None:
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise ValueError(f"invalid backend name {name!r}: use lowercase letters, "
                                 "digits, '-' and '_'")
            if not callable(factory):
                raise TypeError(f"factory for backend {name!r} is not callable")
            if not isinstance(info, BackendInfo):
                raise TypeError(f"info for backend {name!r} must be a colorplug.BackendInfo")
            if info.name != name:
                raise ValueError(f"BackendInfo.name {info.name!r} differs from {name!r}")
            entry = BackendEntry(name, factory, info, plugin, distribution)
            taken = self._backends.get(name)
            if (taken is not None and taken.distribution == BUILTIN_DISTRIBUTION
                    and distribution != BUILTIN_DISTRIBUTION):
                # built-ins win: the plugin's other backends still load
                self._fail(PluginFailure(plugin, distribution, "conflict",
                                         f"backend name {name!r} belongs to the built-in "
                                         f"backend of {BUILTIN_DISTRIBUTION!r}; "
                                         f"{distribution!r} (plugin {plugin!r}) cannot replace "
                                         f"it, so its {name!r} was not registered (the plugin "
                                         "should rename it)"))
                return
            if name in self._conflicts:
                self._conflicts[name].append(entry)
            elif name in self._backends:
                first = self._backends.pop(name)
                self._conflicts[name] = [first, entry]
                self._fail(PluginFailure(plugin, distribution, "conflict",
                                         self._conflict_message(name)))
            else:
                self._backends[name] = entry
            added.append(entry)

        return register

    def _drop(self, entry: BackendEntry) -> None:
        """Undo one registration, restoring the backend it had put into conflict."""
        if self._backends.get(entry.name) is entry:
            del self._backends[entry.name]
        elif entry.name in self._conflicts:
            rest = [e for e in self._conflicts[entry.name] if e is not entry]
            if len(rest) == 1:
                del self._conflicts[entry.name]
                self._backends[entry.name] = rest[0]
            else:
                self._conflicts[entry.name] = rest

    def _conflict_message(self, name: str) -> str:
        owners = " and ".join(f"{e.distribution!r} (plugin {e.plugin!r})"
                              for e in self._conflicts[name])
        return (f"backend name {name!r} is registered by both {owners}; uninstall one or "
                f"set COLORPLUG_DISABLE_PLUGINS to the plugin you do not want")

    # ------------------------------------------------------------------ queries
    def names(self) -> list[str]:
        return sorted(self._backends)

    def entry(self, name: str) -> BackendEntry:
        if name in self._conflicts:
            raise BackendConflictError(self._conflict_message(name))
        try:
            return self._backends[name]
        except KeyError:
            available = ", ".join(self.names()) or "none"
            raise UnknownBackendError(
                f"unknown backend {name!r}; available backends: {available}"
            ) from None

    def entries(self) -> list[BackendEntry]:
        return [self._backends[n] for n in self.names()]

    def weights_names(self) -> list[str]:
        """Names of the weights plugins declared (conflicting names included)."""
        return sorted(set(self._weights) | set(self._weights_conflicts))

    def weights_entries(self) -> list[WeightsEntry]:
        """Weights declared by plugins, sorted by name (conflicting names left out)."""
        return [self._weights[n] for n in sorted(self._weights)]

    def weights_entry(self, name: str) -> WeightsEntry:
        """The declared weights called `name`; a WeightsError listing the known ones."""
        if name in self._weights_conflicts:
            raise WeightsError(self._weights_conflict_message(name))
        try:
            return self._weights[name]
        except KeyError:
            from .cache import shipped_specs

            known = [s.public_name for s in shipped_specs()] + sorted(self._weights)
            raise WeightsError(f"unknown weights {name!r}; known weights: "
                               f"{', '.join(known) or 'none'} (see `colorplug weights list`)"
                               ) from None

    def available(self) -> list[BackendInfo]:
        return [e.info for e in self.entries()]

    def get(self, name: str, *, weights: Any = None, device: str = "auto",
            download: bool | Callable[[Any], bool] | None = None,
            **options: Any) -> Colorizer:
        """Build backend `name`; unknown options are refused with the valid ones, and the
        result is a `CheckedColorizer` (every output checked). Weights that are not cached
        are downloaded only with `download` (True, or a callable asked with the weights'
        spec; None: the host's answer, `colorplug.cache.downloads_asked`, else no);
        otherwise a WeightsError says how to get them."""
        from .cache import download_consent
        from .gl_guard import guard_triton

        guard_triton()  # before a backend may import torch._dynamo (see colorplug.gl_guard)
        entry = self.entry(name)
        declared = entry.info.options
        if declared is not None and "runtime" in options and "runtime" not in declared:
            if options["runtime"] != "torch":  # every backend runs with torch
                raise UnknownOptionError(self._torch_only_message(entry, options["runtime"]))
            options = {k: v for k, v in options.items() if k != "runtime"}
        if declared is not None:
            unknown = sorted(set(options) - set(declared) - set(COMMON_OPTIONS))
            if unknown:
                raise UnknownOptionError(self._option_message(entry, unknown))
        try:
            with download_consent(download):
                colorizer = entry.factory(weights=weights, device=device, **options)
        except ColorplugError:
            raise
        except TypeError as exc:
            m = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
            if m and m.group(1) in options:
                raise UnknownOptionError(self._option_message(entry, [m.group(1)])) from None
            raise BackendError(f"backend {name!r} ({entry.distribution}) could not be built: "
                               f"{_describe(exc)}") from exc
        except BaseException as exc:  # noqa: BLE001 - a plugin's factory may raise anything
            if not _contained(exc):
                raise
            raise BackendError(f"backend {name!r} ({entry.distribution}) could not be built: "
                               f"{_describe(exc)}") from exc
        return CheckedColorizer(colorizer, name=name, distribution=entry.distribution,
                                output_dtype=options.get("output_dtype") or "uint8")

    def _torch_only_message(self, entry: BackendEntry, runtime: Any) -> str:
        offered = [e.name for e in self.entries() if "runtime" in (e.info.options or {})]
        return (f"backend {entry.name!r} runs with torch only: its option 'runtime' takes "
                f"only 'torch', not {runtime!r}; runtime='onnx' and 'openvino' are offered "
                f"by: {', '.join(offered) or 'no installed backend'}")

    @staticmethod
    def _option_message(entry: BackendEntry, unknown: list[str]) -> str:
        valid = sorted(set(entry.info.options or {}) | set(COMMON_OPTIONS))
        return (f"backend {entry.name!r} has no option {', '.join(map(repr, unknown))}; "
                f"its options are: {', '.join(valid)} (see `colorplug info {entry.name}`)")


_default: Registry | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry, built once on first use (thread-safe)."""
    global _default
    registry = _default
    if registry is None:
        with _default_lock:
            if _default is None:
                _default = Registry()
            registry = _default
    return registry


def reload_plugins() -> Registry:
    """Forget loaded plugins and discover them again (after installing a plugin)."""
    global _default
    with _default_lock:
        _default = None
    return default_registry()
