"""ELBO and importance-weighted bounds (aejax.likelihood), checked against numpy computations
that share only the documented key scheme, and against a linear-Gaussian model whose log p(x)
is known in closed form."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from aejax import likelihood as lk
from aejax import losses
from aejax.config import base_config
from aejax.errors import ConfigError
from aejax.models import build_model

LOG_2PI = math.log(2 * math.pi)


# Compilation dominates these tests' time, so the tests share one architecture per family,
# batches of 16 and few chunk sizes, and the helpers compile once per model (models are
# hashable and compare by value, so equal models share the bounds' compiled code too).


def _model(name="vae", shape=(8, 8, 1), seed=0, **fields):
    cfg = base_config().model
    cfg.name = name
    if name == "vae":
        cfg.encoder_widths = (16, 8)
    else:  # a conv VAE with a latent feature map [2, 2, 4]
        cfg.features, cfg.latent_dim = (4, 4), 0
    for k, v in fields.items():
        cfg[k] = v
    model = build_model(cfg, shape)
    rngs = {"params": jax.random.key(seed), "latent": jax.random.key(1)}
    return model, _jitted(model, "init")(rngs, jnp.zeros((1, *shape)))


@functools.cache
def _jitted(model, what):
    if what == "init":
        return jax.jit(model.init)
    if what == "encode":
        return jax.jit(lambda v, x: model.apply(v, x, method="encode_gaussian"))
    return jax.jit(lambda v, z: model.apply(v, z, method="decode")[1])


def _binary_data(n, shape=(8, 8, 1), seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(size=(n, *shape)) < 0.3).astype(np.float32)


def _eps(key, b, ks, latent_shape):
    """The documented draws ε_ij = normal(fold_in(fold_in(key, i), j), latent_shape) for
    examples i < b and samples j in ks: [b, len(ks), *latent_shape]."""

    def one(i, j):
        return jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, i), j), latent_shape)

    draw = jax.vmap(jax.vmap(one, (None, 0)), (0, None))
    return np.asarray(draw(jnp.arange(b), jnp.asarray(ks)), np.float64)


def _encode(model, variables, x):
    """The model's (mean, logvar) as float64 numpy arrays."""
    return tuple(np.asarray(a, np.float64) for a in _jitted(model, "encode")(variables, x))


def _decode_logits(model, variables, z):
    return _jitted(model, "decode")(variables, z)


def _np_log_weights(model, variables, x, key, ks):
    """log p(x|z_j) + log p(z_j) − log q(z_j|x) for samples j in ks, in float64 numpy, for a
    Bernoulli decoder: [B, len(ks)]; also the one-sample log p(x|z_0) and the analytic KL."""
    mean, logvar = _encode(model, variables, x)
    b, latent_shape = len(x), mean.shape[1:]
    eps = _eps(key, b, ks, latent_shape)
    z = mean[:, None] + np.exp(0.5 * logvar)[:, None] * eps
    flat_z = z.reshape(b * len(ks), *latent_shape).astype(np.float32)
    logits = np.asarray(_decode_logits(model, variables, flat_z), np.float64)
    logits = logits.reshape(b, len(ks), -1)
    xf = np.asarray(x, np.float64).reshape(b, 1, -1)
    # log σ(l) = −log(1 + e^{−l}), log(1 − σ(l)) = −log(1 + e^{l})
    log_px = np.sum(-xf * np.logaddexp(0, -logits) - (1 - xf) * np.logaddexp(0, logits), -1)
    axes = tuple(range(2, z.ndim))
    log_pz = np.sum(-0.5 * (z**2 + LOG_2PI), axis=axes)
    sq = (z - mean[:, None]) ** 2 / np.exp(logvar)[:, None]
    log_qz = np.sum(-0.5 * (sq + logvar[:, None] + LOG_2PI), axis=axes)
    kl = np.sum(0.5 * (mean**2 + np.exp(logvar) - 1 - logvar), axis=tuple(range(1, mean.ndim)))
    return log_px + log_pz - log_qz, log_px[:, 0], kl


