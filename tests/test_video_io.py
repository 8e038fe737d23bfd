"""Video and image-sequence I/O through `colorplug colorize` (colorplug/video/io.py, cli.py).

Clips are tiny synthetic ones made here with PyAV (64x48, 20 frames, with audio)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorplug.cli import main

av = pytest.importorskip("av")

SLOW_PLUGIN = '''
import time
import numpy as np
import colorplug
from colorplug.pipeline import ChromaColorizer

INFO = colorplug.BackendInfo(name="slowtint", description="test: a fixed tint, slowly")

class Slow(ChromaColorizer):
    info = INFO
    def predict_chroma(self, lightness, *, reference, hints):
        time.sleep(0.4 * len(lightness))  # wide margins for the signals on a loaded machine
        return [np.full((2, 2, 2), [20.0, 0.0], np.float32) for _ in lightness]

@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("slowtint", lambda weights=None, device="auto", **o: Slow(**o), INFO)
'''


def frame_gray(i: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Frame i: a horizontal ramp that moves, with a bright block in the top-left corner."""
    x = np.arange(w)[None, :].repeat(h, 0)
    img = (40 + (x * 3 + i * 5) % 160).astype(np.uint8)
    img[: h // 3, : w // 4] = 235
    return img


def make_clip(path: Path, *, n: int = 20, rate=Fraction(25), audio: bool = True,
              rotation: int | None = None, codec: str = "libx264", options=None,
              sample_aspect: Fraction | None = None) -> Path:
    """Write a synthetic clip (and a 440 Hz tone as long as the video)."""
    with av.open(str(path), "w", options=options or {}) as c:
        v = c.add_stream(codec, rate=rate)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.options = {"crf": "10"} if codec == "libx264" else {}
        if rotation is not None:
            v.set_display_rotation(rotation)
        if sample_aspect is not None:
            v.codec_context.sample_aspect_ratio = sample_aspect
        a = None
        if audio:
            a = c.add_stream("aac", rate=16000)
            a.layout = "mono"
        for i in range(n):
            rgb = np.repeat(frame_gray(i)[..., None], 3, 2)
            for p in v.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        if a is not None:
            total = int(16000 * n / rate)
            tone = (0.3 * np.sin(np.arange(total) * 2 * np.pi * 440 / 16000)).astype(np.float32)
            for s in range(0, total, 1024):
                f = av.AudioFrame.from_ndarray(tone[None, s:s + 1024].copy(), format="flt",
                                               layout="mono")
                f.sample_rate, f.pts = 16000, s
                for p in a.encode(f):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return path


def read_video(path: Path):
    """(luma frames, video stream facts, audio seconds or None) of a file."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        facts = {"rate": v.average_rate, "codec": v.codec_context.name,
                 "sar": v.sample_aspect_ratio,
                 "size": (v.codec_context.width, v.codec_context.height),
                 "rotation": None}
        frames = []
        for f in c.decode(v):
            facts["rotation"] = f.rotation
            frames.append(f.to_ndarray(format="gray"))
    audio = None
    with av.open(str(path)) as c:
        if c.streams.audio:
            s = c.streams.audio[0]
            facts["audio_codec"] = s.codec_context.name
            audio = sum(f.samples for f in c.decode(s)) / s.codec_context.sample_rate
    return frames, facts, audio


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.mark.parametrize("suffix,rate,codec,audio_codec", [
    (".mp4", Fraction(25), "h264", "aac"),
    (".webm", Fraction(30000, 1001), "vp9", "opus"),
    (".mkv", Fraction(24), "h264", "aac"),
])
def test_clip_round_trips_frames_size_fps_and_audio(tmp_path, capsys, suffix, rate, codec,
                                                   audio_codec):
    src = make_clip(tmp_path / "film.mp4", rate=rate, sample_aspect=Fraction(4, 3))
    out = tmp_path / f"film_color{suffix}"
    assert main(["colorize", str(src), "-o", str(out), "-b", "gray",
                 "--segment-frames", "6"]) == 0
    assert f"20 frames colorized -> {out}" in capsys.readouterr().out
    frames, facts, audio = read_video(out)
    assert len(frames) == 20 and facts["size"] == (64, 48) and facts["codec"] == codec
    assert facts["rate"] == rate  # exact, 30000/1001 included
    if codec == "h264":  # anamorphic pixels stay so (VP9: see docs/video.md)
        assert facts["sar"] == Fraction(4, 3)
    assert facts["audio_codec"] == audio_codec  # AAC remuxed; WebM takes Opus, transcoded
    assert audio == pytest.approx(20 / float(rate), abs=0.15)  # AAC frames: 64 ms here
    # the gray backend keeps the lightness: the frames come back in order
    for i in (0, 7, 19):
        assert np.abs(frames[i].astype(int) - frame_gray(i)).mean() < 3
    assert leftovers(tmp_path, {"film.mp4", out.name}) == []  # no work folder, no temporaries


def test_display_rotation_is_applied_to_the_pixels(tmp_path):
    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix")
    src = make_clip(tmp_path / "phone.mp4", rotation=90, audio=False)
    assert main(["colorize", str(src), "-o", str(tmp_path / "up.mp4"), "-b", "gray"]) == 0
    frames, facts, _ = read_video(tmp_path / "up.mp4")
    assert facts["size"] == (48, 64) and facts["rotation"] == 0  # upright, no matrix left
    # 90 degrees counter-clockwise: the bright top-left block is now at the bottom left
    assert np.abs(frames[3].astype(int) - np.rot90(frame_gray(3))).mean() < 3
    assert frames[3][-5:, :5].mean() > 200 and frames[3][:5, -5:].mean() < 200


def test_image_sequences_in_and_out(tmp_path, capsys):
    src = tmp_path / "frames"
    src.mkdir()
    for i in range(12):
        Image.fromarray(frame_gray(i)).save(src / f"f_{i + 3:03d}.png")  # numbered from 3
    # a folder of frames into a video, at a rate given
    assert main(["colorize", str(src), "-o", str(tmp_path / "seq.mp4"), "-b", "gray",
                 "--fps", "12"]) == 0
    frames, facts, audio = read_video(tmp_path / "seq.mp4")
    assert len(frames) == 12 and facts["rate"] == 12 and audio is None
    # a pattern into a pattern keeps the frame numbers
    assert main(["colorize", str(src / "f_%03d.png"), "-o", str(tmp_path / "c" / "c_%03d.png"),
                 "-b", "gray"]) == 0
    out = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert out == [f"c_{i:03d}.png" for i in range(3, 15)]
    rgb = np.asarray(Image.open(tmp_path / "c" / "c_005.png"))
    assert rgb.shape == (48, 64, 3) and np.abs(rgb[..., 1].astype(int) - frame_gray(2)).mean() < 2
    # a video into a folder of frames, counted from 1
    clip = make_clip(tmp_path / "clip.mkv", n=5)
    assert main(["colorize", str(clip), "-o", str(tmp_path / "stills"), "-b", "gray",
                 "--output-format", "jpg"]) == 0
    assert sorted(p.name for p in (tmp_path / "stills").iterdir()) == \
        [f"frame_{i:06d}.jpg" for i in range(1, 6)]
    assert "its audio is not written to image frames" in capsys.readouterr().err


def test_existing_output_follows_the_output_policy(tmp_path, capsys):
    src = make_clip(tmp_path / "film.mp4", n=6)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    assert main(["colorize", str(src), "-o", str(out), "-b", "gray"]) == 1
    assert f"exists, left alone: {out} (use --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert main(["colorize", str(src), "-o", str(out), "-b", "gray", "--skip-existing"]) == 0
    assert "1 skipped" in capsys.readouterr().out and out.read_bytes() == b"keep me"
    assert main(["colorize", str(src), "-o", str(out), "-b", "gray", "--overwrite"]) == 0
    assert len(read_video(out)[0]) == 6
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)  # normal permissions


@pytest.mark.parametrize("make", ["garbage", "truncated_mp4", "truncated_faststart",
                                  "truncated_mkv"])
def test_unreadable_or_truncated_video_is_a_clear_error_and_leaves_nothing(tmp_path, capsys,
                                                                          make):
    if make == "garbage":
        bad = tmp_path / "bad.mp4"
        bad.write_bytes(np.random.default_rng(0).bytes(5000))
    else:
        name = "clip.mkv" if make.endswith("mkv") else "clip.mp4"
        opts = {"movflags": "faststart"} if make == "truncated_faststart" else None
        whole = make_clip(tmp_path / name, n=20, options=opts).read_bytes()
        (tmp_path / name).unlink()
        bad = tmp_path / f"cut_{name}"
        bad.write_bytes(whole[: len(whole) * 6 // 10])
    out = tmp_path / "out.mp4"
    assert main(["colorize", str(bad), "-o", str(out), "-b", "gray",
                 "--segment-frames", "4"]) == 2
    err = capsys.readouterr().err
    assert f"colorplug: error: {bad}: " in err
    assert "not a readable video" in err or "truncated or corrupt" in err
    assert "Traceback" not in err
    assert leftovers(tmp_path, {bad.name}) == []  # no output, no work folder, no temporaries


def test_bad_outputs_and_flags_are_named(tmp_path, capsys):
    src = make_clip(tmp_path / "film.mp4", n=3, audio=False)
    cases = [(["-o", str(tmp_path / "x.avi")], "-o " + str(tmp_path / "x.avi")),
             (["-o", str(tmp_path / "x.png")], "frame_%05d.png"),
             (["-o", str(tmp_path / "x_%03d.mp4")], "a frame pattern needs an image suffix"),
             (["-o", str(tmp_path / "x.mp4"), "--codec", "nope"], "--codec nope"),
             (["-o", str(tmp_path / "x.webm"), "--codec", "libx264"], ".webm files cannot"),
             (["-o", str(tmp_path / "x.mp4"), "--fps", "-3"], "--fps must be a positive")]
    for extra, message in cases:
        assert main(["colorize", str(src), "-b", "gray", *extra]) == 2, extra
        assert message in capsys.readouterr().err
    assert main(["colorize", str(src), str(src), "-o", str(tmp_path / "y.mp4")]) == 2
    assert "exactly one input" in capsys.readouterr().err


def test_video_flags_on_images_are_refused_not_ignored(tmp_path, capsys, gray_image):
    Image.fromarray(gray_image).save(tmp_path / "a.png")
    for extra, message in [(["--resume"], "--skip-existing resumes"),
                           (["--crf", "20"], "--crf applies to video"),
                           (["--reference", "r.png", "--reference", "s.png"],
                            "--reference is given once for images")]:
        assert main(["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"),
                     "-b", "gray", *extra]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "b.png").exists()


def run_cli(args: list[str], **kw) -> subprocess.Popen:
    """The CLI in a child started as from a terminal: SIGINT at its default disposition
    (a test earlier in the suite can leave SIGINT ignored in pytest, and a child inherits
    SIG_IGN, so Ctrl-C would never reach it)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "colorplug", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            **kw)


