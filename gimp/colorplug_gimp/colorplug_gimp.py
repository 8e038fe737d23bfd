#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""GIMP 3 plug-in: Filters > Colors > Colorize (colorplug)...

Runs inside GIMP's own Python (gi + the standard library, no torch) and talks to a warm
colorplug worker in the user's Python (the transport section below: a private Unix
socket, timeouts on every exchange, the worker restarted if it died, the backend list
cached until colorplug or its plugins change). Pixels go through files in a fresh private
folder made for each call (16-bit for high bit depth images), read and written strip by
strip with progress; errors are shown in GIMP's terms (menus, dialog fields).

The Python that runs colorplug comes from, in order: $COLORPLUG_PYTHON (a command, split
like a shell line), colorplug_gimp.json next to this file ({"python": [...]}, written by
``colorplug gimp install``), then ``python3`` on PATH.
"""
import fcntl
import importlib.util  # noqa: F401
import json
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

try:  # inside GIMP; the transport part below is plain Python (tests import it without gi)
    import gi

    gi.require_version("Gimp", "3.0")
    from gi.repository import Gimp  # noqa: E402

    gi.require_version("Gegl", "0.4")
    from gi.repository import Gegl  # noqa: E402
    from gi.repository import GLib, GObject  # noqa: E402
except ImportError:  # pragma: no cover - outside GIMP
    gi = Gimp = Gegl = GLib = GObject = None

PROC = "plug-in-colorplug-colorize"
HERE = os.path.dirname(os.path.abspath(__file__))
DEVICES = ("auto", "cpu", "cuda")
#: What runs the network (colorplug.protocol.RUNTIMES): onnx / openvino are faster on the CPU
#: for the backends that offer them (their listing's "runtimes").
RUNTIMES = ("torch", "onnx", "openvino")
DEFAULT = "default"  # the Backend choice meaning "colorplug's default backend"
STRIP = 256  # rows per strip when reading and writing layer pixels


# --------------------------------------------------------------------------- transport
# The warm colorplug worker, reached over a private Unix socket (standard library only).
START_TIMEOUT = float(os.environ.get("COLORPLUG_WORKER_START_TIMEOUT", "120"))
SOCKET_NAME = "worker.sock"
NOT_FOUND = ("python not found ({}): run `colorplug gimp install` from the Python that has "
             "colorplug, or set COLORPLUG_PYTHON")


class BridgeError(Exception):
    """colorplug (or reaching it) failed; ``kind`` says what (colorplug.errors kinds)."""

    def __init__(self, message, kind="error"):
        super().__init__(message)
        self.kind = kind


def _private_dir(path):
    """Make (or check) a folder only this user can enter; refuse symlinks and others'."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise BridgeError("%s is not a private folder of this user (a symlink, another "
                          "user's, or open to others); remove it and try again" % path)
    return path


