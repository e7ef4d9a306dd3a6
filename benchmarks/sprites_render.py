"""Times rendering dSprites' grid with numpy (the reference renderer of
tests/test_sprites_render.py) and with the jitted renderer that `RenderedSprites.images`
uses (all at once in chunks of 4,096, and 64 a call as the disentanglement metrics call
it), on the same random factor combinations, in one process: rounds alternate between
them, and the medians give images/s of each, the ratios to numpy and how many pixels
differ.

    python benchmarks/sprites_render.py [--n 16384] [--rounds 3]
"""

import argparse
import importlib.util
import os
import statistics
import time

import numpy as np

from aejax.data import sprites


def numpy_renderer():
    """The numpy reference renderer, read from the test that checks the jitted one."""
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "test_sprites_render.py")
    spec = importlib.util.spec_from_file_location("test_sprites_render", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.numpy_render


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16384)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = sprites.RenderedSprites()
    factors = data.sample_factors(args.n, np.random.default_rng(0))

    def batched(f):
        out = np.empty((len(f), sprites.SIZE, sprites.SIZE, 1), np.float32)
        for i in range(0, len(f), 64):
            out[i : i + 64] = data.images(f[i : i + 64])
        return out

    renderers = {"numpy": numpy_renderer(), "jax": data.images, "jax, 64 a call": batched}
    batched(factors[:64]), data.images(factors)  # compile
    times, images = {name: [] for name in renderers}, {}
    for _ in range(args.rounds):
        for name, render in renderers.items():
            start = time.perf_counter()
            images[name] = render(factors)
            times[name].append(time.perf_counter() - start)
    rate = {name: args.n / statistics.median(ts) for name, ts in times.items()}
    for name, ts in times.items():
        print(
            f"{name}: {rate[name]:,.0f} images/s (median of {args.rounds} rounds, "
            f"{min(ts):.2f}-{max(ts):.2f} s per {args.n} images)"
        )
    for name in ("jax", "jax, 64 a call"):
        differ = int(np.sum(images[name][..., 0] != images["numpy"]))
        print(
            f"{name} / numpy: {rate[name] / rate['numpy']:.1f} times the images/s; "
            f"{differ} of {images['numpy'].size} pixels differ"
        )


if __name__ == "__main__":
    main()
