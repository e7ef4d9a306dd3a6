"""The VampPrior VAE: its log p(z) against a scipy mixture of the encoder's posteriors at
the pseudo-inputs, its gradients, the distribution of its prior draws, its aux, refused
settings, and a short training run on digits whose likelihood bounds are checked."""

import functools
import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import scipy.special
import scipy.stats
from jax.test_util import check_grads

from aejax import config as config_lib
from aejax import likelihood, report, train
from aejax.errors import ConfigError
from aejax.evaluate import TrainedModel
from aejax.models import build_model, interface

DIGIT = (8, 8, 1)


def _build(**fields):
    """A vamp_vae for 8x8 digits: 64-16-(3 Gaussian), K = 5, with `fields` of config.model."""
    # Not type-safe, as a config file may build it: the builder's checks must catch 2.5.
    model_cfg = config_lib.load_config("vamp:digits").model.to_dict()
    cfg = ml_collections.ConfigDict(model_cfg, type_safe=False)
    cfg.encoder_widths, cfg.num_pseudo_inputs = (16, 3), 5
    for name, value in fields.items():
        cfg[name] = value
    return build_model(cfg, DIGIT)


@functools.cache
def _model(smooth=False):
    """(model, variables), built once per module: pythae's ReLU encoder and hard tanh, or a
    smooth one (tanh, sigmoid pseudo-inputs) for finite differences."""
    fields = dict(activation="tanh", pseudo_activation="sigmoid") if smooth else {}
    model = _build(**fields)
    rngs = {"params": jax.random.key(3), "latent": jax.random.key(1)}
    return model, jax.jit(model.init)(rngs, jnp.zeros((2, *DIGIT)))


@functools.cache
def _fn(model, method):
    """model.apply(variables, *args, method=method), jitted once (eager flax is slow)."""
    return jax.jit(lambda v, *args: model.apply(v, *args, method=method))


def _drawn(model, method, key, **kwargs):
    """A jitted model.apply with the "latent" rng `key` (methods that draw)."""
    apply = lambda v, key, *args: model.apply(
        v, *args, method=method, rngs={"latent": key}, **kwargs
    )
    return lambda v, *args: jax.jit(apply)(v, key, *args)


def _pseudo_inputs_numpy(variables, squash=lambda u: np.clip(u, 0.0, 1.0)):
    """u_k = φ(W_k + b) from the parameters, in numpy (pythae's Linear on one-hot inputs)."""
    p = variables["params"]["pseudo_inputs"]
    return squash(np.asarray(p["kernel"], np.float64) + np.asarray(p["bias"], np.float64))


def _components(model, variables, u):
    """The encoder's (mean, logvar) at the pseudo-inputs u, float64 numpy."""
    mean, logvar = _fn(model, "encode_gaussian")(variables, jnp.asarray(u, jnp.float32))
    return np.asarray(mean, np.float64), np.asarray(logvar, np.float64)


def _scipy_log_mixture(z, means, logvars):
    """log (1/K) Σ_k N(z; μ_k, diag σ_k²) with scipy, z [N, d] -> [N]."""
    per = np.stack(
        [
            scipy.stats.multivariate_normal(m, np.diag(np.exp(lv))).logpdf(z)
            for m, lv in zip(means, logvars, strict=True)
        ],
        axis=-1,
    )
    return scipy.special.logsumexp(per, axis=-1) - math.log(len(means))


def test_pseudo_inputs_are_initialized_and_squashed_as_pythae():
    model, variables = _model()
    p = variables["params"]["pseudo_inputs"]
    assert p["kernel"].shape == (5, *DIGIT) and p["bias"].shape == DIGIT
    bound = 1 / math.sqrt(5)  # PyTorch's nn.Linear(5, 64): U(±1/√5), weight and bias
    for w in (p["kernel"], p["bias"]):
        assert float(jnp.max(jnp.abs(w))) <= bound and float(jnp.std(w)) > 0.8 * bound / 3**0.5
    u = np.asarray(_fn(model, lambda m: m.pseudo_inputs())(variables))
    np.testing.assert_allclose(u, _pseudo_inputs_numpy(variables), atol=1e-7)
    assert (u == 0).mean() > 0.3 and u.max() < 2 * bound  # hard tanh to [0, 1]


