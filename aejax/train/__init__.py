"""Training: the state, the one step body, the loop.

    state.py       TrainState (a pytree orbax saves whole), phases and parameter paths
    keys.py        the step's random keys, the same on any number of devices
    step.py        make_train_step (the step body), make_train_chunk, make_eval_step
    experiment.py  Experiment: a config turned into data, model, recipe and optimizer
    dispatch.py    how many steps one compiled call runs (a CPU fast path)
    workdir.py     may a config use a workdir; its saved config
    loop.py        train_and_evaluate(config, workdir)

Everything random derives from `config.seed`: parameters from one key, the batch order
from (seed, step) (see `aejax.data.pipeline`), and the corruption's, the model's and the
loss terms' draws from (seed, step) on the global batch (see `aejax.train.keys`); so a
resumed run continues exactly as if it had never stopped, and a run on many devices
matches a run on one.
"""

from aejax.train.experiment import Experiment
from aejax.train.loop import train_and_evaluate
from aejax.train.state import TrainState
from aejax.train.step import make_eval_step, make_train_chunk, make_train_step

__all__ = [
    "Experiment",
    "TrainState",
    "make_eval_step",
    "make_train_chunk",
    "make_train_step",
    "train_and_evaluate",
]
