"""The ``fmkit`` command line."""