@pytest.mark.parametrize("smooth", [False, True])
def test_log_prior_is_the_scipy_mixture_of_the_encoders_posteriors(smooth):
    model, variables = _model(smooth)
    squash = scipy.special.expit if smooth else (lambda u: np.clip(u, 0.0, 1.0))
    means, logvars = _components(model, variables, _pseudo_inputs_numpy(variables, squash))
    rng = np.random.default_rng(0)
    # Leading axes [4, 5]; some codes near the components, some far from every one (each
    # density underflows in float32; the logsumexp keeps the value finite and exact).
    z = means[rng.integers(0, 5, (4, 5))] + rng.normal(0, 1.0, (4, 5, 3))
    z[0, :2] = [[40.0, -35.0, 60.0], [-80.0, 0.0, 0.0]]
    got = np.asarray(_fn(model, "log_prior")(variables, jnp.asarray(z, jnp.float32)))
    want = _scipy_log_mixture(z.reshape(-1, 3), means, logvars).reshape(4, 5)
    assert got.shape == (4, 5) and np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-4)
    assert want[0, 0] < -500  # the far codes are really far


def test_log_prior_gradients():
    model, variables = _model(smooth=True)
    z = jnp.asarray(np.random.default_rng(1).normal(0, 1, (3, 3)), jnp.float32)
    log_prior = lambda v, z: jnp.sum(_fn(model, "log_prior")(v, z))
    check_grads(lambda z: log_prior(variables, z), (z,), order=1, modes=["rev"])
    # Through the encoder's weights and the pseudo-inputs (the prior is learned).
    check_grads(
        lambda p: log_prior({"params": p}, z), (variables["params"],), order=1, modes=["rev"]
    )


def test_hard_tanh_passes_no_gradient_to_clipped_pixels():
    # As pythae's nn.Hardtanh(0, 1): a pixel of W_k + b outside [0, 1] gets no gradient.
    model, variables = _model()
    z = jnp.ones((2, 3))
    grad = jax.jit(jax.grad(lambda v: jnp.sum(model.apply(v, z, method="log_prior"))))(variables)
    g = np.asarray(grad["params"]["pseudo_inputs"]["kernel"])
    pre = _pseudo_inputs_numpy(variables, squash=lambda u: u)
    assert np.all(g[pre < 0] == 0) and np.any(g[pre > 0] != 0)


def test_prior_draws_have_the_mixtures_moments():
    model, variables = _model()
    means, logvars = _components(model, variables, _pseudo_inputs_numpy(variables))
    n = 40_000
    draw = jax.jit(
        lambda key: model.apply(variables, n, method="prior_samples", rngs={"latent": key})
    )
    z = np.asarray(draw(jax.random.key(0)), np.float64)
    assert z.shape == (n, 3)
    mean = means.mean(0)
    cov = np.mean(
        [np.diag(np.exp(lv)) + np.outer(m, m) for m, lv in zip(means, logvars, strict=True)], 0
    )
    cov -= np.outer(mean, mean)
    centred = z - mean
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(z.mean(0) - mean) < 5 * se_mean), (z.mean(0), mean)
    products = centred[:, :, None] * centred[:, None, :]
    se_cov = products.std(0) / np.sqrt(n)
    assert np.all(np.abs(products.mean(0) - cov) < 5 * se_cov), (products.mean(0), cov)
    # The whole marginal of each coordinate: a KS test against the mixture's CDF.
    for d in range(3):
        sd = np.exp(0.5 * logvars[:, d])
        cdf = lambda t, d=d, sd=sd: np.mean(scipy.stats.norm.cdf(t[:, None], means[:, d], sd), 1)
        assert scipy.stats.kstest(z[:5000, d], cdf).pvalue > 1e-3
    # generate decodes exactly these draws.
    key = jax.random.key(7)
    images = _drawn(model, lambda m: m.generate(6), key)(variables)
    codes = _drawn(model, lambda m: m.prior_samples(6), key)(variables)
    np.testing.assert_allclose(images, _fn(model, "decode")(variables, codes)[0], atol=1e-6)
    assert images.shape == (6, *DIGIT)


def test_aux_holds_log_q_and_log_prior_of_its_sample():
    model, variables = _model()
    x = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (4, *DIGIT)), jnp.float32)
    _, aux = _drawn(model, None, jax.random.key(5), train=True)(variables, x)
    assert set(aux) == {"z", "x_hat", "logits", "log_q", "log_prior"}
    mean, logvar = (np.asarray(a, np.float64) for a in _fn(model, "encode_gaussian")(variables, x))
    z = np.asarray(aux["z"], np.float64)
    assert np.all(np.abs(z - mean) > 0)  # a sample, not the mean
    sd = np.exp(0.5 * logvar)
    np.testing.assert_allclose(aux["log_q"], scipy.stats.norm.logpdf(z, mean, sd).sum(1), rtol=1e-5)
    np.testing.assert_allclose(
        aux["log_prior"], _fn(model, "log_prior")(variables, aux["z"]), rtol=1e-6
    )
    assert interface.prior_of(model) == "vamp" and interface.has_log_prior(model)
    assert interface.has_gaussian_posterior(model) and not likelihood.analytic_kl(model)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_pseudo_inputs", 0, "num_pseudo_inputs=0 must be an integer"),
        ("num_pseudo_inputs", 2.5, "num_pseudo_inputs=2.5 must be an integer"),
        ("num_pseudo_inputs", True, "num_pseudo_inputs=True must be an integer"),
        ("pseudo_activation", "relu", "pseudo_activation='relu' is not known"),
        ("dropout", 0.1, "dropout=0.1: the VampPrior encodes its pseudo-inputs"),
        ("batch_norm", True, "batch_norm=True: the VampPrior"),
        ("num_samples", 5, "num_samples=5: a VampPrior VAE trains on one sample"),
    ],
)
def test_bad_settings_are_refused_in_one_line(field, value, message):
    with pytest.raises(ConfigError, match=message) as e:
        _build(**{field: value})
    assert "\n" not in str(e.value)


