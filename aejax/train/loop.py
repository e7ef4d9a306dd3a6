"""The training loop: `train_and_evaluate(config, workdir)`.

Top to bottom: build the experiment (every config error surfaces there, before anything
is written), check and lock the workdir, restore or initialize the state, then run chunks
of compiled steps, logging, evaluating and checkpointing at their cadences, until the end
or a stop signal. Every resource (writer, checkpointer, stream, progress bar, the lock, the
signal handlers) is released in `finally`.
"""

import math
import os
import sys
import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np
from tqdm import tqdm

from aejax import data, losses, parallel, perf, plots
from aejax.data.tfds_source import TfdsStream
from aejax.errors import ConfigError, Interrupted, TrainingDiverged
from aejax.train.dispatch import steps_per_dispatch
from aejax.train.experiment import Experiment
from aejax.train.signals import StopRequests
from aejax.train.state import TrainState, variables
from aejax.train.step import make_train_chunk
from aejax.train.workdir import WorkdirLock, check_workdir, save_config
from aejax.writers import MetricWriter


def itstime(step: int, every: int) -> bool:
    """Whether a cadence of `every` steps falls on `step`."""
    return step % every == 0


def _next_event(step: int, total: int, *intervals: int) -> int:
    """The first step after `step` that is a multiple of an interval, or `total`."""
    return min([total] + [(step // i + 1) * i for i in intervals])


def window_metrics(
    chunks: list[tuple[int, dict]],
    on_nonfinite: str,
    skip_limit: int = 0,
    skipped_before: int = 0,
) -> dict[str, float]:
    """Averages the per-step metrics of several chunks on the host.

    Args:
      chunks: (first step, metrics of [K] arrays) per chunk, in order.
      on_nonfinite: "stop" raises TrainingDiverged naming the first bad step and its terms;
        "skip" averages over the good steps only and counts the skipped ones.
      skip_limit: under "skip", raise TrainingDiverged once more than this many steps in a
        row were skipped (0: no limit), counting `skipped_before`, the skipped steps in a
        row just before the window.
    Returns:
      "train/<metric>" means, "train/skipped_steps" (the window's non-finite steps) and
      "train/skipped_in_a_row" (those at its end, in a row, with `skipped_before`).
    """
    fetched = jax.device_get([m for _, m in chunks])
    per_step = {k: np.concatenate([m[k] for m in fetched]) for k in fetched[0]}
    bad = per_step.pop("nonfinite") > 0
    if bad.any() and on_nonfinite == "stop":
        i = int(np.argmax(bad))
        step = chunks[0][0] + i + 1  # metrics of step s are those of the update s -> s + 1
        culprits = [k for k, v in per_step.items() if not np.isfinite(v[i])]
        raise TrainingDiverged(
            f"step {step}: {', '.join(culprits)} became non-finite "
            f"({', '.join(f'{k}={per_step[k][i]}' for k in culprits)}); the update was not "
            "applied and no checkpoint after it was saved (set config.on_nonfinite='skip' to "
            "skip such steps)"
        )
    run = skipped_before
    for i, b in enumerate(bad):
        run = run + 1 if b else 0
        if skip_limit and run > skip_limit:
            raise TrainingDiverged(
                f"step {chunks[0][0] + i + 1}: {run} steps in a row had a non-finite loss or "
                f"gradient and were skipped (config.skip_limit={skip_limit}); the parameters "
                "are still those of the last good step"
            )
    good = ~bad
    out = {f"train/{k}": float(np.mean(v[good])) for k, v in per_step.items() if good.any()}
    out["train/skipped_steps"] = float(bad.sum())
    out["train/skipped_in_a_row"] = float(run)
    return out


def _check_parallel(exp: Experiment, dp: parallel.DataParallel) -> None:
    """Refuses what pmap on several devices would compute per device (results would then
    depend on the device count); jit computes over the global batch."""
    coupled = exp.batch_coupled()
    if dp.mode == "pmap" and dp.num_devices > 1 and coupled:
        raise ConfigError(
            f"{' and '.join(coupled)} with config.parallelism='pmap' on {dp.num_devices} "
            "devices: computed over each device's share of the batch, not the whole batch; "
            "use config.parallelism='jit' (the default)"
        )


def _epoch_line(exp: Experiment, step: int, train: dict, evaluation: dict) -> str:
    valid = evaluation.get("valid/loss")
    return (
        f"epoch {step / exp.steps_per_epoch:.4g} step {step}: "
        f"train/loss={train.get('train/loss', np.nan):.5g} "
        + (f"valid/loss={valid:.5g} " if valid is not None else "")
        + f"test/loss={evaluation['test/loss']:.5g}"
        f" test/mse_per_pixel={evaluation['test/mse_per_pixel']:.5g}"
        # A Keras user's loss is a mean over pixels, aejax's default terms' a sum: say which.
        f" (loss: {losses.loss_units(exp.weights, math.prod(exp.dataset.example_shape))})"
    )


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    stop_after: int | None = None,
    on_write: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[TrainState, dict[str, float]]:
    """Trains the config's model, evaluating and checkpointing on the way; resumes from
    the latest checkpoint in `workdir` if there is one.

    One run at a time holds a workdir (`WorkdirLock`; a second gets AejaxError). SIGINT or
    SIGTERM stop the run after the chunk in flight, with a checkpoint of the step reached
    (`Interrupted`). A non-finite step raises TrainingDiverged, or under
    `on_nonfinite='skip'` is skipped, up to `config.skip_limit` in a row; a non-finite
    final evaluation raises TrainingDiverged too.

    Args:
      config: an experiment config (see `aejax.config.base_config`).
      workdir: where the config, checkpoints, metrics and figures go.
      stop_after: stop (with a checkpoint) once this step is reached, as if the job had been
        cut off there; a later call continues. For tests and time-limited jobs.
      on_write: called with (step, scalars) right after each row of metrics is written,
        the train logs and the evaluations (for the benchmark's clock, or a notebook).
    Returns:
      (state, metrics): the train state reached (host arrays), and the last evaluation's
      metrics ("test/...", "valid/..." with a validation split) with "step", the step
      reached.
    """
    parallel.initialize_distributed(config.distributed)  # before JAX touches a device
    exp = Experiment.from_config(config, workdir)
    dp = parallel.DataParallel.create(config.parallelism, config.num_devices, config.batch_size)
    _check_parallel(exp, dp)
    check_workdir(config, workdir)  # writes nothing
    lock = WorkdirLock(workdir).acquire()  # one run per workdir
    try:
        # Again under the lock: a run that held it may have just written its config.
        check_workdir(config, workdir)
        with StopRequests(enabled=jax.process_count() == 1) as stops:
            return _train(exp, dp, workdir, stops, stop_after, on_write)
    finally:
        lock.close()


def _train(exp: Experiment, dp, workdir: str, stops: StopRequests, stop_after, on_write):
    """The body of `train_and_evaluate`, once the config and the workdir are checked and
    the workdir is this run's."""
    config = exp.config
    host_state = exp.restore_or_init()  # a checkpoint that does not fit fails here
    if dp.platform == "cpu":
        perf.keep_freed_host_memory(config.keep_freed_host_memory)
    save_config(config, workdir)  # the first write

    total = exp.total_steps
    end = total if stop_after is None else min(stop_after, total)
    eval_every = config.eval_every_steps or exp.steps_per_epoch
    ckpt_every = config.checkpoint_every_steps or exp.steps_per_epoch
    step = int(host_state.step)
    _, train_key = exp.keys
    dispatch, unroll = steps_per_dispatch(exp, config.steps_per_dispatch, dp.platform)
    options = exp.compiler_options(dp.platform)
    train_chunk = dp.compile_chunk(make_train_chunk(exp.train_step, unroll), options)
    eval_step = exp.eval_step()
    state = dp.replicate(host_state)
    lead = jax.process_index() == 0  # the other processes train silently

    ckpt = exp.checkpointer()
    writer = stream = bar = None
    try:
        ckpt.set_aside_after(step)  # unreadable newer checkpoints, which this run will redo
        if exp.dataset.train_x is None:  # streamed through grain; its state is the step
            args = (config.seed, config.batch_size, jax.process_index(), jax.process_count())
            stream = TfdsStream(exp.dataset.train_source, *args, start_step=step)
            train_x = None
        else:
            train_x = dp.replicate(exp.dataset.train_x)
        writer = MetricWriter(workdir, enabled=lead, resumed_from=step)
        bar = tqdm(
            total=total,
            initial=step,
            disable=not config.progress_bar or not lead,
            unit="step",
            dynamic_ncols=True,
        )
        if lead and step > 0:
            bar.write(_resume_line(exp, ckpt.saved_config(step), step, workdir))
        log_window, eval_window = [], []
        eval_metrics: dict[str, float] = {}
        last_fetch = time.perf_counter()
        skipped_in_a_row = 0

        def log_row(at: int, window: list) -> None:
            """Fetches a window's metrics (checking for non-finite steps), writes its row."""
            nonlocal last_fetch, skipped_in_a_row
            row = window_metrics(window, config.on_nonfinite, config.skip_limit, skipped_in_a_row)
            skipped_in_a_row = int(row.pop("train/skipped_in_a_row"))
            now = time.perf_counter()  # the window's steps are done: the fetch waited
            steps = sum(len(m["loss"]) for _, m in window)
            row["train/steps_per_s"] = steps / max(now - last_fetch, 1e-9)
            last_fetch = now
            writer.write_scalars(at, row)
            if on_write is not None:
                on_write(at, row)
            bar.set_postfix(loss=f"{row.get('train/loss', np.nan):.4g}")

        # A log row and a checkpoint to write once the next chunk is on its way, so that
        # the device does not wait for the host writing them.
        pending_row, pending_save = None, None
        while step < end:
            k = min(
                dispatch,
                _next_event(step, end, config.log_every_steps, eval_every, ckpt_every) - step,
            )
            if stream is None:
                idx = data.batch_indices(
                    config.seed, step, k, exp.dataset.num_train, config.batch_size
                )
                inputs = dp.shard_batches(idx)
            else:
                inputs = dp.shard_local(np.stack([next(stream) for _ in range(k)]))
            state, metrics = train_chunk(state, train_x, inputs, train_key)
            if pending_save is not None:  # a checked state, copied to the host before
                ckpt.save(*pending_save)
                pending_save = None
            if pending_row is not None:  # fetched while the device runs the new chunk
                log_row(*pending_row)
                pending_row = None
            log_window.append((step, metrics))
            eval_window.append((step, metrics))
            step += k
            bar.update(k)

            # Log (and check for non-finite steps) before every checkpoint and evaluation;
            # a plain log row waits for the next dispatch.
            saving = itstime(step, ckpt_every) or step == end
            evaluating = itstime(step, eval_every) or step == total
            if itstime(step, config.log_every_steps) or saving or evaluating:
                if saving or evaluating:
                    log_row(step, log_window)
                else:
                    pending_row = (step, log_window)
                log_window = []
            if saving or evaluating:
                host_state = dp.unreplicate(state)
            if step == end:
                ckpt.save(step, host_state)
            elif saving:
                pending_save = (step, host_state)
            if evaluating:
                eval_metrics = exp.evaluate(host_state, eval_step)
                summary = window_metrics(eval_window, "skip")
                eval_window = []
                writer.write_scalars(step, eval_metrics)
                if on_write is not None:
                    on_write(step, eval_metrics)
                if lead:
                    bar.write(_epoch_line(exp, step, summary, eval_metrics))
            if stops.signum is not None and step < end:
                # Stop at the step reached: its log row (which checks it), a checkpoint.
                if pending_row is not None:
                    log_row(*pending_row)
                if log_window:
                    log_row(step, log_window)
                if pending_save is not None and pending_save[0] != step:
                    ckpt.save(*pending_save)
                    pending_save = None
                if pending_save is None:
                    pending_save = (step, dp.unreplicate(state))
                ckpt.save(*pending_save)
                raise Interrupted(stops.signum, step, workdir)
        if step >= total:
            if not eval_metrics:
                eval_metrics = exp.evaluate(host_state, eval_step)
            bad = [f"{k}={v}" for k, v in eval_metrics.items() if not np.isfinite(v)]
            if bad:
                raise TrainingDiverged(
                    f"step {step}: the final evaluation is not finite ({', '.join(bad)}); the "
                    "run is not a usable model"
                )
            _save_reconstructions(exp, host_state, eval_step, workdir)
            if lead:
                bar.write(f"outputs in {workdir}: {', '.join(_outputs(workdir))}")
    finally:
        # Pending saves are all of checked states: a divergence or an error finishes them.
        _close_all(bar, stream, ckpt, writer)
    return host_state, {"step": step, **eval_metrics}


def _resume_line(exp: Experiment, saved: dict | None, step: int, workdir: str) -> str:
    """Says where a run resumed, and how its budget changed since that checkpoint."""
    config = exp.config
    line = f"resumed from checkpoint {step} in {workdir}; training to step {exp.total_steps}"
    then = (saved or {}).get("num_epochs"), (saved or {}).get("num_steps")
    if saved is not None and then != (config.num_epochs, config.num_steps):
        line += f" (saved under num_epochs={then[0]}, num_steps={then[1]})"
        if config.optimizer.schedule == "cosine":
            line += f"; the cosine schedule now decays to step {exp.total_steps}"
    return line


def _outputs(workdir: str) -> list[str]:
    """What a run leaves in its workdir, as listed at its end."""
    names = ("config.json", "checkpoints/", "metrics.jsonl", "tb/", "reconstructions.png")
    return [n for n in names if os.path.exists(os.path.join(workdir, n.rstrip("/")))]


def _close_all(*resources) -> None:
    """Closes every resource that was opened, even when one of them fails to close; then
    raises the first failure, unless an error is already on its way out (called from a
    `finally`): that one says what went wrong first, and a full disk makes closing fail too."""
    failure = None
    for resource in resources:
        try:
            if resource is not None:
                resource.close()
        except Exception as e:  # noqa: BLE001 - the others must close too
            failure = failure or e
    if failure is not None and sys.exc_info()[1] is None:
        raise failure


def _save_reconstructions(exp: Experiment, state: TrainState, eval_step, workdir: str) -> None:
    """Saves `reconstructions.png`: the first test images above their reconstructions."""
    if jax.process_index() != 0 or not plots.is_image_shape(exp.dataset.example_shape):
        return
    x = exp.dataset.test_x[:10]
    x_hat = np.asarray(eval_step(variables(state.params, state.model_state), x)["x_hat"])
    plots.save_image_rows(
        f"{workdir}/reconstructions.png",
        {"test input": x, "reconstruction": x_hat},
        f"{exp.dataset.name}: test images and their reconstructions (step {int(state.step)})",
    )
