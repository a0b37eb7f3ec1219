"""fmkit's own, modality-free components. The core registers them through the same hooks as any plugin."""
