"""Classic, training-free colorization backends for colorplug (a third-party plugin)."""
__version__ = "0.1.0"
