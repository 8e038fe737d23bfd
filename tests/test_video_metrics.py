"""Video flicker metrics (warp error, CDC) and ``colorplug eval --video``."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("cv2", reason="video extra not installed: pip install -e '.[video]'")

from colorplug.cli import main  # noqa: E402
from colorplug.video.metrics import VideoMetrics, cdc, js_divergence, warp_error  # noqa: E402

from .conftest import make_photo  # noqa: E402


def test_identical_frames_have_zero_warp_error_and_cdc():
    frame = make_photo(1)
    assert warp_error([frame] * 4) == 0.0
    assert cdc([frame] * 5) == 0.0


def test_cdc_is_zero_for_equal_histograms_and_one_for_disjoint_ones():
    frame = make_photo(2)
    shuffled = np.random.default_rng(0).permutation(frame.reshape(-1, 3)).reshape(frame.shape)
    assert cdc([frame, shuffled, frame]) == pytest.approx(0.0, abs=1e-12)
    black, white = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)
    assert cdc([black, white]) == pytest.approx(1.0)  # JS of disjoint histograms, base 2
    # k = 1: four pairs of JS 1; k = 2: three pairs of 0; k = 4: one pair of 0 -> (1+0+0)/3
    assert cdc([black, white] * 3) == pytest.approx(1 / 3)


def test_js_divergence_known_value():
    # p = [1, 0], q = [.5, .5]: m = [.75, .25]
    expected = 0.5 * np.log2(1 / 0.75) + 0.25 * (np.log2(0.5 / 0.75) + np.log2(0.5 / 0.25))
    assert js_divergence([1, 0], [1, 1]) == pytest.approx(expected)
    assert js_divergence([3, 1], [1, 3]) == pytest.approx(js_divergence([1, 3], [3, 1]))


def test_warp_error_of_a_uniform_change_is_its_squared_size():
    a, b = np.full((16, 20, 3), 100, np.uint8), np.full((16, 20, 3), 110, np.uint8)
    guide = np.full((16, 20), 100, np.uint8)
    assert warp_error([a, b], [guide, guide]) == pytest.approx(3 * (10 / 255) ** 2, rel=1e-4)


def test_warp_error_follows_motion():
    """A pan has a small warp error (the flow aligns the frames) though the frames differ."""
    big = make_photo(4, (48, 96))
    frames = [np.ascontiguousarray(big[:, 2 * t:2 * t + 64]) for t in range(4)]
    plain = np.mean([((frames[t + 1] / 255.0 - frames[t] / 255.0) ** 2).sum(-1).mean()
                     for t in range(3)])
    assert warp_error(frames) < plain / 5


def test_truth_gives_psnr_and_colourfulness():
    frame = make_photo(5)
    m = VideoMetrics()
    for _ in range(3):
        m.add(frame, truth=frame)
    s = m.summary()
    assert s["frames"] == 3 and s["psnr"] == 100.0 and s["cf"] == pytest.approx(s["cf_truth"])


def test_eval_video_cli_reports_modes(tmp_path, capsys):
    big = make_photo(6, (40, 100))
    clip = np.stack([big[:, 2 * t:2 * t + 56] for t in range(8)])
    np.save(tmp_path / "clip.npy", clip)
    out = tmp_path / "report"
    assert main(["eval", "--video", str(tmp_path / "clip.npy"), "--backend", "gray",
                 "--temporal", "off", "--temporal", "flow", "--out", str(out), "-q"]) == 0
    table = capsys.readouterr().out
    assert "gray/off" in table and "gray/flow" in table
    report = json.loads((out / "video_metrics.json").read_text())
    for key in ("gray/off", "gray/flow"):
        r = report["results"][key]
        assert r["frames"] == 8 and r["cdc_ab"] == 0.0 and r["psnr"] > 10
    # an existing report is left alone without --overwrite
    assert main(["eval", "--video", str(tmp_path / "clip.npy"), "--backend", "gray",
                 "--out", str(out), "-q"]) == 1


def test_eval_video_missing_clip_is_a_clear_error(tmp_path, capsys):
    assert main(["eval", "--video", str(tmp_path / "nope.mp4"), "--backend", "gray"]) == 2
    assert "--video: no such file or folder" in capsys.readouterr().err
    assert main(["eval", "--backend", "gray"]) == 2
    assert "--data" in capsys.readouterr().err


def test_frames_across_a_cut_are_not_compared():
    black, white = np.zeros((20, 24, 3), np.uint8), np.full((20, 24, 3), 255, np.uint8)
    m = VideoMetrics()
    for i, frame in enumerate([black, black, white, white]):
        m.add(frame, new_shot=i == 2)
    s = m.summary()
    assert s["warp_error"] == 0.0 and s["cdc"] == 0.0  # only within-shot pairs count
