"""fmkit-timeseries: forecasting and classification of time series (``fmkit.plugins`` entry point)."""

from fmkit.utils.version import distribution_version

__version__ = distribution_version("fmkit-timeseries", __file__)  # the number lives in pyproject.toml only
