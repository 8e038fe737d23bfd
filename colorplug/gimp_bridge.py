"""The colorplug side of the GIMP plug-in: a warm worker, ``python -m colorplug.gimp_bridge``.

GIMP's own Python has no torch, so the plug-in talks to colorplug in the user's Python.
Starting that Python, importing torch and loading weights at every run cost 2-6 s, so the
plug-in starts one worker per user on first use (``--serve DIR``) and talks to it over a
Unix socket in DIR, a private folder (mode 0700, owned by the user). The worker keeps
models cached by backend + options + device, exits after ``--idle`` seconds without a
request, and exits (to be restarted by the plug-in) when colorplug or its plugins change
on disk. Without ``--serve`` it answers one request read from stdin (tests, debugging).

One request per connection, one JSON line; the answer is lines:

    progress 0.40                      a fraction of the work done
    result {"width": ...}              success
    error {"message": M, "kind": K}    failure (K: colorplug.errors kinds)
    restart {...}                      colorplug changed on disk: start a new worker

Requests:
    {"command": "ping"}
    {"command": "list"}     -> {"backends": [...], "watch": {path: mtime_ns}}
    {"command": "colorize", "backend": "" (colorplug's default) | NAME, "device": "auto",
     "weights": null (the backend's default) | NAME (the user's own, `colorplug train --name`),
     "runtime": null | "torch" | "onnx" | "openvino" (backends listing it in "runtimes"),
     "dir": D,              a fresh private folder the plug-in made for this call
     "input":  {"file": NAME, "width": W, "height": H, "channels": 1-4, "depth": 8|16},
     "reference": {...} | null, "hints": {...} | null,
     "output": {"file": NAME}}
Pixels are raw interleaved files (8-bit, or 16-bit little-endian) named inside D only: no
path separators, no symlinks, regular files only; the output is written to a new file
(O_EXCL) and linked into place, never over an existing file. Output pixels are RGB, or RGBA
when the input has alpha, at the input's depth.
"""
from __future__ import annotations

import importlib.util
import json
import os
import socket
import stat
import sys
import threading
import time
from typing import Any, Callable

import numpy as np

from .errors import BadRequestError, ColorplugError

STRIP_ROWS = 64  # rows per strip: pixel files are read and written strip by strip
SOCKET_NAME = "worker.sock"
REQUEST_TIMEOUT = 30.0  # seconds a connected client has, in all, to send its request line
MAX_REQUEST_BYTES = 1 << 20
DEFAULT_IDLE = 600.0  # seconds without a request before the worker exits
MODEL_CACHE_SIZE = 4