def worker_dir():
    """The worker's folder: XDG_RUNTIME_DIR/colorplug-worker-UID (private by design), else
    the same name in the temp folder. There another user can pre-create that name: then a
    fresh private folder is used (the worker is not shared across GIMP sessions) and the
    log says why."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    if not os.path.isdir(base):
        base = tempfile.gettempdir()
    path = os.path.join(base, "colorplug-worker-%d" % os.getuid())
    try:
        return _private_dir(path)
    except BridgeError as exc:
        fresh = tempfile.mkdtemp(prefix="colorplug-worker-%d-" % os.getuid())  # 0700, new
        log("%s; using a fresh private folder %s instead" % (exc, fresh))
        return fresh


#: Logs of earlier workers kept beside worker.log (worker.log.1 is the one before), so the
#: log a "stopped in the middle" message names survives the next start.
KEPT_LOGS = 3


def _keep_old_logs(log_path):
    """worker.log -> worker.log.1 -> ... -> worker.log.KEPT_LOGS (the oldest is dropped)."""
    for i in range(KEPT_LOGS - 1, 0, -1):
        try:
            os.replace("%s.%d" % (log_path, i), "%s.%d" % (log_path, i + 1))
        except OSError:
            pass
    try:
        os.replace(log_path, log_path + ".1")
    except OSError:
        pass


class _Lock:
    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)

    def __enter__(self):
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


class Worker:
    """The colorplug worker of this user, for one Python command (``python``: argv list)."""

    def __init__(self, python, folder=None, log=None):
        self.python = list(python)
        self.dir = folder or worker_dir()
        self.log = log or (lambda msg: None)

    # ------------------------------------------------------------------ connecting
    def _connect(self, timeout=5.0):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        path = os.path.join(self.dir, SOCKET_NAME)
        if len(path.encode()) > 100:  # sun_path is ~108 bytes: go through the folder's fd
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                sock.connect("/proc/self/fd/%d/%s" % (fd, SOCKET_NAME))
            except OSError:
                sock.close()
                raise
            finally:
                os.close(fd)
            return sock
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        return sock

    def _start(self):
        """Start a worker (under the folder's lock) and wait until it accepts."""
        with _Lock(os.path.join(self.dir, "start.lock")):
            try:  # another plug-in process may have started one meanwhile
                return self._connect()
            except OSError:
                pass
            cmd = self.python + ["-m", "colorplug.gimp_bridge", "--serve", self.dir]
            self.log("starting the colorplug worker: %s" % " ".join(shlex.quote(c) for c in cmd))
            log_path = os.path.join(self.dir, "worker.log")
            _keep_old_logs(log_path)
            logfd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                            | os.O_CLOEXEC, 0o600)
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logfd,
                                        stderr=logfd, start_new_session=True, close_fds=True)
            except OSError as exc:
                raise BridgeError(NOT_FOUND.format(exc), "python_not_found")
            finally:
                os.close(logfd)
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                code = proc.poll()
                if code is not None:
                    raise self._start_failure(cmd, code, log_path)
                try:
                    return self._connect()
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    proc.kill()
                    raise BridgeError("the colorplug worker did not start within %d s (log: %s)"
                                      % (START_TIMEOUT, log_path), "timeout")
                time.sleep(0.05)

    @staticmethod
    def _start_failure(cmd, code, log_path):
        try:
            with open(log_path, errors="replace") as fh:
                text = fh.read()[-4000:]
        except OSError:
            text = ""
        tail = (text.strip().splitlines() or ["no output"])[-1]
        if code == 127 or "No such file or directory" in text or "not found" in text:
            return BridgeError(NOT_FOUND.format(tail), "python_not_found")
        if "No module named colorplug" in text or "No module named 'colorplug'" in text:
            return BridgeError("colorplug is not installed in %s; run `colorplug gimp install` "
                               "from the Python that has it" % cmd[0], "colorplug_not_found")
        return BridgeError("the colorplug worker failed to start (exit %d): %s" % (code, tail),
                           "worker_failed")

    def stop(self):
        """Stop the worker that holds the socket (after a timeout), so the next call starts
        a fresh one."""
        try:
            with open(os.path.join(self.dir, "worker.pid")) as fh:
                os.kill(int(fh.read().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        try:
            os.unlink(os.path.join(self.dir, SOCKET_NAME))
        except OSError:
            pass

    # ------------------------------------------------------------------ exchanging
    def request(self, req, on_progress=None, line_timeout=600.0, total_timeout=3600.0):
        """Send one request; return the result dict or raise BridgeError."""
        for attempt in range(3):
            try:
                sock = self._connect()
            except OSError:
                sock = self._start()
            try:
                outcome = self._exchange(sock, req, on_progress, line_timeout, total_timeout)
            finally:
                sock.close()
            if outcome == "retry":  # stale worker (colorplug changed) or it died before reading
                time.sleep(0.05)
                continue
            return outcome
        raise BridgeError("the colorplug worker keeps restarting (log: %s)"
                          % os.path.join(self.dir, "worker.log"), "worker_failed")

    def _exchange(self, sock, req, on_progress, line_timeout, total_timeout):
        deadline = time.monotonic() + total_timeout
        try:
            sock.settimeout(30.0)
            sock.sendall((json.dumps(req) + "\n").encode("utf-8"))
        except (BrokenPipeError, ConnectionResetError, ConnectionRefusedError):
            self.stop()
            return "retry"
        except socket.timeout:
            self.stop()
            raise BridgeError("the colorplug worker did not take the request within 30 s",
                              "timeout")
        reader = sock.makefile("rb")
        got_any = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise BridgeError("colorplug took longer than %d s; stopped" % total_timeout,
                                  "timeout")
            sock.settimeout(min(line_timeout, left))
            try:
                line = reader.readline()
            except socket.timeout:
                self.stop()
                raise BridgeError("colorplug did not answer within %d s; the worker was "
                                  "stopped (log: %s)" % (min(line_timeout, left),
                                                         os.path.join(self.dir, "worker.log")),
                                  "timeout")
            except (ConnectionResetError, OSError):
                line = b""
            if not line:
                if not got_any:
                    self.stop()
                    return "retry"
                raise BridgeError("the colorplug worker stopped in the middle of the work "
                                  "(log: %s); it is started again on the next run"
                                  % os.path.join(self.dir, "worker.log"), "worker_failed")
            got_any = True
            kind, _, payload = line.decode("utf-8", "replace").strip().partition(" ")
            if kind == "progress":
                if on_progress:
                    try:
                        on_progress(float(payload))
                    except ValueError:
                        pass
            elif kind == "result":
                return json.loads(payload)
            elif kind == "error":
                try:
                    err = json.loads(payload)
                    raise BridgeError(err.get("message", payload), err.get("kind", "error"))
                except ValueError:
                    raise BridgeError(payload)
            elif kind == "restart":
                return "retry"

    # ------------------------------------------------------------------ backends
    def backends(self, timeout=120.0):
        """colorplug's backends, from the cache while colorplug and its plugins are
        unchanged, else asked from the worker (and cached)."""
        cache = os.path.join(self.dir, "backends.json")
        try:
            with open(cache) as fh:
                data = json.load(fh)
            if data.get("python") == self.python and not _changed(data.get("watch") or {}):
                return data["backends"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        listed = self.request({"command": "list"}, line_timeout=timeout, total_timeout=timeout)
        data = {"python": self.python, "watch": listed.get("watch", {}),
                "backends": listed["backends"]}
        tmp = "%s.%d.tmp" % (cache, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, cache)
        return data["backends"]


def _changed(watch):
    if not watch:
        return True
    for path, mtime in watch.items():
        try:
            if os.stat(path).st_mtime_ns != mtime:
                return True
        except OSError:
            if mtime != -1:
                return True
    return False


class CallDir:
    """A fresh private folder for one call's pixel files, removed afterwards."""

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="colorplug-gimp-")  # 0700, a new name
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)

    def create(self, name):
        """A new file in the folder, opened for writing: O_EXCL, no symlink followed."""
        fd = os.open(os.path.join(self.path, name),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        return os.fdopen(fd, "wb")

    def read(self, name, size):
        """The bytes of a regular file the worker wrote here (exactly ``size`` of them)."""
        try:
            fd = os.open(os.path.join(self.path, name),
                         os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise BridgeError("colorplug's result file is missing (%s)" % exc.strerror)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size != size:
                raise BridgeError("colorplug's result file is not what was expected "
                                  "(%d bytes, %d expected)" % (st.st_size, size))
            return fh.read()



# --------------------------------------------------------------------------- GIMP
def log(msg):
    sys.stderr.write("[colorplug] %s\n" % msg)
    sys.stderr.flush()


# --------------------------------------------------------------------------- bridge
def python_command():
    env = os.environ.get("COLORPLUG_PYTHON", "").strip()
    if env:
        return shlex.split(env)
    cfg = os.path.join(HERE, "colorplug_gimp.json")
    if os.path.exists(cfg):
        with open(cfg) as fh:
            python = json.load(fh).get("python")
        if python:
            return python if isinstance(python, list) else shlex.split(python)
    found = shutil.which("python3")
    if not found:
        raise BridgeError("python not found: run `colorplug gimp install` from the Python "
                          "that has colorplug, or set COLORPLUG_PYTHON", "python_not_found")
    return [found]


def worker():
    return Worker(python_command(), log=log)


# GIMP's words for colorplug's error kinds (colorplug.errors): menus and dialog fields.
WORDING = {
    "missing_reference": "backend '{backend}' needs a colour reference: choose a colour "
                         "layer as \"Reference layer\" (add one with File \u25b8 Open as "
                         "Layers; the image must be RGB: Image \u25b8 Mode \u25b8 RGB)",
    "grayscale_reference": "the Reference layer has no colour: add an RGB layer (Image "
                           "\u25b8 Mode \u25b8 RGB first if the image is grayscale, then "
                           "File \u25b8 Open as Layers) and choose it as \"Reference layer\"",
    "no_hints": "backend '{backend}' needs colour hints: paint colour strokes on a layer and "
                "choose it as \"Hints layer\"",
    "no_cuda": "CUDA is not available on this machine: choose Device \u25b8 cpu (or auto)",
}


def gimp_message(exc, backend):
    template = WORDING.get(getattr(exc, "kind", ""))
    return template.format(backend=backend) if template else str(exc)


# --------------------------------------------------------------------------- pixels
def is_high_depth(image):
    p = image.get_precision()
    return p not in (Gimp.Precision.U8_LINEAR, Gimp.Precision.U8_NON_LINEAR,
                     Gimp.Precision.U8_PERCEPTUAL)


def pixel_format(gray, alpha, depth):
    base = "Y'" if gray else "R'G'B'"
    return "%s%s %s" % (base, "A" if alpha else "", "u16" if depth == 16 else "u8")


def read_pixels(drawable, rect_xy, size, depth, calldir, name, progress=None):
    """Write a drawable's pixels over a rectangle (drawable coordinates) to a new file in
    the call's folder, strip by strip."""
    gray = drawable.is_gray()
    alpha = drawable.has_alpha()
    fmt = pixel_format(gray, alpha, depth)
    buf = drawable.get_buffer()
    w, h = size
    with calldir.create(name) as fh:
        for top in range(0, h, STRIP):
            rows = min(STRIP, h - top)
            rect = Gegl.Rectangle.new(rect_xy[0], rect_xy[1] + top, w, rows)
            fh.write(bytes(buf.get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE)))
            if progress:
                progress((top + rows) / h)
    channels = (1 if gray else 3) + (1 if alpha else 0)
    return {"file": name, "width": w, "height": h, "channels": channels, "depth": depth}


def layer_spec(layer, target, depth, calldir, name):
    """Pixels of another layer over the target drawable's area (reference: its own area)."""
    if layer is None:
        return None
    ok, tx, ty = target.get_offsets()
    ok, lx, ly = layer.get_offsets()
    return read_pixels(layer, (tx - lx, ty - ly), (target.get_width(), target.get_height()),
                       depth, calldir, name)


def has_colour(drawable):
    """True if an RGB layer already shows colour (it will be replaced)."""
    if drawable.is_gray():
        return False
    w, h = min(drawable.get_width(), 384), min(drawable.get_height(), 384)  # a sample
    data = bytes(drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0,
                                           "R'G'B' u8", Gegl.AbyssPolicy.CLAMP))
    if data[0::3] == data[1::3] == data[2::3]:  # exactly gray: the common case, fast
        return False
    for i in range(0, len(data) - 2, 3):
        r, g, b = data[i], data[i + 1], data[i + 2]
        if max(r, g, b) - min(r, g, b) > 12:
            return True
    return False


# --------------------------------------------------------------------------- run
def backend_info(name):
    """(name to send, its listing) for the Backend choice; DEFAULT is colorplug's default."""
    try:
        listed = worker().backends()
    except BridgeError:
        return ("" if name == DEFAULT else name), None
    for b in listed:
        if b["name"] == name or (name == DEFAULT and b.get("default")):
            return b["name"], b
    return ("" if name == DEFAULT else name), None


def weights_choice():
    """A Gimp.Choice of weights: the backend's shipped default, and the user's own weights
    (``colorplug train BACKEND --from default --name NAME``, napari's Train section)."""
    choice = Gimp.Choice.new()
    choice.add(DEFAULT, 0, "the backend's default", "the weights shipped with the backend")
    try:
        listed = worker().backends(timeout=60.0)
    except Exception as exc:  # noqa: BLE001 - GIMP must still start
        log("could not list colorplug weights: %s" % exc)
        listed = []
    i = 1
    for b in listed:
        for name in b.get("weights") or []:
            choice.add(name, i, "%s (yours, for %s)" % (name, b["name"]),
                       "your weights for the %s backend" % b["name"])
            i += 1
    return choice


def weights_backend(name):
    """The backend the user's weights `name` were trained for (None: unknown)."""
    try:
        listed = worker().backends()
    except BridgeError:
        return None
    for b in listed:
        if name in (b.get("weights") or []):
            return b["name"]
    return None


def colorize_drawable(image, drawable, config, calldir, bridge):
    choice = config.get_property("backend") or DEFAULT
    device = config.get_property("device") or "auto"
    runtime = config.get_property("runtime") or "torch"
    weights = config.get_property("weights") or DEFAULT
    if weights != DEFAULT:  # the user's own weights belong to one backend
        made_for = weights_backend(weights)
        if made_for and choice == DEFAULT:
            choice = made_for
        elif made_for and made_for != choice:
            raise BridgeError("the weights '%s' were trained for the %s backend: choose "
                              "Backend \u25b8 %s (or Weights \u25b8 the backend's default)"
                              % (weights, made_for, made_for), "weights_backend")
    reference = config.get_property("reference")
    hints = config.get_property("hints")
    replace = bool(config.get_property("replace"))
    backend, info = backend_info(choice)
    shown = backend or "default"
    # Fail before any model is loaded, in GIMP's words.
    if info and info.get("needs_reference") and reference is None:
        raise BridgeError(WORDING["missing_reference"].format(backend=shown), "missing_reference")
    if info and info.get("needs_hints") and hints is None:
        raise BridgeError(WORDING["no_hints"].format(backend=shown), "no_hints")
    if info and runtime not in (info.get("runtimes") or ["torch"]):
        raise BridgeError("backend '%s' runs with torch only: choose Runtime \u25b8 torch "
                          "(onnx and openvino are offered by: %s)"
                          % (shown, ", ".join(b["name"] for b in worker().backends()
                                              if len(b.get("runtimes") or []) > 1) or "none"),
                          "unknown_option")
    if reference is not None and info and info.get("accepts_reference") and \
            image.get_base_type() != Gimp.ImageBaseType.RGB:
        raise BridgeError("the image is grayscale, so GIMP turned the Reference layer gray: "
                          "convert the image with Image \u25b8 Mode \u25b8 RGB, then add the "
                          "colour reference layer again (File \u25b8 Open as Layers)",
                          "grayscale_reference")
    if hints is not None and image.get_base_type() != Gimp.ImageBaseType.RGB:
        raise BridgeError("hints need colour, and the image is grayscale, so GIMP turned the "
                          "hints layer gray: convert the image with Image \u25b8 Mode \u25b8 "
                          "RGB, then paint the hints again", "grayscale_hints")
    if has_colour(drawable):
        Gimp.message("colorplug: the layer '%s' already has colour; it is replaced by the "
                     "predicted colour (its lightness is kept)" % drawable.get_name())
    depth = 16 if is_high_depth(image) else 8
    w, h = drawable.get_width(), drawable.get_height()
    Gimp.progress_init("Colorizing (colorplug)...")
    request = {
        "command": "colorize", "backend": backend, "device": device, "dir": calldir.path,
        "weights": None if weights == DEFAULT else weights,
        "runtime": None if runtime == "torch" else runtime,
        "input": read_pixels(drawable, (0, 0), (w, h), depth, calldir, "in.raw",
                             lambda f: Gimp.progress_update(0.1 * f)),
        "reference": None,
        "hints": layer_spec(hints, drawable, depth, calldir, "hints.raw"),
        "output": {"file": "out.raw"},
    }
    if reference is not None:
        request["reference"] = read_pixels(
            reference, (0, 0), (reference.get_width(), reference.get_height()), depth,
            calldir, "reference.raw")
    try:
        result = bridge.request(request, on_progress=lambda f: Gimp.progress_update(
            0.1 + 0.8 * max(0.0, min(1.0, f))))
    except BridgeError as exc:
        raise BridgeError(gimp_message(exc, shown), exc.kind)
    channels = result["channels"]
    row = w * channels * (2 if depth == 16 else 1)
    pixels = calldir.read("out.raw", row * h)
    # Only now, with colorplug's result in hand, is the image changed.
    image.undo_group_start()
    try:
        if image.get_base_type() != Gimp.ImageBaseType.RGB:
            image.convert_rgb()
        if replace:
            target = drawable
        else:
            target = Gimp.Layer.new_from_drawable(drawable, image)
            target.set_name("%s (colorized: %s)" % (drawable.get_name(), result["backend"]))
            image.insert_layer(target, drawable.get_parent(), image.get_item_position(drawable))
        fmt = pixel_format(False, channels == 4, depth)
        if target.has_alpha() != (channels == 4):
            raise BridgeError("internal: alpha mismatch between layer and result")
        shadow = target.get_shadow_buffer()
        for top in range(0, h, STRIP):
            rows = min(STRIP, h - top)
            shadow.set(Gegl.Rectangle.new(0, top, w, rows), fmt,
                       pixels[top * row:(top + rows) * row])
            Gimp.progress_update(0.9 + 0.1 * (top + rows) / h)
        shadow.flush()
        target.merge_shadow(True)  # clipped to the selection, if there is one
        target.update(0, 0, w, h)
    finally:
        image.undo_group_end()
    Gimp.progress_update(1.0)
    return target


def run(procedure, run_mode, image, drawables, config, data):
    if not drawables:
        return procedure.new_return_values(Gimp.PDBStatusType.CALLING_ERROR,
                                           GLib.Error("no drawable selected"))
    if run_mode == Gimp.RunMode.INTERACTIVE:
        gi.require_version("GimpUi", "3.0")
        from gi.repository import GimpUi

        GimpUi.init(PROC)
        dialog = GimpUi.ProcedureDialog.new(procedure, config, "Colorize (colorplug)")
        dialog.fill(None)
        if not dialog.run():
            dialog.destroy()
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        dialog.destroy()
    try:
        bridge = worker()
        for drawable in drawables:
            with CallDir() as calldir:  # temporary files go, success or not
                colorize_drawable(image, drawable, config, calldir, bridge)
    except BridgeError as exc:
        log("ERROR: %s" % exc)
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                           GLib.Error(str(exc)))
    except Exception as exc:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                           GLib.Error("colorplug plug-in: %s" % exc))
    Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def backend_choice():
    """A Gimp.Choice of colorplug's backends (cached list; the worker is asked only when
    colorplug or its plugins changed). The default is colorplug's default backend."""
    choice = Gimp.Choice.new()
    default = DEFAULT
    try:
        listed = worker().backends(timeout=60.0)
    except Exception as exc:  # noqa: BLE001 - GIMP must still start
        log("could not list colorplug backends: %s" % exc)
        listed = []
    choice.add(DEFAULT, 0, "colorplug's default", "the backend colorplug uses by default")
    for i, b in enumerate(listed, 1):
        label = b["name"] + (" (needs a reference layer)" if b["needs_reference"] else
                             " (reference layer optional)" if b.get("accepts_reference") else
                             " (uses a hints layer)" if b["supports_hints"] else "")
        choice.add(b["name"], i, label, b["description"])
        if b.get("default"):
            default = b["name"]
    return choice, default


