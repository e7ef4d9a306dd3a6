"""VAE and β-VAE: the KL and Gaussian likelihood terms, the reparameterization, the Gaussian
latent model, sampling from the prior, the configs and a short end-to-end run."""

import json
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from conftest import tiny_config
from jax.test_util import check_grads

from aejax import losses, train
from aejax.config import base_config, load_config
from aejax.errors import ConfigError
from aejax.models import VAE, build_model
from aejax.models.vae import reparameterize
from aejax.sampling import sample_prior


def _vae(shape=(8, 8, 1), **fields):
    cfg = base_config().model
    cfg.name = "vae"
    cfg.encoder_widths = (16, 4)
    for k, v in fields.items():
        cfg[k] = v
    model = build_model(cfg, shape)
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(3, *shape)), jnp.float32)
    variables = model.init({"params": jax.random.key(0), "latent": jax.random.key(1)}, x)
    return model, variables, x


# --- loss terms ---------------------------------------------------------------------------


def test_kl_normal_hand_computed():
    mean = jnp.array([[0.0, 0.0], [1.0, -2.0]])
    logvar = jnp.array([[0.0, 0.0], [math.log(2.0), 0.0]])
    # Row 2: ½[(1 + 2 − 1 − log 2) + (4 + 1 − 1 − 0)] = 3 − ½ log 2.
    expected = [0.0, 3.0 - 0.5 * math.log(2.0)]
    np.testing.assert_allclose(losses.kl_normal(mean=mean, logvar=logvar), expected, rtol=1e-6)


def test_kl_normal_sums_over_latent_axes():
    mean, logvar = jnp.ones((2, 3, 3, 4)), jnp.zeros((2, 3, 3, 4))
    np.testing.assert_allclose(losses.kl_normal(mean=mean, logvar=logvar), [18.0, 18.0])


def test_kl_normal_gradients():
    rng = np.random.default_rng(0)
    mean = jnp.asarray(rng.normal(size=(3, 4)))
    logvar = jnp.asarray(rng.normal(size=(3, 4)))
    f = lambda m, s: losses.kl_normal(mean=m, logvar=s)
    check_grads(f, (mean, logvar), order=2, modes=["rev", "fwd"], rtol=1e-2)


def test_kl_normal_matches_monte_carlo():
    rng = np.random.default_rng(1)
    mean = jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)
    logvar = jnp.asarray(rng.normal(scale=0.5, size=(3, 5)), jnp.float32)
    n = 200_000
    eps = jax.random.normal(jax.random.key(0), (n, *mean.shape))
    z = mean + jnp.exp(0.5 * logvar) * eps
    # log q(z) − log p(z), the constants cancel: −½ε² − ½logvar + ½z².
    log_ratio = jnp.sum(-0.5 * jnp.square(eps) - 0.5 * logvar + 0.5 * jnp.square(z), axis=-1)
    mc = jnp.mean(log_ratio, axis=0)
    stderr = jnp.std(log_ratio, axis=0) / math.sqrt(n)
    analytic = losses.kl_normal(mean=mean, logvar=logvar)
    assert np.all(np.abs(mc - analytic) < 4 * stderr + 1e-4), (mc, analytic, stderr)


def test_gaussian_nll_hand_computed():
    x = jnp.array([[0.0, 1.0], [1.0, 1.0]])
    x_hat = jnp.array([[0.5, 1.0], [0.0, 0.0]])
    v = 0.5
    per_pixel = lambda d: 0.5 * (d * d / v + math.log(2 * math.pi * v))
    expected = [per_pixel(0.5) + per_pixel(0.0), 2 * per_pixel(1.0)]
    out = losses.gaussian_nll(x=x, x_hat=x_hat, variance=v)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    # With unit variance it is half the squared error plus D/2 log 2π.
    unit = losses.gaussian_nll(x=x, x_hat=x_hat)
    mse = losses.mse(x=x, x_hat=x_hat)
    np.testing.assert_allclose(unit, 0.5 * mse + math.log(2 * math.pi), rtol=1e-6)


def test_gaussian_nll_learned_hand_computed():
    x = jnp.array([[0.0, 1.0]])
    x_hat = jnp.array([[0.5, 1.0]])
    s = jnp.array([[math.log(0.5), 0.0]])  # variances 0.5 and 1
    expected = 0.5 * (0.25 / 0.5 + math.log(0.5) + 0.0 + 0.0 + 2 * math.log(2 * math.pi))
    out = losses.gaussian_nll_learned(x=x, x_hat=x_hat, x_logvar=s)
    np.testing.assert_allclose(out, [expected], rtol=1e-6)
    # A learned log-variance equal to log v gives the fixed-variance term.
    fixed = losses.gaussian_nll(x=x, x_hat=x_hat, variance=0.5)
    learned = losses.gaussian_nll_learned(x=x, x_hat=x_hat, x_logvar=jnp.full((1, 2), -math.log(2)))
    np.testing.assert_allclose(learned, fixed, rtol=1e-6)