def _np_logmeanexp(w, axis=-1):
    m = np.max(w, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.mean(np.exp(w - m), axis=axis))


# --- (1) k = 1 is the one-sample ELBO; the analytic-KL ELBO is its expectation ----------------


def test_k1_is_the_monte_carlo_elbo_of_the_same_sample():
    model, variables = _model()
    x = jnp.asarray(_binary_data(16))
    key = jax.random.key(3)
    log_w, log_px, kl = _np_log_weights(model, variables, x, key, [0])
    got = lk.iwae_bound(model, variables, x, key, 1, "bce + kl_normal")
    np.testing.assert_allclose(got, log_w[:, 0], rtol=1e-5, atol=1e-3)
    # The analytic-KL ELBO uses the same z (sample j = 0) for its reconstruction term.
    got_elbo = lk.elbo(model, variables, x, key, "bce + kl_normal")
    np.testing.assert_allclose(got_elbo, log_px - kl, rtol=1e-5, atol=1e-3)
    assert not np.allclose(log_w[:, 0], log_px - kl, atol=1e-2)  # the two KLs differ


def test_analytic_elbo_matches_a_monte_carlo_average():
    model, variables = _model()
    x = _binary_data(3, seed=1)
    n = 4000
    # n independent draws per example: the same example at n indices, each its own key.
    rows = np.repeat(x, n, axis=0)
    elbos = lk.evaluate_bounds(
        model, variables, rows, jax.random.key(5), "bce + kl_normal", batch_size=1000
    )["elbo"].reshape(3, n)
    # An independent estimate: z from numpy's generator, every density written out here.
    rng = np.random.default_rng(0)
    mean, logvar = _encode(model, variables, x)
    eps = rng.standard_normal((3, n, mean.shape[-1]))
    z = mean[:, None] + np.exp(0.5 * logvar)[:, None] * eps
    logits = np.asarray(_decode_logits(model, variables, z.reshape(3 * n, -1).astype(np.float32)))
    logits = logits.reshape(3, n, -1)
    xf = x.reshape(3, 1, -1).astype(np.float64)
    log_px = np.sum(-xf * np.logaddexp(0, -logits) - (1 - xf) * np.logaddexp(0, logits), -1)
    log_pz = np.sum(-0.5 * (z**2 + LOG_2PI), -1)
    log_qz = np.sum(-0.5 * (eps**2 + logvar[:, None] + LOG_2PI), -1)
    mc = log_px + log_pz - log_qz
    stderr = np.sqrt(elbos.var(1) / n + mc.var(1) / n)
    assert np.all(np.abs(elbos.mean(1) - mc.mean(1)) < 4 * stderr), (elbos.mean(1), mc.mean(1))


# --- (2) IWAE ≥ ELBO, non-decreasing in k ------------------------------------------------------


def test_iwae_grows_with_k_and_bounds_the_elbo():
    model, variables = _model(seed=2)
    # A sharper decoder than at initialization, so the posterior is far from q and the gaps
    # between the bounds are many standard errors wide.
    decoder = jax.tree.map(lambda a: 2.0 * a, variables["params"]["decoder"])
    variables = {"params": {**variables["params"], "decoder": decoder}}
    x = _binary_data(48, seed=2)
    key = jax.random.key(7)
    ks = (1, 10, 100, 1000)
    out = {
        k: lk.evaluate_bounds(
            model, variables, x, key, "bce + kl_normal", k=k, batch_size=16, chunk=10
        )
        for k in ks
    }
    means = [float(np.mean(out[k]["iwae"])) for k in ks]
    assert all(b > a + 0.5 for a, b in zip(means, means[1:], strict=False)), means
    elbo = out[1]["elbo"]
    assert means[-1] > np.mean(elbo) + 1.0, (means, np.mean(elbo))
    # k = 1 and the analytic-KL ELBO share their sample and their expectation.
    diff = out[1]["iwae"] - elbo
    assert abs(np.mean(diff)) < 4 * np.std(diff) / np.sqrt(len(diff)), np.mean(diff)


# --- (3) chunking changes nothing: equal to an unchunked numpy reference -----------------------