if __name__ == "__main__":  # GIMP runs the plug-in as a program
    class ColorplugPlugIn(Gimp.PlugIn):
        def do_set_i18n(self, procname):
            return False

        def do_query_procedures(self):
            return [PROC]

        def do_create_procedure(self, name):
            procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
            procedure.set_image_types("RGB*, GRAY*")
            procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE
                                           | Gimp.ProcedureSensitivityMask.DRAWABLES)
            procedure.set_menu_label("Colorize (colorplug)...")
            procedure.add_menu_path("<Image>/Filters/Colors/")
            procedure.set_documentation(
                "Colorize with a colorplug backend",
                "Predicts colour for the layer with any installed colorplug backend and puts the "
                "result in a new layer above it (or in place). The layer's lightness is kept; "
                "only the selection changes when there is one.", name)
            procedure.set_attribution("colorplug", "colorplug", "2026")
            choice, default = backend_choice()
            procedure.add_choice_argument("backend", "Backend", "colorplug backend", choice,
                                          default, GObject.ParamFlags.READWRITE)
            procedure.add_choice_argument("weights", "Weights", "the backend's shipped "
                                          "weights, or yours (colorplug train --name)",
                                          weights_choice(), DEFAULT,
                                          GObject.ParamFlags.READWRITE)
            procedure.add_drawable_argument("reference", "Reference layer",
                                            "colour layer to take colours from (backends that "
                                            "use a reference)", True, GObject.ParamFlags.READWRITE)
            procedure.add_drawable_argument("hints", "Hints layer",
                                            "layer with colour strokes (backends that take hints)",
                                            True, GObject.ParamFlags.READWRITE)
            device = Gimp.Choice.new()
            for i, d in enumerate(DEVICES):
                device.add(d, i, d, "compute device")
            procedure.add_choice_argument("device", "Device", "compute device", device, "auto",
                                          GObject.ParamFlags.READWRITE)
            runtime = Gimp.Choice.new()
            for i, r in enumerate(RUNTIMES):
                runtime.add(r, i, r, "what runs the network (onnx, openvino: on the CPU, for "
                            "the backends that offer them; pip install \"colorplug[%s]\")"
                            % r if r != "torch" else "PyTorch (every backend)")
            procedure.add_choice_argument("runtime", "Runtime", "what runs the network: "
                                          "torch, or the network exported to ONNX and run by "
                                          "ONNX Runtime or OpenVINO on the CPU", runtime,
                                          "torch", GObject.ParamFlags.READWRITE)
            procedure.add_boolean_argument("replace", "Replace in place",
                                           "change the layer itself instead of adding a layer",
                                           False, GObject.ParamFlags.READWRITE)
            return procedure


    Gimp.main(ColorplugPlugIn.__gtype__, sys.argv)