def test_gaussian_nll_gradients():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(size=(3, 4)))
    x_hat = jnp.asarray(rng.uniform(size=(3, 4)))
    s = jnp.asarray(rng.normal(size=(3, 4)))
    fixed = lambda p: losses.gaussian_nll(x=x, x_hat=p, variance=0.3)
    check_grads(fixed, (x_hat,), order=2, modes=["rev", "fwd"], rtol=1e-2)
    learned = lambda p, s: losses.gaussian_nll_learned(x=x, x_hat=p, x_logvar=s)
    check_grads(learned, (x_hat, s), order=2, modes=["rev", "fwd"], rtol=1e-2)


def test_recipe_weight_is_beta():
    weights = losses.parse_recipe("bce + 4.0*kl_normal")
    assert weights == {"bce": 1.0, "kl_normal": 4.0}
    x = jnp.full((2, 3), 0.5)
    tensors = dict(x=x, logits=jnp.zeros((2, 3)), mean=jnp.ones((2, 2)), logvar=jnp.zeros((2, 2)))
    total, metrics = losses.total_loss(weights, **tensors)
    np.testing.assert_allclose(total, metrics["bce"] + 4.0 * metrics["kl_normal"], rtol=1e-6)
    np.testing.assert_allclose(metrics["kl_normal"], 1.0)  # ½(1 + 1) per example


def test_learned_variance_term_needs_a_model_that_learns_it():
    with pytest.raises(ConfigError, match="needs x_logvar"):
        losses.check_inputs({"gaussian_nll_learned": 1.0}, {"x", "x_hat", "mean", "logvar"})


# --- the reparameterization ---------------------------------------------------------------


def test_reparameterized_gradient_matches_analytic_linear_gaussian():
    """E_{z~N(μ, σ²)} ‖x − Wz‖² = ‖x − Wμ‖² + Σ_j σ_j² ‖W_:j‖²: the Monte Carlo gradient
    through z = μ + σ·ε must match the gradient of this closed form."""
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(6,)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    mean = jnp.asarray(rng.normal(size=(3,)), jnp.float32)
    logvar = jnp.asarray(rng.normal(scale=0.5, size=(3,)), jnp.float32)
    n = 100_000

    def monte_carlo(mean, logvar, w):
        z = reparameterize(jax.random.key(0), jnp.broadcast_to(mean, (n, 3)), logvar)
        return jnp.mean(jnp.sum(jnp.square(x - z @ w.T), axis=-1))

    def analytic(mean, logvar, w):
        return jnp.sum(jnp.square(x - w @ mean)) + jnp.sum(jnp.exp(logvar) * jnp.sum(w * w, 0))

    mc = jax.grad(monte_carlo, argnums=(0, 1, 2))(mean, logvar, w)
    exact = jax.grad(analytic, argnums=(0, 1, 2))(mean, logvar, w)
    for a, b in zip(mc, exact, strict=True):
        np.testing.assert_allclose(a, b, rtol=0.03, atol=0.03 * float(jnp.max(jnp.abs(b))))


def test_reparameterize_has_the_right_moments():
    mean = jnp.full((200_000, 2), jnp.array([1.0, -2.0]))
    logvar = jnp.full((200_000, 2), jnp.log(jnp.array([0.25, 4.0])))
    z = reparameterize(jax.random.key(3), mean, logvar)
    np.testing.assert_allclose(jnp.mean(z, 0), [1.0, -2.0], atol=0.02)
    np.testing.assert_allclose(jnp.var(z, 0), [0.25, 4.0], rtol=0.02)


# --- the model ----------------------------------------------------------------------------


def test_vae_outputs_and_aux():
    model, variables, x = _vae()
    assert isinstance(model, VAE)
    x_hat, aux = model.apply(variables, x, train=True, rngs={"latent": jax.random.key(5)})
    assert x_hat.shape == x.shape
    assert {k: v.shape for k, v in aux.items()} == {
        "z": (3, 4),
        "mean": (3, 4),
        "logvar": (3, 4),
        "logits": x.shape,
        "x_hat": x.shape,
        "z_samples": (3, 1, 4),
        "logits_samples": (3, 1, *x.shape[1:]),
    }
    np.testing.assert_array_equal(aux["z_samples"][:, 0], aux["z"])
    np.testing.assert_array_equal(aux["logits_samples"][:, 0], aux["logits"])
    # The encoder's last layer holds the means and the log-variances.
    assert variables["params"]["encoder"]["stack"]["dense_1"]["kernel"].shape == (16, 8)
    np.testing.assert_allclose(aux["mean"], model.apply(variables, x, method="encode"))


