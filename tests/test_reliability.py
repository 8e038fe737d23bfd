"""Regression tests for issue 27 (reliability, round 2): every decoder refuses a
decompression bomb from its header, a pipe never hangs a run, one bad file fails alone,
and files that cannot hold what was asked are refused before any work."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from colorplug.cli import main
from colorplug.errors import InputError
from colorplug.image.codecs import ImageTooLargeError

# more pixels than Pillow's error threshold (~179 MP): the issue's 196 MP TIFF
BOMB_SIDE = 14_000


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _png16_announcing(width: int, height: int) -> bytes:
    """A 16-bit gray PNG whose (valid, CRC-checked) header announces width x height and
    whose data holds one short row of zeros: a bomb's header without a bomb's size."""
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + 2 * min(width, 64)))
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def _tiff_announcing(path, side: int) -> None:
    """A TIFF whose header announces side x side pixels (written small by tifffile, then
    ImageWidth / ImageLength rewritten in place)."""
    import tifffile

    tifffile.imwrite(path, np.zeros((8, 8), np.uint8))
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        offsets = [tags[name].valueoffset for name in ("ImageWidth", "ImageLength")]
        kinds = [tags[name].dtype for name in ("ImageWidth", "ImageLength")]
    for offset, kind in zip(offsets, kinds):
        fmt = "<H" if int(kind) == 3 else "<I"
        data[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, side)
    path.write_bytes(bytes(data))


def test_the_limit_is_pillows_error_threshold():
    from colorplug.image.codecs import pixel_limit

    assert pixel_limit() > 170_000_000 and BOMB_SIDE ** 2 > pixel_limit()


def test_a_16_bit_png_bomb_is_refused_from_its_header(tmp_path):
    from colorplug.image import read_image

    (tmp_path / "bomb.png").write_bytes(_png16_announcing(BOMB_SIDE, BOMB_SIDE))
    with pytest.raises(ImageTooLargeError, match="allow-huge-images"):
        read_image(tmp_path / "bomb.png")


def test_a_tiff_bomb_is_refused_from_its_header(tmp_path, capsys):
    from colorplug.image import read_image

    _tiff_announcing(tmp_path / "bomb.tif", BOMB_SIDE)
    with pytest.raises(ImageTooLargeError, match="196,000,000 pixels"):
        read_image(tmp_path / "bomb.tif")
    assert main(["colorize", "-b", "gray", str(tmp_path / "bomb.tif"), "-o",
                 str(tmp_path / "o.png")]) == 1
    assert "--allow-huge-images" in capsys.readouterr().err


def test_an_ome_tiff_bomb_is_refused_from_its_header(tmp_path):
    from colorplug.image import medical

    _tiff_announcing(tmp_path / "bomb.ome.tif", BOMB_SIDE)
    with pytest.raises(ImageTooLargeError):
        medical.read_ome_tiff(tmp_path / "bomb.ome.tif")


def test_a_named_pipe_is_refused_not_waited_on(tmp_path):
    """Issue 27 item 3, through the installed command a user runs."""
    os.mkfifo(tmp_path / "p.png")
    run = subprocess.run([sys.executable, "-m", "colorplug", "colorize", "-b", "gray",
                          str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "not a regular file" in run.stderr and "Traceback" not in run.stderr


def test_a_named_pipe_as_weights_is_refused(tmp_path):
    import colorplug
    from colorplug.errors import WeightsError

    os.mkfifo(tmp_path / "w.safetensors")
    with pytest.raises(WeightsError, match="not a regular file"):
        colorplug.get("autoencoder", weights=tmp_path / "w.safetensors", device="cpu")


pydicom = pytest.importorskip("pydicom", reason="the medical extra (pydicom) is not installed")


def _dicom(path, pixels, *, frames_text=None, **fields):
    """A DICOM file; `frames_text` writes a NumberOfFrames value pydicom itself would refuse
    to set (two bytes, written into the file as a broken scanner would)."""
    from tests.test_medical import write_dicom

    ds = write_dicom(path, pixels)
    for key, value in fields.items():
        setattr(ds, key, value)
    if frames_text is not None:
        ds.NumberOfFrames = 1
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    if frames_text is not None:
        field = b"\x28\x00\x08\x00IS\x02\x00"  # (0028,0008) IS, 2 bytes, explicit VR LE
        data = path.read_bytes()
        assert data.count(field + b"1 ") == 1
        path.write_bytes(data.replace(field + b"1 ", field + frames_text))


def test_one_dicom_with_a_broken_frame_count_fails_alone(tmp_path, capsys):
    """Issue 27 item 5: planning a folder goes on past it; the file's message names the
    field."""
    src = tmp_path / "in"
    src.mkdir()
    _dicom(src / "good.dcm", np.arange(256, dtype=np.uint16).reshape(16, 16))
    _dicom(src / "bad.dcm", np.arange(256, dtype=np.uint16).reshape(16, 16),
           frames_text=b"ab")
    assert main(["colorize", "-b", "gray", str(src), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "NumberOfFrames" in err and "bad.dcm" in err and "Traceback" not in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.png"]


def test_a_dicom_bomb_is_refused_from_its_header(tmp_path):
    from colorplug.image import medical

    _dicom(tmp_path / "bomb.dcm", np.zeros((4, 4), np.uint16), Rows=BOMB_SIDE,
           Columns=BOMB_SIDE)
    with pytest.raises(ImageTooLargeError):
        medical.read_dicom(tmp_path / "bomb.dcm")


def test_a_multiframe_dicom_into_a_png_is_refused(tmp_path, capsys):
    """Issue 27 item 10: TIFF bytes were written into x.png."""
    _dicom(tmp_path / "mf.dcm", np.zeros((3, 8, 8), np.uint16))
    assert main(["colorize", "-b", "gray", str(tmp_path / "mf.dcm"), "-o",
                 str(tmp_path / "x.png")]) == 1
    assert "3 planes" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
    assert main(["colorize", "-b", "gray", str(tmp_path / "mf.dcm"), "-o",
                 str(tmp_path / "x.tif")]) == 0


def test_the_frame_count_field_is_named_when_it_is_not_a_number(tmp_path):
    from colorplug.image import medical

    _dicom(tmp_path / "bad.dcm", np.zeros((4, 4), np.uint16), frames_text=b"ab")
    with pytest.raises(InputError, match="NumberOfFrames"):
        medical.read_dicom(tmp_path / "bad.dcm")


# ------------------------------------------------------------------ item 4: plugins
HANGING_IMPORT = "import time\ntime.sleep(3600)\n"
THREAD_LEAKING = '''
import threading, time
import colorplug
threading.Thread(target=time.sleep, args=(3600,)).start()  # non-daemon, never joined

@colorplug.hookimpl
def colorplug_register_colorizers(register):
    pass
'''


def test_a_plugin_hanging_at_import_is_named_while_it_hangs(make_plugin, tmp_path):
    """Issue 27 item 4: `colorplug list` hung silently; now the watchdog names the plugin
    and the way to skip it while the import still runs."""
    import shutil

    make_plugin("colorplug-hangs", {"hangs": "cp_test_hangs"}, {"cp_test_hangs": HANGING_IMPORT})
    command = shutil.which("colorplug")
    proc = subprocess.Popen([command, "list"], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        import select

        ready, _, _ = select.select([proc.stderr], [], [], 60)
        assert ready, "nothing said within 60 s while the plugin's import hangs"
        line = proc.stderr.readline()
        assert "COLORPLUG_DISABLE_PLUGINS=hangs" in line
        assert proc.poll() is None  # the import still runs: said while it hangs
    finally:
        proc.kill()
        proc.wait()
    skipped = subprocess.run([command, "list"], capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, COLORPLUG_DISABLE_PLUGINS="hangs"))
    assert skipped.returncode == 0 and "gray" in skipped.stdout


def test_the_command_exits_when_a_plugin_left_a_thread_running(make_plugin, tmp_path):
    import shutil

    make_plugin("colorplug-threads", {"threads": "cp_test_threads"},
                {"cp_test_threads": THREAD_LEAKING})
    from colorplug.image import write_image

    write_image(tmp_path / "a.png", np.full((16, 16), 90, np.uint8))
    for args in (["list"], ["colorize", "-b", "gray", str(tmp_path / "a.png"), "-o",
                            str(tmp_path / "b.png")]):
        done = subprocess.run([shutil.which("colorplug"), *args], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "b.png").exists()


def test_an_output_folder_inside_the_input_is_never_an_input(tmp_path, capsys):
    """Issue 27 item 9: reruns colorized their own outputs into d/out/out/out/..."""
    from colorplug.image import write_image

    d = tmp_path / "d"
    write_image(d / "a.png", np.full((16, 16), 90, np.uint8))
    write_image(d / "sub" / "b.png", np.full((16, 16), 30, np.uint8))
    for _ in range(3):
        assert main(["colorize", "-b", "gray", str(d), "-o", str(d / "out"),
                     "--skip-existing"]) == 0
    made = sorted(str(p.relative_to(d)) for p in (d / "out").rglob("*.png"))
    assert made == ["out/a.png", "out/sub/b.png"], made


def test_a_float_reference_holding_0_to_255_is_refused_not_clipped():
    """Issue 27 item 11: 88 % of such a reference became white without a word."""
    import colorplug

    ref = np.zeros((32, 32, 3), np.float32)
    ref[..., 0] = 200.0
    ref[..., 1] = np.linspace(0, 255, 32)[None, :]
    gray = np.full((32, 32), 120, np.uint8)
    with pytest.raises(InputError, match="values from 0 to 255.*divide it by 255"):
        colorplug.get("exemplar", device="cpu").colorize(gray, reference=ref)
    out = colorplug.get("exemplar", device="cpu").colorize(gray, reference=ref / 255.0)
    assert out.shape == (32, 32, 3)


def test_a_truncated_ome_tiff_is_an_error_not_a_smaller_stack(tmp_path, capsys):
    """Issue 27 item 8: a 4-plane OME-TIFF cut short became a 1-plane output, exit 0."""
    import tifffile

    planes = (np.random.default_rng(3).random((4, 64, 64)) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "whole.ome.tif", planes, ome=True, metadata={"axes": "ZYX"})
    data = (tmp_path / "whole.ome.tif").read_bytes()
    (tmp_path / "cut.ome.tif").write_bytes(data[:len(data) // 2])
    assert main(["colorize", "-b", "gray", str(tmp_path / "cut.ome.tif"), "-o",
                 str(tmp_path / "cut_out.tif")]) == 1
    assert "truncated or corrupt" in capsys.readouterr().err
    assert not (tmp_path / "cut_out.tif").exists()
    assert main(["colorize", "-b", "gray", str(tmp_path / "whole.ome.tif"), "-o",
                 str(tmp_path / "whole_out.tif")]) == 0
    assert tifffile.imread(tmp_path / "whole_out.tif").shape[0] == 4


def test_a_negative_intensity_range_works_as_a_separate_argument(tmp_path):
    """Issue 27 item 17: only --intensity-range=-1000,2000 worked."""
    from colorplug.image import read_image, write_image

    write_image(tmp_path / "ct.tif", np.full((8, 8), 500, np.uint16))
    for args in (["--intensity-range", "-1000,2000"], ["--intensity-range=-1000,2000"]):
        out = tmp_path / f"o{len(args)}.png"
        assert main(["colorize", "-b", "gray", str(tmp_path / "ct.tif"), "-o", str(out),
                     *args]) == 0
        assert abs(int(read_image(out)[0, 0, 0]) - 128) <= 30  # 500 is mid-range of -1000..2000


def test_many_existing_outputs_are_summarised(tmp_path, capsys):
    """Issue 27 item 17: one 'exists' line per file for a rerun into a full folder."""
    from colorplug.image import write_image

    for i in range(12):
        write_image(tmp_path / "in" / f"p{i:02d}.png", np.full((8, 8), 90, np.uint8))
    args = ["colorize", "-b", "gray", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("exists, left alone:") == 5
    assert "... and 7 more existing outputs left alone" in err


def test_a_still_gif_and_a_file_named_with_percent_d_are_images(tmp_path):
    """Issue 27 item 17: both went to the video path."""
    from PIL import Image

    from colorplug.image import read_image

    Image.fromarray(np.full((10, 12), 90, np.uint8)).save(tmp_path / "still.gif")
    Image.fromarray(np.full((10, 12), 90, np.uint8)).save(tmp_path / "scan_%d.png")
    for name in ("still.gif", "scan_%d.png"):
        out = tmp_path / f"out_{name.split('.')[0].replace('%', 'pct')}.png"
        assert main(["colorize", "-b", "gray", str(tmp_path / name), "-o", str(out)]) == 0
        assert read_image(out).shape == (10, 12, 3)


def test_an_ome_tiff_with_a_non_numeric_pixel_size_names_the_field(tmp_path, capsys):
    """Issue 27 item 16: PhysicalSizeX="abc" gave a raw ValueError."""
    import tifffile

    tifffile.imwrite(tmp_path / "s.ome.tif", np.zeros((2, 8, 8), np.uint8), ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.5})
    data = (tmp_path / "s.ome.tif").read_bytes()
    assert data.count(b'PhysicalSizeX="0.5"') == 1
    (tmp_path / "bad.ome.tif").write_bytes(data.replace(b'PhysicalSizeX="0.5"',
                                                        b'PhysicalSizeX="abc"'))
    assert main(["colorize", "-b", "gray", str(tmp_path / "bad.ome.tif"), "-o",
                 str(tmp_path / "o.tif")]) == 1
    err = capsys.readouterr().err
    assert "PhysicalSizeX is 'abc'" in err and "Traceback" not in err


def test_a_dicom_with_a_non_numeric_rescale_slope_names_the_field(tmp_path, capsys):
    _dicom(tmp_path / "bad.dcm", np.zeros((4, 4), np.uint16))
    data = (tmp_path / "bad.dcm").read_bytes()
    field = b"\x28\x00\x53\x10DS"  # (0028,1053) RescaleSlope, DS, explicit VR little endian
    at = data.index(field)
    length = int.from_bytes(data[at + 6:at + 8], "little")
    value = b"x" * length  # same length, not a number
    (tmp_path / "bad.dcm").write_bytes(data[:at + 8] + value + data[at + 8 + length:])
    assert main(["colorize", "-b", "gray", str(tmp_path / "bad.dcm"), "-o",
                 str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert "RescaleSlope" in err and "Traceback" not in err


def test_intensity_range_as_an_array_and_a_too_narrow_one():
    """Issue 27 item 16: an array gave numpy's 'truth value is ambiguous'; (0, 1e-300) ended
    in 'the weights are broken'."""
    import colorplug

    img = np.linspace(0, 1000, 64, dtype=np.float32).reshape(8, 8)
    as_tuple = colorplug.get("gray", intensity_range=(0, 1000)).colorize(img)
    as_array = colorplug.get("gray", intensity_range=np.array([0, 1000])).colorize(img)
    assert np.array_equal(as_tuple, as_array)
    img8 = (img / 4).astype(np.uint8)
    assert np.array_equal(colorplug.get("gray", intensity_range=(0, 250)).colorize(img8),
                          colorplug.get("gray", intensity_range=np.array([0, 250])).colorize(img8))
    with pytest.raises(InputError, match="too narrow"):
        colorplug.get("gray", intensity_range=(0, 1e-300)).colorize(img)


def test_a_frame_pattern_with_two_fields_is_a_flag_error(tmp_path, capsys):
    """Issue 27 item 16: -o "x_%05d_%s.png" gave a raw traceback."""
    pytest.importorskip("av", reason="the video extra (PyAV) is not installed")
    from colorplug.image import write_image

    for i in range(2):
        write_image(tmp_path / "in" / f"f_{i:03d}.png", np.full((8, 8), 90, np.uint8))
    assert main(["colorize", "-b", "gray", str(tmp_path / "in" / "f_%03d.png"), "-o",
                 str(tmp_path / "x_%05d_%s.png")]) == 2
    err = capsys.readouterr().err
    assert "a frame pattern holds one number field" in err and "Traceback" not in err


def test_gimp_install_into_a_file_or_a_read_only_folder_is_a_clear_error(tmp_path, capsys):
    """Issue 27 item 16: raw tracebacks for `gimp install --gimp-dir` a file / read-only."""
    (tmp_path / "afile").write_text("x")
    assert main(["gimp", "install", "--gimp-dir", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert "--gimp-dir" in err and "afile" in err and "Traceback" not in err


def test_gimp_install_into_a_read_only_folder_is_a_clear_error():
    """Issue 27 item 16, the read-only folder: run as a user the folder denies (root reads
    and writes through permission bits, so as root the command runs as `nobody`)."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="colorplug-ro-"))
    try:
        base.chmod(0o755)
        target = base / "gimp"
        target.mkdir()
        target.chmod(0o555)
        cmd = [sys.executable, "-m", "colorplug", "gimp", "install", "--gimp-dir", str(target)]
        if os.geteuid() == 0:
            if not shutil.which("setpriv"):
                pytest.skip("running as root without setpriv: no user the folder denies")
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        env = {**os.environ, "HOME": str(base)}
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        assert r.returncode == 2, r.stderr
        assert "--gimp-dir" in r.stderr and "Permission denied" in r.stderr
        assert "Traceback" not in r.stderr
        assert list(target.iterdir()) == []
    finally:
        base.chmod(0o755)
        (base / "gimp").chmod(0o755)
        shutil.rmtree(base)


