"""fmkit-tabular: CSV tables for fmkit (the plugin guide's worked example)."""
