"""Speed of every variant on the current backend: the JAX measurements, each run in a fresh
process by `runner.run_isolated` (so memory peaks and caches are its own).

For each variant (a config of `configs/` at its MNIST preset, see `VARIANTS`) two things
are measured (`measure_variant`):

- the bare step (`timing.BareStep`): the trainer's one step body, jitted, called over and
  over on one device-resident batch. Reported: trace + lower and compile seconds (the
  median of three compilations, with their spread; and those of the training loop's chunk
  of steps, also with JAX's persistent compilation cache filled: `measure_compile`), the
  model FLOPs per step from XLA's cost analysis, steps/s and examples/s (the median of
  timed windows after a warm-up, half of them before and half after the end-to-end runs,
  with the slowest and the fastest window), the step's temporary buffers
  (`memory_analysis`) and the process's peak memory.
- end to end: `aejax.train.train_and_evaluate` on the same config for a few epochs, with
  its real input pipeline (the data set resident on the device, each step gathering its
  batch inside the compiled chunk of steps), logging and asynchronous checkpoints at
  their normal cadence. Timed twice: the training loop alone (evaluation only after the
  last step; timed from the first log row, after compilation, to the last), and with the
  configs' evaluation on the test split every epoch (timed from the first evaluation,
  after the eval step has compiled, to the last). Everything the loop does in those
  stretches counts; nothing is subtracted. Slow variants train on a fraction of MNIST
  (train and test split cut alike, so evaluation keeps its share of the time; checkpoints
  every 468 steps as in the full run), sized so that an epoch lasts about `e2e_epoch_s`
  and holds whole chunks of steps; fast variants train more epochs of the whole set
  instead, so that every timed stretch lasts about `e2e_epochs * e2e_epoch_s`.

`SWEEPS` time the bare step of the reference MLP and conv AEs on synthetic data while the
batch size, the input size or the code size grows (`measure_sweep_point`).
"""

import dataclasses
import math
import os
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aejax import config as config_lib
from aejax import perf
from timing import BareStep, bare_step, chunk_compile, peak_memory, summarize


@dataclasses.dataclass(frozen=True)
class Variant:
    """A benchmarked config: `config` is "file.py:preset" in configs/, `overrides` maps
    dotted field names to values."""

    config: str
    overrides: dict = dataclasses.field(default_factory=dict)
    about: str = ""


# The reference architecture of the speed targets: a 784-256-32 ReLU MLP AE, batch 128, Adam.
_AE = {"model.encoder_widths": (256, 32)}

VARIANTS: dict[str, Variant] = {
    "ae": Variant("ae.py:mnist", _AE, "MLP AE 784-256-32 (the reference)"),
    "ae_deep": Variant("ae.py:mnist", {}, "MLP AE 784-512-256-128-32"),
    "sparse_kl": Variant("sparse_ae.py:kl_mnist", {}, "784-1024 sigmoid, KL sparsity"),
    "sparse_topk": Variant("sparse_ae.py:topk_mnist", {}, "784-1000, top-25 code"),
    "dae": Variant("dae.py:mnist", {}, "denoising 784-1024, Gaussian noise"),
    **{
        f"cae_{mode}": Variant(
            "cae.py:deep_mnist",
            {"loss_options.contractive.mode": mode},
            f"contractive 784-256-32, exact penalty by {mode}",
        )
        for mode in ("auto", "closed_form", "jacrev", "jacfwd")
    },
    "cae_sigmoid": Variant("cae.py:sigmoid_mnist", {}, "contractive 784-1000 sigmoid (auto)"),
    "cae_deep": Variant(
        "ae.py:mnist",
        {"loss": "mse + 0.01*contractive"},
        "contractive 784-512-256-128-32 (auto: the closed form), beside ae_deep",
    ),
    "vae": Variant("vae.py:mnist", {}, "VAE 784-512-256-(20)"),
    "conv_ae": Variant("conv_ae.py:mnist", {}, "conv AE 16-32, 7x7x32 code"),
    "conv_vae": Variant("conv_vae.py:mnist", {}, "conv VAE 32-64, 20-d latent"),
    "aae": Variant("aae.py:mnist", {}, "adversarial AE 784-1000-1000-8, three updates"),
}


# --------------------------------------------------------------------------- configs


def set_field(config: ml_collections.ConfigDict, dotted: str, value) -> None:
    """Sets config.a.b.c = value from "a.b.c"."""
    *path, last = dotted.split(".")
    node = config
    for name in path:
        node = node[name]
    node[last] = value