@pytest.mark.parametrize("name, chunks", [("vae", (24, 64, 1000)), ("conv_vae", (24,))])
def test_chunked_equals_unchunked_reference(name, chunks):
    model, variables = _model(name, seed=4)
    x = jnp.asarray(_binary_data(16, seed=4))
    key, k = jax.random.key(11), 64
    log_w, _, _ = _np_log_weights(model, variables, x, key, list(range(k)))
    expected = _np_logmeanexp(log_w)
    results = {
        chunk: np.asarray(lk.iwae_bound(model, variables, x, key, k, "bce", chunk=chunk))
        for chunk in chunks  # 24 leaves a partial last chunk; 1000 means 64
    }
    for chunk, got in results.items():
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3, err_msg=f"chunk={chunk}")
        np.testing.assert_allclose(got, results[24], rtol=1e-6, atol=1e-4, err_msg=f"{chunk}")


def test_keys_depend_on_the_example_index_not_the_batch():
    model, variables = _model(seed=5)
    x = _binary_data(37, seed=5)
    key = jax.random.key(2)
    runs = [
        lk.evaluate_bounds(model, variables, x, key, "bce", k=20, batch_size=bs, chunk=10)
        for bs in (16, 37)
    ]
    for run in runs[1:]:
        for name in ("elbo", "kl", "log_px_given_z", "iwae"):
            np.testing.assert_allclose(run[name], runs[0][name], rtol=1e-6, atol=1e-4)
    # Row i of the split is example index i; the device functions take it as `indices`.
    rows = np.array([3, 30, 36, 0, 1, 2, 11, 12, 13, 9, 4, 5, 6, 7, 8, 20])  # a batch of 16
    direct = lk.iwae_bound(model, variables, x[rows], key, 20, "bce", chunk=10, indices=rows)
    np.testing.assert_allclose(direct, runs[0]["iwae"][rows], rtol=1e-6, atol=1e-4)
    assert runs[0]["iwae"].shape == runs[0]["elbo"].shape == (37,)
    # Same key, same numbers; another key, other numbers.
    again = lk.iwae_bound(model, variables, x[rows], key, 20, "bce", chunk=10, indices=rows)
    np.testing.assert_array_equal(again, direct)
    other = lk.iwae_bound(
        model, variables, x[rows], jax.random.key(3), 20, "bce", chunk=10, indices=rows
    )
    assert not np.allclose(other, direct)


# --- (4) exact cases: a linear-Gaussian model -----------------------------------------------


def _linear_gaussian(d_x=6, d_z=2, sigma2=0.3, seed=0, orthogonal=True):
    """z ~ N(0, I), x|z ~ N(Wz + b, σ²I); its exact posterior, and log p(x) = log N(x; b,
    WWᵀ + σ²I). With orthogonal columns of W the posterior covariance is diagonal."""
    rng = np.random.default_rng(seed)
    if orthogonal:
        q, _ = np.linalg.qr(rng.standard_normal((d_x, d_z)))
        w = q * np.array([2.0, 0.7, 1.3, 0.4][:d_z])
    else:
        w = rng.standard_normal((d_x, d_z))
    b = rng.standard_normal(d_x)
    precision = np.eye(d_z) + w.T @ w / sigma2
    cov = np.linalg.inv(precision)
    a = cov @ w.T / sigma2  # posterior mean = A (x − b)
    x = b + rng.standard_normal((5, d_z)) @ w.T + np.sqrt(sigma2) * rng.standard_normal((5, d_x))
    marginal = w @ w.T + sigma2 * np.eye(d_x)
    diff = x - b
    _, logdet = np.linalg.slogdet(marginal)
    maha = np.einsum("bi,ij,bj->b", diff, np.linalg.inv(marginal), diff)
    log_px = -0.5 * (maha + logdet + d_x * LOG_2PI)
    return dict(w=w, b=b, a=a, cov=cov, x=x, log_px=log_px, sigma2=sigma2)


