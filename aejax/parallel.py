"""Data parallelism: one step body compiled with `jax.jit` over a 1-D `data` mesh, or with
`jax.pmap`; on one process or many (`jax.distributed`).

Both give the result of one device with the same global batch: every random draw is the
global batch's draw from (seed, step), see `aejax.train.keys`, and gradients are averaged
over the whole global batch.
(Model state such as batch norm's, and batch-level loss terms such as `kl_sparsity`, need
`jit` on several devices: the trainer refuses them under `pmap`, where each device would
see its own share.)
"""

import dataclasses
import socket
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from aejax.errors import AejaxError, ConfigError

AXIS = "data"
MODES = ("jit", "pmap")


def initialize_distributed(cfg) -> None:
    """Starts `jax.distributed` when `config.distributed.enabled` asks for it.

    An empty coordinator address lets JAX find the cluster itself (TPU pods, SLURM, Open
    MPI); on one machine name 127.0.0.1:PORT, the number of processes and this process's id.
    """
    if not cfg.enabled or jax.distributed.is_initialized():
        return
    kwargs = {}
    if cfg.coordinator_address:
        n, i = cfg.num_processes, cfg.process_id
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"config.distributed.num_processes={n!r} must be an integer >= 1")
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
            raise ConfigError(
                f"config.distributed.process_id={i!r} must be an integer in [0, {n}) "
                f"(config.distributed.num_processes={n})"
            )
        kwargs = dict(
            coordinator_address=cfg.coordinator_address,
            num_processes=cfg.num_processes,
            process_id=cfg.process_id,
        )
    timeout = cfg.get("timeout_s", 300)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ConfigError(f"config.distributed.timeout_s={timeout!r} must be an integer >= 1")
    if cfg.coordinator_address and cfg.process_id != 0:
        # JAX aborts the whole process, with a C++ stack trace, when the coordinator cannot
        # be reached: find out first, and say so in one line.
        wait_for_coordinator(cfg.coordinator_address, timeout)
    if cfg.cpu_collectives:  # CPU devices of several processes talk through gloo
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(**kwargs, initialization_timeout=timeout)


