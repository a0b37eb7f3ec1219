"""An fmkit plugin."""
