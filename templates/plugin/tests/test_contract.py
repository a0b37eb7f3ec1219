"""fmkit's plugin contract suite, run against this plugin."""
from fmkit.testing import contract_tests

# The name given to contract_tests must be the plugin's ENTRY-POINT name: the key under
# [project.entry-points."fmkit.plugins"] in pyproject.toml (`fmkit plugins list` shows it). Rename
# one and rename the other, or the suite fails to find the plugin.
globals().update(contract_tests(
    "fmkit_example",
    # Two checks SKIP until you turn them on here:
    # - export: your models exported with fmkit's own exporters and compared with the eager model
    #   (a plugin exporter is always checked):
    # export_formats=("onnx", "torchscript"),
    # - datasets: each dataset's load() (and load_file()) on small fixture files you commit under
    #   tests/data, {dataset name: its recipe parameters}:
    # datasets={"fmkit_example-csv": {"train": str(__import__("pathlib").Path(__file__).parent / "data" / "train.csv")}},
))
