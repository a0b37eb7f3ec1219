"""fmkit-audio: audio classification with torchaudio (``fmkit.plugins`` entry point)."""

__version__ = "0.1.0"
