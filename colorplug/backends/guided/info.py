"""What the `guided` backend is, as data: its `BackendInfo` (one module, so the package and
its colorizer both import it without importing each other)."""
from __future__ import annotations

from ...protocol import BackendInfo

INFO = BackendInfo(
    name="guided",
    description="A U-Net that takes L*, colour hints (a*b*) and the hint mask, in the manner "
                "of Zhang et al. 2017: a few clicks or strokes set the colours, its learnt "
                "prior fills the rest; without hints it colorizes on its own.",
    supports_hints=True,
    working_size=256,
    trainer="colorplug.backends.guided.train",
    extra={"configurable_working_size": True, "size_multiple": 16},
    options={"working_size": "longest side chroma is predicted at (multiple of 16, >= 32)",
             "batch_size": "images of one working shape run through the network together",
             "spread": "true (default): the colours agree with every hint exactly and each "
                       "hint's correction spreads over similar pixels; false: the network's "
                       "colours only",
             "spread_sigma": "how different in lightness (L*/100) pixels may be for a "
                             "correction to spread between them (default 0.05)",
             "spread_decay": "how soon a correction fades with distance (larger: sooner; "
                             "default chosen on val)"},
)
