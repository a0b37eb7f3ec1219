"""fmkit-recsys: sequential recommendation with full-ranking evaluation (``fmkit.plugins`` entry point)."""

__version__ = "0.1.0"
