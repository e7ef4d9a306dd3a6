"""What a Keras user reaches for: RMSprop and Adadelta (and Adam's ε), kernel initializers
by name, losses averaged over pixels, clipped Gaussian noise, a conv decoder written layer
by layer, the 2-D latent's manifold figure and the presets of Keras' autoencoder tutorial,
each against hand-computed numbers or an independent computation."""

import os
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from conftest import tiny_config
from jax.test_util import check_grads

from aejax import config as config_lib
from aejax import corruption, losses, plots, report
from aejax.config import base_config, validate
from aejax.errors import ConfigError
from aejax.models import build_model
from aejax.models.layers import DenseStack
from aejax.optim import make_optimizer
from aejax.train import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _keras_config(preset):
    return config_lib.load_config(f"keras_tutorial:{preset}")


def _optimizer(**fields):
    cfg = base_config().optimizer
    cfg.schedule = "constant"
    for k, v in fields.items():
        cfg[k] = v
    return make_optimizer(cfg, total_steps=10)


def _updates(tx, grads):
    """The updates of `tx` for a sequence of gradients (arrays), from params of zeros."""
    params = jnp.zeros_like(grads[0])
    state = tx.init(params)
    out = []
    for g in grads:
        u, state = tx.update(g, state, params)
        out.append(np.asarray(u))
    return out


GRADS = [np.array([0.5, -2.0, 1e-3], np.float32), np.array([-1.0, 0.25, 3.0], np.float32)]


def test_rmsprop_by_hand_with_eps_outside_the_square_root():
    """v_t = ρ v + (1 − ρ) g², update = −lr g / (√v_t + ε), as in Keras and PyTorch; ε = 0.1
    is large enough that ε inside the root would differ by far more than the tolerance."""
    lr, rho, eps = 0.01, 0.8, 0.1
    got = _updates(_optimizer(name="rmsprop", learning_rate=lr, rho=rho, eps=eps), GRADS)
    v = np.zeros(3)
    for g, u in zip(GRADS, got, strict=True):
        v = rho * v + (1 - rho) * g.astype(np.float64) ** 2
        np.testing.assert_allclose(u, -lr * g / (np.sqrt(v) + eps), rtol=1e-5)


def test_adadelta_by_hand():
    """Zeiler (2012): E[g²] ← ρ E[g²] + (1 − ρ) g²; Δ = g √(E[Δ²] + ε) / √(E[g²] + ε);
    E[Δ²] ← ρ E[Δ²] + (1 − ρ) Δ²; update = −lr Δ (Keras' lr 1.0, ρ 0.95, ε 1e-7)."""
    lr, rho, eps = 1.0, 0.95, 1e-7
    got = _updates(_optimizer(name="adadelta", learning_rate=lr, rho=rho, eps=eps), GRADS)
    eg, ed = np.zeros(3), np.zeros(3)
    for g, u in zip(GRADS, got, strict=True):
        g = g.astype(np.float64)
        eg = rho * eg + (1 - rho) * g**2
        delta = g * np.sqrt(ed + eps) / np.sqrt(eg + eps)
        ed = rho * ed + (1 - rho) * delta**2
        np.testing.assert_allclose(u, -lr * delta, rtol=1e-4)


def test_adam_eps_reaches_the_update_and_the_default_is_optax_adam():
    # Adam's first update is −lr · g / (|g| + ε): bias correction makes m̂ = g, v̂ = g².
    (u,) = _updates(_optimizer(name="adam", learning_rate=0.1, eps=1.0), GRADS[:1])
    np.testing.assert_allclose(u, -0.1 * GRADS[0] / (np.abs(GRADS[0]) + 1.0), rtol=1e-5)
    # The default config's Adam is bit for bit optax.adam with its own default ε.
    default = _updates(_optimizer(), GRADS)
    plain = _updates(optax.adam(base_config().optimizer.learning_rate), GRADS)
    for a, b in zip(default, plain, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("eps", 0.0, "config.optimizer.eps=0.0 must be a finite number > 0"),
        ("eps", float("nan"), "config.optimizer.eps=nan must be"),
        ("rho", 1.0, "config.optimizer.rho=1.0 must be a finite number in [0, 1)"),
        ("rho", "abc", "config.optimizer.rho='abc' must be"),
    ],
)
def test_bad_optimizer_fields_are_refused(field, value, message):
    config = ml_collections.ConfigDict(tiny_config().to_dict(), type_safe=False)
    config.optimizer[field] = value
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        validate(config)


def _kernels(params):
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in flat if "kernel" in str(p[-1])}


