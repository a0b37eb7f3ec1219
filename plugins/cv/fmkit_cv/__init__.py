"""fmkit-cv: image classification with timm models (registered through the ``fmkit.plugins`` entry point)."""

from fmkit.utils.version import distribution_version

__version__ = distribution_version("fmkit-cv", __file__)  # the number lives in pyproject.toml only