def test_a_recipe_with_the_standard_normal_kl_is_refused(tmp_path):
    # kl_normal is the KL to N(0, I): with this model it would train another model.
    config = config_lib.load_config("vamp:digits")
    config.loss = "bce + kl_normal"
    with pytest.raises(ConfigError, match="'kl_normal' needs mean, logvar, which this model"):
        train.Experiment.from_config(config, str(tmp_path))


def test_trains_on_digits_and_its_bounds_hold(tmp_path):
    config = config_lib.load_config("vamp:digits")
    config.num_epochs, config.num_steps = 0, 400
    config.eval_every_steps = config.checkpoint_every_steps = 400
    config.log_every_steps = config.steps_per_dispatch = 100
    config.progress_bar = False
    workdir = str(tmp_path / "run")
    _, after = train.train_and_evaluate(config, workdir)
    m = TrainedModel.load(workdir)
    # Baselines: the untrained decoder's p = ½ everywhere (64·log 2 = 44.4 nats) and a
    # model that ignores z and always predicts the training split's mean image.
    p = np.clip(m.dataset.train_x.mean(0), 1e-6, 1 - 1e-6)
    x_test = m.dataset.test_x
    mean_image = -np.mean(np.sum(x_test * np.log(p) + (1 - x_test) * np.log1p(-p), (1, 2, 3)))
    assert after["test/loss"] < min(0.7 * 64 * math.log(2), mean_image - 1.5), (after, mean_image)
    assert after["test/kl_sample"] > 0.3  # the posterior is used, not collapsed to the prior

    # `aejax evaluate W --sections=generation`: samples from the VampPrior and the bounds
    # on the test split (the key of seed 0, example i drawing from fold_in(key, i)).
    out = report.write_report(workdir, sections=("generation",), iwae_k=200, seed=0)
    gen = out["sections"]["generation"]
    assert os.path.exists(os.path.join(workdir, "report", "samples.png"))
    # IWAE ≥ ELBO on average (Burda et al., Theorem 1), and not by an implausible margin.
    assert 0 < gen["iwae"] - gen["elbo"] < 0.2 * abs(gen["elbo"]), gen
    # The ELBO's KL is the one-sample log q(z|x) − log p(z) at sample 0 of each example.
    keys = likelihood.example_keys(jax.random.key(0), jnp.arange(len(x_test)))
    eps = np.asarray(likelihood.sample_noise(keys, jnp.zeros((1,), jnp.int32), (8,))[:, 0])
    encode = _fn(m.model, "encode_gaussian")
    mean, logvar = (np.asarray(a, np.float64) for a in encode(m.variables, x_test))
    z = mean + np.exp(0.5 * logvar) * eps
    log_q = scipy.stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)).sum(1)
    means, logvars = _components(m.model, m.variables, _pseudo_inputs_numpy(m.variables))
    kl = log_q - _scipy_log_mixture(z, means, logvars)
    assert gen["kl"] == pytest.approx(kl.mean(), rel=1e-4), (gen["kl"], kl.mean())
    assert gen["elbo"] == pytest.approx(-after["test/loss"], abs=1.0)  # other z, same model


def test_mnist_preset_follows_pythae():
    # examples/scripts/configs/mnist/vamp_config.json: latent 16, 50 components, "mse"
    # (½‖x − x̂‖², gaussian_nll with variance 1 less its constant); its trainer's settings.
    config = config_lib.load_config("vamp:mnist")
    assert config.loss == "gaussian_nll + kl_sample"
    assert config.loss_options.gaussian_nll.variance == 1.0
    assert (config.model.name, config.model.num_pseudo_inputs) == ("vamp_vae", 50)
    assert tuple(config.model.encoder_widths) == (512, 16)
    assert (config.batch_size, config.num_epochs) == (100, 100)
    assert (config.optimizer.schedule, config.optimizer.learning_rate) == ("constant", 1e-3)
