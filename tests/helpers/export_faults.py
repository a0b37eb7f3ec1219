"""Test plugin: exporters whose exported model misbehaves in one chosen way, to prove that the
export check catches it (the files are plain safetensors; only the runner is faulty)."""
from __future__ import annotations

from fmkit import Component, hookimpl
from fmkit.exporting.exporters import SafetensorsExporter


class NanExporter(SafetensorsExporter):
    """The exported model answers NaN for the first output of every batch (finite elsewhere)."""

    format = "test-nan"

    def runner(self, directory: str, trained):
        run = super().runner(directory, trained)

        def faulty(batch):
            out = run(batch).clone()
            out.view(-1)[0] = float("nan")
            return out

        return faulty


class SwappedExporter(SafetensorsExporter):
    """The exported model's class scores come back in reverse order: every prediction changes,
    while the largest difference stays as small as the scores' spread."""

    format = "test-swapped"

    def runner(self, directory: str, trained):
        run = super().runner(directory, trained)
        return lambda batch: run(batch).flip(-1)


@hookimpl
def fmkit_register_exporters():
    return [Component("exporter", "test-nan", f"{__name__}:NanExporter", "fmkit.exporting.exporters:ExporterParams",
                      "Exports a model whose outputs hold a NaN"),
            Component("exporter", "test-swapped", f"{__name__}:SwappedExporter",
                      "fmkit.exporting.exporters:ExporterParams", "Exports a model with its classes swapped")]
