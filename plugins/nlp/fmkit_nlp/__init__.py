"""fmkit-nlp: text tasks on transformers models."""
__version__ = "0.1.0"
