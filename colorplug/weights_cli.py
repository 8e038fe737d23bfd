"""``colorplug weights list|fetch|import|path|remove|export``: the weights cache and the
user's own weights (`colorplug.user_weights`) from the command line."""
from __future__ import annotations

import argparse
import sys

from .errors import WeightsError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``weights`` subcommand to the ``colorplug`` parser."""
    p = sub.add_parser("weights", help="list, fetch or import downloadable weights")
    wsub = p.add_subparsers(dest="weights_command", required=True)
    wsub.add_parser("list", help="every known weights file: size, licence, cached or not, path")
    s = wsub.add_parser("fetch", help="download weights into the cache now")
    s.add_argument("names", nargs="+", metavar="NAME")
    s.add_argument("--timeout", type=float, default=None,
                   help="overall deadline per file in seconds (default: "
                   "$COLORPLUG_DOWNLOAD_TIMEOUT or 3600)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s = wsub.add_parser("import", help="NAME FILE: put a file downloaded elsewhere into the "
                        "cache (offline workstations), its SHA-256 checked; FILE --name NAME: "
                        "register weights made by `colorplug train` as yours")
    s.add_argument("items", nargs="+", metavar="NAME FILE | FILE")
    s.add_argument("--name", default=None, help="register FILE as your weights NAME")
    s = wsub.add_parser("path", help="the path of cached (verified) or your weights")
    s.add_argument("name", metavar="NAME")
    s = wsub.add_parser("remove", help="delete your weights NAME (from `colorplug train "
                        "--name`); shipped and downloaded weights are not removed here")
    s.add_argument("name", metavar="NAME")
    s = wsub.add_parser("export", help="write your weights NAME to FILE (with its checksum "
                        "and model card beside it), to share or move them")
    s.add_argument("name", metavar="NAME")
    s.add_argument("file", metavar="FILE")
    s.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def cmd_weights(args: argparse.Namespace) -> int:
    """Run one ``colorplug weights`` subcommand; WeightsErrors reach the CLI's handler."""
    return {"list": _list, "fetch": _fetch, "import": _import, "path": _path,
            "remove": _remove, "export": _export}[args.weights_command](args)


def _list(args: argparse.Namespace) -> int:
    from . import cache

    rows = cache.listing()
    print(f"{'name':<34}{'size':>10}  {'licence':<14}{'cached':<8}{'from':<26}path")
    for row in rows:
        path = cache.local_path(row.spec, row.shipped)
        state = "shipped" if row.shipped else ("yes" if path else "no")
        print(f"{row.spec.public_name:<34}{_size(row.spec.size):>10}  "
              f"{row.spec.license or '?':<14}{state:<8}{row.origin:<26}"
              f"{path if path else '-'}")
    from . import user_weights

    for entry in user_weights.listing():
        base_info = entry.card.get("base")
        base = (base_info.get("weights") if isinstance(base_info, dict) else None) or "?"
        print(f"{entry.name:<34}{_size(entry.size):>10}  {'yours':<14}{'yours':<8}"
              f"{entry.backend + ' from ' + base:<26}{entry.path}")
    print(f"\nyours: {user_weights.user_weights_dir()}")
    print(f"cache: {cache.weights_dir()}" + ("  (COLORPLUG_OFFLINE=1: no downloads)"
                                                if cache.offline() else ""))
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from . import cache

    failed = 0
    for name in args.names:
        try:
            spec = cache.registered_spec(name)
            if spec.url is None:
                print(f"{name}: shipped with colorplug: {cache.local_path(spec, True)}")
                continue
            got = cache.fetch(spec, timeout=args.timeout, progress=False if args.quiet else None)
            print(f"{name}: {got.path}")
        except WeightsError as exc:
            failed += 1
            print(f"colorplug: error: {name}: {exc}", file=sys.stderr)
    return 1 if failed else 0


def _import(args: argparse.Namespace) -> int:
    from . import cache

    if args.name is not None:
        if len(args.items) != 1:
            raise WeightsError("usage: colorplug weights import FILE --name NAME (one file)")
        from . import user_weights

        entry = user_weights.import_file(args.items[0], args.name)
        print(f"imported as your weights {entry.name!r} ({entry.backend}): {entry.path}")
        return 0
    if len(args.items) != 2:
        raise WeightsError("usage: colorplug weights import NAME FILE (a published file into "
                           "the cache) or colorplug weights import FILE --name NAME (yours)")
    name, file = args.items
    spec = cache.registered_spec(name)
    if spec.url is None:
        raise WeightsError(f"{name!r} ships with colorplug and needs no import; to use "
                           "another copy set COLORPLUG_WEIGHTS_DIR")
    got = cache.import_file(spec, file)
    print(f"imported {name}: {got.path}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from . import user_weights

    path = user_weights.remove(args.name)
    print(f"removed your weights {args.name!r} ({path})")
    return 0


def _export(args: argparse.Namespace) -> int:
    from . import user_weights

    path = user_weights.export(args.name, args.file, overwrite=args.overwrite)
    print(f"exported your weights {args.name!r} to {path}")
    return 0


def _path(args: argparse.Namespace) -> int:
    from . import cache, user_weights

    own = user_weights.find(args.name)
    if own is not None and cache.registered_spec(args.name, missing_ok=True) is None:
        print(own.path)
        return 0
    spec = cache.registered_spec(args.name)
    if spec.url is None:
        path = cache.local_path(spec, True)
    else:
        found = cache.verified(spec)
        path = found.path if found else None
    if path is None:
        raise WeightsError(f"weights {args.name!r} are not in the cache "
                           f"{str(cache.weights_dir())!r}; run `colorplug weights fetch "
                           f"{args.name}` (or `colorplug weights import {args.name} FILE`)")
    print(path)
    return 0
