"""VAE-GAN: its terms against NumPy and by hand (pythae's gates included), their gradients,
the model's declarations and features, bad settings, and a short training on digits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from aejax import config as config_lib
from aejax import losses, train
from aejax.errors import ConfigError
from aejax.losses import vaegan
from aejax.models import build_model, interface

LOG2 = float(np.log(2.0))


def _np_bce_real(logit):
    """−log σ(l) in float64."""
    return -np.log(1.0 / (1.0 + np.exp(-np.asarray(logit, np.float64))))


def _np_bce_fake(logit):
    """−log(1 − σ(l)) in float64."""
    return -np.log(1.0 - 1.0 / (1.0 + np.exp(-np.asarray(logit, np.float64))))


def _logits(seed=0, n=6, scale=1.0):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(scale * rng.normal(size=n), jnp.float32) for _ in range(3)]


def test_feature_nll_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 4, 3, 3, 5))
    out = vaegan.feature_nll(feat_real=jnp.asarray(a), feat_recon=jnp.asarray(b))
    np.testing.assert_allclose(out, 0.5 * ((a - b) ** 2).reshape(4, -1).sum(1), rtol=1e-5)


@pytest.mark.parametrize("r", [0.0, 1.0, 0.5])
def test_gan_terms_match_numpy(r):
    real, recon, prior = _logits()
    never = {"margin": 1e6}  # no gate: the values are the cross-entropies themselves
    expected = _np_bce_real(real) + _np_bce_fake(prior) + r * _np_bce_fake(recon)
    kw = dict(d_real=real, d_recon=recon, d_prior=prior, reconstructed=r)
    np.testing.assert_allclose(vaegan.gan_discriminator(**kw, **never), expected, rtol=1e-5)
    np.testing.assert_allclose(vaegan.gan_decoder(**kw, **never), -expected, rtol=1e-5)
    # At chance (every logit 0) the discriminator's loss is (2 + r)·log 2.
    zero = jnp.zeros(3)
    at_chance = vaegan.gan_discriminator(d_real=zero, d_recon=zero, d_prior=zero, reconstructed=r)
    np.testing.assert_allclose(at_chance, (2 + r) * LOG2, rtol=1e-6)


@pytest.mark.parametrize(
    ("real", "prior", "expected"),
    [
        # b_r = −log σ(4) = 0.018 < 0.68 − 0.4: the discriminator wins; its update stops.
        (4.0, 0.0, (0.0, 1.0)),
        (0.0, -4.0, (0.0, 1.0)),
        # b_r = −log σ(−1) = 1.31 > 0.68 + 0.4: the discriminator loses; the decoder stops.
        (-1.0, 0.0, (1.0, 0.0)),
        (0.0, 1.0, (1.0, 0.0)),
        # Both would stop: both go on (pythae).
        (4.0, 1.0, (1.0, 1.0)),
        # Within the margin (b = log 2 = 0.69): both update.
        (0.0, 0.0, (1.0, 1.0)),
    ],
)
def test_gates_by_hand(real, prior, expected):
    got = vaegan.gates(jnp.full(5, real), jnp.full(5, prior), 0.68, 0.4)
    assert tuple(float(g) for g in got) == expected


def test_a_closed_gate_zeroes_the_gradient_and_keeps_the_value():
    real, recon, prior = jnp.full(4, 4.0), jnp.zeros(4), jnp.zeros(4)  # discriminator stopped
    f = lambda real, prior: jnp.mean(
        vaegan.gan_discriminator(d_real=real, d_recon=recon, d_prior=prior)
    )
    g_real, g_prior = jax.grad(f, argnums=(0, 1))(real, prior)
    np.testing.assert_array_equal(g_real, 0.0)
    np.testing.assert_array_equal(g_prior, 0.0)
    expected = _np_bce_real(4.0) + 2 * LOG2
    np.testing.assert_allclose(f(real, prior), expected, rtol=1e-6)
    # The decoder's gate is open there: its gradient is the ungated one.
    d = jax.grad(lambda p: jnp.mean(vaegan.gan_decoder(d_real=real, d_recon=recon, d_prior=p)))
    np.testing.assert_allclose(d(prior), -0.5 / 4, rtol=1e-6)  # −σ(0)/B
    feat = jnp.ones((4, 3))
    nll = lambda f: jnp.sum(
        vaegan.feature_nll_decoder(
            feat_real=feat, feat_recon=f, d_real=jnp.full(4, -1.0), d_prior=prior
        )
    )
    np.testing.assert_array_equal(jax.grad(nll)(jnp.zeros((4, 3))), 0.0)  # decoder stopped
    np.testing.assert_allclose(nll(jnp.zeros((4, 3))), 6.0)


def test_gradients():
    real, recon, prior = _logits(seed=1, scale=0.3)  # within the margin: both gates open
    rng = np.random.default_rng(2)
    a, b = (jnp.asarray(rng.normal(size=(3, 7)), jnp.float32) for _ in range(2))
    opts = dict(reconstructed=1.0)
    check_grads(
        lambda r, c, p: vaegan.gan_discriminator(d_real=r, d_recon=c, d_prior=p, **opts),
        (real, recon, prior),
        order=1,
        modes=("rev",),
        atol=1e-2,
        rtol=1e-2,
    )
    check_grads(
        lambda c, p: vaegan.gan_decoder(d_real=real, d_recon=c, d_prior=p, **opts),
        (recon, prior),
        order=1,
        modes=("rev",),
        atol=1e-2,
        rtol=1e-2,
    )
    check_grads(
        lambda b: vaegan.feature_nll(feat_real=a, feat_recon=b),
        (b,),
        order=2,
        atol=1e-2,
        rtol=1e-2,
    )


def _model(**fields):
    config = config_lib.load_config("vae_gan:digits")
    for k, v in fields.items():
        config.model[k] = v
    return build_model(config.model, (8, 8, 1))


def test_the_model_declares_its_posterior_and_prior_and_gives_the_features():
    model = _model(discriminator_layers=("dense:16:relu", "dense:8:tanh"), reconstruction_layer=2)
    assert interface.posterior_of(model) == "gaussian"
    assert interface.prior_of(model) == "standard_normal"
    x = jax.random.uniform(jax.random.key(0), (5, 8, 8, 1))
    v = model.init({"params": jax.random.key(1), "latent": jax.random.key(2)}, x)
    assert set(v["params"]) == {"vae", "discriminator"}
    assert set(v["params"]["vae"]) == {"encoder", "decoder"}
    x_hat, aux = model.apply(v, x, rngs={"latent": jax.random.key(3)}, train=True)
    assert aux["feat_real"].shape == aux["feat_recon"].shape == (5, 8)
    assert aux["d_real"].shape == aux["d_recon"].shape == aux["d_prior"].shape == (5,)
    assert aux["x_prior"].shape == x.shape and aux["z_prior"].shape == (5, 8)
    # The features of layer 2 are the tanh layer's outputs: a hand forward pass.
    p = v["params"]["discriminator"]
    h = jax.nn.relu(x.reshape(5, -1) @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
    h = jnp.tanh(h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"])
    np.testing.assert_allclose(aux["feat_real"], h, rtol=1e-5, atol=1e-6)
    logit = (h @ p["Dense_2"]["kernel"] + p["Dense_2"]["bias"])[:, 0]
    np.testing.assert_allclose(aux["d_real"], logit, rtol=1e-5, atol=1e-6)
    # −1 (pythae's default) reads the output layer: the probability σ(logit).
    top = _model(discriminator_layers=("dense:16:relu",), reconstruction_layer=-1)
    vt = top.init({"params": jax.random.key(1), "latent": jax.random.key(2)}, x)
    _, aux = top.apply(vt, x)
    np.testing.assert_allclose(aux["feat_real"][:, 0], jax.nn.sigmoid(aux["d_real"]), rtol=1e-6)
    samples = model.apply(v, 7, rngs={"latent": jax.random.key(4)}, method="generate")
    assert samples.shape == (7, 8, 8, 1)


def test_a_conv_vae_with_a_latent_map_gets_prior_draws_of_its_shape():
    model = _model(vae_base="conv_vae", features=(4, 6), latent_dim=0)
    x = jnp.zeros((3, 8, 8, 1))
    # Shapes only (no compilation): the conv layers would cost seconds here.
    rngs = {"params": jax.random.key(1), "latent": jax.random.key(2)}
    v = jax.eval_shape(lambda: model.init(rngs, x))
    _, aux = jax.eval_shape(lambda v: model.apply(v, x, rngs=rngs, train=True), v)
    assert aux["z"].shape == aux["z_prior"].shape == (3, 2, 2, 6)
    assert aux["x_prior"].shape == x.shape and aux["feat_real"].shape == (3, 2, 2, 64)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(reconstruction_layer=4), "reconstruction_layer=4 must be an integer in 1..3"),
        (dict(reconstruction_layer=0), "reconstruction_layer=0 must be"),
        (dict(discriminator_layers=("dense:0",)), "cannot read 'dense:0'"),
        (dict(discriminator_layers=("dense:8", "conv:4")), "conv layers must come before"),
        (dict(discriminator_layers=("conv:4",) * 4), "gets a 1-pixel map"),
        (dict(discriminator_layers=("dense:8:swish",)), "swish"),
        (dict(vae_base="vq"), "vae_base='vq' is not known"),
        (dict(num_samples=3), "num_samples must be 1"),
    ],
)
def test_bad_settings_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        _model(**fields)


def test_bad_term_options_are_refused():
    weights = {name: 1.0 for name in ("gan_discriminator", "gan_decoder")}
    with pytest.raises(ConfigError, match=r"gan_decoder.reconstructed=2.0 must be in \[0, 1\]"):
        losses.term_options({"gan_decoder": {"reconstructed": 2.0}}, weights)
    with pytest.raises(ConfigError, match="gan_discriminator.margin=-1 must be >= 0"):
        losses.term_options({"gan_discriminator": {"margin": -1}}, weights)
    for name in ("feature_nll_decoder", "gan_discriminator", "gan_decoder"):
        assert losses.is_batch_term(name)
    assert not losses.is_batch_term("feature_nll")


def test_vae_gan_trains_on_digits(tmp_path):
    config = config_lib.load_config("vae_gan:digits")
    config.num_epochs, config.num_steps = 0, 60
    config.eval_every_steps = config.checkpoint_every_steps = 60
    config.log_every_steps = config.steps_per_dispatch = 30
    config.progress_bar = False
    exp = train.Experiment.from_config(config, str(tmp_path / "probe"))
    before = exp.evaluate(exp.init_state())
    state, after = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert int(state.step) == 60
    # The reconstructions approach the images, and the discriminator tells real images from
    # decoded ones better than at the start (about (2 + r)·log 2 = 2.08 nats there).
    assert after["test/mse_per_pixel"] < 0.6 * before["test/mse_per_pixel"], (before, after)
    assert before["test/gan_discriminator"] > 1.9
    assert after["test/gan_discriminator"] < before["test/gan_discriminator"] - 0.2, after
