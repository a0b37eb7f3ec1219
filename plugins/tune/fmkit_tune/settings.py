"""The recipe's ``tune:`` section: what to optimise, how to sample and prune, and the search space.

The space is keyed by the recipe paths ``--set`` takes (``optimizer.lr``, ``train.batch_size``,
``model.pooling``); each value is one of::

    {float: [lo, hi]}              # uniform; add log: true for a log scale, step: s for a grid
    {int: [lo, hi]}                # whole numbers, both ends included; step and log allowed
    {choice: [a, b, ...]}          # one of the listed values (text, numbers, booleans, null)
"""
from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

Scalar = Union[bool, int, float, str, None]


class Param(BaseModel):
    """One dimension of the search space: exactly one of ``float``, ``int`` or ``choice``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, serialize_by_alias=True)
    float_: tuple[float, float] | None = Field(
        None, alias="float", description="a range of numbers [low, high], both ends included")
    int_: tuple[int, int] | None = Field(
        None, alias="int", description="a range of whole numbers [low, high], both ends included")
    choice: list[Scalar] | None = Field(
        None, description="the values to choose from (text, numbers, true/false, null)")
    log: bool = Field(False, description="sample on a log scale (ranges only; both ends above 0)")
    step: float | None = Field(None, gt=0, description="spacing of the values a range may take (int default 1); "
                               "not with log")

    @model_validator(mode="after")
    def _one_kind(self) -> "Param":
        kinds = [k for k, v in (("float", self.float_), ("int", self.int_), ("choice", self.choice)) if v is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of float: [lo, hi], int: [lo, hi] or choice: [...]"
                             + (f" (got {' and '.join(kinds)})" if kinds else ""))
        if self.choice is not None:
            if not self.choice:
                raise ValueError("choice: needs at least one value")
            if len({repr(v) for v in self.choice}) != len(self.choice):
                raise ValueError(f"choice: {self.choice} lists a value twice")
            if self.log or self.step:
                raise ValueError("log and step apply to float and int ranges, not to choice")
            return self
        lo, hi = self.float_ if self.float_ is not None else self.int_
        if not lo < hi:
            raise ValueError(f"the range [{lo}, {hi}] is empty: the low end must be below the high end")
        if self.log and lo <= 0:
            raise ValueError(f"log: true needs a range above 0, got [{lo}, {hi}]")
        if self.log and self.step:
            raise ValueError("a range is either on a log scale or stepped, not both")
        if self.int_ is not None and self.step is not None and self.step != int(self.step):
            raise ValueError(f"an int range needs a whole step, got {self.step}")
        return self

    @property
    def kind(self) -> str:
        return "float" if self.float_ is not None else "int" if self.int_ is not None else "choice"

    def corners(self) -> list[Any]:
        """Values that must each give a valid recipe: both ends of a range, every choice."""
        if self.choice is not None:
            return list(self.choice)
        return list(self.float_ if self.float_ is not None else self.int_)

    def grid(self) -> list[Any] | None:
        """The values a grid search tries, or None for a continuous range (no grid)."""
        if self.choice is not None:
            return list(self.choice)
        if self.int_ is not None:
            return list(range(self.int_[0], self.int_[1] + 1, int(self.step or 1)))
        if self.step:
            lo, hi = self.float_
            n = int(round((hi - lo) / self.step))
            return [lo + i * self.step for i in range(n + 1) if lo + i * self.step <= hi + 1e-12]
        return None

    def suggest(self, trial, name: str) -> Any:
        """The value an Optuna trial samples for this dimension."""
        if self.choice is not None:
            return trial.suggest_categorical(name, self.choice)
        if self.int_ is not None:
            return trial.suggest_int(name, self.int_[0], self.int_[1], step=int(self.step or 1), log=self.log)
        return trial.suggest_float(name, self.float_[0], self.float_[1], step=self.step, log=self.log)


class TuneSettings(BaseModel):
    """The ``tune:`` section (fmkit-tune)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    metric: str | None = Field(None, description="the validation metric to optimise (default: evaluate.monitor, "
                               "else the task's monitor)")
    direction: Literal["maximize", "minimize"] | None = Field(
        None, description="default: how the monitored metric improves")
    sampler: Literal["tpe", "random", "grid", "cmaes"] = Field(
        "tpe", description="how trials pick values: tpe (learns from earlier trials, after startup_trials random "
        "ones), random, grid (every combination; choices, int ranges and stepped float ranges only) or cmaes "
        "(CMA-ES, for number ranges)")
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="stopping unpromising trials early: median (stop a trial whose evaluation is worse "
        "than the median of earlier trials at the same evaluation), hyperband, or none")
    trials: int | None = Field(None, ge=1, description="trials the study holds when done (--trials; default 20, "
                               "a grid: its size)")
    timeout: float | None = Field(None, gt=0, description="seconds one run of fmkit tune may spend starting trials")
    startup_trials: int = Field(5, ge=0, description="trials before the model-based search and pruning start")
    warmup_evaluations: int = Field(1, ge=0, description="evaluations every trial gets before it may be pruned")
    seed: int = Field(0, description="sampler seed (each worker and continuation derives its own)")
    study: str | None = Field(None, description="the study's name (--study; default: the recipe file's name)")
    storage: str | None = Field(None, description="an Optuna RDB URL (--storage; default: sqlite in the study "
                                "folder)")
    dir: str | None = Field(None, description="the study folder (default: <tracking.runs_dir>/tune/<study>)")
    baseline: bool = Field(False, description="the recipe's own values are the first trial (a new study)")
    space: dict[str, Param] = Field({}, description="recipe path (as --set takes it) -> {float: [lo, hi], log: "
                                    "true}, {int: [lo, hi]} or {choice: [...]}")


SUMMARY = "hyperparameter search with Optuna: metric, sampler, pruner and the space (fmkit tune RECIPE)"
EXAMPLE = {"space": {"optimizer.lr": {"float": [1e-5, 1e-3], "log": True}, "train.batch_size": {"choice": [16, 32]}}}
