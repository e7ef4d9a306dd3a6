"""Performance settings of the trainer on CPU, each a config field applied explicitly.

Nothing here runs on import: the trainer calls these with the config's values, so a
notebook that imported JAX first trains the same program as a script.

- `cpu_compiler_options(config.cpu_convolutions)`: options of each compilation
  (`jax.jit(..., compiler_options=...)`, which take effect after JAX has started, unlike
  XLA_FLAGS). "eigen" (the default) runs convolutions through Eigen instead of YNNPACK,
  XLA:CPU's default on jaxlib 0.10; on the 2-core developer machine Eigen ran the conv
  VAE's training step 1.47x faster and the conv AE's 1.25x, and compiled the conv VAE
  about 0.45 s sooner (docs/BENCHMARKS_LOG.md, "Convolutions through Eigen"). Matrix
  products and reductions keep YNNPACK, XLA's default, and the compiled program equals
  the one of XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=-individual_convolution
  (tests/test_perf.py compares them). "xla" leaves XLA's defaults.
- `keep_freed_host_memory(config.keep_freed_host_memory)`: glibc's allocator keeps large
  freed buffers for reuse.
"""

import ctypes
import importlib.metadata
import os
import sys

CPU_CONVOLUTIONS = ("eigen", "xla")
_YNN_FUSION = "xla_cpu_experimental_ynn_fusion_type"
# jaxlib versions whose XLA knows the option and its enum names.
_TESTED_JAXLIB = ("0.10.",)


def cpu_compiler_options(convolutions: str, platform: str = "cpu") -> dict | None:
    """The compiler options of the `config.cpu_convolutions` setting, for `jax.jit`.

    Returns None (XLA's defaults) for "xla", off CPU, and on jaxlib versions other than
    the tested ones, whose XLA may not know the option.
    """
    if convolutions not in CPU_CONVOLUTIONS:
        raise ValueError(f"convolutions={convolutions!r}; valid: {', '.join(CPU_CONVOLUTIONS)}")
    if convolutions == "xla" or platform != "cpu":
        return None
    try:
        version = importlib.metadata.version("jaxlib")
    except importlib.metadata.PackageNotFoundError:
        return None
    if not version.startswith(_TESTED_JAXLIB):
        return None
    # XLA's default set less convolutions (the default holds INDIVIDUAL_CONVOLUTION too).
    return {_YNN_FUSION: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"}


def keep_freed_host_memory(enabled: bool = True) -> bool:
    """Lets the C allocator reuse large freed host buffers instead of returning them to the
    operating system (Linux with glibc; elsewhere nothing happens). Returns whether it did.

    XLA:CPU allocates each call's temporary buffers with malloc; glibc serves blocks over
    32 MB by mmap and unmaps them when freed, so every call touches fresh pages: for a
    step with 60 MB of temporaries (the adversarial AE, the conv VAE) about 15,000 page
    faults, 20 ms, which is as long as the step itself on 2 cores. Raising glibc's mmap
    and trim thresholds (to 1 GiB) keeps such blocks in the heap for the next call; the
    cost is that the process keeps its peak memory. This changes the whole process's
    allocator, so the trainer calls it only when `config.keep_freed_host_memory` is set
    (the default) and the devices are CPUs; the setting stays until the process ends.
    """
    if not enabled or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameters
        return bool(
            libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30)
        )
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False


def device_memory_bytes(device) -> int | None:
    """The memory of `device` in bytes: its allocator's limit on accelerators, the host's
    physical memory on CPU; None where it cannot be told."""
    if device.platform == "cpu":
        try:
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            return None
    try:
        return (device.memory_stats() or {}).get("bytes_limit")
    except Exception:  # noqa: BLE001 - some backends do not report their memory
        return None