# --------------------------------------------------------------------------- requests
def _field(obj: Any, key: str, kind: type | tuple, what: str) -> Any:
    if not isinstance(obj, dict):
        raise BadRequestError(f"bad request: {what} must be an object")
    if key not in obj or obj[key] is None:
        raise BadRequestError(f"bad request: {what} has no {key!r}")
    value = obj[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise BadRequestError(f"bad request: {what}.{key} must be {_name(kind)}, not a boolean")
    if not isinstance(value, kind):
        raise BadRequestError(f"bad request: {what}.{key} must be {_name(kind)}, "
                              f"not {type(value).__name__}")
    return value


def _name(kind: type | tuple) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({int: "an integer", str: "a string", dict: "an object"}.get(k, k.__name__)
                       for k in kinds)


def _file_name(obj: dict, what: str) -> str:
    name = _field(obj, "file", str, what)
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise BadRequestError(f"bad request: {what}.file must be a plain file name inside the "
                              f"call's folder, not {name!r}")
    return name


def pixel_spec(obj: Any, what: str) -> dict[str, Any]:
    """A validated pixel-file description (file, width, height, channels, depth)."""
    spec = {"file": _file_name(obj, what)}
    for key in ("width", "height", "channels"):
        spec[key] = _field(obj, key, int, what)
        if spec[key] < 1:
            raise BadRequestError(f"bad request: {what}.{key} must be at least 1")
    if spec["channels"] > 4:
        raise BadRequestError(f"bad request: {what}.channels must be 1 to 4")
    depth = obj.get("depth", 8)
    if isinstance(depth, bool) or depth not in (8, 16):
        raise BadRequestError(f"bad request: {what}.depth must be 8 or 16, not {depth!r}")
    spec["depth"] = depth
    return spec


def check_colorize(req: Any) -> dict[str, Any]:
    """Validate a colorize request; every problem is a BadRequestError naming the field."""
    if not isinstance(req, dict):
        raise BadRequestError("bad request: the request must be a JSON object")
    out: dict[str, Any] = {"dir": _field(req, "dir", str, "request")}
    for key in ("backend", "device", "weights", "runtime"):
        value = req.get(key)
        if value is not None and not isinstance(value, str):
            raise BadRequestError(f"bad request: request.{key} must be a string")
        out[key] = value or None
    out["input"] = pixel_spec(req.get("input"), "input")
    for key in ("reference", "hints"):
        out[key] = pixel_spec(req[key], key) if req.get(key) is not None else None
    out["output"] = {"file": _file_name(req.get("output"), "output")}
    return out


# --------------------------------------------------------------------------- pixel files
def open_call_dir(path: str) -> int:
    """An fd on the call's folder, which must be a private real directory of this user."""
    if not os.path.isabs(path):
        raise BadRequestError(f"bad request: dir must be an absolute path, not {path!r}")
    # "link/" would resolve the symlink before O_NOFOLLOW sees a last component
    path = path.rstrip("/") or "/"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise BadRequestError(f"the call's folder {path} cannot be used (not a real "
                              f"directory: {exc.strerror})") from None
    st = os.fstat(fd)
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        os.close(fd)
        raise BadRequestError(f"the call's folder {path} is not private to this user "
                              "(it must be mode 0700, owned by the user)")
    return fd


def read_pixels(dir_fd: int, spec: dict[str, Any],
                on_strip: Callable[[float], None] | None = None) -> np.ndarray:
    """A regular pixel file in the call's folder -> (H, W, C) array (gray + alpha -> RGBA)."""
    from .errors import InputError

    dtype = np.dtype("<u2") if spec["depth"] == 16 else np.dtype(np.uint8)
    h, w, c = spec["height"], spec["width"], spec["channels"]
    try:  # O_NONBLOCK: a FIFO must not hang us; O_NOFOLLOW: no symlink
        fd = os.open(spec["file"], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except OSError as exc:
        raise InputError(f"pixel file {spec['file']!r} cannot be read ({exc.strerror}; "
                         "symlinks are refused)") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"pixel file {spec['file']!r} is not a regular file")
        row = w * c * dtype.itemsize
        if st.st_size != h * row:
            raise InputError(f"pixel file {spec['file']!r} holds {st.st_size} bytes, expected "
                             f"{w}x{h}x{c} at {spec['depth']} bit ({h * row})")
        buf = bytearray(h * row)
        view = memoryview(buf)
        for top in range(0, h, STRIP_ROWS):
            part = view[top * row:min(h, top + STRIP_ROWS) * row]
            got = 0
            while got < len(part):
                n = os.readv(fd, [part[got:]])
                if n == 0:
                    raise InputError(f"pixel file {spec['file']!r} ended early")
                got += n
            if on_strip:
                on_strip(min(h, top + STRIP_ROWS) / h)
    finally:
        os.close(fd)
    arr = np.frombuffer(bytes(buf), dtype=dtype).reshape(h, w, c).astype(dtype.newbyteorder("="))
    if c == 1:
        return arr[..., 0]
    if c == 2:  # gray + alpha
        return np.concatenate([np.repeat(arr[..., :1], 3, -1), arr[..., 1:]], -1)
    return arr


def write_pixels(dir_fd: int, name: str, pixels: np.ndarray,
                 on_strip: Callable[[float], None] | None = None) -> None:
    """Write pixels to a new file in the call's folder, strip by strip, then link it into
    place atomically; an existing file of that name is never replaced."""
    from .errors import InputError

    tmp = f".{name}.{os.getpid()}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=dir_fd)
    try:
        h = pixels.shape[0]
        for top in range(0, h, STRIP_ROWS):
            data = np.ascontiguousarray(pixels[top:top + STRIP_ROWS]).tobytes()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if on_strip:
                on_strip(min(h, top + STRIP_ROWS) / h)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.close(fd)
    try:
        os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        raise InputError(f"output file {name!r} already exists; it is not overwritten") from None
    finally:
        os.unlink(tmp, dir_fd=dir_fd)


# --------------------------------------------------------------------------- colorplug
def backends() -> list[dict[str, Any]]:
    import colorplug
    from .user_weights import listing

    yours: dict[str, list[str]] = {}
    for entry in listing():  # the user's own weights, offered under Weights
        yours.setdefault(entry.backend, []).append(entry.name)
    return [{"name": i.name, "description": i.description,
             "needs_reference": i.needs_reference, "accepts_reference": i.accepts_reference,
             "supports_hints": i.supports_hints,
             "needs_hints": bool(getattr(i, "needs_hints", False)),
             "default": i.name == colorplug.default_backend(),
             "weights": yours.get(i.name, []), "runtimes": list(i.runtimes)}
            for i in colorplug.available()]


def watch_list() -> dict[str, int]:
    """Files and folders whose change means colorplug or its plugins changed: colorplug's
    own source files (not their compiled .pyc), every plugin distribution's metadata and
    modules, and the folders on sys.path that hold installed distributions (a pip install
    or uninstall changes their mtime). The plug-in stats them to trust its cache."""
    from importlib import metadata

    import colorplug

    paths: set[str] = set()
    root = os.path.dirname(os.path.abspath(colorplug.__file__))
    for folder, dirs, files in os.walk(root):
        # source files only: Python writing its own .pyc (a new __pycache__ or file in it,
        # which changes folder mtimes) is not a change of colorplug
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        paths.update(os.path.join(folder, f) for f in files if f.endswith(".py"))
    for entry in sys.path:  # folders packages are installed into (not cwd, not /tmp)
        try:
            if entry and any(n.endswith((".dist-info", ".egg-info")) for n in os.listdir(entry)):
                paths.add(os.path.abspath(entry))
        except OSError:
            continue
    for dist in metadata.distributions():
        try:
            eps = [ep for ep in dist.entry_points if ep.group == "colorplug"]
            if not eps:
                continue
            files = dist.files or []
            paths.update(str(dist.locate_file(f)) for f in files
                         if str(f).endswith((".py", "entry_points.txt", "RECORD")))
            for ep in eps:  # the plugin's own modules (editable installs have no RECORD)
                spec = importlib.util.find_spec(ep.module.split(".")[0])
                if spec and spec.origin and os.path.isfile(spec.origin):
                    paths.add(spec.origin)
                for folder in (spec.submodule_search_locations or []) if spec else []:
                    for sub, _dirs, names in os.walk(folder):
                        paths.update(os.path.join(sub, n) for n in names if n.endswith(".py"))
        except Exception:  # noqa: BLE001 - a broken dist must not break the listing
            continue
    from .weights import user_weights_dir

    paths.add(str(user_weights_dir()))  # new or removed weights of the user's: a new listing
    out = {}
    for p in sorted(paths):
        try:
            out[p] = os.stat(p).st_mtime_ns
        except OSError:
            out[p] = -1
    return out


def changed(watch: dict[str, int]) -> bool:
    for path, mtime in watch.items():
        try:
            if os.stat(path).st_mtime_ns != mtime:
                return True
        except OSError:
            if mtime != -1:
                return True
    return False


class Models:
    """Colorizers kept warm, keyed by backend + options + device (least recently used out)."""

    def __init__(self, size: int = MODEL_CACHE_SIZE) -> None:
        self.size, self._items = size, {}
        self.loads = 0
        self.listing: str | None = None  # the worker's "list" answer, made once

    def get(self, backend: str | None, device: str | None, **options: Any) -> Any:
        import colorplug

        name = backend or colorplug.default_backend()
        key = (name, device or "auto", json.dumps(options, sort_keys=True))
        if key in self._items:
            self._items[key] = self._items.pop(key)  # most recently used last
            return self._items[key]
        model = colorplug.get(name, device=device or "auto", **options)
        self.loads += 1
        self._items[key] = model
        while len(self._items) > self.size:
            self._items.pop(next(iter(self._items)))
        return model


def colorize(req: Any, models: Models, say: Callable[[str, str], None]) -> dict[str, Any]:
    """Run one validated colorize request; progress per strip read and written."""
    from .errors import InputError

    req = check_colorize(req)
    dir_fd = open_call_dir(req["dir"])
    try:
        src = req["input"]
        depth = src["depth"]
        h = src["height"]
        image = read_pixels(dir_fd, src, lambda f: say("progress", f"{0.15 * f:.3f}"))
        reference = read_pixels(dir_fd, req["reference"]) if req["reference"] else None
        hints = read_pixels(dir_fd, req["hints"]) if req["hints"] else None
        if hints is not None and hints.ndim == 2:
            raise InputError("the hints layer is grayscale; draw colour strokes on an RGB layer")
        say("progress", "0.20")
        weights = {"weights": req["weights"]} if req["weights"] else {}
        if req["runtime"] not in (None, "torch"):  # onnx / openvino (colorplug.runtimes)
            weights["runtime"] = req["runtime"]
        colorizer = models.get(req["backend"], req["device"], intensity_range="dtype",
                               output_dtype="uint16" if depth == 16 else "uint8", **weights)
        say("progress", "0.30")
        out = colorizer.colorize(image, reference=reference, hints=hints)
        say("progress", "0.85")
        if out.shape[0] != h:
            raise InputError("internal: the result's size differs from the input's")
        write_pixels(dir_fd, req["output"]["file"], out.astype("<u2") if depth == 16 else out,
                     lambda f: say("progress", f"{0.85 + 0.15 * f:.3f}"))
    finally:
        os.close(dir_fd)
    return {"width": int(out.shape[1]), "height": int(out.shape[0]),
            "channels": int(out.shape[2]), "depth": depth, "backend": colorizer.info.name}


def handle(req: Any, models: Models, say: Callable[[str, str], None],
           watch: dict[str, int] | None = None) -> bool:
    """Answer one request through ``say``; False if the worker must stop (stale code)."""
    try:
        if not isinstance(req, dict):
            raise BadRequestError("bad request: the request must be a JSON object")
        command = req.get("command")
        if watch is not None and command in ("list", "colorize") and changed(watch):
            say("restart", json.dumps({"reason": "colorplug or its plugins changed"}))
            return False
        if command == "ping":
            say("result", json.dumps({"pid": os.getpid(), "loads": models.loads}))
        elif command == "list":
            if watch is None:
                say("result", json.dumps({"backends": backends(), "watch": watch_list()}))
            else:  # a worker: its code is current (checked above), so is its first answer
                if models.listing is None:
                    models.listing = json.dumps({"backends": backends(), "watch": watch})
                say("result", models.listing)
        elif command == "colorize":
            say("result", json.dumps(colorize(req, models, say)))
        else:
            raise BadRequestError(f"bad request: unknown command {command!r}")
    except Exception as exc:  # noqa: BLE001 - every failure becomes one message for GIMP
        msg = str(exc) if isinstance(exc, ColorplugError) else f"{type(exc).__name__}: {exc}"
        kind = getattr(exc, "kind", "error") if isinstance(exc, ColorplugError) else "internal"
        say("error", json.dumps({"message": " ".join(msg.split()), "kind": kind}))
    return True


# --------------------------------------------------------------------------- worker
def serve(folder: str, idle: float = DEFAULT_IDLE) -> int:
    """Listen on FOLDER/worker.sock until idle for ``idle`` seconds or colorplug changes.

    Each connection is read in its own thread, with `REQUEST_TIMEOUT` for the whole request
    line, so a silent or dripping client never holds up the others; the work itself runs
    one request at a time (models are shared and not thread-safe)."""
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        sys.stderr.write(f"colorplug worker: {folder} is not a private folder of this user\n")
        return 2
    os.chdir(folder)  # bind by a relative name: socket paths are limited to ~100 bytes
    try:
        old_sock = os.lstat(SOCKET_NAME)
    except FileNotFoundError:
        old_sock = None
    if old_sock is not None:  # only ever remove a socket of ours, never a file
        if not stat.S_ISSOCK(old_sock.st_mode) or old_sock.st_uid != os.getuid():
            sys.stderr.write(f"colorplug worker: {folder}/{SOCKET_NAME} exists and is not a "
                             "socket of this user; it was left alone\n")
            return 2
        os.unlink(SOCKET_NAME)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(SOCKET_NAME)
    finally:
        os.umask(old)
    server.listen(8)
    server.settimeout(1.0)  # wake up to check for idleness and a stop
    ino = os.stat(SOCKET_NAME).st_ino
    with open(f"worker.pid.{os.getpid()}", "w") as fh:  # for the plug-in to stop a stuck one
        fh.write(str(os.getpid()))
    os.replace(f"worker.pid.{os.getpid()}", "worker.pid")
    models, watch = Models(), watch_list()
    state = _WorkerState()
    sys.stderr.write(f"colorplug worker {os.getpid()} listening in {folder}\n")
    sys.stderr.flush()
    try:
        while not state.stop.is_set():
            try:
                conn, _ = server.accept()
            except socket.timeout:
                if state.idle_for() > idle:
                    sys.stderr.write(f"colorplug worker {os.getpid()}: idle, exiting\n")
                    return 0
                continue
            state.begin()
            threading.Thread(target=_serve_connection, args=(conn, models, watch, state),
                             name="colorplug-worker-conn", daemon=True).start()
        return 0
    finally:
        try:  # remove our socket only (a newer worker may have replaced it)
            if os.stat(SOCKET_NAME).st_ino == ino:
                os.unlink(SOCKET_NAME)
        except OSError:
            pass
        server.close()


class _WorkerState:
    """Connections in flight, the last activity, the work lock and the stop flag."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.work = threading.Lock()
        self.stop = threading.Event()
        self.active = 0
        self.last = time.monotonic()

    def begin(self) -> None:
        with self.lock:
            self.active += 1
            self.last = time.monotonic()

    def end(self) -> None:
        with self.lock:
            self.active -= 1
            self.last = time.monotonic()

    def idle_for(self) -> float:
        with self.lock:
            return 0.0 if self.active else time.monotonic() - self.last


def _read_request(conn: socket.socket) -> Any:
    """The request line's JSON, read within `REQUEST_TIMEOUT` in all (a client sending a
    byte now and then gets no longer); an Exception describing a bad request otherwise."""
    deadline = time.monotonic() + REQUEST_TIMEOUT
    data = bytearray()
    try:
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return TimeoutError(f"no complete request line within {REQUEST_TIMEOUT:g} s")
            conn.settimeout(remaining)
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_REQUEST_BYTES:
                return ValueError(f"request longer than {MAX_REQUEST_BYTES} bytes")
        line = bytes(data).split(b"\n", 1)[0]
        return json.loads(line.decode("utf-8")) if line.strip() else None
    except socket.timeout:
        return TimeoutError(f"no complete request line within {REQUEST_TIMEOUT:g} s")
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: "[" * 5000
        return exc if not isinstance(exc, RecursionError) else \
            ValueError("the request's JSON is nested too deeply")


def _serve_connection(conn: socket.socket, models: Models, watch: dict[str, int],
                      state: _WorkerState) -> None:
    """One client: read its request, answer it (one at a time), close the connection."""
    try:
        req = _read_request(conn)

        def say(kind: str, payload: str) -> None:
            conn.sendall(f"{kind} {payload}\n".encode("utf-8"))

        if isinstance(req, Exception):
            say("error", json.dumps({"message": f"bad request: {req}", "kind": "bad_request"}))
            return
        conn.settimeout(None)
        with state.work:
            if state.stop.is_set():
                say("restart", json.dumps({"reason": "the worker is stopping"}))
                return
            started = time.perf_counter()
            keep = handle(req, models, say, watch)
            sys.stderr.write(f"request served in {time.perf_counter() - started:.3f} s\n")
            sys.stderr.flush()
            if not keep:
                state.stop.set()
    except OSError:  # the plug-in went away (timeout, cancel): keep serving others
        pass
    finally:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()
        state.end()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve"] and len(argv) >= 2:
        idle = float(argv[3]) if argv[2:3] == ["--idle"] and len(argv) > 3 else \
            float(os.environ.get("COLORPLUG_WORKER_IDLE", DEFAULT_IDLE))
        return serve(argv[1], idle)
    ok = True

    def say(kind: str, payload: str) -> None:
        nonlocal ok
        ok = ok and kind != "error"
        sys.stdout.write(f"{kind} {payload}\n")
        sys.stdout.flush()

    try:
        req = json.loads(sys.stdin.read() or "{}")
    except (ValueError, RecursionError) as exc:
        req = {"command": None, "_error": str(exc)}
    handle(req, Models(), say)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
