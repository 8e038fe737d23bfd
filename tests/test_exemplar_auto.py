"""exemplar without a user reference: gallery retrieval, fusion by confidence, fade to gray."""
import numpy as np
import pytest
from PIL import Image

import colorplug
from colorplug import color
from colorplug.backends.exemplar.correspond import correspond, warp_ab
from colorplug.backends.exemplar.retrieval import DEFAULT_GALLERY, gallery_files
from colorplug.cli import main

SIZE = 96  # working size of these tests: small and quick, the same code paths


def stripes(colour, vertical: bool, shape=(96, 96), period=12) -> np.ndarray:
    """A photo of `colour` stripes on a darker shade: one texture per colour."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    phase = (xx if vertical else yy) % period < period // 2
    shade = np.where(phase, 1.0, 0.45)[..., None]
    return (np.asarray(colour, np.float64)[None, None] * shade).astype(np.uint8)


RED = (220, 40, 30)
BLUE = (30, 60, 220)


@pytest.fixture
def gallery(tmp_path, monkeypatch):
    """A red photo with horizontal stripes and a blue one with vertical stripes; the
    index cache in a private folder."""
    monkeypatch.setenv("COLORPLUG_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "gallery"
    folder.mkdir()
    Image.fromarray(stripes(RED, vertical=False)).save(folder / "red.png")
    Image.fromarray(stripes(BLUE, vertical=True)).save(folder / "blue.png")
    return folder


def gray_of(rgb: np.ndarray) -> np.ndarray:
    return np.rint(color.gray_from_lightness(color.lightness_from_rgb(rgb / 255.0)) * 255
                   ).astype(np.uint8)


def mean_ab(rgb: np.ndarray) -> np.ndarray:
    return color.rgb_to_lab(rgb / 255.0)[..., 1:].reshape(-1, 2).mean(0)


def test_no_reference_takes_colours_from_the_matching_gallery_photo(gallery):
    c = colorplug.get("exemplar", device="cpu", gallery=str(gallery), k=2, working_size=SIZE)
    assert not c.info.needs_reference and c.info.accepts_reference
    a, b = mean_ab(c.colorize(gray_of(stripes(RED, vertical=False, shape=(80, 112)))))
    assert a > 15 and b > 5          # red: a* and b* positive
    a, b = mean_ab(c.colorize(gray_of(stripes(BLUE, vertical=True, shape=(80, 112)))))
    assert b < -15                   # blue: b* negative


def test_target_unlike_every_gallery_photo_stays_near_neutral(gallery):
    """Smooth blobs match neither stripe pattern well: below the threshold chroma fades
    to gray; with threshold 0 the same target is coloured (the fade is what grays it)."""
    yy, xx = np.mgrid[0:96, 0:96] / 96
    blobs = (128 + 90 * np.sin(9 * xx * yy + 3 * xx) * np.cos(7 * yy)).astype(np.uint8)
    gated = colorplug.get("exemplar", device="cpu", gallery=str(gallery), working_size=SIZE,
                          threshold=0.6)
    chroma = np.hypot(*color.rgb_to_lab(gated.colorize(blobs) / 255.0)[..., 1:].transpose(2, 0, 1))
    assert np.median(chroma) < 3
    open_ = colorplug.get("exemplar", device="cpu", gallery=str(gallery), working_size=SIZE)
    assert open_.threshold == 0.0  # the default (chosen on val) does not fade
    chroma0 = np.hypot(*color.rgb_to_lab(open_.colorize(blobs) / 255.0)[..., 1:].transpose(2, 0, 1))
    assert np.median(chroma0) > 10


@pytest.mark.parametrize("make", ["missing", "empty", "file"])
def test_bad_gallery_is_an_input_error_naming_the_option(tmp_path, make):
    path = tmp_path / "photos"
    if make == "empty":
        path.mkdir()
        (path / "notes.txt").write_text("no images here")
    elif make == "file":
        path.write_bytes(b"x")
    with pytest.raises(colorplug.InputError, match="gallery=.*photos"):
        colorplug.get("exemplar", device="cpu", gallery=str(path))


def test_bad_k_and_threshold_are_input_errors():
    with pytest.raises(colorplug.InputError, match="k must be an integer >= 1"):
        colorplug.get("exemplar", device="cpu", k=0)
    with pytest.raises(colorplug.InputError, match=r"threshold must be in \[0, 1\)"):
        colorplug.get("exemplar", device="cpu", threshold=1.5)


def test_gallery_index_is_cached_and_rebuilt_when_the_gallery_changes(gallery):
    first = colorplug.get("exemplar", device="cpu", gallery=str(gallery), working_size=SIZE)
    index = first.index()
    assert not index.cached and [p.name for p in index.files] == ["blue.png", "red.png"]
    again = colorplug.get("exemplar", device="cpu", gallery=str(gallery), working_size=SIZE)
    reused = again.index()
    assert reused.cached and np.array_equal(reused.descriptors, index.descriptors)
    Image.fromarray(stripes((40, 200, 40), vertical=True)).save(gallery / "green.png")
    changed = colorplug.get("exemplar", device="cpu", gallery=str(gallery), working_size=SIZE)
    rebuilt = changed.index()
    assert not rebuilt.cached and [p.name for p in rebuilt.files] == ["blue.png", "green.png",
                                                                       "red.png"]
    # another working size is another index (descriptors depend on it)
    other = colorplug.get("exemplar", device="cpu", gallery=str(gallery), working_size=128)
    assert not other.index().cached


def test_default_gallery_ships_thumbnails_with_sources_and_an_index():
    files = gallery_files(DEFAULT_GALLERY)
    assert len(files) >= 50
    rows = (DEFAULT_GALLERY / "SOURCES.csv").read_text().splitlines()
    assert rows[0] == "file,package,version,source_path,licence"
    listed = {r.split(",")[0] for r in rows[1:]}
    assert listed == {p.name for p in files}
    assert not any(bad in r for r in rows[1:] for bad in ("GPL", "-SA", "NC", "unknown"))
    assert all(max(Image.open(p).size) <= 256 for p in files)
    assert sum(p.stat().st_size for p in files) < 20e6
    c = colorplug.get("exemplar", device="cpu")
    assert c.index().cached  # the shipped index: nothing to compute on first use


def test_the_gallery_index_depends_on_the_similarity_weights_too(tmp_path, monkeypatch):
    """The descriptors pool the similarity network's features, so other similarity weights
    with the same descriptor head must not reuse the shipped (or a cached) index."""
    import torch

    from colorplug import weights
    from colorplug.backends.exemplar.model import SimilarityNet
    from colorplug.backends.exemplar.retrieval import shipped_index

    monkeypatch.setenv("COLORPLUG_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    other = tmp_path / "similarity_other.safetensors"
    weights.save(other, SimilarityNet().state_dict(), {"backend": "exemplar"}, half=True)
    default = colorplug.get("exemplar", device="cpu", refine=False)
    mine = colorplug.get("exemplar", device="cpu", refine=False, similarity_weights=str(other))
    assert default.index_weights_sha() != mine.index_weights_sha()
    files = gallery_files(DEFAULT_GALLERY)
    assert shipped_index(files, default.index_weights_sha(), default.working_size) is not None
    assert shipped_index(files, mine.index_weights_sha(), mine.working_size) is None


def test_with_a_reference_the_result_is_the_single_reference_path(gallery):
    """A given reference is used alone, exactly as before: the gallery is never read, and
    the chroma equals features -> correspondence -> warp -> colour network by hand."""
    import torch

    from colorplug.backends.exemplar.colorizer import build_input
    from colorplug.backends.exemplar.model import AB_NORM

    c = colorplug.get("exemplar", device="cpu", gallery=str(gallery), working_size=SIZE)
    target = gray_of(stripes(BLUE, vertical=False, shape=(64, 80)))
    ref = stripes((200, 160, 20), vertical=False, shape=(70, 90))
    out = c.colorize(target, reference=ref)
    assert c._index is None  # no retrieval happened
    lum = color.lightness_from_gray(target / 255.0).astype(np.float32)
    lab_ref = color.rgb_to_lab(ref / 255.0).astype(np.float32)
    with torch.inference_mode():
        ref_l = c._lightness(lab_ref[..., 0])
        h, w = ref_l.shape[-2:]
        from colorplug.image import resize_map
        ref_ab = torch.from_numpy(np.stack([resize_map(lab_ref[..., i], w, h) for i in (1, 2)]))[None]
        tl = c._lightness(lum)
        ft, fr = c.similarity(tl), c.similarity(ref_l)
        corr = correspond(ft, fr)
        warped = warp_ab(ref_ab, corr.t_to_r, fr[0].shape[-2:])
        ab = c.color_net(build_input(tl, warped, corr.similarities)).float() * AB_NORM
    expected = c.predict_chroma([lum], reference=lab_ref, hints=None)[0]
    assert np.allclose(expected, ab[0].permute(1, 2, 0).numpy(), atol=1e-5)
    from colorplug.pipeline import recombine
    assert np.abs(recombine(lum, expected, None, "uint8").astype(int) - out.astype(int)).max() <= 1


def test_cli_gallery_flag(gallery, tmp_path, capsys):
    target = gray_of(stripes(RED, vertical=False, shape=(80, 112)))
    Image.fromarray(target).save(tmp_path / "g.png")
    out = tmp_path / "o.png"
    assert main(["colorize", str(tmp_path / "g.png"), "-o", str(out), "-b",
                 f"exemplar?working_size={SIZE}&k=2", "--gallery", str(gallery), "-q"]) == 0
    a, b = mean_ab(np.asarray(Image.open(out)))
    assert a > 15 and b > 5
    assert main(["colorize", str(tmp_path / "g.png"), "-o", str(tmp_path / "o2.png"), "-b",
                 "exemplar", "--gallery", str(tmp_path / "nowhere")]) != 0
    err = capsys.readouterr().err
    assert "--gallery" in err and "nowhere" in err and "Traceback" not in err
