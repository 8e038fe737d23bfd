"""What the `cgan` backend is, as data: its `BackendInfo` (one module, so the package and
its colorizer both import it without importing each other)."""
from __future__ import annotations

from ...protocol import BackendInfo

INFO = BackendInfo(
    name="cgan",
    description="Conditional GAN in Lab: ResNet-encoder (or pix2pix U-Net) generator trained "
                "with L1 + a 70x70 PatchGAN discriminator; more colourful, less exact; any size.",
    working_size=128,
    trainer="colorplug.backends.cgan.train",
    extra={"configurable_working_size": True},
    options={"working_size": "longest side chroma is predicted at (default: the trained size)", "batch_size": "images of one working shape run through the network together",
             "temperature": "bins weights: annealed-mean temperature (1 = mean, cautious; "
                            "-> 0 = mode, colourful); default from the weights",
             "saturation": "chroma gain on the predicted a*b* (1 = as trained); default from the weights",
             "steering": "bins weights: move the saturation towards confident pixels (1 - bin "
                         "entropy) at the same mean gain; 0 = uniform (default)"},
)
