"""The machine's float32 matrix-product throughput: the ceiling for the MLP variants' steps.

Times a square [n, n] x [n, n] product (n = 2048 by default) in JAX (jitted), NumPy and,
when installed, PyTorch (at --threads), and the products of the reference MLPs' shapes at
batch 128 in JAX; prints GFLOP/s (2·m·k·n over the median of 5 windows).

    python benchmarks/matmul_peak.py [--n 2048] [--threads 2]
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np


def gflops(fn, flop: float, calls: int = 20, windows: int = 5) -> float:
    fn()
    seconds = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        seconds.append((time.perf_counter() - start) / calls)
    return flop / statistics.median(seconds) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch's intra-op threads")
    args = parser.parse_args()
    n = args.n
    rng = np.random.default_rng(0)
    a, b = (rng.random((n, n), np.float32) for _ in range(2))
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    dot = jax.jit(jnp.dot)
    print(f"[{n}, {n}] x [{n}, {n}], GFLOP/s:")
    print(f"  jax   {gflops(lambda: dot(ja, jb).block_until_ready(), 2 * n**3):.1f}")
    print(f"  numpy {gflops(lambda: a @ b, 2 * n**3):.1f}")
    try:
        import torch
    except ImportError:
        print("  torch not installed")
    else:
        torch.set_num_threads(args.threads)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        print(f"  torch {gflops(lambda: ta @ tb, 2 * n**3):.1f} ({args.threads} threads)")
    print("The MLPs' layer products at batch 128 (forward), jax, GFLOP/s:")
    for m, k in ((784, 512), (512, 256), (784, 256), (256, 32)):
        x, w = jnp.ones((128, m)), jnp.ones((m, k))
        rate = gflops(lambda x=x, w=w: dot(x, w).block_until_ready(), 2 * 128 * m * k, calls=200)
        print(f"  [128, {m}] x [{m}, {k}]  {rate:.1f}")


if __name__ == "__main__":
    main()
