"""What the `autoencoder` backend is, as data: its `BackendInfo` (one module, so the package and
its colorizer both import it without importing each other)."""
from __future__ import annotations

from ...protocol import BackendInfo

INFO = BackendInfo(
    name="autoencoder",
    description="Convolutional autoencoder (32x32, 256-d latent) predicting colour; "
                "fast, soft colours. Chroma upsampled onto the full-resolution input.",
    working_size=32,
    trainer="colorplug.backends.autoencoder.train",
    options={"batch_size": "patches per network call (memory vs speed)"},
)
