"""Exports (safetensors, TorchScript, ONNX, int8), their verification, and loading them back."""
