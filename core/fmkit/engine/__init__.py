"""The training engine: modality-free; everything modality-specific comes from the task."""
