"""Feature quality of the exemplar's similarity network, measured directly: on augmented
pairs with a known correspondence (a random affine warp + photometric jitter of each
held-out photo's L, seeded), the fraction of exact 3x3-patch nearest-neighbour matches
within one cell of the true position, per level; the trained network next to the same
architecture at a random initialisation and, if given, torchvision weights.

    python benchmarks/exemplar_features.py --data heldout [--size 128] [--weights FILE]
                                           [--out benchmarks/results/exemplar_features.json]
"""
from __future__ import annotations

import argparse

from _common import save_json


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--weights", default=None, help="similarity weights (default: shipped)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from colorplug.backends.exemplar.colorizer import load_similarity
    from colorplug.backends.exemplar.model import SimilarityNet
    from colorplug.backends.exemplar.train import make_pair, match_accuracy
    from colorplug.color import rgb_to_lab_torch
    from colorplug.train import PhotoDataset
    from colorplug.train.data import collect

    ds = PhotoDataset(collect(args.data), args.size, train=False)
    rgb = torch.stack([ds[i] for i in range(len(ds))])
    lightness = rgb_to_lab_torch(rgb)[:, :1]
    warped, theta = make_pair(lightness, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    nets = {"random_init": SimilarityNet(), "trained": load_similarity(args.weights)[0]}
    res: dict = {"images": len(ds), "size": args.size, "accuracy_within_1_cell": {}}
    for name, net in nets.items():
        net.eval()
        with torch.no_grad():
            accs = match_accuracy(net(lightness), net(warped), theta)
        res["accuracy_within_1_cell"][name] = accs
        print(f"{name}: " + ", ".join(f"level {k} (stride {2 ** (k + 1)}) {a:.3f}"
                                      for k, a in enumerate(accs)))
    save_json(args.out, res)


if __name__ == "__main__":
    main()
