"""An fmkit export as an MLflow ``pyfunc`` model: ``mlflow.pyfunc.load_model(uri).predict(frame)``
and ``mlflow models serve`` answer what ``fmkit.load(export).predict(inputs)`` answers.

The model's artifact ``export`` is the export folder itself (weights, configuration, task assets);
loading it goes through :func:`fmkit.load`, the one inference path fmkit has, so the answers are
the same by construction (a test checks them equal).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc


def inputs_from_frame(data: Any, task: Any) -> list:
    """The raw inputs in a pyfunc input: a one-column frame gives its cells (as a one-column CSV
    does for ``fmkit predict``), a wider frame one record per row (``task.inputs_from_record``, so
    a text task takes its ``text`` column), a Series, array or list its items, a string itself."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        if len(data.columns) == 1:
            return data.iloc[:, 0].tolist()
        return [task.inputs_from_record({str(k): v for k, v in row.items()}) for row in data.to_dict("records")]
    if isinstance(data, pd.Series):
        return data.tolist()
    if isinstance(data, (str, bytes, dict)):
        return [data]
    if hasattr(data, "tolist"):
        return data.tolist()
    return list(data)


class FmkitModel(mlflow.pyfunc.PythonModel):
    """The pyfunc flavour of an fmkit export (loaded with the torch backend on CPU)."""

    def load_context(self, context) -> None:
        import fmkit

        self.predictor = fmkit.load(context.artifacts["export"])

    def predict(self, context, model_input, params=None):
        """One row of answers per input, the columns of fmkit's answers (``label``, ``scores`` ...)."""
        import pandas as pd

        return pd.DataFrame(self.predictor.predict(inputs_from_frame(model_input, self.predictor.task)))


def save_pyfunc(export_dir: str | Path, path: str | Path, requirements: list[str]) -> Path:
    """Write the pyfunc model of ``export_dir`` to the new folder ``path`` (MLmodel, the pickled
    :class:`FmkitModel`, the export as its ``export`` artifact). ``requirements`` become its
    ``requirements.txt``: given, so MLflow does not start a process to guess them."""
    import warnings

    code = Path(__file__).with_name("model_code.py")  # models from code: nothing pickled
    with warnings.catch_warnings():  # the end of the run: training is over, the filters are ours a moment
        warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)
        mlflow.pyfunc.save_model(path=str(path), python_model=str(code), artifacts={"export": str(export_dir)},
                                 pip_requirements=requirements, metadata={"fmkit_export": Path(export_dir).name})
    return Path(path)
