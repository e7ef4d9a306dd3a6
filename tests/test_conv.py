"""Convolutional AE and VAE: shapes on 28x28x1, 32x32x3 and 8x8x1 inputs, the seeds'
architecture, the crop for sizes not divisible by 2^depth, config errors and a short run."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from aejax import train
from aejax.config import base_config
from aejax.errors import ConfigError
from aejax.models import VAE, build_model
from aejax.models.conv import upsample2

SHAPES = [(28, 28, 1), (32, 32, 3), (8, 8, 1)]


def _apply(name, shape, compute=False, **fields):
    """Builds model `name` for `shape` and runs it on a batch of 2: abstractly (shapes only,
    which keeps these tests fast) unless `compute`. Returns (x̂, aux, params, model)."""
    cfg = base_config().model
    cfg.name = name
    for k, v in fields.items():
        cfg[k] = v
    model = build_model(cfg, shape)
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(2, *shape)), jnp.float32)

    def run(x):
        variables = model.init({"params": jax.random.key(0), "latent": jax.random.key(1)}, x)
        x_hat, aux = model.apply(variables, x, train=True, rngs={"latent": jax.random.key(2)})
        return x_hat, aux, variables["params"]

    return (*(run(x) if compute else jax.eval_shape(run, x)), model)


@pytest.mark.parametrize("shape", SHAPES)
def test_seeds_conv_ae_shapes(shape):
    x_hat, aux, params, _ = _apply("conv", shape, code_activation="relu")
    h, w = -(-shape[0] // 4), -(-shape[1] // 4)  # two SAME pools: ceil(n / 4)
    assert x_hat.shape == aux["logits"].shape == (2, *shape)
    assert aux["z"].shape == (2, h, w, 32)
    c = shape[-1]
    enc = {k: v["kernel"].shape for k, v in params["encoder"].items()}
    dec = {k: v["kernel"].shape for k, v in params["decoder"].items()}
    assert enc == {"conv_0": (3, 3, c, 16), "conv_1": (3, 3, 16, 32)}
    assert dec == {"deconv_0": (3, 3, 32, 16), "deconv_out": (3, 3, 16, c)}


def test_seeds_conv_ae_values():
    x_hat, aux, _, _ = _apply("conv", (8, 8, 1), compute=True, code_activation="relu")
    assert np.all(aux["z"] >= 0)  # the ReLU code
    assert np.all((x_hat >= 0) & (x_hat <= 1))
    np.testing.assert_allclose(x_hat, jax.nn.sigmoid(aux["logits"]), rtol=1e-6)


def test_seeds_code_on_mnist_is_7x7x32():
    _, aux, _, _ = _apply("conv", (28, 28, 1))
    assert aux["z"].shape == (2, 7, 7, 32)


@pytest.mark.parametrize("shape", SHAPES)
def test_deep_conv_ae_with_bottleneck_shapes(shape):
    # Three pools: 28 -> 4 (not divisible by 8), so the decoder's 32x32 output is cropped.
    x_hat, aux, params, _ = _apply("conv", shape, features=(8, 16, 32), latent_dim=10)
    assert x_hat.shape == (2, *shape)
    assert aux["z"].shape == (2, 10)
    side = -(-shape[0] // 8)
    assert params["decoder"]["dense"]["kernel"].shape == (10, side * side * 32)


@pytest.mark.parametrize("shape", SHAPES)
def test_deep_conv_ae_spatial_code_is_cropped(shape):
    x_hat, aux, _, _ = _apply("conv", shape, features=(8, 16, 32))
    assert x_hat.shape == (2, *shape)
    assert aux["z"].shape == (2, -(-shape[0] // 8), -(-shape[1] // 8), 32)


@pytest.mark.parametrize("shape", SHAPES)
def test_conv_vae_shapes(shape):
    x_hat, aux, params, model = _apply("conv_vae", shape, latent_dim=6)
    assert isinstance(model, VAE)
    assert x_hat.shape == aux["logits"].shape == (2, *shape)
    assert aux["z"].shape == aux["mean"].shape == aux["logvar"].shape == (2, 6)
    assert params["encoder"]["dense"]["kernel"].shape[-1] == 12  # means and log-variances


def test_conv_vae_with_a_latent_feature_map():
    x_hat, aux, params, _ = _apply("conv_vae", (28, 28, 1), latent_dim=0)
    assert x_hat.shape == (2, 28, 28, 1)
    assert aux["mean"].shape == aux["z"].shape == (2, 7, 7, 32)
    assert params["encoder"]["conv_1"]["kernel"].shape == (3, 3, 16, 64)


def test_conv_vae_samples_from_its_prior():
    from aejax.sampling import sample_prior

    _, _, params, model = _apply("conv_vae", (8, 8, 1), compute=True, latent_dim=3)
    samples = sample_prior(model, {"params": params}, jax.random.key(0), 4)
    assert samples.shape == (4, 8, 8, 1)


def test_upsample2_is_nearest_neighbour():
    x = jnp.arange(4.0).reshape(1, 2, 2, 1)
    expected = [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    np.testing.assert_array_equal(upsample2(x)[0, :, :, 0], expected)


def test_upsample_conv_on_the_small_map_is_the_upsampled_conv_transpose():
    """`Upsample2ConvTranspose` against what it replaces, `ConvTranspose` of `upsample2(x)`
    (odd sizes, several channels): the same parameters from the same key, and the same
    output and gradients (for the input and both parameters) up to float rounding."""
    from jax.test_util import check_grads

    from aejax.models.layers import ConvTranspose, Upsample2ConvTranspose

    x = jax.random.normal(jax.random.key(1), (2, 7, 5, 3))
    new, ref = Upsample2ConvTranspose(4), ConvTranspose(4, (3, 3), padding="SAME")
    params = new.init(jax.random.key(0), x)
    ref_params = ref.init(jax.random.key(0), upsample2(x))
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params), strict=True):
        np.testing.assert_array_equal(a, b)
    # A nonzero bias and a kernel with no symmetry, so a misplaced tap would show.
    params = jax.tree.map(lambda p: p + jax.random.normal(jax.random.key(3), p.shape), params)
    weights = jax.random.normal(jax.random.key(4), (2, 14, 10, 4))
    new_loss = lambda p, x: jnp.sum(weights * new.apply(p, x))  # noqa: E731
    ref_loss = lambda p, x: jnp.sum(weights * ref.apply(p, upsample2(x)))  # noqa: E731
    np.testing.assert_allclose(new_loss(params, x), ref_loss(params, x), rtol=1e-5)
    np.testing.assert_allclose(
        new.apply(params, x), ref.apply(params, upsample2(x)), rtol=1e-5, atol=1e-5
    )
    for g_new, g_ref in zip(
        jax.tree.leaves(jax.grad(new_loss, argnums=(0, 1))(params, x)),
        jax.tree.leaves(jax.grad(ref_loss, argnums=(0, 1))(params, x)),
        strict=True,
    ):
        np.testing.assert_allclose(g_new, g_ref, rtol=1e-4, atol=1e-4)
    # Finite differences in float32: a loose tolerance; the comparison above is the tight one.
    check_grads(lambda x: new.apply(params, x), (x,), order=1, modes=["rev"], rtol=1e-2)


def test_upsample2_phase_kernels_by_hand():
    """The four phases' 3x3 kernels, on the output axis in (row parity, column parity, F)
    order: sums of the original kernel's taps, worked out by hand for a few taps. The
    product asks for full precision, which GPUs and TPUs would otherwise round (CPUs don't,
    so that is checked on the program)."""
    from aejax.models.layers import _upsample2_phases

    k = jax.random.normal(jax.random.key(0), (3, 3, 2, 5))
    (dot,) = [e for e in jax.make_jaxpr(_upsample2_phases)(k).eqns if "dot" in e.primitive.name]
    assert dot.params["precision"] == (jax.lax.Precision.HIGHEST,) * 2
    phases = np.asarray(_upsample2_phases(k)).reshape(3, 3, 2, 2, 2, 5)  # r s C a b F
    k = np.asarray(k)
    rtol = 1e-6
    # even row, even column: tap (1, 1) sees rows 1 and 2 and columns 1 and 2
    np.testing.assert_allclose(phases[1, 1, :, 0, 0], k[1:, 1:].sum((0, 1)), rtol=rtol)
    np.testing.assert_allclose(phases[0, 0, :, 0, 0], k[0, 0], rtol=rtol)
    np.testing.assert_array_equal(phases[2, :, :, 0, 0], 0)  # even rows: no tap 2
    # odd row, even column: tap (1, 0) sees rows 0 and 1 of column 0; row tap 2 only row 2
    np.testing.assert_allclose(phases[1, 0, :, 1, 0], k[0, 0] + k[1, 0], rtol=rtol)
    np.testing.assert_allclose(phases[2, 1, :, 1, 0], k[2, 1] + k[2, 2], rtol=rtol)
    np.testing.assert_array_equal(phases[0, :, :, 1, 0], 0)  # odd rows: no tap 0
    # odd row, odd column: the corner tap (2, 2) is the original's alone
    np.testing.assert_allclose(phases[2, 2, :, 1, 1], k[2, 2], rtol=rtol)


def test_decoder_uses_the_small_map_for_3x3_kernels_only():
    from aejax.models.conv import upsample_conv
    from aejax.models.layers import Upsample2ConvTranspose

    assert isinstance(upsample_conv(8, 3, "d"), Upsample2ConvTranspose)
    _, _, params, _ = _apply("conv", (8, 8, 1), compute=True, kernel_size=5)
    assert params["decoder"]["deconv_out"]["kernel"].shape[:2] == (5, 5)


@pytest.mark.parametrize(
    "fields, shape, message",
    [
        ({}, (64,), "needs image examples"),
        ({"features": ()}, (8, 8, 1), "features=.* non-empty"),
        ({"latent_dim": -1}, (8, 8, 1), "latent_dim=-1"),
        ({"kernel_size": 0}, (8, 8, 1), "kernel_size=0"),
        ({"dropout": 0.5}, (8, 8, 1), "not supported by conv"),
        ({"activation": "relu6"}, (8, 8, 1), "activation='relu6' is not a known"),
    ],
)
def test_conv_config_errors(fields, shape, message):
    cfg = base_config().model
    cfg.name = "conv"
    for k, v in fields.items():
        cfg[k] = v
    with pytest.raises(ConfigError, match=message):
        build_model(cfg, shape)


def test_conv_ae_trains_end_to_end(tmp_path):
    config = tiny_config(
        **{"model.name": "conv", "model.code_activation": "relu", "optimizer.learning_rate": 3e-3},
        loss="bce",
        num_steps=40,
        eval_every_steps=40,
        checkpoint_every_steps=40,
        log_every_steps=10,
    )
    _, metrics = train.train_and_evaluate(config, str(tmp_path))
    assert {"test/loss", "test/bce", "test/mse_per_pixel"} <= set(metrics)
    with open(tmp_path / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f if "train/loss" in line]
    assert rows[-1]["train/loss"] < rows[0]["train/loss"]
    assert (tmp_path / "reconstructions.png").exists()
