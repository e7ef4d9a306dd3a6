"""MIWAE, CIWAE and PIWAE (Rainforth et al., 2018): the bounds against NumPy from the same
log weights, the relations between them, their gradients and options, PIWAE's two updates
against a hand-made step, and a short training of each bundled config."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.special import logsumexp

from aejax import config as config_lib
from aejax import likelihood, losses, train
from aejax.errors import ConfigError
from aejax.losses import importance
from aejax.train.keys import step_keys

LOG_2PI = math.log(2 * math.pi)
B, K, D, LATENT = 5, 8, 6, 3


def _sample_tensors(seed=0, k=K, dtype=np.float32):
    """A Bernoulli VAE's tensors by hand: x [B, D], logits [B, k, D], z [B, k, LATENT],
    mean and logvar [B, LATENT], with z drawn from N(mean, exp(logvar))."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=(B, LATENT))
    logvar = 0.5 * rng.normal(size=(B, LATENT))
    z = mean[:, None] + np.exp(0.5 * logvar)[:, None] * rng.normal(size=(B, k, LATENT))
    tensors = dict(
        x=(rng.uniform(size=(B, D)) < 0.4).astype(dtype),
        logits_samples=1.5 * rng.normal(size=(B, k, D)).astype(dtype),
        z_samples=z.astype(dtype),
        mean=mean.astype(dtype),
        logvar=logvar.astype(dtype),
    )
    return {name: jnp.asarray(v) for name, v in tensors.items()}


def _np_log_weights(x, logits_samples, z_samples, mean, logvar):
    """log p(x|z_j) + log N(z_j; 0, I) − log N(z_j; μ, σ²) in float64 NumPy: [B, k]."""
    x, lg, z, mu, lv = (
        np.asarray(a, np.float64) for a in (x, logits_samples, z_samples, mean, logvar)
    )
    x = x[:, None]
    log_px = np.sum(-x * np.logaddexp(0, -lg) - (1 - x) * np.logaddexp(0, lg), axis=-1)
    log_pz = np.sum(-0.5 * (z**2 + LOG_2PI), axis=-1)
    log_qz = np.sum(
        -0.5 * ((z - mu[:, None]) ** 2 / np.exp(lv)[:, None] + lv[:, None] + LOG_2PI), -1
    )
    return log_px + log_pz - log_qz


def _np_iwae(log_w):
    return logsumexp(log_w, axis=1) - np.log(log_w.shape[1])


def _np_miwae(log_w, m):
    """(1/M) Σ_m log (1/K) Σ_k w_mk, written as a loop over the groups."""
    k = log_w.shape[1] // m
    return np.mean([_np_iwae(log_w[:, g * k : (g + 1) * k]) for g in range(m)], axis=0)


def _np_ciwae(log_w, beta):
    return beta * np.mean(log_w, axis=1) + (1 - beta) * _np_iwae(log_w)


# --- the bounds against NumPy ---------------------------------------------------------------


