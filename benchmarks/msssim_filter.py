"""Times the `msssim` term's value and gradient ([100, 28, 28, 1], jitted) with its filter
(shifted, weighted sums) and with the same filter as two depthwise convolutions, each in
the same process, alternating; prints the medians and the largest difference of values.

    python benchmarks/msssim_filter.py [--window 3] [--rounds 5]
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from aejax.losses import msssim as ms


def conv_filter(v: jax.Array, window: jax.Array) -> jax.Array:
    """The separable window as two depthwise convolutions (the reference formulation)."""
    size, c = window.shape[0], v.shape[-1]
    pad, spec = size // 2, ("NHWC", "HWIO", "NHWC")
    rows = jnp.broadcast_to(window.reshape(size, 1, 1, 1), (size, 1, 1, c))
    cols = jnp.broadcast_to(window.reshape(1, size, 1, 1), (1, size, 1, c))
    v = jax.lax.conv_general_dilated(
        v, rows, (1, 1), ((pad, pad), (0, 0)), dimension_numbers=spec, feature_group_count=c
    )
    return jax.lax.conv_general_dilated(
        v, cols, (1, 1), ((0, 0), (pad, pad)), dimension_numbers=spec, feature_group_count=c
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    x = jax.random.uniform(jax.random.key(0), (100, 28, 28, 1))
    y = jax.random.uniform(jax.random.key(1), (100, 28, 28, 1))
    shifted = ms._filter
    steps, values = {}, {}
    for name, filt in (("shifted sums", shifted), ("depthwise conv", conv_filter)):
        ms._filter = filt  # traced now: each jitted function keeps its own filter
        loss = lambda y: jnp.mean(ms.msssim(x=x, x_hat=y, window_size=args.window))  # noqa: E731
        steps[name] = jax.jit(jax.value_and_grad(loss))
        values[name], _ = jax.block_until_ready(steps[name](y))
    ms._filter = shifted
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.calls):
                out = step(y)
            jax.block_until_ready(out)
            times[name].append((time.perf_counter() - start) / args.calls * 1e3)
    for name, ts in times.items():
        print(f"{name}: {statistics.median(ts):.1f} ms (min {min(ts):.1f}, max {max(ts):.1f})")
    a, b = times["depthwise conv"], times["shifted sums"]
    print(f"ratio conv / shifted: {statistics.median(a) / statistics.median(b):.2f}")
    diff = abs(float(values["shifted sums"]) - float(values["depthwise conv"]))
    print(f"|value difference|: {diff:.2e}")


if __name__ == "__main__":
    main()
