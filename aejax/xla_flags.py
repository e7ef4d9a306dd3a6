"""XLA settings that aejax applies when it is imported, before JAX starts its backends.

Only one so far: on CPU, convolutions run through Eigen instead of YNNPACK. With jaxlib
0.10, XLA:CPU hands each convolution to YNNPACK by default; on the 2-core developer machine
Eigen runs the conv VAE's training step 1.47x faster and the conv AE's 1.25x, and the conv
VAE compiles about 0.45 s sooner (docs/BENCHMARKS.md, "Convolutions through Eigen"). Matrix
products keep XLA's default, and other backends ignore the flag.

JAX reads XLA_FLAGS once, when its first computation starts the backends, so the flag is
added only while they have not started. It is left alone when XLA_FLAGS already sets
YNNPACK's fusion types (the user's choice wins), when AEJAX_EIGEN_CONVOLUTIONS=0, and on
other jaxlib versions, where XLA would abort on a flag it does not know.
"""

import importlib.metadata
import os
import sys

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
EIGEN_CONVOLUTIONS = f"{YNN_FLAG}=-individual_convolution"
_TESTED_JAXLIB = ("0.10.",)  # versions whose XLA knows the flag and its "-type" form


def backends_started() -> bool:
    """Whether JAX has started its backends (after which XLA_FLAGS is read no more, and on a
    GPU, JAX holds its memory pool)."""
    if "jax" not in sys.modules:
        return False
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def prefer_eigen_convolutions() -> bool:
    """Adds `EIGEN_CONVOLUTIONS` to XLA_FLAGS when it can still take effect (see the module
    docstring). Returns whether it did."""
    flags = os.environ.get("XLA_FLAGS", "")
    if os.environ.get("AEJAX_EIGEN_CONVOLUTIONS", "1") == "0" or YNN_FLAG in flags:
        return False
    try:
        version = importlib.metadata.version("jaxlib")
    except importlib.metadata.PackageNotFoundError:
        return False
    if not version.startswith(_TESTED_JAXLIB) or backends_started():
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {EIGEN_CONVOLUTIONS}".strip()
    return True
