"""napari plugin for colorplug: a "Colorize" dock widget and sample data (npe2).

Every backend registered with colorplug (built-in or third-party) appears in the widget.
The core ``colorplug`` package never imports napari; this package is installed with the
``napari`` extra: ``pip install -e ".[napari]"``.
"""
from colorplug import __version__  # one version: the distribution's

__all__ = ["__version__"]
