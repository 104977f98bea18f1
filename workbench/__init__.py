"""Migration Workbench: evidence for switching a GenAI application from model A to model B.

Importing the package is cheap and offline: heavy libraries (torch, transformers, litellm,
datasets) are imported inside the functions that need them.
"""
from workbench import _offline  # noqa: F401  (sets offline defaults before anything else)
from workbench import _moved

_moved.install()

__version__ = "0.1.0"
