"""Notes that say what the photo models are for, in each host's words: a CT, MR or
fluorescence image colorized by a model trained on photographs gets colours that mean
nothing there, and the user should hear what to use instead (issue 30 item 4)."""
from __future__ import annotations

from typing import Any

#: What each host calls the three remedies: a reference, hints, fine-tuned weights.
REMEDIES = {
    "cli": "give a colour reference (-r FILE) or hints (--hints FILE), or weights fine-tuned "
           "on your own colour images: colorplug train {backend} --from default --data DIR "
           "--name NAME, then -b '{backend}?weights=NAME'",
    "napari": "choose a Reference or Hints layer, or teach it your own colour images "
              "(Train on your images, below)",
    "api": "pass reference= or hints=, or weights fine-tuned on your own colour images "
           "(colorplug.train.finetune.finetune, then weights=NAME)",
}


class PhotoModelWarning(UserWarning):
    """The input is not a photograph, and the backend's colours were learnt from photos."""


def automatic(info: Any) -> bool:
    """An automatic backend: colour from what it learnt, no reference or hints needed."""
    return not (info.needs_reference or getattr(info, "needs_hints", False)
                or info.name == "gray")


def trained_on_photos(colorizer: Any) -> bool:
    """Whether `colorizer` predicts colour from what it learnt on photographs by itself:
    an automatic backend with weights that are not the user's own (fine-tuned weights
    learnt from the user's images)."""
    from .weights import user_weights_dir

    if not automatic(colorizer.info):
        return False
    inner = getattr(colorizer, "inner", colorizer)  # get() may wrap it in checks
    weights_file = str((getattr(inner, "metadata", None) or {}).get("weights_file", ""))
    return not (weights_file and weights_file.startswith(str(user_weights_dir())))


#: napari colormaps fluorescence channels are shown with (napari's defaults for channels).
FLUORESCENCE_COLORMAPS = {"green", "magenta", "cyan", "red", "blue", "yellow", "bop blue",
                          "bop orange", "bop purple"}


def photo_model_note(what: str, backend: str, host: str) -> str:
    """One line: `what` (e.g. "a CT image") is not what `backend` learnt colour from."""
    return (f"this is {what}; backend {backend!r} learnt its colours from photographs, so "
            f"they mean nothing here: for meaningful colours "
            f"{REMEDIES[host].format(backend=backend)}")
