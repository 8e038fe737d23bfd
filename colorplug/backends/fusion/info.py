"""What the `fusion` backend is, as data: its `BackendInfo` (one module, so the package and
its colorizer both import it without importing each other)."""
from __future__ import annotations

from ...protocol import RUNTIME_HELP, BackendInfo

INFO = BackendInfo(
    name="fusion",
    description="Low-, mid- and global-level features fused (Iizuka et al. 2016); any "
                "resolution; an optional reference image steers the global colour prior.",
    accepts_reference=True,
    working_size=256,
    trainer="colorplug.backends.fusion.train",
    extra={"configurable_working_size": True},
    options={"working_size": "longest side chroma is predicted at (multiple of 8, >= 32)", "batch_size": "images of one working shape run through the network together",
             "temperature": "bins weights: annealed-mean temperature (1 = mean, cautious; "
                            "-> 0 = mode, colourful); default from the weights",
             "saturation": "chroma gain on the predicted a*b* (1 = as trained); default from the weights",
             "steering": "bins weights: move the saturation towards confident pixels (1 - bin "
                         "entropy) at the same mean gain; 0 = uniform (default)",
             "runtime": RUNTIME_HELP},
)
