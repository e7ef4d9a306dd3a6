"""Steps per second of the contractive AE's train step in each exact Jacobian mode, beside
the plain AE's step.

    python experiments/benchmark_contractive.py            # 784-256-32 ReLU MLP, batch 128
    python experiments/benchmark_contractive.py --widths=1000 --activation=sigmoid

Each row is the trainer's own step body (`aejax.train.make_train_step`: forward, loss
recipe, gradient, Adam update), jitted, on random data; after a warm-up, the median of
several timed windows. Measured on a 2-core CPU shared with other jobs (jax 0.10.2):
plain "mse" 339 steps/s; "mse + 0.1*contractive" jacfwd 3.4, jacrev 29, closed_form 142,
auto (= closed_form here) 140.
"""

import statistics
import time

import jax
import jax.numpy as jnp
import optax
from absl import app, flags

from aejax import config as config_lib
from aejax import losses, models, train
from aejax.contractive import MODES

flags.DEFINE_list("widths", ["256", "32"], "Encoder widths: hidden..., code.")
flags.DEFINE_string("activation", "relu", "Hidden activation (the code stays linear).")
flags.DEFINE_integer("batch_size", 128, "Examples per step.")
flags.DEFINE_integer("windows", 5, "Timed windows; the median is reported.")
flags.DEFINE_float("window_s", 1.0, "Approximate length of one timed window in seconds.")
FLAGS = flags.FLAGS


def steps_per_s(recipe: str, options: dict, cfg, x: jax.Array) -> float:
    """Median steps/s of the jitted train step for `recipe` on the batch `x`."""
    model = models.build_model(cfg, x.shape[1:])
    params = model.init(jax.random.key(0), x[:1])["params"]
    tx = optax.adam(1e-3)
    state = train.TrainState(jnp.zeros((), jnp.int32), params, {}, tx.init(params))
    step = train.make_train_step(model, tx, losses.parse_recipe(recipe), lambda k, x: x, options)
    step = jax.jit(step, donate_argnums=0)
    key = jax.random.key(1)
    state, _ = step(state, x, key)  # compile
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 0.5 or n < 2:  # warm up, and size the windows
        state, m = step(state, x, key)
        n += 1
    jax.block_until_ready(m)
    n = max(1, round(n / (time.perf_counter() - t0) * FLAGS.window_s))
    rates = []
    for _ in range(FLAGS.windows):
        t0 = time.perf_counter()
        for _ in range(n):
            state, m = step(state, x, key)
        jax.block_until_ready(m)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def main(argv):
    del argv
    cfg = config_lib.base_config().model
    cfg.encoder_widths = tuple(int(w) for w in FLAGS.widths)
    cfg.activation = FLAGS.activation
    x = jax.random.uniform(jax.random.key(0), (FLAGS.batch_size, 28, 28, 1))
    widths = "-".join(["784", *FLAGS.widths])
    print(f"{widths} {FLAGS.activation} MLP AE, batch {FLAGS.batch_size}, Adam, {jax.devices()[0]}")
    base = steps_per_s("mse", {}, cfg, x)
    print(f"{'mse (plain AE)':32s} {base:8.1f} steps/s")
    for mode in ("jacfwd", "jacrev", "closed_form", "auto"):
        assert mode in MODES
        rate = steps_per_s("mse + 0.1*contractive", {"contractive": {"mode": mode}}, cfg, x)
        print(f"{'contractive mode=' + mode:32s} {rate:8.1f} steps/s  ({base / rate:5.1f}x slower)")


if __name__ == "__main__":
    app.run(main)
