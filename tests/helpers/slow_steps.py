"""A plugin (for a recipe's ``plugins:``) that makes every training step take 0.15 s longer, so a
test that signals a run "during training" lands there even on a loaded machine, where a tiny
model's whole run can otherwise finish between two polls of the test."""
import time

import fmkit


@fmkit.hookimpl
def fmkit_on_step_end(run, step):
    time.sleep(0.15)