@pytest.mark.parametrize("x_logvar", ["none", "scalar"])
def test_exact_posterior_gives_log_px_for_every_k(x_logvar):
    """A VAE built from the real modules (one Dense encoder, one linear Dense decoder) with
    the exact posterior: every importance weight is p(x), so every bound is log p(x)."""
    lg = _linear_gaussian()
    d_x, d_z = lg["w"].shape
    model, variables = _model(
        shape=(d_x,),
        encoder_widths=(d_z,),
        decoder_widths=(),
        output_activation="linear",
        x_logvar=x_logvar,
    )
    enc_kernel = np.concatenate([lg["a"].T, np.zeros((d_x, d_z))], axis=1)
    enc_bias = np.concatenate([-lg["a"] @ lg["b"], np.log(np.diag(lg["cov"]))])
    params = {
        "encoder": {"stack": {"dense_0": {"kernel": enc_kernel, "bias": enc_bias}}},
        "decoder": {"stack": {"dense_0": {"kernel": lg["w"].T, "bias": lg["b"]}}},
    }
    if x_logvar == "none":
        recipe, options = "gaussian_nll + kl_normal", {"gaussian_nll": {"variance": lg["sigma2"]}}
    else:
        shape = variables["params"]["x_logvar"].shape
        params["x_logvar"] = np.full(shape, np.log(lg["sigma2"]))
        recipe, options = "gaussian_nll_learned + kl_normal", None
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    variables = {"params": params}
    likelihood = lk.get_likelihood(recipe, options)
    x, key = jnp.asarray(lg["x"], jnp.float32), jax.random.key(0)
    for k in (1, 50):
        got = lk.iwae_bound(model, variables, x, key, k, likelihood, chunk=32)
        np.testing.assert_allclose(got, lg["log_px"], atol=2e-3, err_msg=f"k={k}")
    # The ELBO's one-sample estimate varies with z; its average is log p(x) (KL(q‖p(z|x)) = 0).
    n = 2000
    rows = np.repeat(lg["x"], n, axis=0).astype(np.float32)
    elbos = lk.evaluate_bounds(model, variables, rows, key, likelihood, batch_size=2000)
    elbos = elbos["elbo"].reshape(len(x), n)
    stderr = elbos.std(1) / np.sqrt(n)
    assert np.all(np.abs(elbos.mean(1) - lg["log_px"]) < 4 * stderr + 1e-3), elbos.mean(1)


def test_pure_core_converges_to_log_px_with_a_mean_field_posterior():
    """The core on plain functions: a correlated posterior approximated by the mean-field
    one (exact means, diagonal precisions) gives bounds below log p(x) that close in on it."""
    lg = _linear_gaussian(d_x=5, d_z=3, sigma2=0.5, seed=1, orthogonal=False)
    w, b = jnp.asarray(lg["w"], jnp.float32), jnp.asarray(lg["b"], jnp.float32)
    a = jnp.asarray(lg["a"], jnp.float32)
    # The KL(q‖p)-optimal diagonal Gaussian has variances 1/Λ_jj, not the marginals Σ_jj.
    logvar = -jnp.log(jnp.asarray(np.diag(np.linalg.inv(lg["cov"])), jnp.float32))

    def encode_fn(x):
        return (x - b) @ a.T, jnp.broadcast_to(logvar, (x.shape[0], logvar.size))

    def log_lik_fn(x, z):
        return -losses.gaussian_nll(x=x, x_hat=z @ w.T + b, variance=lg["sigma2"])

    # Each example 100 times, each copy with its own key: the bounds hold in expectation, so
    # the checks are on averages over the copies.
    reps = 100
    x = jnp.asarray(np.repeat(lg["x"], reps, axis=0), jnp.float32)
    keys = lk.example_keys(jax.random.key(1), jnp.arange(len(x)))
    # k traced: one compilation for every k.
    bound = jax.jit(lambda x, k: lk.iwae_from_fns(encode_fn, log_lik_fn, x, keys, k, 500))
    log_px = np.repeat(lg["log_px"], reps)
    log_px_z, kl = lk.elbo_from_fns(encode_fn, log_lik_fn, x, keys)
    gap_elbo = np.mean(log_px - (log_px_z - kl))
    assert gap_elbo > 0.05  # the mean-field posterior is not exact
    gaps = [log_px - np.asarray(bound(x, k), np.float64) for k in (1, 10, 100, 5000)]
    means = [np.mean(g) for g in gaps]
    stderrs = [np.std(g) / np.sqrt(len(g)) for g in gaps]
    assert all(m > -4 * se - 1e-3 for m, se in zip(means, stderrs, strict=True)), means
    assert all(b < a for a, b in zip(means, means[1:], strict=False)), means
    assert means[-1] < 0.05 * gap_elbo, (means, gap_elbo)
    assert abs(means[0] - gap_elbo) < 4 * stderrs[0]  # k = 1: the ELBO in expectation