def wait_for_coordinator(address: str, timeout_s: float) -> None:
    """Waits until something accepts TCP connections at `address` (HOST:PORT), retrying for
    up to `timeout_s` seconds; ConfigError if the address is malformed, AejaxError if
    nothing answers in time."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"config.distributed.coordinator_address={address!r} must be HOST:PORT")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
                return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise AejaxError(
                    f"cannot reach the coordinator at {address} within {timeout_s:g} s "
                    f"(config.distributed.timeout_s): {e.strerror or e}; start process 0 "
                    "first, or check the address"
                ) from None
        time.sleep(0.5)


@dataclasses.dataclass
class DataParallel:
    """Where the train state and the batches live, and how the chunk of steps is compiled.

    Attributes:
      mode: "jit" (a `NamedSharding` over a 1-D mesh: state replicated, batch sharded) or
        "pmap" (state copied to every device, `lax.pmean` over the device axis).
      devices: the global devices used, in mesh order.
    """

    mode: str
    devices: list

    @classmethod
    def create(cls, mode: str, num_devices: int, global_batch: int) -> "DataParallel":
        """Checks the mode and that the global batch divides over the devices."""
        if mode not in MODES:
            raise ConfigError(
                f"config.parallelism={mode!r} is not known; valid: {', '.join(MODES)}"
            )
        devices = jax.devices()
        if num_devices < 0 or num_devices > len(devices):
            raise ConfigError(
                f"config.num_devices={num_devices} must be in 0..{len(devices)} (0: all)"
            )
        if num_devices and jax.process_count() > 1 and num_devices != len(devices):
            raise ConfigError("config.num_devices must be 0 (all) when running on many hosts")
        devices = devices[: num_devices or None]
        if global_batch % len(devices):
            raise ConfigError(
                f"config.batch_size={global_batch} does not divide over {len(devices)} devices"
            )
        return cls(mode, devices)

    @property
    def num_devices(self) -> int:
        return len(self.devices)

    @property
    def platform(self) -> str:
        """The devices' platform: "cpu", "gpu" or "tpu"."""
        return self.devices[0].platform

    @property
    def mesh(self) -> Mesh:
        return Mesh(np.array(self.devices), (AXIS,))

    def _local_devices(self) -> list:
        return [d for d in self.devices if d.process_index == jax.process_index()]

    def _global(self, local: np.ndarray, spec: P, global_shape) -> jax.Array:
        sharding = NamedSharding(self.mesh, spec)
        return jax.make_array_from_process_local_data(sharding, local, global_shape)

    def replicate(self, tree: Any) -> Any:
        """Host or single-device values -> the layout the compiled chunk takes."""
        tree = jax.device_get(tree)  # every process holds the same values
        if self.mode == "jit":
            return jax.tree.map(lambda x: self._global(np.asarray(x), P(), np.shape(x)), tree)
        n = len(self._local_devices())
        stack = lambda x: np.broadcast_to(np.asarray(x), (n, *np.shape(x)))
        return jax.tree.map(
            lambda x: self._global(stack(x), P(AXIS), (self.num_devices, *np.shape(x))), tree
        )

    def unreplicate(self, tree: Any) -> Any:
        """The compiled chunk's replicated values -> host numpy values (one copy)."""
        if self.mode == "pmap":
            tree = jax.tree.map(lambda x: x.addressable_shards[0].data[0], tree)
        return jax.device_get(tree)

    def shard_batches(self, global_rows: np.ndarray) -> jax.Array:
        """[K, B, ...] rows of the global batches (indices or examples): each process passes
        the same array and keeps only its devices' part. Returns the chunk's input layout."""
        per_device = global_rows.shape[1] // self.num_devices
        local_ids = [self.devices.index(d) for d in self._local_devices()]
        lo, hi = min(local_ids) * per_device, (max(local_ids) + 1) * per_device
        return self.shard_local(global_rows[:, lo:hi])

    def shard_local(self, local_rows: np.ndarray) -> jax.Array:
        """[K, B_local, ...] rows of this process's part of each global batch (its devices'
        consecutive share, as `shard_batches` cuts it) -> the chunk's input layout."""
        k, b_local = local_rows.shape[:2]
        n_local = len(self._local_devices())
        per_device = b_local // n_local
        global_shape = (k, per_device * self.num_devices, *local_rows.shape[2:])
        if self.mode == "jit":
            return self._global(local_rows, P(None, AXIS), global_shape)
        # pmap: [K, B_local] -> [devices, K, B_device]
        local = local_rows.reshape(k, n_local, per_device, *local_rows.shape[2:]).swapaxes(0, 1)
        return self._global(
            np.ascontiguousarray(local),
            P(AXIS),
            (self.num_devices, k, per_device, *local_rows.shape[2:]),
        )

    def compile_chunk(
        self, make_chunk: Callable[[str | None], Callable], compiler_options: dict | None = None
    ) -> Callable:
        """Compiles `make_chunk(axis_name)`, a function (state, data, inputs, key) ->
        (state, metrics), for this mode, with XLA `compiler_options` under jit (pmap takes
        none). Under pmap the metrics come back per device."""
        if self.mode == "jit":
            return jax.jit(make_chunk(None), donate_argnums=0, compiler_options=compiler_options)
        pmapped = jax.pmap(
            make_chunk(AXIS),
            axis_name=AXIS,
            in_axes=(0, 0, 0, None),
            donate_argnums=0,
            devices=self.devices if jax.process_count() == 1 else None,
        )
        return lambda state, train_x, inputs, key: _first_device(
            pmapped(state, train_x, inputs, key)
        )


def _first_device(out):
    state, metrics = out
    return state, jax.tree.map(lambda x: x.addressable_shards[0].data[0], metrics)
