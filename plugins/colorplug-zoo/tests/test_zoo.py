"""Tests of colorplug-zoo, installed as a real distribution: published layouts, strict
loading, the backends' pipeline, hints. Random weights throughout (no download, CPU)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import colorplug
from colorplug import color
from colorplug.registry import Registry
from colorplug_zoo import catalog, ddcolor, eccv16, siggraph17
from colorplug_zoo.published import fold_spectral_norm

ZOO = ["ddcolor", "ddcolor-artistic", "ddcolor-paper", "ddcolor-tiny", "eccv16", "siggraph17"]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_discovered_through_the_entry_point():
    reg = Registry()
    for name in ZOO:
        entry = reg.entry(name)
        assert entry.distribution == "colorplug-zoo" and entry.plugin == "zoo"
    infos = {i.name: i for i in colorplug.available()}
    assert infos["siggraph17"].supports_hints
    assert not any(infos[n].supports_hints for n in ZOO if n != "siggraph17")
    assert infos["ddcolor"].working_size == 512 and infos["eccv16"].working_size == 256


def test_parameter_counts_match_the_papers_files():
    assert sum(p.numel() for p in eccv16.build().parameters()) == 32_236_011
    assert sum(p.numel() for p in siggraph17.build().parameters()) == 34_187_027
    assert siggraph17.build().state_dict()["model_class.0.weight"].shape == (529, 256, 1, 1)
    assert eccv16.build().state_dict()["model_out.weight"].shape == (2, 313, 1, 1)
    assert "model_out.bias" not in eccv16.build().state_dict()
    with torch.device("meta"):
        # the authors' DDColor modules have these many parameters (counted with their code)
        assert sum(p.numel() for p in ddcolor.build("tiny").parameters()) == 55_006_640
        assert sum(p.numel() for p in ddcolor.build("large").parameters()) == 227_869_328


def test_siggraph17_has_the_original_layout():
    keys = siggraph17.build().state_dict()
    for k in ("model8.1.weight", "model8.3.weight", "model8.5.running_var", "model9.1.weight",
              "model9.3.weight", "model10.1.weight", "model8up.0.weight", "model3short8.0.bias",
              "model_out.0.weight"):
        assert k in keys, k
    assert "model8.0.weight" not in keys        # a ReLU at index 0


@pytest.mark.parametrize("name", ["eccv16", "siggraph17"])
def test_zhang_round_trip(files, name):
    path, net = files[name]
    mod = {"eccv16": eccv16, "siggraph17": siggraph17}[name]
    ours = mod.load_published(mod.build(), path)
    for k, v in net.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v), k
    light = torch.rand(1, 1, 64, 64) * 100
    with torch.no_grad():
        assert torch.equal(ours(light), net(light))


@pytest.mark.parametrize("which", ["ddcolor-tiny", "ddcolor-tiny-bare"])
def test_ddcolor_round_trip_folds_spectral_norm(files, which):
    path, authors = files[which]
    assert "refine_net.0.0.weight_orig" in authors.state_dict()
    ours = ddcolor.load_published(ddcolor.build("tiny"), path)
    x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(3)).expand(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = authors(x), ours(x)       # torch's spectral_norm (eval) vs folded
    assert got.shape == (1, 2, 64, 64)
    # float32 rounding only (the folded weight is computed once, in float64)
    assert float((got - expected).abs().max()) < 1e-5 * float(expected.abs().max())


def test_fold_equals_torch_spectral_norm_at_eval():
    conv = torch.nn.utils.spectral_norm(torch.nn.Conv2d(7, 5, 3))
    conv.train()
    for _ in range(3):
        conv(torch.rand(1, 7, 9, 9))
    conv.eval()
    conv(torch.rand(1, 7, 9, 9))
    folded = fold_spectral_norm(conv.state_dict(), source="test")
    assert set(folded) == {"weight", "bias"}
    assert torch.allclose(folded["weight"], conv.weight, atol=1e-6, rtol=1e-5)


def test_ddcolor_large_state_dict_layout():
    # the layout check for DDColor-L without a forward: the authors' parametrisation of our
    # network has their key names and count, and folds back into ours strictly
    with torch.device("meta"):
        net = ddcolor.build("large")
        authors = ddcolor.with_spectral_norm(net).state_dict()
    assert len(authors) == 602            # len(state_dict()) of the authors' DDColor-L
    assert authors["decoder.layers.0.shuf.conv.0.weight_orig"].shape == (2048, 1536, 1, 1)
    assert authors["decoder.layers.2.conv.0.weight_orig"].shape == (256, 448, 3, 3)
    assert authors["encoder.arch.stages.2.26.pwconv1.weight"].shape == (3072, 768)
    assert authors["encoder.arch.norm.weight"].shape == (1536,)
    own = net.state_dict()
    expected = {k.replace(".weight_orig", ".weight") for k in authors
                if not k.endswith(("weight_u", "weight_v"))}
    assert expected == set(own)


def test_missing_key_is_a_weights_error(files, tmp_path):
    path, net = files["eccv16"]
    state = net.state_dict()
    del state["model4.2.weight"]
    bad = tmp_path / "missing.pth"
    torch.save(state, bad)
    with pytest.raises(colorplug.WeightsError, match=r"missing.pth.*missing model4\.2\.weight"):
        eccv16.load_published(eccv16.build(), bad)


def test_extra_key_is_a_weights_error(files, tmp_path):
    path, authors = files["ddcolor-tiny"]
    state = authors.state_dict()
    state["decoder.extra_head.weight"] = torch.zeros(3)
    bad = tmp_path / "extra.pth"
    torch.save({"params": state}, bad)
    with pytest.raises(colorplug.WeightsError,
                       match=r"extra.pth.*unexpected \(left over\) decoder\.extra_head\.weight"):
        ddcolor.load_published(ddcolor.build("tiny"), bad)


def test_wrong_model_and_broken_files_are_weights_errors(files, tmp_path):
    with pytest.raises(colorplug.WeightsError, match="do not fit this model"):
        siggraph17.load_published(siggraph17.build(), files["eccv16"][0])
    state = files["ddcolor-tiny"][1].state_dict()
    del state["refine_net.0.0.weight_u"]
    torch.save({"params": state}, tmp_path / "sn.pth")
    with pytest.raises(colorplug.WeightsError, match=r"refine_net\.0\.0\.weight_u"):
        ddcolor.load_published(ddcolor.build("tiny"), tmp_path / "sn.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(colorplug.WeightsError, match="junk.pth"):
        eccv16.load_published(eccv16.build(), tmp_path / "junk.pth")
    with pytest.raises(colorplug.WeightsError, match="does not exist"):
        eccv16.load_published(eccv16.build(), tmp_path / "absent.pth")
    state = files["eccv16"][1].state_dict()
    state["model1.0.bias"] = state["model1.0.bias"] * float("nan")
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(colorplug.WeightsError, match="non-finite"):
        eccv16.load_published(eccv16.build(), tmp_path / "nan.pth")


# ----------------------------------------------------------------------------- backends
@pytest.mark.parametrize("offline", [True, False])
@pytest.mark.parametrize("name", ZOO)
def test_backend_without_weights_says_how_to_get_them(name, offline, tmp_path, monkeypatch):
    """Offline (the product's own switch) or simply without consent: no download starts,
    and the message says how to get the file, at once."""
    import time

    if offline:
        monkeypatch.setenv("COLORPLUG_OFFLINE", "1")
    monkeypatch.setenv("COLORPLUG_CACHE", str(tmp_path / "cache"))
    w = catalog.for_backend(name)
    started = time.perf_counter()
    with pytest.raises(colorplug.WeightsError) as err:
        colorplug.get(name)
    assert time.perf_counter() - started < 1.0
    msg = str(err.value)
    assert w.url in msg and w.sha256 in msg and "weights=PATH" in msg
    assert f"colorplug weights import {w.name}" in msg
    if not offline:
        assert f"colorplug weights fetch {w.name}" in msg and "--download" in msg
    assert not (tmp_path / "cache" / "weights").exists() or \
        not any((tmp_path / "cache" / "weights").iterdir())


def gray_images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    big = (np.linspace(0, 255, 1023)[None, :] * np.ones((769, 1)))  # 1023 wide, 769 tall
    big = (big + rng.normal(0, 8, big.shape)).clip(0, 255).astype(np.uint8)
    return [np.array([[137]], np.uint8), rng.integers(0, 256, (7, 13)).astype(np.uint8), big]


@pytest.mark.parametrize("name, options", [("eccv16", {}), ("siggraph17", {"working_size": 128}),
                                           ("ddcolor-tiny", {"input_size": 64})])
def test_backend_keeps_size_and_lightness(files, name, options):
    c = colorplug.get(name, weights=files[name][0], device="cpu", **options)
    images = gray_images()
    outs = c.colorize_batch(images)
    chroma = []
    for img, out in zip(images, outs):
        assert out.shape == img.shape + (3,) and out.dtype == np.uint8
        l_in = color.lightness_from_gray(img / 255.0)
        l_out = color.lightness_from_rgb(out / 255.0)
        assert np.abs(l_out - l_in).max() < 1.5          # 8-bit rounding only
        chroma.append(np.hypot(*np.moveaxis(color.rgb_to_lab(out / 255.0)[..., 1:], -1, 0)))
    assert min(float(c.max()) for c in chroma[1:]) > 3   # the network's chroma reaches the output


def test_ddcolor_backends_share_the_large_network():
    for name in ("ddcolor", "ddcolor-artistic", "ddcolor-paper"):
        assert catalog.for_backend(name).architecture == "ddcolor-large"
    assert catalog.for_backend("ddcolor-tiny").architecture == "ddcolor-tiny"


def test_siggraph17_hints_change_the_colour_where_given(files):
    c = colorplug.get("siggraph17", weights=files["siggraph17"][0], device="cpu",
                      working_size=128)
    img = np.full((64, 96), 128, np.uint8)
    plain = color.rgb_to_lab(c.colorize(img) / 255.0)[..., 1:]
    for hint in ([(20, 40, (230, 20, 20), 3)], [(20, 40, "#1e3cff", 3)]):
        hinted = color.rgb_to_lab(c.colorize(img, hints=hint) / 255.0)[..., 1:]
        change = np.abs(hinted - plain).sum(-1)
        near = change[36:45, 16:25].mean()            # around (x=20, y=40)
        far = max(change[:, 60:].mean(), change[:20].mean())
        assert near > 0.2 and near > 10 * far, (near, far)
    strokes = np.zeros((64, 96, 4), np.uint8)
    strokes[36:45, 16:25] = (230, 20, 20, 255)        # a GIMP-style strokes layer
    by_layer = color.rgb_to_lab(c.colorize(img, hints=strokes) / 255.0)[..., 1:]
    assert np.abs(by_layer - plain).sum(-1)[36:45, 16:25].mean() > 0.2


def test_siggraph17_hint_errors(files):
    c = colorplug.get("siggraph17", weights=files["siggraph17"][0], device="cpu")
    img = np.zeros((16, 16), np.uint8)
    with pytest.raises(colorplug.InputError, match="outside"):
        c.colorize(img, hints=[(40, 2, "#ff0000")])
    with pytest.raises(colorplug.InputError, match="must match"):
        c.colorize(img, hints=np.zeros((5, 5, 4), np.uint8))
    with pytest.raises(colorplug.InputError, match="no hinted pixel"):
        c.colorize(img, hints=np.zeros((16, 16, 4), np.uint8))


def test_option_errors(files):
    with pytest.raises(colorplug.InputError, match="input_size"):
        colorplug.get("ddcolor-tiny", weights=files["ddcolor-tiny"][0], input_size=100)
    with pytest.raises(colorplug.InputError, match="working_size"):
        colorplug.get("eccv16", weights=files["eccv16"][0], working_size=30)
    with pytest.raises(colorplug.WeightsError, match="path"):
        colorplug.get("eccv16", weights=123)


def test_hosts_list_the_zoo_backends():
    from colorplug import gimp_bridge

    listed = {b["name"]: b for b in gimp_bridge.backends()}   # what GIMP's menu shows
    assert set(ZOO) <= set(listed)
    assert listed["siggraph17"]["supports_hints"] and not listed["ddcolor"]["supports_hints"]


def test_weights_come_through_the_cache_from_a_server(files, tmp_path, monkeypatch):
    """fetch (127.0.0.1) -> verify -> cache -> convert {'params': ...} -> fold spectral norm
    -> strict load -> forward, with a spec of one's own hosted copy."""
    import dataclasses
    import functools
    import hashlib
    import http.server
    import threading

    from colorplug import cache

    path = files["ddcolor-tiny"][0]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(path.parent))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("COLORPLUG_CACHE", str(tmp_path / "cache"))
        spec = dataclasses.replace(
            catalog.weights_spec(catalog.for_backend("ddcolor-tiny")),
            url=f"http://127.0.0.1:{server.server_address[1]}/{path.name}",
            filename=path.name, sha256=digest, sha256_is_prefix=False, size=None)
        c = colorplug.get("ddcolor-tiny", weights=spec, device="cpu", input_size=64,
                          download=True)
        out = c.colorize(np.full((9, 11), 120, np.uint8))
        assert out.shape == (9, 11, 3)
        cached = list((tmp_path / "cache" / "weights").iterdir())
        assert any(p.suffix == ".safetensors" for p in cached)
        assert not any(p.suffix in (".pth", ".part") for p in cached)
        assert cache.is_cached(spec)
    finally:
        server.shutdown()


