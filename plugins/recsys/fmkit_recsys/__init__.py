"""fmkit-recsys: sequential recommendation with full-ranking evaluation (``fmkit.plugins`` entry point)."""

from fmkit.utils.version import distribution_version

__version__ = distribution_version("fmkit-recsys", __file__)  # the number lives in pyproject.toml only
