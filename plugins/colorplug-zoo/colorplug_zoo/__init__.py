"""colorplug-zoo: the published pretrained colorizers (DDColor; Zhang et al. eccv16 and
siggraph17) as colorplug backends, a third-party plugin package.

Importing this package (and the entry-point module `colorplug_zoo.plugin`) does not import
torch; the networks' modules (`colorplug_zoo.eccv16`, `.siggraph17`, `.ddcolor`) do.
"""
__version__ = "0.1.0"