def test_glorot_uniform_kernels_of_an_mlp_lie_in_keras_bounds():
    """Glorot uniform: U(−a, a), a = √(6 / (fan_in + fan_out)); its std is a / √3."""
    cfg = base_config().model
    cfg.encoder_widths, cfg.kernel_init = (256, 32), "glorot_uniform"
    model = build_model(cfg, (28, 28, 1))
    params = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
    kernels = _kernels(params)
    assert len(kernels) == 4
    for name, w in kernels.items():
        a = np.sqrt(6.0 / (w.shape[0] + w.shape[1]))
        assert np.abs(w).max() <= a, name
        np.testing.assert_allclose(w.std(), a / np.sqrt(3), rtol=0.03, err_msg=name)


def test_he_normal_kernels_of_a_conv_model_have_std_sqrt_2_over_fan_in():
    """The encoder's convs and the mirrored decoder's transposed convs (computed on the
    small map) both take the initializer: std √(2 / (k·k·C_in))."""
    cfg = base_config().model
    cfg.name, cfg.features, cfg.kernel_init = "conv", (32, 64), "he_normal"
    model = build_model(cfg, (28, 28, 1))
    params = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
    kernels = _kernels(params)
    big = {k: w for k, w in kernels.items() if w.size >= 9000}
    assert len(big) == 2, list(kernels)  # encoder conv_1 (3x3x32x64), decoder deconv_0
    for name, w in big.items():
        fan_in = w.shape[0] * w.shape[1] * w.shape[2]
        np.testing.assert_allclose(w.std(), np.sqrt(2.0 / fan_in), rtol=0.05, err_msg=name)


