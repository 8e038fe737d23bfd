"""Plugin hook specifications. Argument names here are a public contract.

A plugin is any module or object with a function decorated by `colorplug.hookimpl`::

    import colorplug

    @colorplug.hookimpl
    def colorplug_register_colorizers(register):
        register("mine", factory, colorplug.BackendInfo(name="mine", description="..."))

and, for a separately installed distribution, an entry point in the group `colorplug`.
"""
from __future__ import annotations

import pluggy

PROJECT = "colorplug"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def colorplug_register_colorizers(register):  # type: ignore[no-untyped-def]
    """Register backends by calling ``register(name, factory, info)``.

    ``name``: the backend name users type (lowercase letters, digits, ``-``, ``_``).
    ``factory``: called as ``factory(weights=..., device=..., **options)`` and returns a
    `colorplug.Colorizer`. Import heavy libraries (torch) inside it, not at module level.
    ``info``: a `colorplug.BackendInfo` whose ``name`` equals ``name``.
    """
