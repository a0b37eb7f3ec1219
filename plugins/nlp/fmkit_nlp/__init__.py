"""fmkit-nlp: text tasks on transformers models."""
from fmkit.utils.version import distribution_version

__version__ = distribution_version("fmkit-nlp", __file__)  # the number lives in pyproject.toml only