def test_log_weights_match_numpy():
    t = _sample_tensors()
    got = losses.terms.importance_log_weights(**t)
    np.testing.assert_allclose(got, _np_log_weights(**t), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("groups", [1, 2, 4, 8])
def test_miwae_matches_numpy(groups):
    t = _sample_tensors(seed=groups)
    log_w = _np_log_weights(**t)
    got = losses.get_loss("miwae_bce")(**t, groups=groups)
    assert got.shape == (B,)
    np.testing.assert_allclose(got, -_np_miwae(log_w, groups), rtol=1e-5, atol=1e-4)
    # The pure bound, on the same log weights.
    np.testing.assert_allclose(
        importance.miwae_bound(jnp.asarray(log_w, jnp.float32), groups),
        _np_miwae(log_w, groups),
        rtol=1e-5,
        atol=1e-4,
    )


@pytest.mark.parametrize("beta", [0.0, 0.3, 0.5, 1.0])
def test_ciwae_matches_numpy(beta):
    t = _sample_tensors(seed=10)
    log_w = _np_log_weights(**t)
    got = losses.get_loss("ciwae_bce")(**t, beta=beta)
    np.testing.assert_allclose(got, -_np_ciwae(log_w, beta), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(
        importance.ciwae_bound(jnp.asarray(log_w, jnp.float32), beta),
        _np_ciwae(log_w, beta),
        rtol=1e-5,
        atol=1e-4,
    )


def test_relations_between_the_bounds():
    t = _sample_tensors(seed=3)
    iwae = losses.iwae_bce(**t)
    elbo = -jnp.mean(losses.terms.importance_log_weights(**t), axis=1)  # negated, as the terms
    miwae = lambda m: importance.miwae_bce(**t, groups=m)
    ciwae = lambda b: importance.ciwae_bce(**t, beta=b)
    np.testing.assert_allclose(miwae(1), iwae, rtol=1e-6)  # one group: the IWAE
    np.testing.assert_allclose(miwae(K), elbo, rtol=1e-6)  # K = 1: the mean ELBO
    np.testing.assert_allclose(ciwae(0.0), iwae, rtol=1e-6)
    np.testing.assert_allclose(ciwae(1.0), elbo, rtol=1e-6)
    # For every draw: IWAE_{MK} ≥ MIWAE_{M,K} ≥ ELBO (in the negated terms, ≤), and CIWAE
    # moves monotonically from the IWAE to the ELBO with β; these samples make them differ.
    chain = [iwae, miwae(2), miwae(4), elbo]
    for tighter, looser in zip(chain, chain[1:], strict=False):
        assert np.all(np.asarray(tighter) < np.asarray(looser) - 1e-3)
    betas = [ciwae(b) for b in (0.0, 0.25, 0.75, 1.0)]
    for a, b in zip(betas, betas[1:], strict=False):
        assert np.all(np.asarray(a) < np.asarray(b))


def test_gradients():
    with jax.enable_x64(True):
        t = _sample_tensors(seed=4, k=4, dtype=np.float64)
        x = t.pop("x")
        names = ("logits_samples", "z_samples", "mean", "logvar")
        args = tuple(0.5 * t[n] for n in names)
        for term, opts in (
            (importance.miwae_bce, {"groups": 2}),
            (importance.ciwae_bce, {"beta": 0.3}),
        ):

            def f(*a, term=term, opts=opts):
                return term(x=x, **dict(zip(names, a, strict=True)), **opts)

            check_grads(jax.jit(f), args, order=1, modes=["rev"])


def test_groups_must_divide_the_samples():
    with pytest.raises(ConfigError, match="groups=3 must divide the 8 latent samples"):
        importance.miwae_bce(**_sample_tensors(), groups=3)


@pytest.mark.parametrize(
    ("term", "option", "value", "message"),
    [
        ("miwae_bce", "groups", 0, "groups=0 must be an integer >= 1"),
        ("miwae_bce", "groups", 2.5, "groups=2.5 must be an integer >= 1"),
        ("ciwae_bce", "beta", 1.5, r"beta=1.5 must be in \[0, 1\]"),
        ("ciwae_bce", "beta", -0.1, r"beta=-0.1 must be in \[0, 1\]"),
        ("ciwae_bce", "beta", "half", "beta='half' must be a number"),
    ],
)
def test_bad_options_are_refused(term, option, value, message):
    with pytest.raises(ConfigError, match=f"config.loss_options.{term}.{message}"):
        losses.term_options({term: {option: value}}, {term: 1.0})


def test_a_bad_option_of_piwaes_encoder_phase_is_refused_before_training(tmp_path):
    config = config_lib.load_config("piwae:digits")
    config.loss_options.miwae_bce.groups = 0
    with pytest.raises(ConfigError, match="miwae_bce.groups=0 must be an integer >= 1"):
        train.Experiment.from_config(config, str(tmp_path))


def test_the_bounds_name_a_bernoulli_likelihood():
    for recipe in ("miwae_bce", "ciwae_bce"):
        assert likelihood.get_likelihood(recipe) == likelihood.Likelihood("bce")


# --- PIWAE's two updates --------------------------------------------------------------------


def test_piwae_step_updates_the_decoder_by_the_iwae_and_the_encoder_by_the_miwae(tmp_path):
    config = config_lib.load_config("piwae:digits")
    # Plain SGD, so that each update is the gradient itself (Adam's first step is about
    # lr·sign(g), which would hide which gradient it was), and 8 samples in 2 groups.
    config.optimizer.name, config.optimizer.momentum = "sgd", 0.0
    config.optimizer.schedule, config.optimizer.learning_rate = "constant", 0.05
    config.model.num_samples, config.loss_options.miwae_bce.groups = 8, 2
    exp = train.Experiment.from_config(config, str(tmp_path))
    state = exp.init_state()
    batch = jnp.asarray(exp.dataset.train_x[:32])
    train_key = exp.keys[1]
    new, metrics = jax.jit(exp.train_step())(state, batch, train_key)

    keys = step_keys(train_key, state.step)

    def bound(params, term, **opts):
        rngs = {"latent": keys["latent"], "dropout": keys["dropout"]}
        _, aux = exp.model.apply({"params": params}, batch, train=True, rngs=rngs)
        return jnp.mean(term(x=batch, **aux, **opts))

    iwae = jax.grad(lambda p: bound(p, losses.iwae_bce))
    miwae = jax.grad(lambda p: bound(p, importance.miwae_bce, groups=2))
    sgd = lambda p, g: jax.tree.map(lambda a, b: a - 0.05 * b, p, g)

    @jax.jit  # one compilation for the hand-made step and the one it is not
    def by_hand(p0):
        decoder = sgd(p0["decoder"], iwae(p0)["decoder"])  # θ by the IWAE_{MK} at (θ_t, φ_t)
        p_half = {**p0, "decoder": decoder}
        encoder = sgd(p0["encoder"], miwae(p_half)["encoder"])  # φ by the MIWAE at (θ_t+1, φ_t)
        not_encoder = sgd(p0["encoder"], iwae(p_half)["encoder"])
        return {"decoder": decoder, "encoder": encoder}, not_encoder

    want, not_encoder = by_hand(state.params)
    close = lambda a, b, tol: all(
        np.allclose(u, v, rtol=tol, atol=tol)
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )
    assert close(new.params, want, 1e-5)
    # What it is not (so the comparison can tell them apart): the encoder moved by the IWAE.
    assert not close(new.params["encoder"], not_encoder, 1e-4)
    assert set(metrics) >= {"iwae_bce", "miwae_bce"}
    np.testing.assert_allclose(metrics["loss"], metrics["iwae_bce"] + metrics["miwae_bce"])


# --- the bundled configs --------------------------------------------------------------------


def _short(config, steps=60):
    config.num_epochs, config.num_steps = 0, steps
    config.eval_every_steps = config.checkpoint_every_steps = steps
    config.log_every_steps = config.steps_per_dispatch = steps // 2
    config.eval_batch_size, config.progress_bar = 256, False
    config.data.max_test = 256
    return config


@pytest.mark.parametrize(
    ("name", "term"), [("miwae", "miwae_bce"), ("ciwae", "ciwae_bce"), ("piwae", "iwae_bce")]
)
def test_each_config_trains_and_lowers_its_test_bound(tmp_path, name, term):
    config = _short(config_lib.load_config(f"{name}:digits"))
    state, after = train.train_and_evaluate(config, str(tmp_path))
    assert int(state.step) == 60
    # At the start every pixel has probability about ½: 64·log 2 = 44.4 nats, and more.
    assert after[f"test/{term}"] < 0.75 * 64 * math.log(2), after


def test_mnist_presets_follow_pythae():
    for name, loss, samples, options in (
        ("miwae", "miwae_bce", 64, {"miwae_bce": {"groups": 8}}),
        ("ciwae", "ciwae_bce", 64, {"ciwae_bce": {"beta": 0.5}}),
        ("piwae", "iwae_bce", 64, {"miwae_bce": {"groups": 8}}),
    ):
        config = config_lib.load_config(f"{name}:mnist")
        assert (config.loss, config.model.name, config.model.num_samples) == (loss, "vae", samples)
        for term, opts in options.items():
            assert config.loss_options[term].to_dict() == opts
        assert tuple(config.model.encoder_widths) == (512, 16)
        assert (config.batch_size, config.num_epochs) == (100, 100)
        assert config.optimizer.schedule == "constant"
        assert config.optimizer.learning_rate == 1e-3
    piwae = config_lib.load_config("piwae:mnist")
    assert (piwae.loss_params, tuple(piwae.extra_phases)) == ("decoder", ("miwae_bce @ encoder",))
