"""A plugin (for a recipe's ``plugins:``) with a time budget of zero seconds, measured from
``run.started_at``: it stops the run at its first step, as a real budget would once spent."""
import time

import fmkit


@fmkit.hookimpl
def fmkit_on_step_end(run, step):
    spent = time.time() - run.started_at
    if spent >= 0:
        run.request_stop(f"time budget of 0 s spent ({spent:.2f} s since the run started)")
