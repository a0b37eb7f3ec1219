"""fmkit's plugin contract suite, run against fmkit-timeseries."""
from fmkit.testing import contract_tests

globals().update(contract_tests("timeseries", export_formats=("onnx", "torchscript")))