# --- (5) the likelihood of a recipe, and clear errors -----------------------------------------


def test_likelihood_from_the_recipe_and_options():
    assert lk.get_likelihood("bce + 4.0*kl_normal") == lk.Likelihood("bce")
    got = lk.get_likelihood("gaussian_nll + kl_normal", {"gaussian_nll": {"variance": 0.1}})
    assert got == lk.Likelihood("gaussian_nll", (("variance", 0.1),))
    assert lk.get_likelihood({"gaussian_nll_learned": 1.0}).needs_x_logvar
    assert lk.get_likelihood("iwae_bce") == lk.Likelihood("bce")  # a bound names its likelihood
    from aejax.config import load_config

    config = load_config("vae:mnist")  # its loss_options hold an unused gaussian_nll variance
    assert lk.get_likelihood(config.loss, config.loss_options) == lk.Likelihood("bce")


def test_log_prob_is_the_negated_loss_term_on_image_shapes():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(size=(3, 4, 4, 1)), jnp.float32)
    logits = jnp.asarray(rng.normal(size=(3, 4, 4, 1)), jnp.float32)
    x_hat = jax.nn.sigmoid(logits)
    np.testing.assert_allclose(
        lk.Likelihood("bce").log_prob(x, logits=logits, x_hat=x_hat),
        -losses.bce(x=x, logits=logits),
        rtol=1e-6,
    )
    s = jnp.asarray(rng.normal(size=(4, 4, 1)), jnp.float32)
    np.testing.assert_allclose(
        lk.Likelihood("gaussian_nll_learned").log_prob(x, x_hat=x_hat, x_logvar=s),
        -losses.gaussian_nll_learned(x=x, x_hat=x_hat, x_logvar=jnp.broadcast_to(s, x.shape)),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "recipe, options, message",
    [
        ("mse + kl_normal", None, "needs exactly one likelihood term in nats"),
        ("kl_normal", None, "has none"),
        ("bce + gaussian_nll + kl_normal", None, "has several"),
        ("iwae_bce + bce", None, "has several"),
        ("gaussian_nll + kl_normal", {"gaussian_nll": {"variance": 0.0}}, "variance=0.0 must be >"),
        ("gaussian_nll + kl_normal", {"gaussian_nll": {"variance": "1"}}, "must be a number"),
    ],
)
def test_recipes_without_one_likelihood_term_fail_clearly(recipe, options, message):
    with pytest.raises(ConfigError, match=message):
        lk.get_likelihood(recipe, options)