def test_eval_runs_a_zoo_backend_like_any_other(files, tmp_path, capsys):
    from PIL import Image

    from colorplug.cli import main

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    spec = f"zoo=eccv16?weights={files['eccv16'][0]}"
    assert main(["eval", "--data", str(photos), "--backend", spec, "--backend", "gray",
                 "--device", "cpu", "--quiet", "--out", str(tmp_path / "report")]) == 0
    table = capsys.readouterr().out
    assert "zoo" in table and "gray" in table
    assert (tmp_path / "report" / "metrics.json").exists()


def test_napari_lists_the_zoo_backends(make_napari_viewer):
    pytest.importorskip("napari")
    from napari_colorize._widget import ColorizeWidget

    widget = ColorizeWidget(make_napari_viewer())
    choices = set(widget.backend.choices)
    assert set(ZOO) <= choices
    widget.backend.value = "siggraph17"
    assert not widget.hints.native.isHidden()  # siggraph17 takes hints


def test_the_napari_widget_sends_each_zoo_backend_only_its_own_options(make_napari_viewer,
                                                                        files):
    """Issue 28 item 4: the widget sent working_size to DDColor, which has input_size; every
    ddcolor backend failed from napari. The options the widget builds go through
    colorplug.get as the worker does, with weights made here."""
    pytest.importorskip("napari")
    from napari_colorize._widget import ColorizeWidget

    viewer = make_napari_viewer()
    viewer.add_image(gray_images()[1], name="gray")
    widget = ColorizeWidget(viewer)
    for name, expected in (("ddcolor-tiny", "input_size"), ("eccv16", "working_size")):
        widget.backend.value = name
        options = widget._request()["options"]
        sizes = {k for k in options if k in ("working_size", "input_size")}
        assert sizes == {expected}, options
        assert options[expected] % (32 if name.startswith("ddcolor") else 8) == 0
        out = colorplug.get(name, weights=files[name][0], **options).colorize(
            gray_images()[1])
        assert out.shape == gray_images()[1].shape + (3,)
    # each backend keeps the size last used with it
    widget.backend.value = "ddcolor-tiny"
    widget.working_size.value = 96
    widget.backend.value = "eccv16"
    widget.working_size.value = 200
    widget.backend.value = "ddcolor-tiny"
    assert widget.working_size.value == 96
    widget.backend.value = "eccv16"
    assert widget.working_size.value == 200