def test_same_key_same_z_other_key_other_z():
    model, variables, x = _vae()
    run = lambda k: model.apply(variables, x, train=True, rngs={"latent": jax.random.key(k)})[1]
    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a["z"], b["z"])
    assert not np.allclose(a["z"], c["z"])
    np.testing.assert_array_equal(a["mean"], c["mean"])


def test_eval_samples_with_a_key_else_uses_the_mean():
    model, variables, x = _vae()
    key = {"latent": jax.random.key(0)}
    without = model.apply(variables, x, train=False)[1]
    np.testing.assert_array_equal(without["z"], without["mean"])
    sampled = model.apply(variables, x, train=False, rngs=key)[1]
    assert not np.allclose(sampled["z"], sampled["mean"])
    det_model, det_vars, _ = _vae(sample_at_eval=False)
    det = det_model.apply(det_vars, x, train=False, rngs=key)[1]
    np.testing.assert_array_equal(det["z"], det["mean"])


@pytest.mark.parametrize("kind, shape", [("scalar", ()), ("pixel", (8, 8, 1))])
def test_learned_likelihood_variance(kind, shape):
    model, variables, x = _vae(x_logvar=kind)
    assert variables["params"]["x_logvar"].shape == shape
    _, aux = model.apply(variables, x, train=False)
    assert aux["x_logvar"].shape == x.shape


def test_sample_prior_same_key_same_samples():
    model, variables, _ = _vae()
    a = sample_prior(model, variables, jax.random.key(0), 5)
    b = sample_prior(model, variables, jax.random.key(0), 5)
    c = sample_prior(model, variables, jax.random.key(1), 5)
    assert a.shape == (5, 8, 8, 1)
    assert np.all((a >= 0) & (a <= 1))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_sample_prior_needs_a_prior():
    cfg = base_config().model
    model = build_model(cfg, (8, 8, 1))
    variables = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
    with pytest.raises(ConfigError, match="no prior"):
        sample_prior(model, variables, jax.random.key(0), 2)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("x_logvar", "diag", "x_logvar='diag' is not known"),
        ("code_activation", "relu", "takes no code activation"),
        ("num_samples", 0, "num_samples=0 must be an integer >= 1"),
        ("num_samples", 2.5, "num_samples=2.5 must be an integer >= 1"),
    ],
)
def test_bad_vae_fields(field, value, message):
    # Not type-safe, like a config written by hand: the builder checks the values itself.
    cfg = ml_collections.ConfigDict(base_config().model.to_dict(), type_safe=False)
    cfg.name = "vae"
    cfg[field] = value
    with pytest.raises(ConfigError, match=message):
        build_model(cfg, (8, 8, 1))


# --- configs and training -----------------------------------------------------------------


def _load_config(file, preset):
    return load_config(f"{file}:{preset}")


@pytest.mark.parametrize(
    "file, preset, shape",
    [
        ("vae.py", "digits", (8, 8, 1)),
        ("vae.py", "mnist", (28, 28, 1)),
        ("vae.py", "beta", (28, 28, 1)),
        ("vae.py", "gaussian", (28, 28, 1)),
        ("vae.py", "iwae", (28, 28, 1)),
        ("conv_vae.py", "digits", (8, 8, 1)),
        ("conv_vae.py", "mnist", (28, 28, 1)),
    ],
)
def test_vae_configs_build(file, preset, shape):
    config = _load_config(file, preset)
    weights = losses.parse_recipe(config.loss)
    losses.term_options(config.loss_options, weights)
    model = build_model(config.model, shape)
    x = jax.ShapeDtypeStruct((2, *shape), jnp.float32)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(x.shape)))
    _, aux = jax.eval_shape(lambda v, x: model.apply(v, x), variables, x)
    losses.check_inputs(weights, {"x", "x_in", "encode", *aux})
    if preset == "beta":
        assert weights["kl_normal"] == 4.0


@pytest.mark.parametrize(
    "loss, extra",
    [
        ("bce + kl_normal", {}),
        ("gaussian_nll_learned + 0.5*kl_normal", {"model.x_logvar": "scalar"}),
        ("iwae_bce", {"model.num_samples": 3}),  # the IWAE: the k-sample bound
    ],
)
def test_vae_trains_end_to_end(tmp_path, loss, extra):
    config = tiny_config(
        **{"model.name": "vae", "loss": loss, "optimizer.learning_rate": 3e-3, **extra},
        num_steps=40,
        eval_every_steps=40,
        checkpoint_every_steps=40,
        log_every_steps=10,
    )
    _, metrics = train.train_and_evaluate(config, str(tmp_path))
    terms = losses.parse_recipe(loss)
    assert {"test/loss", "test/mse_per_pixel"} | {f"test/{t}" for t in terms} <= set(metrics)
    assert np.isfinite(metrics["test/loss"])
    with open(tmp_path / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f if "train/loss" in line]
    assert all(f"train/{t}" in r for r in rows for t in terms)
    assert rows[-1]["train/loss"] < rows[0]["train/loss"]
