"""The zoo's shared parts, numpy only: the MNIST readers (IDX, binarized `.amat`) and the
JSON both sides write (benchmarks/zoo_peer.py for pythae, experiments/zoo.py for aejax),
which experiments/zoo_table.py reads. Importing it needs neither aejax nor PyTorch.
"""

import gzip
import json
import math
import os
import platform
import sys

import numpy as np

# The keys of the zoo's JSON (experiments/zoo.py writes the same, through `result`).
KEYS = tuple(
    "library model source hyperparameters epochs batch_size learning_rate train_examples "
    "seconds_per_epoch steady_seconds_per_epoch epoch_seconds timing recon_mse_per_pixel "
    "recon_sse_per_image recon_code test_images samples sampler nll note machine".split()
)


def read_idx(path: str) -> np.ndarray:
    """An IDX file (optionally gzipped) as a uint8 array [n, d1, ...]: the big-endian magic
    0x0000 0x08 ndim (unsigned bytes), ndim big-endian int32 sizes, then the data."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    ndim = raw[3]
    dims = tuple(int(v) for v in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(raw) - offset != math.prod(dims):
        raise ValueError(f"{path}: {len(raw) - offset} data bytes, header says {dims}")
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(dims)


def read_amat(path: str) -> np.ndarray:
    """Larochelle's binarized MNIST `.amat` text (optionally gzipped) as uint8 [n, 784]: one
    image a line, 784 '0'/'1' separated by single spaces (1568 bytes a line)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = np.frombuffer(f.read(), np.uint8)
    if raw.size % 1568:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of 1568-byte lines")
    return raw.reshape(-1, 1568)[:, 0::2] - ord("0")


def load(data_dir: str, binarized: bool) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) float32 [n, 1, 28, 28] in [0, 1]: MNIST (60k/10k) or binarized (50k/10k)."""
    if binarized:
        f = lambda s: read_amat(
            os.path.join(data_dir, "binarized_mnist", f"binarized_mnist_{s}.amat.gz")
        )
        train, test = f("train"), f("test")
    else:
        f = lambda s: read_idx(os.path.join(data_dir, "mnist", f"{s}-images-idx3-ubyte.gz"))
        train, test = f("train"), f("t10k")
    scale = 1.0 if binarized else 255.0
    return tuple((a.reshape(-1, 1, 28, 28) / scale).astype(np.float32) for a in (train, test))


def result(**fields) -> dict:
    """The zoo's JSON object: every key of `KEYS` (None where not given), in that order."""
    extra = set(fields) - set(KEYS)
    if extra:
        raise ValueError(f"unknown zoo fields {sorted(extra)}")
    return {k: fields.get(k) for k in KEYS}


def write(out: dict, path: str) -> None:
    """Writes the zoo's JSON to `path` and prints its numbers in one line."""
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    shown = ("model", "seconds_per_epoch", "recon_mse_per_pixel", "recon_sse_per_image", "nll")
    print(json.dumps({k: out[k] for k in shown}))


def machine(threads: int) -> dict:
    """What the times were measured on: CPU count, the load average, threads used."""
    load_avg = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpus": os.cpu_count(),
        "load_average": load_avg,
        "threads": threads,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
