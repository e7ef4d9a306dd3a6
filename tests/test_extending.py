"""A researcher's own code, trained and evaluated from a config without editing aejax: a
loss term named as module:function, and a whole user module with a new model family, a
new corruption and a loss term that draws random numbers over the whole batch."""

import json
import os
import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from aejax import losses
from aejax.errors import ConfigError, DataError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

USER_MODULE = textwrap.dedent(
    '''
    import jax.numpy as jnp

    def code_l2(*, z, **_):
        """Σ_j z_j², per example."""
        return jnp.sum(jnp.square(z), axis=1)
    '''
)


def test_module_function_term_trains_from_the_command_line(tmp_path):
    """The term lives in a module outside aejax, named in the recipe as module:function."""
    (tmp_path / "my_terms.py").write_text(USER_MODULE)
    workdir = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "experiments", "train.py"),
            "--workdir",
            str(workdir),
            "--config.loss=mse + 0.01*my_terms:code_l2",
            "--config.num_steps=40",
            "--config.log_every_steps=20",
            "--config.progress_bar=false",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "train/my_terms:code_l2" in r]
    eval_rows = [r for r in rows if "test/my_terms:code_l2" in r]
    assert train_rows and eval_rows
    last = train_rows[-1]
    # The total is the recipe's weighted sum of the two logged terms.
    np.testing.assert_allclose(
        last["train/loss"], last["train/mse"] + 0.01 * last["train/my_terms:code_l2"], rtol=1e-4
    )
    assert eval_rows[-1]["test/my_terms:code_l2"] > 0


def test_register_loss_in_code():
    def code_abs(*, z, **_):
        return jnp.sum(jnp.abs(z), axis=1)

    losses.register_loss("test_code_abs", code_abs)
    try:
        weights = losses.parse_recipe("mse + 2*test_code_abs")
        z = jnp.array([[1.0, -2.0]])
        total, metrics = losses.total_loss(weights, x=z, x_hat=z + 1.0, z=z)
        np.testing.assert_allclose(metrics["test_code_abs"], 3.0)
        np.testing.assert_allclose(total, 2.0 + 2 * 3.0)
        with pytest.raises(ConfigError, match="registered already"):
            losses.register_loss("test_code_abs", lambda **_: 0)
        # A batch-level declaration is part of the registration.
        losses.register_loss("test_code_abs_batch", code_abs, batch=True)
        assert losses.is_batch_term("test_code_abs_batch")
        del losses.LOSSES["test_code_abs_batch"]
    finally:
        del losses.LOSSES["test_code_abs"]


