"""fmkit-cv: image classification with timm models (registered through the ``fmkit.plugins`` entry point)."""

__version__ = "0.1.0"