def variant_config(name: str, batch_size: int = 0) -> ml_collections.ConfigDict:
    """The config of VARIANTS[name], at `batch_size` (0: the config's own)."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; valid: {', '.join(VARIANTS)}")
    variant = VARIANTS[name]
    config = config_lib.load_config(variant.config)
    for dotted, value in variant.overrides.items():
        set_field(config, dotted, value)
    if batch_size:
        config.batch_size = batch_size
    config.progress_bar = False
    return config


def e2e_schedule(
    spe: int, unit: int, bare_rate: float, epochs: int, epoch_s: float
) -> tuple[int, int]:
    """The end-to-end run's (steps per epoch, epochs): every variant's timed stretch lasts
    about `epochs * epoch_s` seconds at `bare_rate` steps/s.

    A slow variant keeps `epochs` epochs, each cut to about `epoch_s` seconds, but a whole
    number of `unit` steps (dispatches and log windows: MNIST's 468 steps are 12 x 39;
    other chunk lengths would compile anew inside the timed stretch). A fast one, whose
    whole epoch of `spe` steps is shorter, trains more whole epochs instead (three 0.7 s
    epochs of the reference AE were at the mercy of one slow second).
    """
    steps = max(1, round(epoch_s * bare_rate / unit)) * unit
    if steps < spe:
        return steps, epochs
    return spe, max(epochs, round(epochs * epoch_s * bare_rate / spe))


def end_to_end(
    config, bare_rate: float, epochs: int, epoch_s: float, workdir: str, with_eval: bool
) -> dict:
    """Times `train_and_evaluate` for `epochs` epochs (see the module docstring).

    Args:
      config: the experiment's config (at its normal log and checkpoint cadence); changed
        here: the epochs and, for slow variants, the data fraction.
      bare_rate: the bare step's steps/s, which sizes the fraction of the data.
      epochs: how many epochs (of `epoch_s`; more, shorter ones for a fast variant).
      epoch_s: about how long an epoch should last.
      with_eval: evaluate on the test split each epoch, as the configs do, and time from the
        first evaluation to the last; else evaluate only once the run is over and time the
        training loop alone (data, steps, logging and checkpoints) from its first log row
        to its last.
    Returns:
      steps/s and examples/s over the timed stretch, its length, the median and spread of
      the rates the loop logged for its windows, and what happened in the stretch.
    """
    from aejax import data, train

    full = data.load_dataset(config.data)
    n_train, n_test = full.num_train, len(full.test_x)
    del full
    spe = n_train // config.batch_size
    unit = math.lcm(config.steps_per_dispatch, config.log_every_steps)
    steps, epochs = e2e_schedule(spe, unit, bare_rate, epochs, epoch_s)
    fraction = 1.0
    if steps < spe:
        fraction = steps / spe
        config.data.max_train = steps * config.batch_size
        config.data.max_test = max(1, round(n_test * fraction))
        config.eval_batch_size = min(config.eval_batch_size, config.data.max_test)
        # Checkpoints as often as in the full run (every `spe` steps), not every short epoch.
        config.checkpoint_every_steps = config.checkpoint_every_steps or spe
    epoch_steps = (config.data.max_train or n_train) // config.batch_size
    config.num_epochs = epochs
    config.num_steps = 0
    if not with_eval:
        config.eval_every_steps = epochs * epoch_steps
    rows = []  # (step, time, is_eval, logged steps/s)
    record = lambda step, scalars: rows.append(
        (step, time.perf_counter(), "test/loss" in scalars, scalars.get("train/steps_per_s"))
    )
    t0 = time.perf_counter()
    train.train_and_evaluate(config, workdir, on_write=record)
    wall = time.perf_counter() - t0
    # From the first row of the kind timed (after the chunk and, with evaluations, the eval
    # step have compiled) to the last: whole epochs of steady state.
    first = [r for r in rows if r[2] == with_eval][0]
    last = [r for r in rows if r[2] == with_eval][-1]
    steps, seconds = last[0] - first[0], last[1] - first[1]
    inside = [r for r in rows if first[1] < r[1] <= last[1]]
    window_rates = [r[3] for r in inside if r[3] is not None]
    prefix = "e2e_eval_" if with_eval else "e2e_"
    out = {
        "steps_per_s": steps / seconds,
        "examples_per_s": steps / seconds * config.batch_size,
        "steps": steps,
        "seconds": seconds,
        "window_steps_per_s_median": statistics.median(window_rates) if window_rates else None,
        "window_steps_per_s_min": min(window_rates) if window_rates else None,
        "window_steps_per_s_max": max(window_rates) if window_rates else None,
        "evaluations": sum(1 for r in inside if r[2]),
        "checkpoints": sum(
            1
            for s in range(first[0] + 1, last[0] + 1)
            if s % (config.checkpoint_every_steps or epoch_steps) == 0
        ),
        "data_fraction": fraction,
        "epochs": epochs,
        "wall_s": wall,
    }
    return {prefix + k: v for k, v in out.items()}


def measure_variant(
    name: str,
    batch_size: int = 0,
    windows: int = 5,
    window_s: float = 1.0,
    e2e: bool = True,
    e2e_eval: bool = True,
    e2e_epochs: int = 3,
    e2e_epoch_s: float = 8.0,
) -> dict:
    """Every JAX measurement of one variant (run it in a fresh process: see `run_isolated`).

    The bare step is timed before and after the end-to-end runs (half the windows each),
    so that both see the same machine when it is shared.
    """
    from aejax import train

    config = variant_config(name, batch_size)
    variant = VARIANTS[name]
    out = {"variant": name, "config": variant.config, "about": variant.about}
    out["overrides"] = {
        k: list(v) if isinstance(v, tuple) else v for k, v in variant.overrides.items()
    }
    out["batch_size"] = config.batch_size
    out["load_before"] = os.getloadavg()[0]
    if jax.default_backend() == "cpu":  # as train_and_evaluate does
        out["keep_freed_host_memory"] = perf.keep_freed_host_memory()
    with tempfile.TemporaryDirectory(prefix="aejax-bench-") as tmp:
        exp = train.Experiment.from_config(config, os.path.join(tmp, "bare"))
        bare = BareStep(exp)
        out.update(bare.compile_info)
        out["params"] = sum(np.size(p) for p in jax.tree.leaves(bare.state.params))
        rates = bare.time(windows if not e2e else (windows + 1) // 2, window_s)
        out.update(chunk_compile(exp))
        out.update({f"bare_{k}": v for k, v in peak_memory().items()})
        if e2e:
            bare_rate = statistics.median(rates)
            for with_eval in (False, True) if e2e_eval else (False,):
                config = variant_config(name, batch_size)
                workdir = os.path.join(tmp, f"run-{with_eval}")
                out.update(
                    end_to_end(config, bare_rate, e2e_epochs, e2e_epoch_s, workdir, with_eval)
                )
            rates += bare.time(windows // 2 or 1, window_s)
        out.update(summarize(rates, config.batch_size))
        for key in ("e2e_", "e2e_eval_"):
            if key + "steps_per_s" in out:
                out[key + "over_bare"] = out[key + "steps_per_s"] / out["steps_per_s"]
    out.update(peak_memory())
    out["load_after"] = os.getloadavg()[0]
    return out


def measure_compile(name: str, cache_dir: str, batch_size: int = 0) -> dict:
    """Seconds to compile a variant's bare step and training chunk with JAX's persistent
    compilation cache in `cache_dir` (run twice in fresh processes: the first fills the
    cache, the second reads it, as a rerun or a resumed run does)."""
    from aejax import train

    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    config = variant_config(name, batch_size)
    exp = train.Experiment.from_config(config, "")
    step = exp.train_step()
    x = jax.ShapeDtypeStruct((config.batch_size, *exp.dataset.example_shape), jnp.float32)
    state = jax.eval_shape(exp.init_state)
    t0 = time.perf_counter()
    jax.jit(step, donate_argnums=0).lower(state, x, exp.keys[1]).compile()
    out = {"variant": name, "step_s": time.perf_counter() - t0}
    out.update(chunk_compile(exp, compiles=1))  # a second compilation would read the cache
    return out


# --------------------------------------------------------------------------- sweeps

SWEEPS = {
    # name: (what varies, values)
    "batch": ("batch_size", (32, 64, 128, 256, 512, 1024)),
    "input": ("input_shape", ((28, 28, 1), (32, 32, 3), (64, 64, 3))),
    "code": ("code", (8, 32, 128, 512)),
}


def _synthetic_experiment(config, input_shape, n: int = 2048):
    """An Experiment of `config` on uniform random data of `input_shape` (for sweeps)."""
    from aejax import corruption, data, losses, models, optim, train

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(n, *input_shape)).astype(np.float32)
    dataset = data.Dataset(x, None, x[:256], None, f"uniform {input_shape}")
    weights = losses.parse_recipe(config.loss)
    return train.Experiment(
        config=config,
        workdir="",
        dataset=dataset,
        model=models.build_model(config.model, input_shape),
        weights=weights,
        options=losses.term_options(config.loss_options, weights),
        corrupt=corruption.get_corruption(config.corruption),
        tx=optim.make_optimizer(config.optimizer, 1000),
        total_steps=1000,
        steps_per_epoch=n // config.batch_size,
    )


def measure_sweep_point(
    variant: str, what: str, value, windows: int = 3, window_s: float = 0.5
) -> dict:
    """The bare step of `variant` ("ae" or "conv_ae") with one of batch size, input shape or
    code size changed, on synthetic data."""
    config = variant_config(variant)
    shape = (28, 28, 1)
    if what == "batch_size":
        config.batch_size = int(value)
    elif what == "input_shape":
        shape = tuple(value)
    elif what == "code":
        if config.model.name == "mlp":
            config.model.encoder_widths = (*config.model.encoder_widths[:-1], int(value))
        else:  # the conv AE with a dense bottleneck to a code vector of this size
            config.model.latent_dim = int(value)
            config.model.code_activation = "linear"
    if jax.default_backend() == "cpu":
        perf.keep_freed_host_memory()
    exp = _synthetic_experiment(config, shape, max(2048, config.batch_size))
    out = {"variant": variant, "what": what, "value": value, "batch_size": config.batch_size}
    out.update(bare_step(exp, windows, window_s))
    out.update(peak_memory())
    return out