def test_the_default_initializer_is_flax_own_default():
    """A stack of plain `nn.Dense` layers (flax's lecun_normal by default) under the same
    names and key gives the same parameters bit for bit."""

    class Plain(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Dense(16, name="dense_0")(x)
            return nn.Dense(4, name="dense_1")(nn.relu(x))

    x = jnp.ones((2, 8))
    ours = DenseStack((16, 4)).init(jax.random.key(3), x)
    plain = Plain().init(jax.random.key(3), x)
    jax.tree.map(np.testing.assert_array_equal, ours, plain)


def test_an_unknown_initializer_is_one_line_with_a_suggestion():
    cfg = base_config().model
    cfg.kernel_init = "glorot_unifrom"
    with pytest.raises(ConfigError) as e:
        build_model(cfg, (8, 8, 1))
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith("config.model.kernel_init='glorot_unifrom' is not a known")
    assert "did you mean 'glorot_uniform'?" in message


def test_mean_terms_by_hand_and_against_keras_formula():
    x = jnp.array([[0.0, 1.0, 1.0, 0.0], [1.0, 0.5, 0.0, 0.25]])
    x_hat = jnp.array([[0.5, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.75]])
    # (0.25 + 0 + 1 + 0) / 4 and (0 + 0.25 + 0 + 0.25) / 4
    np.testing.assert_allclose(losses.mse_mean(x=x, x_hat=x_hat), [0.3125, 0.125], rtol=1e-6)
    logits = jnp.array([[-2.0, 3.0, 0.5, -0.1], [4.0, -1.0, -3.0, 0.0]])
    p = np.asarray(jax.nn.sigmoid(logits), np.float64)
    keras = -np.mean(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)  # Keras' formula
    np.testing.assert_allclose(losses.bce_mean(x=x, logits=logits), keras, rtol=1e-5)
    np.testing.assert_allclose(
        losses.bce_mean(x=x, logits=logits) * 4, losses.bce(x=x, logits=logits), rtol=1e-6
    )
    check_grads(lambda lg: losses.bce_mean(x=x, logits=lg), (logits,), order=2)
    check_grads(lambda xh: losses.mse_mean(x=x, x_hat=xh), (x_hat,), order=2)


def test_loss_units_name_each_reduction():
    units = losses.loss_units
    assert units({"bce_mean": 1.0, "l1_activity": 1e-4}, 784) == (
        "per example; bce_mean averaged over 784 features"
    )
    assert units({"bce": 1.0, "kl_normal": 1.0}, 64) == "per example; bce summed over 64 features"
    assert units({"kl_normal": 1.0}, 64) == "per example"

    @losses.loss_term(features="mean")
    def my_l1_mean(*, x, x_hat, **_):
        return jnp.mean(jnp.abs(x - x_hat).reshape(len(x), -1), axis=1)

    losses.register_loss("test_keras:my_l1_mean", my_l1_mean)
    assert units({"test_keras:my_l1_mean": 1.0, "mse": 2.0}, 10) == (
        "per example; mse summed over 10 features; test_keras:my_l1_mean averaged over 10 features"
    )
    with pytest.raises(ConfigError, match="features='median' must be 'sum' or 'mean'"):
        losses.register_loss("test_keras:median", my_l1_mean, features="median")


def test_a_run_says_its_loss_units_and_its_mean_term_is_per_pixel(tmp_path, capsys):
    config = tiny_config(loss="mse_mean")
    _, metrics = train_and_evaluate(config, str(tmp_path / "run"))
    out = capsys.readouterr().out
    assert "(loss: per example; mse_mean averaged over 64 features)" in out
    # An independent per-pixel number of the evaluation: the same mean squared error.
    np.testing.assert_allclose(metrics["test/mse_mean"], metrics["test/mse_per_pixel"], rtol=1e-5)
    np.testing.assert_allclose(
        metrics["test/mse_mean"] * 64, metrics["test/sq_err_per_image"], rtol=1e-5
    )


def test_clipped_gaussian_noise_is_keras_np_clip():
    x = jax.random.uniform(jax.random.key(0), (16, 8, 8, 1))
    key = jax.random.key(1)
    noise = np.asarray(jax.random.normal(key, x.shape))
    cfg = base_config().corruption
    cfg.name, cfg.sigma = "gaussian", 0.5
    plain = np.asarray(corruption.get_corruption(cfg)(key, x))
    cfg.clip = True
    clipped = np.asarray(corruption.get_corruption(cfg)(key, x))
    np.testing.assert_allclose(plain, np.asarray(x) + 0.5 * noise, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(clipped, np.clip(np.asarray(x) + 0.5 * noise, 0, 1), atol=1e-6)
    assert plain.min() < 0 and plain.max() > 1  # so the clip was needed
    cfg.name, cfg.fraction = "masking", 0.2
    with pytest.raises(ConfigError, match="applies to the gaussian corruption, not 'masking'"):
        corruption.get_corruption(cfg)


# Keras' conv AE, parameter by parameter (3x3 kernels: 9 · C_in · C_out + C_out):
# encoder Conv16 160, Conv8 1160, Conv8 584; decoder Conv8 584, Conv8 584, Conv16 (valid)
# 1168, Conv1 145: 4385 in all.
KERAS_CONV_LAYERS = ("conv:8", "up", "conv:8", "up", "conv:16:valid", "up")


def _keras_conv_forward(params, x):
    """Keras' conv AE written directly with lax convolutions (an independent forward)."""

    def conv(p, h, padding="SAME"):
        dn = ("NHWC", "HWIO", "NHWC")
        return (
            jax.lax.conv_general_dilated(h, p["kernel"], (1, 1), padding, None, None, dn)
            + (p["bias"])
        )

    def pool(h):
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "SAME")

    def up(h):
        return jnp.repeat(jnp.repeat(h, 2, 1), 2, 2)

    e, d = params["encoder"], params["decoder"]
    h = pool(jax.nn.relu(conv(e["conv_0"], x)))
    h = pool(jax.nn.relu(conv(e["conv_1"], h)))
    h = pool(jax.nn.relu(conv(e["conv_2"], h)))  # [B, 4, 4, 8]
    h = up(jax.nn.relu(conv(d["conv_0"], h)))
    h = up(jax.nn.relu(conv(d["conv_2"], h)))
    h = up(jax.nn.relu(conv(d["conv_4"], h, "VALID")))  # 16 -> 14 -> 28
    return jax.nn.sigmoid(conv(d["conv_out"], h))


def test_keras_conv_autoencoder_shapes_parameters_and_values():
    model = build_model(_keras_config("conv").model, (28, 28, 1))
    x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1))
    variables = model.init(jax.random.key(1), x)
    assert sum(v.size for v in jax.tree.leaves(variables)) == 4385
    assert model.apply(variables, x, method="encode").shape == (3, 4, 4, 8)
    x_hat, _ = model.apply(variables, x)
    assert x_hat.shape == (3, 28, 28, 1)
    want = _keras_conv_forward(variables["params"], x)
    np.testing.assert_allclose(x_hat, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "preset, count",
    [
        ("simple", 784 * 32 + 32 + 32 * 784 + 784),  # 50992
        ("sparse", 50992),
        # 784-128-64-32-64-128-784 with biases
        ("deep", 100480 + 8256 + 2080 + 2112 + 8320 + 101136),
        ("conv", 4385),
        # Conv32 320, Conv32 9248; Conv32 9248, Conv32 9248, Conv1 289
        ("denoising", 320 + 9248 + 9248 + 9248 + 289),
        # Dense 256 200960; z_mean and z_log_var 2 · 514; Dense 256 768; Dense 784 201488
        ("vae", 200960 + 1028 + 768 + 201488),
    ],
)
def test_keras_tutorial_presets_have_keras_parameter_counts(preset, count):
    config = _keras_config(preset)
    validate(config)
    model = build_model(config.model, (28, 28, 1))
    variables = model.init(
        {"params": jax.random.key(0), "latent": jax.random.key(1)}, jnp.zeros((1, 28, 28, 1))
    )
    assert sum(v.size for v in jax.tree.leaves(variables["params"])) == count
    losses.parse_recipe(config.loss)


