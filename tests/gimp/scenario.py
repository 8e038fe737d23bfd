"""Runs inside gimp-console-3.0 (python-fu-eval batch): one colorplug plug-in scenario.

sys.argv[1] is a JSON file: {"input": PNG, "out": DIR, "args": {...}, "reference": PNG?,
"select": [x, y, w, h]?,
"hints": PNG?, "hints_offset": [x, y]?, "repeat": N?}. Calls plug-in-colorplug-colorize non-interactively through the
PDB, then writes every layer's pixels (RGBA, 8 or 16 bit) and a summary.json to DIR.
`Gimp`, `Gio`, `GLib`, `Gegl` and `sys` are provided by the batch interpreter.
"""
import json
import os

spec = json.load(open(sys.argv[1]))  # noqa: F821 - sys is given by the batch interpreter
out = spec["out"]
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(spec["input"]))
layer = image.get_layers()[0]
reference = None
if spec.get("reference"):
    reference = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image,
                                     Gio.File.new_for_path(spec["reference"]))
    image.insert_layer(reference, None, len(image.get_layers()))
    reference.set_visible(False)
hints = None
if spec.get("hints"):
    hints = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image,
                                 Gio.File.new_for_path(spec["hints"]))
    image.insert_layer(hints, None, 0)
    hints.set_offsets(*spec.get("hints_offset", [0, 0]))
if spec.get("select"):
    x, y, w, h = spec["select"]
    image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)

pdb = Gimp.get_pdb()
proc = pdb.lookup_procedure("plug-in-colorplug-colorize")
config = proc.create_config()
config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", [layer])
for key, value in spec.get("args", {}).items():
    config.set_property(key, value)
if reference is not None:
    config.set_property("reference", reference)
if hints is not None:
    config.set_property("hints", hints)
import time  # noqa: E402

seconds = []
for _ in range(int(spec.get("repeat", 1))):  # later runs reuse the warm worker
    started = time.monotonic()
    result = proc.run(config)
    seconds.append(time.monotonic() - started)
status = result.index(0)
summary = {"status": status.value_nick if hasattr(status, "value_nick") else str(status),
           "error": pdb.get_last_error(), "base_type": int(image.get_base_type()),
           "precision": str(image.get_precision()), "layers": [], "seconds": seconds}
high = image.get_precision() not in (Gimp.Precision.U8_LINEAR, Gimp.Precision.U8_NON_LINEAR,
                                     Gimp.Precision.U8_PERCEPTUAL)
fmt = "R'G'B'A u16" if high else "R'G'B'A u8"
for i, lyr in enumerate(image.get_layers()):
    w, h = lyr.get_width(), lyr.get_height()
    data = lyr.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, fmt,
                                Gegl.AbyssPolicy.CLAMP)
    path = os.path.join(out, "layer%d.raw" % i)
    with open(path, "wb") as fh:
        fh.write(bytes(data))
    summary["layers"].append({"name": lyr.get_name(), "width": w, "height": h,
                              "alpha": lyr.has_alpha(), "path": path,
                              "depth": 16 if high else 8})
with open(os.path.join(out, "summary.json"), "w") as fh:
    json.dump(summary, fh)
