"""`config.model.kernel_init="torch"`: PyTorch's default initialization of nn.Linear and
nn.Conv2d, kernels and biases U(±1/√fan_in), in every layer of the MLP, conv and VAE-GAN
families; the other initializers keep zero biases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.config import base_config
from aejax.models import build_model


def _layers(params, path=()):
    """(path, kernel, bias) of every layer with both."""
    if isinstance(params, dict) and "kernel" in params and "bias" in params:
        return [("/".join(path), np.asarray(params["kernel"]), np.asarray(params["bias"]))]
    out = []
    for key, value in params.items() if isinstance(params, dict) else ():
        out += _layers(value, (*path, key))
    return out


def _check_torch_uniform(layers, min_layers):
    assert len(layers) >= min_layers, [p for p, _, _ in layers]
    for path, kernel, bias in layers:
        bound = 1.0 / np.sqrt(np.prod(kernel.shape[:-1]))
        assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound, path
        # Uniform on ±bound: standard deviation bound/√3, checked where there are enough draws.
        if kernel.size >= 4096:
            np.testing.assert_allclose(kernel.std(), bound / np.sqrt(3), rtol=0.05, err_msg=path)
        if bias.size >= 256:
            np.testing.assert_allclose(bias.std(), bound / np.sqrt(3), rtol=0.15, err_msg=path)
        assert np.abs(bias).max() > bound / 2, path  # drawn, not zeros


def _params(cfg, shape):
    model = build_model(cfg, shape)
    return model.init(jax.random.key(0), jnp.zeros((2, *shape)))["params"]


def test_mlp_vae_layers_are_drawn_as_pytorchs():
    cfg = base_config().model
    cfg.name, cfg.encoder_widths, cfg.kernel_init = "vae", (512, 16), "torch"
    _check_torch_uniform(_layers(_params(cfg, (28, 28, 1))), min_layers=4)


def test_conv_layers_and_the_vae_gan_discriminator_are_drawn_as_pytorchs():
    cfg = base_config().model
    cfg.name, cfg.features, cfg.kernel_init = "conv", (32, 64), "torch"
    conv = _layers(_params(cfg, (28, 28, 1)))
    _check_torch_uniform(conv, min_layers=4)
    cfg = base_config().model
    cfg.name, cfg.encoder_widths, cfg.kernel_init = "vae_gan", (64, 8), "torch"
    gan = _layers(_params(cfg, (8, 8, 1)))
    assert any(p.startswith("discriminator") for p, _, _ in gan), [p for p, _, _ in gan]
    _check_torch_uniform(gan, min_layers=6)


@pytest.mark.parametrize("name", ["lecun_normal", "glorot_uniform"])
def test_other_initializers_keep_zero_biases(name):
    cfg = base_config().model
    cfg.name, cfg.encoder_widths, cfg.kernel_init = "vae_gan", (64, 8), name
    for path, _, bias in _layers(_params(cfg, (8, 8, 1))):
        assert not bias.any(), path
