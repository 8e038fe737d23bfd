"""The GIMP 3 plug-in file ships here; `colorplug gimp install` copies colorplug_gimp.py.

Nothing in this package is imported by colorplug: colorplug_gimp.py runs inside GIMP.
"""
