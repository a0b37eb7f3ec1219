"""fmkit-audio: audio classification with torchaudio (``fmkit.plugins`` entry point)."""

from fmkit.utils.version import distribution_version

__version__ = distribution_version("fmkit-audio", __file__)  # the number lives in pyproject.toml only
