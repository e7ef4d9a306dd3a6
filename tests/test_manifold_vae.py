"""The hyperspherical VAE and the Poincaré VAE (aejax.models.manifold_vae) as models: each
trains on the digits through `train_and_evaluate` with its bundled config, its likelihood
bounds behave (IWAE ≥ ELBO on average, k = 1 is the ELBO, draws depend on their keys
alone), it generates from its prior, and bad settings are refused in one line."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

from aejax import config as config_lib
from aejax import likelihood as lk
from aejax import sampling, train
from aejax.errors import ConfigError
from aejax.models import build_model


def _short(name, steps=60):
    config = config_lib.load_config(f"{name}:digits")
    config.num_epochs, config.num_steps = 0, steps
    config.eval_every_steps = config.checkpoint_every_steps = steps
    config.log_every_steps = config.steps_per_dispatch = 4  # the first log: the start
    config.eval_batch_size, config.progress_bar = 128, False
    config.data.max_test = 128
    return config


@pytest.mark.parametrize("name, term", [("svae", "kl_vmf"), ("pvae", "kl_sample")])
def test_each_model_trains_and_its_bounds_behave(tmp_path, name, term):
    config = _short(name)
    state, after = train.train_and_evaluate(config, str(tmp_path))
    with open(tmp_path / "metrics.jsonl") as f:
        first = next(row for row in map(json.loads, f) if "train/loss" in row)
    assert first["step"] == 4 and np.isfinite(after[f"test/{term}"]) and after[f"test/{term}"] > 0
    assert after["test/loss"] < 0.8 * first["train/loss"], (first, after)

    exp = train.Experiment.from_config(config, str(tmp_path))
    model, variables = exp.model, {"params": state.params}
    x = exp.dataset.test_x[:32]
    likelihood = lk.get_likelihood(config.loss, config.loss_options)
    assert not lk.analytic_kl(model)
    bounds = lk.evaluate_bounds(model, variables, x, jax.random.key(1), likelihood, k=64)
    gap = bounds["iwae"] - bounds["elbo"]
    assert gap.mean() > 0.05, gap  # IWAE ≥ ELBO on average, strictly for a real posterior
    np.testing.assert_allclose(bounds["log_px_given_z"] - bounds["kl"], bounds["elbo"], atol=1e-4)
    if name == "svae":
        return  # the models share posterior_samples; one compiles faster
    # Draw (i, j) depends on keys[i, j] alone: moved to another row and column, with other
    # examples and keys around it, it is the same draw.
    sample = jax.jit(lambda x, keys: model.apply(variables, x, keys, method="posterior_samples"))
    keys = jax.random.split(jax.random.key(2), (4, 3))
    z, log_q = sample(x[:4], keys)
    others = jax.random.split(jax.random.key(3), (4, 3)).at[0, 0].set(keys[2, 1])
    z1, log_q1 = sample(x[np.array([2, 0, 1, 3])], others)
    np.testing.assert_allclose(z1[0, 0], z[2, 1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_q1[0, 0], log_q[2, 1], rtol=1e-5)
    assert not np.allclose(z1[0, 1], z[2, 2])


def test_generation_draws_from_the_prior_and_log_prior_is_its_density():
    shape, d = (8, 8, 1), 8
    for name in ("svae", "pvae"):
        config = config_lib.load_config(f"{name}:digits")
        model = build_model(config.model, shape)
        variables = model.init(jax.random.key(0), jnp.zeros((2, *shape)))
        images = sampling.sample_prior(model, variables, jax.random.key(1), 5)
        assert images.shape == (5, *shape) and np.all((images >= 0) & (images <= 1))

        @jax.jit
        def prior(key, model=model, variables=variables):
            z = model.apply(variables, key, 2000, method="prior_draw")
            return z, model.apply(variables, z, method="log_prior")

        z, log_p = (np.asarray(a, np.float64) for a in prior(jax.random.key(3)))
        if name == "svae":
            assert model.latent_prior() == "uniform_sphere"
            np.testing.assert_allclose(np.linalg.norm(z, axis=-1), 1.0, atol=1e-5)
            # −log |S^7| = −log(2π⁴/Γ(4)) = −log(π⁴/3)
            np.testing.assert_allclose(log_p, -np.log(np.pi**4 / 3), rtol=1e-6)
            v = z  # uniform on the sphere: each coordinate has mean 0, variance 1/d
            assert np.all(np.abs(v.mean(0)) < 4 / np.sqrt(d * len(z)))
            np.testing.assert_allclose(v.var(0), 1 / d, rtol=0.15)
        else:
            assert model.latent_prior() == "wrapped_normal"
            # N_W(0, I) on the ball of c = 1: v = 2 artanh(‖z‖) z/‖z‖ is N(0, I), and the
            # density is N(v; 0, I) / (sinh‖v‖/‖v‖)^{d−1}.
            norm = np.linalg.norm(z, axis=-1, keepdims=True)
            v = 2 * np.arctanh(norm) * z / norm
            r = np.linalg.norm(v, axis=-1)
            ref = -0.5 * r**2 - d / 2 * np.log(2 * np.pi) - (d - 1) * np.log(np.sinh(r) / r)
            np.testing.assert_allclose(log_p, ref, atol=1e-3)
            assert st.kstest(v[:, 0], "norm").pvalue > 1e-3
            assert st.kstest(np.sum(v**2, -1), st.chi2(d).cdf).pvalue > 1e-3


@pytest.mark.parametrize(
    "name, field, value, message",
    [
        ("pvae", "curvature", 0.0, "curvature=0.0 must be a finite number > 0"),
        ("pvae", "curvature", float("inf"), "curvature=inf must be a finite number > 0"),
        ("pvae", "pvae_decoder", "linear", "pvae_decoder='linear' is not known; valid: gyro"),
        ("pvae", "decoder_widths", (), "pvae_decoder='gyroplane' needs a hidden decoder layer"),
        ("svae", "encoder_widths", (32, 1), "the sphere S\\^\\(d-1\\) needs a latent size d >= 2"),
        ("svae", "x_logvar", "scalar", "the svae family takes none; set it to 'none'"),
        ("svae", "num_samples", 5, "num_samples=5: the svae family draws one z"),
        ("pvae", "code_activation", "tanh", "the pvae family takes none; set it to 'linear'"),
    ],
)
def test_bad_settings_are_refused_in_one_line(name, field, value, message):
    config = config_lib.load_config(f"{name}:digits")
    config.model[field] = value
    with pytest.raises(ConfigError, match=message) as err:
        build_model(config.model, (8, 8, 1))
    assert "\n" not in str(err.value)


def test_recipes_that_read_another_posterior_are_refused(tmp_path):
    for name, recipe, missing in (
        ("svae", "bce + kl_normal", "mean, logvar"),
        ("pvae", "bce + kl_vmf", "direction, kappa"),
    ):
        config = _short(name)
        config.loss = recipe
        with pytest.raises(ConfigError, match=f"needs {missing}, which this model does not"):
            train.Experiment.from_config(config, str(tmp_path / name))


def test_mnist_presets_follow_pythae():
    svae = config_lib.load_config("svae:mnist")
    assert svae.loss == "gaussian_nll + kl_vmf"
    assert svae.loss_options.gaussian_nll.variance == 1.0  # pythae's ½‖x − x̂‖² + const
    assert tuple(svae.model.encoder_widths) == (512, 16)
    assert (svae.batch_size, svae.num_epochs, svae.optimizer.learning_rate) == (100, 100, 1e-3)
    pvae = config_lib.load_config("pvae:mnist")
    assert (pvae.loss, tuple(pvae.model.encoder_widths)) == ("bce + kl_sample", (600, 10))
    assert (pvae.model.curvature, pvae.model.pvae_isotropic) == (0.7, True)
    assert pvae.model.pvae_decoder == "gyroplane"
    assert (pvae.batch_size, pvae.num_epochs, pvae.optimizer.learning_rate) == (128, 80, 5e-4)
    assert pvae.optimizer.schedule == svae.optimizer.schedule == "constant"
