#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""GIMP 3 plug-in: Filters > Colors > Colorize (colorplug)...

Runs inside GIMP's own Python (gi + the standard library, no torch) and calls colorplug
in the user's Python through a subprocess (``python -m colorplug.gimp_bridge``): a JSON
request on stdin, pixels through temporary raw files (16-bit for high bit depth images),
progress lines forwarded to Gimp.progress_update, errors shown with colorplug's message.

The Python that runs colorplug comes from, in order: $COLORPLUG_PYTHON (a command, split
like a shell line), colorplug_gimp.json next to this file ({"python": [...]}, written by
``colorplug gimp install``), then ``python3`` on PATH.
"""
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

gi.require_version("Gegl", "0.4")
from gi.repository import Gegl  # noqa: E402
from gi.repository import GLib, GObject  # noqa: E402

PROC = "plug-in-colorplug-colorize"
HERE = os.path.dirname(os.path.abspath(__file__))
DEVICES = ("auto", "cpu", "cuda")


class BridgeError(Exception):
    """colorplug (or starting it) failed; the message is shown to the user as is."""


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
                          "that has colorplug, or set COLORPLUG_PYTHON")
    return [found]


def call_bridge(request, on_progress=None, timeout=3600):
    """Run the bridge with a request; return its result dict or raise BridgeError."""
    cmd = python_command() + ["-m", "colorplug.gimp_bridge"]
    log("running: %s" % " ".join(shlex.quote(c) for c in cmd))
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    except OSError as exc:
        raise BridgeError("python not found (%s): run `colorplug gimp install` from the "
                          "Python that has colorplug, or set COLORPLUG_PYTHON" % exc)
    proc.stdin.write(json.dumps(request))
    proc.stdin.close()
    result, error = None, None
    for line in proc.stdout:
        kind, _, payload = line.strip().partition(" ")
        if kind == "progress" and on_progress:
            try:
                on_progress(float(payload))
            except ValueError:
                pass
        elif kind == "result":
            result = json.loads(payload)
        elif kind == "error":
            error = payload
    stderr = proc.stderr.read()
    code = proc.wait(timeout=timeout)
    if error:
        raise BridgeError(error)
    if code != 0 or result is None:
        tail = stderr.strip().splitlines()[-1:] or ["no output"]
        if code == 127 or "No such file or directory" in stderr:
            raise BridgeError("python not found (%s): run `colorplug gimp install` from the "
                              "Python that has colorplug, or set COLORPLUG_PYTHON" % tail[0])
        if "No module named colorplug" in stderr:
            raise BridgeError("colorplug is not installed in %s; run `colorplug gimp "
                              "install` from the Python that has it" % cmd[0])
        raise BridgeError("colorplug bridge failed (exit %d): %s" % (code, tail[0]))
    return result


# --------------------------------------------------------------------------- pixels
def is_high_depth(image):
    p = image.get_precision()
    return p not in (Gimp.Precision.U8_LINEAR, Gimp.Precision.U8_NON_LINEAR,
                     Gimp.Precision.U8_PERCEPTUAL)


def pixel_format(gray, alpha, depth):
    base = "Y'" if gray else "R'G'B'"
    return "%s%s %s" % (base, "A" if alpha else "", "u16" if depth == 16 else "u8")


def read_pixels(drawable, rect_xy, size, depth, path):
    """Write a drawable's pixels over a rectangle (drawable coordinates) to a raw file."""
    gray = drawable.is_gray()
    alpha = drawable.has_alpha()
    fmt = pixel_format(gray, alpha, depth)
    rect = Gegl.Rectangle.new(rect_xy[0], rect_xy[1], size[0], size[1])
    data = drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE)
    with open(path, "wb") as fh:
        fh.write(bytes(data))
    channels = (1 if gray else 3) + (1 if alpha else 0)
    return {"path": path, "width": size[0], "height": size[1], "channels": channels,
            "depth": depth}


def layer_spec(layer, target, depth, path):
    """Pixels of another layer over the target drawable's area (reference: its own area)."""
    if layer is None:
        return None
    ok, tx, ty = target.get_offsets()
    ok, lx, ly = layer.get_offsets()
    return read_pixels(layer, (tx - lx, ty - ly), (target.get_width(), target.get_height()),
                       depth, path)


# --------------------------------------------------------------------------- run
def colorize_drawable(image, drawable, config, tmpdir):
    backend = config.get_property("backend") or ""
    device = config.get_property("device") or "auto"
    reference = config.get_property("reference")
    hints = config.get_property("hints")
    replace = bool(config.get_property("replace"))
    depth = 16 if is_high_depth(image) else 8
    w, h = drawable.get_width(), drawable.get_height()
    request = {
        "command": "colorize", "backend": backend, "device": device,
        "input": read_pixels(drawable, (0, 0), (w, h), depth, os.path.join(tmpdir, "in.raw")),
        "reference": None, "hints": layer_spec(hints, drawable, depth,
                                                os.path.join(tmpdir, "hints.raw")),
        "output": {"path": os.path.join(tmpdir, "out.raw")},
    }
    if reference is not None:
        request["reference"] = read_pixels(
            reference, (0, 0), (reference.get_width(), reference.get_height()), depth,
            os.path.join(tmpdir, "reference.raw"))
    Gimp.progress_init("Colorizing (colorplug)...")
    result = call_bridge(request, on_progress=Gimp.progress_update)
    with open(request["output"]["path"], "rb") as fh:
        pixels = fh.read()
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
        fmt = pixel_format(False, result["channels"] == 4, depth)
        if target.has_alpha() != (result["channels"] == 4):
            raise BridgeError("internal: alpha mismatch between layer and result")
        shadow = target.get_shadow_buffer()
        shadow.set(Gegl.Rectangle.new(0, 0, w, h), fmt, pixels)
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
    tmpdir = tempfile.mkdtemp(prefix="colorplug-gimp-")
    try:
        for drawable in drawables:
            colorize_drawable(image, drawable, config, tmpdir)
    except BridgeError as exc:
        log("ERROR: %s" % exc)
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                           GLib.Error(str(exc)))
    except Exception as exc:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                           GLib.Error("colorplug plug-in: %s" % exc))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)  # temporary files go, success or not
    Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def backend_choice():
    """A Gimp.Choice of colorplug's backends (asked once, when GIMP queries plug-ins)."""
    choice = Gimp.Choice.new()
    default = ""
    try:
        listed = call_bridge({"command": "list"}, timeout=120)["backends"]
    except Exception as exc:  # noqa: BLE001 - GIMP must still start
        log("could not list colorplug backends: %s" % exc)
        listed = []
    for i, b in enumerate(listed):
        label = b["name"] + (" (needs a reference layer)" if b["needs_reference"] else
                             " (uses a hints layer)" if b["supports_hints"] else "")
        choice.add(b["name"], i, label, b["description"])
        if b.get("default") or not default:  # colorplug's default, else the first listed
            default = b["name"]
    if not listed:
        choice.add("autoencoder", 0, "autoencoder", "default backend")
        default = "autoencoder"
    return choice, default


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
        procedure.add_boolean_argument("replace", "Replace in place",
                                       "change the layer itself instead of adding a layer",
                                       False, GObject.ParamFlags.READWRITE)
        return procedure


Gimp.main(ColorplugPlugIn.__gtype__, sys.argv)