@pytest.mark.parametrize(
    "recipe, message",
    [
        ("mse + no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("mse + math:no_such_function", "module 'math' has no function 'no_such_function'"),
    ],
)
def test_bad_module_terms(recipe, message):
    with pytest.raises(ConfigError, match=message):
        losses.parse_recipe(recipe)


# A user's module: nothing under aejax/ is edited, nothing is registered by hand.
EXTENSION_MODULE = textwrap.dedent(
    """
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from aejax.losses import loss_term


    class TiedAE(nn.Module):
        '''A tied-weights autoencoder: z = tanh(x W + b), x̂ = sigmoid(z Wᵀ + c).'''

        input_shape: tuple
        code: int

        def setup(self):
            size = 1
            for d in self.input_shape:
                size *= d
            self.w = self.param("w", nn.initializers.lecun_normal(), (size, self.code))
            self.b = self.param("b", nn.initializers.zeros, (self.code,))
            self.c = self.param("c", nn.initializers.zeros, (size,))

        def encode(self, x, *, train=False):
            return jnp.tanh(x.reshape(x.shape[0], -1) @ self.w + self.b)

        def decode(self, z, *, train=False):
            logits = (z @ self.w.T + self.c).reshape(z.shape[0], *self.input_shape)
            return jax.nn.sigmoid(logits), logits

        def __call__(self, x, *, train=False):
            z = self.encode(x, train=train)
            x_hat, logits = self.decode(z, train=train)
            return x_hat, {"z": z, "x_hat": x_hat, "logits": logits}


    def tied(cfg, input_shape):
        return TiedAE(tuple(input_shape), cfg.encoder_widths[-1])


    def cutout(key, x, *, fraction, **_):
        '''Zeroes one random band of rows per example, `fraction` of the image high.'''
        rows = x.shape[1]
        height = max(1, int(round(fraction * rows)))
        top = jax.random.randint(key, (x.shape[0], 1), 0, rows - height + 1)
        r = jnp.arange(rows)[None]
        keep = (r < top) | (r >= top + height)
        return x * keep.reshape(keep.shape + (1,) * (x.ndim - 2)).astype(x.dtype)


    @loss_term(batch=True)
    def mmd(*, z, key, bandwidth=1.0, **_):
        '''MMD² (biased, RBF kernel) between the batch's codes and as many N(0, I) samples
        drawn from the term's key; the batch value repeated per example, [B].'''
        prior = jax.random.normal(key, z.shape)

        def k(a, b):
            d = jnp.sum((a[:, None] - b[None]) ** 2, -1)
            return jnp.exp(-d / (2 * bandwidth**2 * z.shape[1]))

        value = k(z, z).mean() + k(prior, prior).mean() - 2 * k(z, prior).mean()
        return jnp.broadcast_to(value, z.shape[:1])
    """
)

EXTENSION_FLAGS = [
    "--config.model.name=my_ext:tied",
    "--config.model.encoder_widths=(8,)",
    "--config.corruption.name=my_ext:cutout",
    "--config.corruption.fraction=0.25",
    "--config.loss=mse + 2*my_ext:mmd",
    "--config.num_steps=60",
    "--config.log_every_steps=20",
    "--config.eval_every_steps=30",
    "--config.progress_bar=false",
]


def _script(name, args, tmp_path, **env):
    # The user's folder, then this tree (whose aejax an editable install of another
    # checkout would otherwise shadow).
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]), **env)
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "experiments", name), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_user_module_model_corruption_and_keyed_batch_term(tmp_path):
    """A new model family, a new corruption and a batch-level term that draws with its own
    key, all in a user module, train through experiments/train.py and are evaluated, the
    report included, through experiments/evaluate.py."""
    (tmp_path / "my_ext.py").write_text(EXTENSION_MODULE)
    workdir = tmp_path / "run"
    result = _script("train.py", ["--workdir", str(workdir), *EXTENSION_FLAGS], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "train/my_ext:mmd" in r]
    assert [r["step"] for r in train_rows] == [20, 30, 40, 60]  # a log before each eval
    first, last = train_rows[0], train_rows[-1]
    np.testing.assert_allclose(
        last["train/loss"], last["train/mse"] + 2 * last["train/my_ext:mmd"], rtol=1e-4
    )
    assert last["train/loss"] < first["train/loss"]
    assert [r for r in rows if "test/my_ext:mmd" in r]
    sections = "reconstruction,probe,denoising,compression,generation"
    args = ["--workdir", str(workdir), f"--sections={sections}"]
    result = _script("evaluate.py", args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((workdir / "report" / "report.json").read_text())
    assert report["run"]["model"] == "my_ext:tied"
    assert report["sections"]["reconstruction"]
    # The model declares no prior: the generation section says so instead of guessing.
    assert "no prior" in (workdir / "report" / "report.md").read_text()


def test_user_batch_term_is_refused_under_pmap_on_several_devices(tmp_path):
    """The term declares itself batch-level where it is defined; under pmap on two devices
    it would be each device's, so it is refused like kl_sparsity, before anything is
    written."""
    (tmp_path / "my_ext.py").write_text(EXTENSION_MODULE)
    workdir = tmp_path / "run"
    result = _script(
        "train.py",
        ["--workdir", str(workdir), *EXTENSION_FLAGS, "--config.parallelism=pmap"],
        tmp_path,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "loss term 'my_ext:mmd'" in result.stderr and "pmap" in result.stderr
    assert not workdir.exists()


def test_keyed_term_gets_its_own_key_and_matches_an_independent_computation(tmp_path):
    """The MMD term's value on a batch against numpy; the key it receives is the step key
    folded with its name, so two keyed terms never share draws."""
    (tmp_path / "my_ext_unit.py").write_text(EXTENSION_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        z = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
        key = jax.random.key(4)
        terms = losses.per_example_terms({"my_ext_unit:mmd": 1.0}, {}, {"z": z, "key": key})
        assert losses.is_batch_term("my_ext_unit:mmd")
    finally:
        sys.path.remove(str(tmp_path))
        losses.LOSSES.pop("my_ext_unit:mmd", None)
    prior = np.asarray(jax.random.normal(losses.term_key(key, "my_ext_unit:mmd"), z.shape))

    def k(a, b):
        d = ((a[:, None] - b[None]) ** 2).sum(-1)
        return np.exp(-d / (2 * 3))

    expected = k(z, z).mean() + k(prior, prior).mean() - 2 * k(z, prior).mean()
    np.testing.assert_allclose(terms["my_ext_unit:mmd"], np.full(6, expected), rtol=1e-5)
    assert not losses.is_batch_term("mse")
    data = lambda name: np.asarray(jax.random.key_data(losses.term_key(key, name)))
    assert not np.array_equal(data("a"), data("b"))


def test_registries_take_user_functions_and_refuse_clashes():
    from aejax import corruption, data, models

    fn = lambda key, x, **_: x + 1.0
    corruption.register_corruption("test_plus_one", fn)
    try:
        cfg = tiny_config(**{"corruption.name": "test_plus_one"}).corruption
        np.testing.assert_array_equal(corruption.get_corruption(cfg)(None, np.zeros(2)), 1.0)
        with pytest.raises(ConfigError, match="registered already"):
            corruption.register_corruption("test_plus_one", lambda key, x, **_: x)
    finally:
        del corruption.CORRUPTIONS["test_plus_one"]
    with pytest.raises(ConfigError, match="must be a function"):
        models.register_model("test_not_a_builder", 3)
    data.register_source("test_bad_source", lambda cfg: "not a dataset")
    try:
        with pytest.raises(DataError, match="returned a str, not an aejax.data.Dataset"):
            data.load_dataset(tiny_config(**{"data.source": "test_bad_source"}).data)
    finally:
        del data.SOURCES["test_bad_source"]


def test_a_model_without_the_interface_is_refused():
    from aejax import models

    models.register_model("test_no_decode", lambda cfg, shape: object())
    try:
        with pytest.raises(ConfigError, match="without encode, decode"):
            models.build_model(tiny_config(**{"model.name": "test_no_decode"}).model, (8,))
    finally:
        del models.MODELS["test_no_decode"]


class _EmaCodeAE(nn.Module):
    """An MLP AE that keeps an exponential moving average of its codes in a collection of
    its own ("code_ema"), updated in training mode: state beyond parameters and batch
    statistics, like a VQ-VAE's EMA codebook."""

    code: int = 4

    def setup(self):
        self.enc = nn.Dense(self.code)
        self.dec = nn.Dense(64)
        self.ema = self.variable("code_ema", "mean", lambda: jnp.zeros((self.code,)))

    def __call__(self, x, *, train=False):
        z = self.encode(x, train=train)
        if train and not self.is_initializing():
            self.ema.value = 0.9 * self.ema.value + 0.1 * jnp.mean(z, axis=0)
        x_hat, logits = self.decode(z, train=train)
        return x_hat, {"z": z, "x_hat": x_hat, "logits": logits}

    def encode(self, x, *, train=False):
        return self.enc(x.reshape(x.shape[0], -1))

    def decode(self, z, *, train=False):
        logits = self.dec(z).reshape(z.shape[0], 8, 8, 1)
        return jax.nn.sigmoid(logits), logits


def test_model_state_beyond_parameters_is_checkpointed_and_resumed_bit_exactly(tmp_path):
    """A registered model with its own mutable collection trains with no trainer change;
    its state is saved with the parameters, and a run cut off and resumed ends bit for bit
    where an uninterrupted one does, the moving average included."""
    from aejax import models, train

    models.register_model("test_ema_code", lambda cfg, shape: _EmaCodeAE())
    try:
        config = tiny_config(**{"model.name": "test_ema_code"})
        whole, _ = train.train_and_evaluate(config, str(tmp_path / "whole"))
        cut = str(tmp_path / "cut")
        train.train_and_evaluate(config, cut, stop_after=4)
        resumed, _ = train.train_and_evaluate(config, cut)
        restored = train.Experiment.from_workdir(cut).restore_or_init(require_checkpoint=True)
    finally:
        del models.MODELS["test_ema_code"]
    assert set(whole.model_state) == {"code_ema"}
    assert np.any(np.asarray(whole.model_state["code_ema"]["mean"]) != 0)  # it moved
    for a, b, c in zip(
        jax.tree.leaves(whole), jax.tree.leaves(resumed), jax.tree.leaves(restored), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
