"""A plugin (for a recipe's ``plugins:``) whose hook asks the run to stop on rank 1 only, at step 3:
every rank must stop together (no hang), at the next optimizer step."""
import fmkit


@fmkit.hookimpl
def fmkit_on_step_end(run, step):
    if run.rank == 1 and step == 3:
        run.request_stop("rank 1 asked at step 3")
