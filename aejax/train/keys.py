"""The random keys of a training step, the same on any number of devices.

Each step's keys derive from (seed, step) and are split by purpose with fixed constants,
so adding a purpose never changes the draws of the others. The model, the corruption and
the loss terms draw with them on the whole batch: under `jit` the step is written for the
global batch, so a draw of shape [B, ...] is the global batch's draw however the batch is
sharded (JAX's partitionable Threefry computes each element from its global position).

Under `pmap` each device holds only its rows; `device_rows_keys` gives it keys whose
draws of a [B_device, ...] shape are its rows of the global [B, ...] draw, so pmap on N
devices draws what one device draws. That is a custom PRNG implementation over Threefry
(`define_prng_impl`) that keeps the device's first row in its key data: draws whose
leading axis is the device's batch are computed for the global batch and sliced (N times
the work of the device's own draws, a small part of a step); other shapes are drawn whole,
the same on every device.
"""

import functools

import jax
import jax.extend.random as jex_random
import jax.numpy as jnp

PURPOSES = {"noise": 0, "dropout": 1, "latent": 2, "loss": 3}
_THREEFRY = jex_random.threefry_prng_impl


def step_keys(train_key: jax.Array, step: jax.Array) -> dict[str, jax.Array]:
    """purpose -> the key of that purpose at `step` (int32 scalar)."""
    step_key = jax.random.fold_in(train_key, step)
    return {name: jax.random.fold_in(step_key, i) for name, i in PURPOSES.items()}


@functools.cache
def _rows_impl(local_rows: int, total_rows: int):
    """Threefry whose key data is (k0, k1, first row); see the module docstring."""

    def seed(s):
        return jnp.concatenate([_THREEFRY.seed(s), jnp.zeros((1,), jnp.uint32)])

    def split(data, shape):
        keys = _THREEFRY.split(data[:2], shape)
        return jnp.concatenate([keys, jnp.broadcast_to(data[2:], (*shape, 1))], axis=-1)

    def fold_in(data, value):
        return jnp.concatenate([_THREEFRY.fold_in(data[:2], value), data[2:]])

    def random_bits(data, bit_width, shape):
        if not shape or shape[0] != local_rows:
            return _THREEFRY.random_bits(data[:2], bit_width, shape)
        bits = _THREEFRY.random_bits(data[:2], bit_width, (total_rows, *shape[1:]))
        return jax.lax.dynamic_slice_in_dim(bits, data[2].astype(jnp.int32), local_rows, 0)

    return jex_random.define_prng_impl(
        key_shape=(3,),
        seed=seed,
        split=split,
        random_bits=random_bits,
        fold_in=fold_in,
        name=f"aejax_rows_{local_rows}_of_{total_rows}",
        tag="rows",
    )


def rows_key(key: jax.Array, first_row, local_rows: int, total_rows: int) -> jax.Array:
    """A Threefry `key` -> a key whose draws of a [local_rows, ...] shape are rows
    [first_row, first_row + local_rows) of `key`'s draw of the [total_rows, ...] shape."""
    first_row = jnp.asarray(first_row, jnp.uint32).reshape(1)
    data = jnp.concatenate([jax.random.key_data(key), first_row])
    return jax.random.wrap_key_data(data, impl=_rows_impl(local_rows, total_rows))


def device_rows_keys(keys: dict, axis_name: str, local_rows: int) -> dict:
    """Inside `pmap`: Threefry keys -> keys that draw this device's rows of the global
    batch's draws (the device holds `local_rows` consecutive rows, in device order)."""
    total = local_rows * jax.lax.axis_size(axis_name)
    first_row = jax.lax.axis_index(axis_name) * local_rows
    return {name: rows_key(k, first_row, local_rows, total) for name, k in keys.items()}
