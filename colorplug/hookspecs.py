"""Plugin hook specifications. Argument names here are a public contract.

A plugin is any module or object with a function decorated by `colorplug.hookimpl`::

    import colorplug

    @colorplug.hookimpl
    def colorplug_register_colorizers(register):
        register("mine", factory, colorplug.BackendInfo(name="mine", description="..."))

and, for a separately installed distribution, an entry point in the group `colorplug`.
``colorplug_register_weights(register)`` declares weights the plugin downloads on first use.
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


@hookspec
def colorplug_register_weights(register):  # type: ignore[no-untyped-def]
    """Declare downloadable weights by calling ``register(spec)`` with a
    `colorplug.weights.WeightsSpec` that has ``name``, ``url``, ``sha256`` (64 hex digits,
    or a prefix of at least 8 with ``sha256_is_prefix=True``) and, where known, ``size``
    and ``license``; ``source_format="pth"`` (with ``state_key``) for a pickled torch file,
    converted once to ``.safetensors`` in the cache.

    Declared weights are listed and fetched by ``colorplug weights``; a factory loads them
    with ``colorplug.weights.resolve(weights, SPEC)``, which downloads on first use. Nothing
    is downloaded at registration.
    """
