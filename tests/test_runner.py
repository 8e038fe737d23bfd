"""Folders through the CLI runner: batched network, background decode/recombine/encode,
results as one-by-one colorize gives them."""
import numpy as np
import torch
from PIL import Image

import colorplug
from colorplug.cli import main
from colorplug.image import read_image
from colorplug.outputs import Planned
from colorplug.runner import run_plan


def test_folder_outputs_equal_one_by_one_colorize(tmp_path):
    rng = np.random.default_rng(7)
    src = tmp_path / "in"
    src.mkdir()
    for i, shape in enumerate([(40, 56)] * 4 + [(64, 48)] * 2 + [(33, 17)]):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(src / f"{i}.png")
    assert main(["colorize", str(src), "-o", str(tmp_path / "out"), "-b", "fusion",
                 "--device", "cpu", "--batch-size", "3", "-q"]) == 0
    colorizer = colorplug.get("fusion", device="cpu")
    for path in sorted(src.glob("*.png")):
        alone = colorizer.colorize(read_image(path))
        folder = read_image(tmp_path / "out" / path.name)
        assert folder.shape == alone.shape
        assert np.abs(folder.astype(int) - alone.astype(int)).max() <= 1  # within 1/255


def test_torch_leaves_a_core_to_the_io_threads_while_they_work(tmp_path):
    items = [Planned(tmp_path / f"{i}.png", tmp_path / f"out{i}.png") for i in range(5)]
    seen = []

    def colorize_batch(images):
        seen.append(torch.get_num_threads())
        return [np.zeros((2, 2, 3), np.uint8) for _ in images]

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        report = run_plan(items, load=lambda item: np.zeros((2, 2), np.uint8),
                          colorize_batch=colorize_batch, colorize_other=None,
                          encode=lambda item, rgb: b"x", write=lambda item, data: None,
                          batch_size=2)
        assert report.done == 5 and seen == [1, 1, 1]  # three chunks, one torch thread
        assert torch.get_num_threads() == 2  # given back afterwards
        seen.clear()
        run_plan(items[:1], load=lambda item: np.zeros((2, 2), np.uint8),
                 colorize_batch=colorize_batch, colorize_other=None,
                 encode=lambda item, rgb: b"x", write=lambda item, data: None)
        assert seen == [2]  # nothing to overlap with: all threads for the network
    finally:
        torch.set_num_threads(before)