def test_an_unknown_keras_preset_is_refused():
    with pytest.raises(ValueError, match="unknown preset 'cnn'; valid: simple, sparse"):
        _keras_config("cnn")


def test_a_conv_vae_decodes_its_latent_vector_through_written_layers():
    """latent 2 -> Dense to the 7x7x8 code map (2·392 + 392) -> Conv 8, up, Conv 4, up ->
    Conv 1: 1176 + 584 + 292 + 37 decoder parameters, a 28x28x1 output."""
    cfg = base_config().model
    cfg.name, cfg.features, cfg.latent_dim = "conv_vae", (16, 8), 2
    cfg.decoder_layers = ("conv:8", "up", "conv:4", "up")
    model = build_model(cfg, (28, 28, 1))
    x = jnp.zeros((2, 28, 28, 1))
    variables = model.init({"params": jax.random.key(0), "latent": jax.random.key(1)}, x)
    decoder = variables["params"]["decoder"]
    assert sum(v.size for v in jax.tree.leaves(decoder)) == 1176 + 584 + 292 + 37
    x_hat, logits = model.apply(variables, jnp.ones((3, 2)), method="decode")
    assert x_hat.shape == logits.shape == (3, 28, 28, 1)


@pytest.mark.parametrize(
    "layers, message",
    [
        (("conv:8", "pool"), "cannot read 'pool'"),
        (("conv:0", "up"), "cannot read 'conv:0'"),
        (("conv:8:full", "up"), "cannot read 'conv:8:full'"),
        ((8, "up"), "cannot read 8"),
        (("up", "conv:8:valid", "up"), "decodes the 7x7 code to 24x24, smaller than the 28x28"),
    ],
)
def test_bad_decoder_layers_are_one_line(layers, message):
    cfg = base_config().model
    cfg.name, cfg.features = "conv", (16, 32)
    cfg.decoder_layers = layers
    with pytest.raises(ConfigError, match=message) as e:
        build_model(cfg, (28, 28, 1))
    assert "\n" not in str(e.value)


def test_manifold_codes_are_the_normal_quantiles():
    codes = report.generative.manifold_codes(15)
    q05 = 1.6448536  # Φ⁻¹(0.95)
    assert codes.shape == (15, 15, 2)
    np.testing.assert_allclose(codes[0, 0], [-q05, q05], rtol=1e-5)  # top left
    np.testing.assert_allclose(codes[14, 14], [q05, -q05], rtol=1e-5)  # bottom right
    np.testing.assert_allclose(codes[7, 7], [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(codes[3, 4], [codes[0, 4, 0], codes[3, 0, 1]])  # a grid


def test_a_2d_vae_report_has_the_manifold_and_others_do_not(tmp_path):
    common = {"model.name": "vae", "loss": "bce + kl_normal", "num_steps": 4}
    for name, widths in (("vae2", (32, 2)), ("vae3", (32, 3))):
        config = tiny_config(**common, **{"model.encoder_widths": widths})
        train_and_evaluate(config, str(tmp_path / name))
    out = report.write_report(str(tmp_path / "vae2"), sections=("generation",), iwae_k=2)
    gen = out["sections"]["generation"]
    np.testing.assert_allclose(gen["manifold_quantiles"][0], -1.6448536, rtol=1e-5)
    assert "elbo" in gen  # the bounds did not replace the manifold's numbers
    png = tmp_path / "vae2" / "report" / "manifold.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "manifold.png" in (tmp_path / "vae2" / "report" / "report.md").read_text()
    report.write_report(str(tmp_path / "vae3"), sections=("generation",), iwae_k=2)
    assert not (tmp_path / "vae3" / "report" / "manifold.png").exists()


def test_the_colour_bar_ticks_sit_at_the_centres_of_their_blocks():
    labels = np.arange(10).repeat(3)
    xy = np.random.default_rng(0).normal(size=(30, 2))
    fig = plots.scatter_figure(xy, labels, "t", "x", "y")
    points = fig.axes[0].collections[0]
    bar = points.colorbar
    ticks = np.asarray(bar.get_ticks())
    np.testing.assert_array_equal(ticks, np.arange(10))
    edges = np.asarray(points.norm.boundaries)
    np.testing.assert_allclose((edges[:-1] + edges[1:]) / 2, ticks)
    # each label's points have the colour of its block
    colours = points.to_rgba(labels)
    np.testing.assert_allclose(colours[::3], points.cmap(np.arange(10)))
    plots.plt.close(fig)
