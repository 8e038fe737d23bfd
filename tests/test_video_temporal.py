"""colorize_video: modes, streaming, shot cuts and flow propagation on tiny synthetic clips."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2", reason="video extra not installed: pip install -e '.[video]'")

import colorplug  # noqa: E402
from colorplug import color  # noqa: E402
from colorplug.video import colorize_video  # noqa: E402
from colorplug.video.metrics import VideoMetrics  # noqa: E402
from colorplug.video.temporal import FlowPropagator, ShotDetector  # noqa: E402

from .conftest import make_photo  # noqa: E402

# a* jumps between +35 and +5 from one frame to the next: frame-by-frame flicker
FLICKER_PLUGIN = '''
import itertools, numpy as np, colorplug
from colorplug.pipeline import ChromaColorizer
INFO = colorplug.BackendInfo(name="flicker", description="test: a* alternates per frame")
class Flicker(ChromaColorizer):
    info = INFO
    calls = itertools.count()
    def predict_chroma(self, lightness, *, reference, hints):
        return [np.full((4, 4, 2), [35.0 if next(self.calls) % 2 else 5.0, 10.0], np.float32)
                for _ in lightness]
@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("flicker", lambda weights=None, device="auto", **o: Flicker(**o), INFO)
'''

# a* = +40 for a darker shot (mean L* < 52), -40 for a brighter one
BYLIGHT_PLUGIN = '''
import numpy as np, colorplug
from colorplug.pipeline import ChromaColorizer
INFO = colorplug.BackendInfo(name="bylight", description="test: colour by mean lightness")
class ByLight(ChromaColorizer):
    info = INFO
    def predict_chroma(self, lightness, *, reference, hints):
        return [np.full((2, 2, 2), [40.0 if l.mean() < 52 else -40.0, 0.0], np.float32)
                for l in lightness]
@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("bylight", lambda weights=None, device="auto", **o: ByLight(**o), INFO)
'''


def gray_of(rgb: np.ndarray) -> np.ndarray:
    lum = color.lightness_from_rgb(rgb / 255.0)
    return np.rint(color.gray_from_lightness(lum) * 255).astype(np.uint8)


def panned(frames: int = 10, size=(40, 56), step: int = 2) -> list[np.ndarray]:
    """A textured colour photo seen through a window sliding `step` pixels per frame."""
    big = make_photo(3, (size[0], size[1] + step * frames))
    return [gray_of(big[:, t * step:t * step + size[1]]) for t in range(frames)]


def lightness(frame: np.ndarray) -> np.ndarray:
    return color.lightness_from_gray(frame / 255.0)


def test_bad_mode_and_batch_size_are_input_errors_naming_the_option():
    with pytest.raises(colorplug.InputError, match="temporal must be one of off, flow, "
                                                   "exemplar; got 'smooth'"):
        colorize_video([np.zeros((8, 8), np.uint8)], "gray", temporal="smooth")
    with pytest.raises(colorplug.InputError, match="batch_size"):
        colorize_video([np.zeros((8, 8), np.uint8)], "gray", batch_size=0)
    with pytest.raises(colorplug.UnknownBackendError, match="nosuch"):
        colorize_video([], "nosuch")


def test_off_mode_equals_the_backend_frame_by_frame_and_streams():
    frames = panned(7)
    colorizer = colorplug.get("autoencoder", device="cpu")
    read = []

    def source():
        for i, f in enumerate(frames):
            read.append(i)
            yield f

    gen = colorize_video(source(), colorizer, temporal="off", batch_size=3)
    first = next(gen)
    assert len(read) == 3  # one batch read, not the whole clip
    outs = [first, *gen]
    assert len(outs) == 7 and all(o.shape == (40, 56, 3) and o.dtype == np.uint8 for o in outs)
    for o, f in zip(outs, frames):  # batched inference: within 1/255 of one by one
        assert np.abs(o.astype(int) - colorizer.colorize(f)).max() <= 1


@pytest.mark.parametrize("mode", ["off", "flow"])
def test_outputs_keep_each_frames_lightness(mode):
    frames = panned(5)
    for out, f in zip(colorize_video(frames, "autoencoder", temporal=mode, device="cpu"), frames):
        dl = color.lightness_from_rgb(out / 255.0) - lightness(f)
        assert np.abs(dl).mean() < 0.6


def test_flow_mode_lowers_chroma_flicker_on_a_panned_clip(make_plugin):
    make_plugin("colorplug-flicker", {"flicker": "cp_test_flicker"},
                {"cp_test_flicker": FLICKER_PLUGIN})
    frames = panned(12)
    result = {}
    for mode in ("off", "flow"):
        m = VideoMetrics()
        for out, f in zip(colorize_video(frames, "flicker", temporal=mode), frames):
            m.add(out, f)
        result[mode] = m.summary()
    # frame by frame a* swings by 30 between frames; propagation damps it at least 3-fold
    assert result["off"]["warp_error_ab"] > 0.05
    assert result["flow"]["warp_error_ab"] < result["off"]["warp_error_ab"] / 3


def test_a_cut_resets_propagation(make_plugin):
    """Two shots of one two-level pattern, the second 4 L* brighter: flow would carry the
    first shot's colour over (the lightness agrees well), but the cut resets it."""
    make_plugin("colorplug-bylight", {"bylight": "cp_test_bylight"},
                {"cp_test_bylight": BYLIGHT_PLUGIN})
    y, x = np.mgrid[0:40, 0:56]
    pattern = ((x // 7 + y // 5) % 2).astype(bool)

    def frame(lo: float, hi: float) -> np.ndarray:
        lum = np.where(pattern, hi, lo)
        return np.rint(color.gray_from_lightness(lum) * 255).astype(np.uint8)

    frames = [frame(40, 60)] * 6 + [frame(44, 64)] * 6
    det = ShotDetector()
    assert [det(lightness(f)) for f in frames] == [True] + [False] * 5 + [True] + [False] * 5
    outs = list(colorize_video(frames, "bylight", temporal="flow", batch_size=4))
    a = [color.rgb_to_lab(o / 255.0)[..., 1].mean() for o in outs]
    assert all(v > 30 for v in a[:6]) and all(v < -30 for v in a[6:]), np.round(a, 1)
    # the same frames without the reset do carry the first shot's colour over
    prop = FlowPropagator()
    ab = np.zeros((40, 56, 2), np.float32)
    prop.step(lightness(frames[5]), ab + [40, 0], cut=True)
    carried = prop.step(lightness(frames[6]), ab + [-40, 0], cut=False)
    assert carried[..., 0].mean() > 0


def test_a_constant_clip_stays_stable_in_flow_mode():
    still = [panned(1)[0]] * 8
    m = VideoMetrics()
    outs = list(colorize_video(still, "autoencoder", temporal="flow", device="cpu"))
    for out, f in zip(outs, still):
        m.add(out, f)
    assert m.summary()["warp_error"] < 1e-6
    assert np.abs(outs[-1].astype(int) - outs[0]).max() <= 1


def test_exemplar_mode_takes_colours_from_the_reference_keyframe():
    frames = panned(4, size=(48, 64))
    red = np.zeros((48, 64, 3), np.uint8)
    red[..., 0] = 200
    red[::2, ::2] = (150, 30, 30)
    outs = list(colorize_video(frames, "exemplar", temporal="exemplar", references=[red],
                               options={"working_size": 64}, device="cpu"))
    assert len(outs) == 4
    a = [color.rgb_to_lab(o / 255.0)[..., 1].mean() for o in outs]
    assert min(a) > 15, a  # reddish everywhere, from the reference


NEEDS_REFERENCE_PLUGIN = '''
import numpy as np
import colorplug
from colorplug.pipeline import ChromaColorizer

INFO = colorplug.BackendInfo(name="needsref", description="test: needs a reference",
                             needs_reference=True)

class NeedsRef(ChromaColorizer):
    info = INFO
    def predict_chroma(self, lightness, *, reference, hints):
        return [np.zeros((2, 2, 2), np.float32) for _ in lightness]

@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("needsref", lambda weights=None, device="auto", **o: NeedsRef(**o), INFO)
'''


def test_exemplar_mode_refuses_a_keyframe_backend_that_needs_a_reference(make_plugin):
    make_plugin("colorplug-needsref", {"needsref": "cp_test_needsref_video"},
                {"cp_test_needsref_video": NEEDS_REFERENCE_PLUGIN})
    with pytest.raises(colorplug.InputError, match="keyframe_backend 'needsref' itself needs"):
        colorize_video([], "gray", temporal="exemplar", keyframe_backend="needsref",
                       device="cpu")


def test_exemplar_mode_keys_each_shot_with_the_given_automatic_backend(make_plugin):
    from .conftest import PLUGIN_SOURCE

    make_plugin("colorplug-tint", {"tint": "cp_test_tint_video"},
                {"cp_test_tint_video": PLUGIN_SOURCE.format(name="tint", a=45.0)})
    frames = panned(3, size=(48, 64))
    outs = list(colorize_video(frames, "tint", temporal="exemplar", device="cpu"))
    a = [color.rgb_to_lab(o / 255.0)[..., 1].mean() for o in outs]
    assert len(outs) == 3 and min(a) > 15, a  # the keyframe's red, carried by exemplar
