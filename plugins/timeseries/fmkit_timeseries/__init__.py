"""fmkit-timeseries: forecasting and classification of time series (``fmkit.plugins`` entry point)."""

__version__ = "0.1.0"