@pytest.mark.slow  # a killed subprocess and a resumed run
def test_resume_continues_after_a_killed_run(tmp_path, make_plugin):
    make_plugin("cp-test-slow", {"slow": "cp_test_slow"}, {"cp_test_slow": SLOW_PLUGIN})
    src = make_clip(tmp_path / "film.mp4")
    out = tmp_path / "out.mp4"
    work = tmp_path / ".out.mp4.colorplug-work"
    args = ["colorize", str(src), "-o", str(out), "-b", "slowtint", "--batch-size", "1",
            "--segment-frames", "4", "-q"]

    def interrupt(proc: subprocess.Popen, segment: str, sig: int) -> None:
        deadline = time.monotonic() + 120
        while not (work / segment).exists():  # wait until that segment is finished
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(sig)

    proc = run_cli(args)
    interrupt(proc, "seg_00000.nut", signal.SIGKILL)
    proc.wait()
    assert not out.exists() and work.is_dir()  # no final file, the work is kept

    # without --resume the interrupted work is neither lost nor silently continued
    done = run_cli(args)
    assert done.wait() == 2 and "pass --resume" in done.communicate()[1]
    # other settings are refused, naming the flag
    changed = run_cli(args + ["--resume", "--crf", "30"])
    assert changed.wait() == 2 and "--crf differ" in changed.communicate()[1]

    # Ctrl-C in a resumed run: a clear word and the work kept again
    ctrl_c = run_cli(args + ["--resume"])
    interrupt(ctrl_c, "seg_00002.nut", signal.SIGINT)
    assert ctrl_c.wait() == 130
    assert "run the same command with --resume to continue" in ctrl_c.communicate()[1]
    assert not out.exists() and (work / "seg_00001.nut").exists()

    resumed = run_cli([a for a in args if a != "-q"] + ["--resume"])
    _, err = resumed.communicate()
    assert resumed.returncode == 0, err
    start = int(err.split("resuming")[1].split("at frame")[1].split()[0])
    assert 12 <= start < 20 and start % 4 == 0
    frames, facts, audio = read_video(out)
    assert len(frames) == 20 and facts["rate"] == 25 and audio == pytest.approx(0.8, abs=0.08)
    assert not work.exists()


def test_without_pyav_a_video_is_a_clear_error_naming_the_extra(tmp_path):
    src = make_clip(tmp_path / "film.mp4", n=3, audio=False)
    blocker = tmp_path / "noav"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoAV:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'av' or name.startswith('av.'):\n"
        "            raise ImportError('No module named ' + repr(name))\n"
        "sys.meta_path.insert(0, _NoAV())\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(blocker)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    run = lambda *a: subprocess.run([sys.executable, *a], env=env, capture_output=True,  # noqa
                                    text=True)
    light = run("-c", "import sys, colorplug, colorplug.cli, colorplug.video; "
                "from colorplug.cli import build_parser; build_parser(); "
                "print(sorted({'av', 'torch', 'cv2'} & set(sys.modules)))")
    assert light.returncode == 0 and light.stdout.strip() == "[]", light.stderr
    res = run("-m", "colorplug", "colorize", str(src), "-o", str(tmp_path / "o.mp4"), "-b", "gray")
    assert res.returncode == 2
    assert 'needs PyAV (FFmpeg), which is not installed: pip install "colorplug[video]"' \
        in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "o.mp4").exists()
