"""Runs in a subprocess with 8 simulated CPU devices (see test_parallel.py): trains the plain
AE, the VAE and the contractive AE for 20 steps on 1 device, with jit on 8 and with pmap on
8, resumes a sharded run from its checkpoint, trains a batch-norm AE with jit (pmap must
refuse it), and prints the largest parameter differences as JSON. With --distributed PORT ID
it is one of two processes with 4 devices each."""

import json
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import tiny_config  # noqa: E402

from aejax import train  # noqa: E402
from aejax.errors import ConfigError  # noqa: E402

MODELS = {
    "ae": {},
    "vae": {"model.name": "vae", "loss": "bce + kl_normal"},
    "cae": {"loss": "mse + 0.1*contractive", "model.activation": "sigmoid"},
}


def config(model, **kw):
    return tiny_config(
        num_steps=20,
        batch_size=32,
        checkpoint_every_steps=10,
        eval_every_steps=20,
        log_every_steps=5,
        steps_per_dispatch=5,
        **MODELS[model],
        **kw,
    )


def params(workdir):
    state = train.Experiment.from_workdir(workdir).restore_or_init(require_checkpoint=True)
    return jax.tree.map(np.asarray, state.params)


def max_diff(a, b):
    return max(
        float(np.max(np.abs(x - y)))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def main(root):
    out = {}
    for model in MODELS:
        base = os.path.join(root, model)
        train.train_and_evaluate(config(model, num_devices=1), base + "-1")
        reference = params(base + "-1")
        for mode in ("jit", "pmap"):
            workdir = f"{base}-{mode}8"
            train.train_and_evaluate(config(model, parallelism=mode), workdir)
            out[f"{model}/{mode}"] = max_diff(reference, params(workdir))
        # Resume from a checkpoint written by a sharded run (jit on 8 devices).
        workdir = base + "-resumed"
        train.train_and_evaluate(config(model, parallelism="pmap"), workdir, stop_after=10)
        train.train_and_evaluate(config(model), workdir)
        out[f"{model}/resumed"] = max_diff(reference, params(workdir))
    # Batch norm (with dropout): jit on 8 devices normalizes over the global batch, as one
    # device does; pmap, where each device would normalize its own share, is refused before
    # anything is written. With SGD: parameters whose effect batch norm subtracts again (the
    # biases before it, here also the linear code's bias) have a gradient of exactly zero,
    # and Adam would turn its rounding noise, which differs with the device count, into
    # steps of +-lr.
    bn = {"model.batch_norm": True, "model.dropout": 0.2, "optimizer.name": "sgd"}
    one, jit8, pmap8 = (os.path.join(root, f"bn-{name}") for name in ("1", "jit8", "pmap8"))
    train.train_and_evaluate(config("ae", num_devices=1, **bn), one)
    train.train_and_evaluate(config("ae", **bn), jit8)
    out["bn/jit"] = max_diff(params(one), params(jit8))
    try:
        train.train_and_evaluate(config("ae", parallelism="pmap", **bn), pmap8)
        out["bn/pmap_refused"] = False
    except ConfigError as e:
        out["bn/pmap_refused"] = "batch_norm" in str(e) and not os.path.exists(pmap8)
    # kl_sparsity's mean activation is over the whole batch too.
    sparse = config("ae", parallelism="pmap", loss="mse + kl_sparsity")
    sparse.model.code_activation = "sigmoid"
    try:
        train.train_and_evaluate(sparse, os.path.join(root, "kl-pmap8"))
        out["kl/pmap_refused"] = False
    except ConfigError as e:
        out["kl/pmap_refused"] = "'kl_sparsity'" in str(e)
    out["devices"] = jax.device_count()
    print(json.dumps(out))


def distributed(root, port, process_id):
    cfg = config("ae")
    cfg.distributed.update(
        enabled=True,
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=2,
        process_id=process_id,
        cpu_collectives=True,
    )
    train.train_and_evaluate(cfg, os.path.join(root, "ae-2proc"))
    print(
        json.dumps(
            {
                "devices": jax.device_count(),
                "local": jax.local_device_count(),
                "process": jax.process_index(),
            }
        )
    )


def reference(root):
    """The AE on one device and on this process's 8 devices (jit), for `compare`."""
    train.train_and_evaluate(config("ae", num_devices=1), os.path.join(root, "ae-1"))
    train.train_and_evaluate(config("ae"), os.path.join(root, "ae-8"))
    print(json.dumps({"devices": jax.device_count()}))


def compare(root):
    one = params(os.path.join(root, "ae-1"))
    diffs = {
        "2proc_vs_1dev": max_diff(one, params(os.path.join(root, "ae-2proc"))),
        "8dev_vs_1dev": max_diff(one, params(os.path.join(root, "ae-8"))),
    }
    print(json.dumps(diffs))


if __name__ == "__main__":
    if sys.argv[2:3] == ["--distributed"]:
        distributed(sys.argv[1], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[2:3] == ["--reference"]:
        reference(sys.argv[1])
    elif sys.argv[2:3] == ["--compare"]:
        compare(sys.argv[1])
    else:
        main(sys.argv[1])
