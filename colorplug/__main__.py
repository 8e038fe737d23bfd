"""``python -m colorplug``: the same as the ``colorplug`` command."""
from .cli import run

run()
