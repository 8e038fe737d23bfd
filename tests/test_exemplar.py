import numpy as np
import pytest
import torch

import colorplug
from colorplug import color, weights
from colorplug.backends.exemplar.correspond import correspond, warp_ab
from colorplug.backends.exemplar.model import ColorNet, SimilarityNet
from colorplug.backends.exemplar.train import match_accuracy, true_cells
from colorplug.cli import main
from colorplug.evaluate import psnr

from .conftest import make_photo


@pytest.fixture(scope="module")
def random_similarity(tmp_path_factory) -> str:
    """Similarity weights at a fixed random initialisation (identical inputs still match)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "sim.safetensors"
    weights.save(path, SimilarityNet().state_dict(), {"config": {}})
    return str(path)


def test_similarity_net_levels_and_torchvision_weights(tmp_path):
    import torchvision

    net = SimilarityNet().eval()
    feats = net(torch.zeros(1, 1, 64, 96))
    assert [f.shape[1] for f in feats] == [64, 64, 128, 256, 512]
    assert [f.shape[-2:] for f in feats] == [(32, 48), (16, 24), (8, 12), (4, 6), (2, 3)]
    ref = torchvision.models.resnet34(weights=None)
    net.load_torchvision(ref.state_dict())              # fc.* dropped, the rest strict
    assert torch.equal(net.layer3[2].conv1.weight, ref.layer3[2].conv1.weight)
    with pytest.raises(colorplug.WeightsError, match="not torchvision ResNet-34"):
        net.load_torchvision(torchvision.models.resnet18(weights=None).state_dict())
    assert ColorNet()(torch.zeros(2, 13, 32, 64)).shape == (2, 2, 32, 64)


def test_self_correspondence_is_the_identity():
    torch.manual_seed(1)
    net = SimilarityNet().eval()
    lum = torch.from_numpy(color.rgb_to_lab(make_photo(3, (128, 160)) / 255.0)[..., 0])
    with torch.no_grad():
        feats = net(lum[None, None].float())
        corr = correspond(feats, feats)
    h, w = feats[0].shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ident = (corr.t_to_r[0, ..., 0] == yy) & (corr.t_to_r[0, ..., 1] == xx)
    assert ident.float().mean() > 0.85  # the rest: ties in flat regions
    assert corr.similarities[:, 0].min() > 0.999
    assert corr.similarities.shape == (1, 10, h, w)
    assert corr.similarities[:, 0].mean() > 0.99 and corr.similarities[:, 1].mean() > 0.99
    ab = torch.randn(1, 2, h, w)
    assert torch.allclose(warp_ab(ab, corr.t_to_r, (h, w))[0][:, ident], ab[0][:, ident])


def test_true_cells_of_a_known_shift():
    theta = torch.tensor([[[1.0, 0.0, 0.25], [0.0, 1.0, 0.0]]])   # view x -> original x + W/8
    cells, valid = true_cells(theta, 8, 8)
    assert torch.equal(cells[0, 3, :6, 1], torch.arange(1, 7))
    assert not valid[0, :, 7].any() and valid[0, :, :7].all()
    feats = [torch.randn(1, 4, 8, 8)]
    shifted = [torch.roll(feats[0], -1, dims=3)]     # the view's cell x shows original x + 1
    assert match_accuracy(feats, shifted, theta)[0] > 0.9   # border patches differ
    assert match_accuracy(feats, [torch.randn(1, 4, 8, 8)], theta)[0] < 0.5


def test_ground_truth_reference_gives_back_its_colours(random_similarity):
    """refine=False with the colour photo itself as reference: warping is the identity, so
    the colours come back (the backend's plumbing: lightness, warp, upsampling)."""
    photo = make_photo(5, (192, 256))
    c = colorplug.get("exemplar", refine=False, similarity_weights=random_similarity, device="cpu")
    out = c.colorize(photo, reference=photo)   # a colour input: its L* is what gets colorized
    assert out.shape == photo.shape
    assert psnr(out, photo) > 30


def test_reference_errors(random_similarity):
    c = colorplug.get("exemplar", refine=False, similarity_weights=random_similarity, device="cpu")
    gray = np.zeros((32, 32), np.uint8)
    with pytest.raises(colorplug.InputError, match="grayscale"):
        c.colorize(gray, reference=np.zeros((40, 50), np.uint8))
    with pytest.raises(colorplug.InputError, match="working_size"):
        colorplug.get("exemplar", refine=False, similarity_weights=random_similarity,
                      working_size=10)
    with pytest.raises(colorplug.WeightsError, match="cannot read torchvision weights"):
        colorplug.get("exemplar", refine=False, similarity_weights="torchvision:/nonexistent.pth")


@pytest.mark.slow  # trains both networks
def test_training_both_stages(photo_dir, tmp_path):
    sim = tmp_path / "sim.safetensors"
    common = ["--data", str(photo_dir), "--steps-per-epoch", "2", "--batch-size", "2",
              "--device", "cpu", "--quiet", "--val-fraction", "0.3", "--crop", "64",
              "--epochs", "1"]
    assert main(["train", "exemplar", "--stage", "similarity", "--out", str(sim)] + common) == 0
    meta = weights.read_metadata(sim)
    assert {f"val_acc{k}" for k in range(5)} <= set(meta["metrics"])
    col = tmp_path / "color.safetensors"
    assert main(["train", "exemplar", "--stage", "color", "--similarity", str(sim),
                 "--out", str(col), "--base", "8"] + common) == 0
    assert "val_warp_chroma" in weights.read_metadata(col)["metrics"]
    c = colorplug.get("exemplar", weights=col, similarity_weights=sim, device="cpu")
    ref = make_photo(7, (90, 70))
    for shape in [(1, 1), (7, 13), (101, 67)]:
        gray = np.random.default_rng(2).integers(0, 256, shape, dtype=np.uint8)
        out = c.colorize(gray, reference=ref)
        assert out.shape == shape + (3,)
        dl = color.lightness_from_rgb(out / 255.0) - color.lightness_from_gray(gray / 255.0)
        assert np.abs(dl).mean() < 1.0


def test_shipped_exemplar_follows_the_reference():
    """A red reference gives red output, a blue one blue: colours come from it (pure red
    has a* 63, b* 53 in Lab; pure blue a* 63, b* -85)."""
    c = colorplug.get("exemplar", device="cpu")
    gray = np.tile(np.linspace(60, 200, 96, dtype=np.float32), (64, 1)).astype(np.uint8)
    red = np.zeros((80, 80, 3), np.uint8)
    red[..., 0] = np.linspace(120, 255, 80)[None]
    blue = red[..., ::-1].copy()
    lab_red = color.rgb_to_lab(c.colorize(gray, reference=red) / 255.0)
    lab_blue = color.rgb_to_lab(c.colorize(gray, reference=blue) / 255.0)
    assert lab_red[..., 1].mean() > 30 and lab_red[..., 2].mean() > 25
    assert lab_blue[..., 1].mean() > 25 and lab_blue[..., 2].mean() < -40


def test_missing_init_weights_is_a_message_not_a_traceback(photo_dir, tmp_path, capsys):
    code = main(["train", "exemplar", "--stage", "similarity", "--data", str(photo_dir),
                 "--out", str(tmp_path / "s.safetensors"), "--init", str(tmp_path / "none.pth"),
                 "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--quiet"])
    assert code != 0
    err = capsys.readouterr().err
    assert "cannot read --init ResNet-34 weights" in err and "Traceback" not in err


def test_broken_similarity_weights_are_blamed_not_the_input(tmp_path):
    import torch

    import colorplug
    from colorplug import weights as wts
    from colorplug.backends.exemplar.colorizer import SimilarityWeights

    state, meta = wts.load_file(wts.resolve(SimilarityWeights.DEFAULT.spec, None))
    gen = torch.Generator().manual_seed(0)
    for k, v in state.items():  # finite but overflowing: +-1e30 conv weights
        if v.is_floating_point() and k.endswith("weight") and v.ndim == 4:
            state[k] = torch.randn(v.shape, generator=gen).sign() * 1e30  # float32
    wts.save(tmp_path / "sim.safetensors", state, meta)
    c = colorplug.get("exemplar", similarity_weights=tmp_path / "sim.safetensors", device="cpu",
                      refine=False)
    gray = np.full((40, 40), 100, np.uint8)
    ref = np.zeros((40, 40, 3), np.uint8)
    ref[..., 0] = 200
    with pytest.raises(colorplug.BackendError, match="similarity network produced NaN.*sim."
                                                     "safetensors") as info:
        c.colorize(gray, reference=ref)
    assert "source contains" not in str(info.value)


def test_confidence_is_the_match_similarity(random_similarity):
    """`confidence(gray, reference=...)`: ~1 where the reference is the target itself (every
    patch matches exactly), lower against an unrelated reference; the input's size."""
    photo = make_photo(5, (96, 128))
    c = colorplug.get("exemplar", refine=False, similarity_weights=random_similarity, device="cpu")
    itself = c.confidence(photo, reference=photo)
    assert itself.shape == (96, 128) and itself.min() > 0.95
    noise = np.random.default_rng(3).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    other = c.confidence(photo, reference=noise)
    assert other.mean() < itself.mean() - 0.05