def test_models_and_arguments_that_cannot_be_bounded_fail_clearly():
    model, variables = _model()
    x, key = jnp.asarray(_binary_data(2)), jax.random.key(0)
    with pytest.raises(ConfigError, match="likelihood term in nats"):
        lk.iwae_bound(model, variables, x, key, 10, "mse + kl_normal")
    with pytest.raises(ConfigError, match="x_logvar"):
        lk.elbo(model, variables, x, key, "gaussian_nll_learned + kl_normal")
    with pytest.raises(ConfigError, match="k=0"):
        lk.iwae_bound(model, variables, x, key, 0, "bce")
    mlp_cfg = base_config().model
    mlp = build_model(mlp_cfg, (8, 8, 1))
    mlp_vars = jax.eval_shape(mlp.init, jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
    with pytest.raises(ConfigError, match="declares no posterior"):
        lk.evaluate_bounds(mlp, mlp_vars, np.zeros((2, 8, 8, 1)), key, "bce", k=5)


# --- (6) the bound as a training objective: losses.iwae_bce on the model's k samples -----------


def _np_bound_of_samples(model, variables, x, z_samples):
    """−log (1/k) Σ_j p(x|z_j) p(z_j) / q(z_j|x) in float64 numpy, for given samples
    [B, k, *latent] (decoded afresh, densities written out): [B]."""
    mean, logvar = _encode(model, variables, x)
    z = np.asarray(z_samples, np.float64)
    b, k = z.shape[:2]
    logits = np.asarray(_decode_logits(model, variables, z_samples.reshape(b * k, -1)))
    logits = logits.astype(np.float64).reshape(b, k, -1)
    xf = np.asarray(x, np.float64).reshape(b, 1, -1)
    log_px = np.sum(-xf * np.logaddexp(0, -logits) - (1 - xf) * np.logaddexp(0, logits), -1)
    log_pz = np.sum(-0.5 * (z**2 + LOG_2PI), axis=-1)
    sq = (z - mean[:, None]) ** 2 / np.exp(logvar)[:, None]
    log_qz = np.sum(-0.5 * (sq + logvar[:, None] + LOG_2PI), axis=-1)
    return -_np_logmeanexp(log_px + log_pz - log_qz)


@pytest.mark.parametrize("k", [1, 5])
def test_iwae_term_on_the_models_k_samples_matches_numpy(k):
    model, variables = _model(num_samples=k)
    x = jnp.asarray(_binary_data(16, seed=2))
    x_hat, aux = model.apply(variables, x, train=True, rngs={"latent": jax.random.key(7)})
    assert aux["z_samples"].shape == (16, k, 8) and aux["logits_samples"].shape == (16, k, 8, 8, 1)
    # The samples differ, and the single-sample outputs are those of the first.
    assert k == 1 or not np.allclose(aux["z_samples"][:, 0], aux["z_samples"][:, 1])
    np.testing.assert_array_equal(aux["z"], aux["z_samples"][:, 0])
    np.testing.assert_allclose(x_hat, jax.nn.sigmoid(aux["logits"]), rtol=1e-6)
    got = losses.iwae_bce(x=x, **aux)
    want = _np_bound_of_samples(model, variables, x, aux["z_samples"])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    if k == 1:  # one sample: the ELBO with a Monte-Carlo KL, log q(z|x) − log p(z)
        mc_kl = got - losses.bce(x=x, logits=aux["logits"])
        assert not np.allclose(mc_kl, losses.kl_normal(**aux), atol=1e-2)


def test_one_sample_model_draws_what_it_drew_before():
    # num_samples = 1 keeps the single draw z = μ + σ·ε of `reparameterize`, bit for bit.
    model, variables = _model()
    x = jnp.asarray(_binary_data(4))
    key = jax.random.key(11)
    _, aux = model.apply(variables, x, train=True, rngs={"latent": key})
    from aejax.models.vae import reparameterize

    want = model.apply(
        variables,
        x,
        rngs={"latent": key},
        method=lambda m, x: reparameterize(m.make_rng("latent"), *m.encode_gaussian(x)),
    )
    np.testing.assert_array_equal(aux["z"], want)


def test_iwae_term_gradients():
    rng = np.random.default_rng(0)
    b, k, d, latent = 3, 4, 5, 2
    shapes = [(b, k, d), (b, k, latent), (b, latent), (b, latent)]
    with jax.enable_x64(True):
        x = jnp.asarray(rng.uniform(size=(b, d)) < 0.5, jnp.float64)
        args = tuple(jnp.asarray(0.5 * rng.normal(size=s), jnp.float64) for s in shapes)

        def f(logits, z, mean, logvar):
            return losses.iwae_bce(
                x=x, logits_samples=logits, z_samples=z, mean=mean, logvar=logvar
            )

        check_grads(f, args, order=1, modes=["rev"])