def test_gimp_uninstall_removes_only_what_install_wrote(tmp_path):
    assert main(["gimp", "install", "--gimp-dir", str(tmp_path)]) == 0
    folder = tmp_path / "plug-ins" / "colorplug_gimp"
    (folder / "my_notes.txt").write_text("the user's")
    assert main(["gimp", "uninstall", "--gimp-dir", str(tmp_path)]) == 0
    assert [p.name for p in folder.iterdir()] == ["my_notes.txt"]
    (folder / "my_notes.txt").unlink()
    assert main(["gimp", "install", "--gimp-dir", str(tmp_path)]) == 0
    assert main(["gimp", "uninstall", "--gimp-dir", str(tmp_path)]) == 0
    assert not folder.exists()  # nothing of the user's in it: the folder goes too


def test_a_weights_file_with_a_deeply_nested_header_is_a_weights_error(tmp_path):
    """Issue 27 item 16: a RecursionError escaped."""
    import struct

    import colorplug
    from colorplug.errors import WeightsError

    header = b"[" * 100_000
    (tmp_path / "deep.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(WeightsError, match="nested too deeply"):
        colorplug.get("autoencoder", weights=tmp_path / "deep.safetensors", device="cpu")


@pytest.mark.parametrize("backend", ["fusion", "cgan", "exemplar"])
def test_a_working_size_no_machine_can_run_is_refused_naming_the_option(backend):
    """Issue 27 item 16: working_size=100000 ended in 'not enough memory ... 0.0 GB'."""
    import colorplug

    with pytest.raises(InputError, match="working_size must be .* to 8192; got 100000"):
        colorplug.get(backend, device="cpu", working_size=100000)


def test_eval_flags_that_cannot_work_are_refused_before_any_work(tmp_path, capsys):
    """Issue 27 item 16: a missing --list, a 3-column --reference-pairs and --out naming a
    file gave tracebacks, the last only after the whole evaluation."""
    from colorplug.image import write_image

    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 1] = 150
    write_image(tmp_path / "photos" / "a.png", rgb)
    base = ["eval", "--data", str(tmp_path / "photos"), "--backend", "gray", "--quiet"]
    assert main(base + ["--list", str(tmp_path / "missing.txt")]) == 2
    assert "--list" in capsys.readouterr().err
    (tmp_path / "pairs.csv").write_text("a.png,ref.png,extra\n")
    assert main(base + ["--reference-pairs", str(tmp_path / "pairs.csv")]) == 2
    assert "two columns" in capsys.readouterr().err
    (tmp_path / "report").write_text("a file")
    assert main(base + ["--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "a file, not a folder" in err and "Traceback" not in err


def test_meta_and_sparse_tensors_and_pil_la_images():
    """Issue 27 item 16: raw errors (BackendError wrapping NotImplementedError / TypeError /
    ValueError) for these inputs."""
    import torch
    from PIL import Image

    import colorplug

    gray = colorplug.get("gray")
    with pytest.raises(InputError, match="meta tensor holds no data"):
        gray.colorize(torch.empty(4, 4, device="meta"))
    dense = torch.arange(16, dtype=torch.uint8).reshape(4, 4)
    assert np.array_equal(gray.colorize(dense.to_sparse()), gray.colorize(dense))
    la = Image.new("La", (4, 3), (90, 255))
    out = gray.colorize(la)
    assert out.shape == (3, 4, 4) and (out[..., 3] == 255).all()  # alpha kept


@pytest.mark.parametrize("taken", ["folder named x.mp4", "file named frames"])
def test_a_video_output_name_already_taken_is_refused_before_the_work(tmp_path, capsys, taken):
    """Issue 27 item 16: -o naming a folder x.mp4 or an existing suffix-less file failed
    only after the whole clip, leaving its work folder behind."""
    pytest.importorskip("av", reason="the video extra (PyAV) is not installed")
    from tests.test_video_io import make_clip

    make_clip(tmp_path / "in.mp4", n=6, audio=False)
    if taken.startswith("folder"):
        out = tmp_path / "x.mp4"
        out.mkdir()
    else:
        out = tmp_path / "frames"
        out.write_text("the user's file")
    assert main(["colorize", "-b", "gray", str(tmp_path / "in.mp4"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"-o {out}" in err and "exists" in err and "Traceback" not in err
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["in.mp4", out.name])  # no work folder, nothing else


def test_a_display_rotation_between_quarter_turns_is_said(tmp_path):
    """Issue 27 item 13: 45 and 135 degrees were rounded to 0 and 180 without a word."""
    pytest.importorskip("av", reason="the video extra (PyAV) is not installed")
    from colorplug.video.io import probe
    from tests.test_video_io import make_clip

    make_clip(tmp_path / "r45.mp4", n=3, audio=False, rotation=45)
    with pytest.warns(UserWarning, match="display rotation is 45 degrees.*uses 0"):
        assert probe(tmp_path / "r45.mp4").rotation == 0
    make_clip(tmp_path / "r90.mp4", n=3, audio=False, rotation=90)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a quarter turn is applied exactly, silently
        assert probe(tmp_path / "r90.mp4").rotation == 90


def test_a_zarr_stack_whose_planes_are_bombs_is_refused_from_its_metadata(tmp_path, capsys):
    """Issue 27 item 2, zarr: a plane over the limit is refused before any chunk is read."""
    zarr = pytest.importorskip("zarr", reason="the dask extra (zarr) is not installed")
    from colorplug.image.codecs import pixel_limit

    side = int(pixel_limit() ** 0.5) + 100
    zarr.create_array(str(tmp_path / "big.zarr"), shape=(2, side, side), chunks=(1, 512, 512),
                      dtype="uint8")  # metadata only: no chunk is written
    assert main(["colorize", "-b", "gray", str(tmp_path / "big.zarr"), "-o",
                 str(tmp_path / "out"), "--scheduler", "threads", "-q"]) == 1
    err = capsys.readouterr().err
    assert "--allow-huge-images" in err and "big.zarr" in err
    assert not (tmp_path / "out" / "big.zarr").exists()


def _video_announcing(path, width: int, height: int) -> None:
    """A 600-byte video whose container header announces width x height frames; its one
    packet is not a decodable image, so only a check of the header can name the size."""
    av = pytest.importorskip("av", reason="the video extra (PyAV) is not installed")
    from fractions import Fraction

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        packet = av.Packet(b"\xff\xd8" + bytes(64))
        packet.stream, packet.pts, packet.dts = stream, 0, 0
        packet.time_base = Fraction(1, 25)
        out.mux(packet)


def test_a_video_whose_frames_are_bombs_is_refused_from_its_header(tmp_path, capsys):
    """Issue 27 item 2, video frame size: refused from the container's header, before a
    frame is decoded (decoding came first, and a bomb frame would have been decoded)."""
    from colorplug.video.io import probe

    _video_announcing(tmp_path / "big.mkv", 20_000, 10_000)
    assert main(["colorize", "-b", "gray", str(tmp_path / "big.mkv"), "-o",
                 str(tmp_path / "out.mkv")]) == 2  # the job cannot start: 2, as for bad flags
    err = capsys.readouterr().err
    assert "200,000,000 pixels" in err and "--allow-huge-images" in err and "big.mkv" in err
    assert not (tmp_path / "out.mkv").exists()
    with pytest.raises(ImageTooLargeError):
        probe(tmp_path / "big.mkv")
    assert main(["eval", "--video", str(tmp_path / "big.mkv"), "--backend", "gray"]) != 0
    assert "200,000,000 pixels" in capsys.readouterr().err


def test_a_monochrome_dicom_with_three_samples_per_pixel_is_named(tmp_path, capsys):
    """Issue 27 item 16: MONOCHROME with 3 samples per pixel gave a raw error."""
    _dicom(tmp_path / "bad.dcm", np.zeros((4, 4), np.uint16), SamplesPerPixel=3)
    assert main(["colorize", "-b", "gray", str(tmp_path / "bad.dcm"), "-o",
                 str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert "SamplesPerPixel 3" in err and "one sample per pixel" in err


def test_dicom_out_with_a_malformed_pixel_spacing_is_written_without_it(tmp_path, capsys):
    """Issue 27 item 16: --dicom-out with a bad PixelSpacing gave a raw traceback."""
    _dicom(tmp_path / "ct.dcm", np.arange(64, dtype=np.uint16).reshape(8, 8))
    data = (tmp_path / "ct.dcm").read_bytes()
    field = b"\x28\x00\x30\x00DS"  # (0028,0030) PixelSpacing, DS
    at = data.index(field)
    length = int.from_bytes(data[at + 6:at + 8], "little")
    (tmp_path / "ct.dcm").write_bytes(data[:at + 8] + b"a" * length + data[at + 8 + length:])
    code = main(["colorize", "-b", "gray", str(tmp_path / "ct.dcm"), "-o",
                 str(tmp_path / "out.dcm"), "--dicom-out"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "warning:" in err and "PixelSpacing" in err and "not copied" in err
    written = pydicom.dcmread(tmp_path / "out.dcm")
    assert written.PhotometricInterpretation == "RGB" and "PixelSpacing" not in written


def test_weights_whose_config_describes_a_huge_network_are_refused_before_allocating(tmp_path):
    """Issue 27 item 16: a config too large to allocate ended in a RuntimeError."""
    import json

    from safetensors.torch import load_file, save_file

    import colorplug
    from colorplug import weights as wts
    from colorplug.backends.autoencoder.colorizer import AutoencoderWeights
    from colorplug.errors import WeightsError

    shipped = wts.resolve(None, AutoencoderWeights.DEFAULT.spec).path
    meta = wts.read_metadata(shipped)
    meta["config"] = {**meta.get("config", {}), "latent": 2 ** 40}
    save_file(load_file(shipped), tmp_path / "huge.safetensors",
              metadata={"colorplug": json.dumps(meta)})
    with pytest.raises(WeightsError, match="does not belong to these tensors"):
        colorplug.get("autoencoder", weights=tmp_path / "huge.safetensors", device="cpu")


def test_a_corrupt_tiff_never_fails_a_valid_one_read_at_the_same_time(tmp_path):
    """Found by the CLI fuzz: tifffile's log is process-wide, so a corrupt TIFF decoded in
    one thread made a valid one decoded in another fail as 'corrupt'."""
    import threading

    import tifffile

    from colorplug.image import read_image

    tifffile.imwrite(tmp_path / "good.tif", np.zeros((2, 42, 36), np.uint8), ome=True,
                     metadata={"axes": "ZYX"})
    # the fuzz's case: a 1 x 21 tifffile TIFF cut to 193 of its 277 bytes, which tifffile
    # reads with a logged "invalid value offset"
    (tmp_path / "cut.tif").write_bytes(bytes.fromhex(
        "49492a00080000000e000001040001000000150000000101040001000000010000000201030001"
        "000000080000000301030001000000010000000601030001000000010000000e01020013000000"
        "b60000001101040001000000000100001501030001000000010000001601040001000000010000"
        "001701040001000000150000001a01050001000000d80000001b01050001000000e00000002801"
        "03000100000001000000310102000c000000e8000000000000007b227368617065223a205b"))
    with pytest.raises(InputError, match="truncated or corrupt"):
        read_image(tmp_path / "cut.tif")
    failures: list[str] = []

    def read_good() -> None:
        for _ in range(400):
            try:
                read_image(tmp_path / "good.tif")
            except InputError as exc:
                failures.append(str(exc))

    def read_cut() -> None:
        for _ in range(400):
            try:
                read_image(tmp_path / "cut.tif")
            except InputError:
                pass

    threads = [threading.Thread(target=read_good), threading.Thread(target=read_cut)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    import logging

    assert logging.getLogger("tifffile").propagate  # restored after the last reader
