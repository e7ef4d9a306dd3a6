import math

import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from aejax import losses
from aejax.errors import ConfigError


def test_mse_hand_computed():
    x = jnp.array([[0.0, 1.0], [1.0, 1.0]])
    x_hat = jnp.array([[0.5, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(losses.mse(x=x, x_hat=x_hat), [0.25, 2.0], rtol=1e-6)


def test_mse_sums_over_image_axes():
    x = jnp.zeros((2, 3, 3, 1))
    x_hat = jnp.full((2, 3, 3, 1), 0.5)
    np.testing.assert_allclose(losses.mse(x=x, x_hat=x_hat), [9 * 0.25] * 2, rtol=1e-6)


def test_bce_hand_computed():
    x = jnp.array([[1.0, 0.0], [0.5, 0.5]])
    logits = jnp.array([[2.0, -1.0], [0.0, 0.0]])
    sig = lambda v: 1 / (1 + math.exp(-v))
    first = -math.log(sig(2.0)) - math.log(1 - sig(-1.0))
    second = 2 * math.log(2.0)  # x = 0.5, p = 0.5: -0.5 log .5 - 0.5 log .5 per pixel
    np.testing.assert_allclose(losses.bce(x=x, logits=logits), [first, second], rtol=1e-6)


def test_bce_is_stable_for_large_logits():
    x = jnp.array([[1.0, 0.0]])
    out = losses.bce(x=x, logits=jnp.array([[-200.0, 200.0]]))
    np.testing.assert_allclose(out, [400.0], rtol=1e-6)
    assert np.isfinite(losses.bce(x=x, logits=jnp.array([[200.0, -200.0]]))).all()


@pytest.mark.parametrize("term", ["mse", "bce"])
def test_gradients(term):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(size=(3, 4)))
    pred = jnp.asarray(rng.normal(size=(3, 4)))
    key = "x_hat" if term == "mse" else "logits"
    f = lambda p: losses.LOSSES[term](x=x, **{key: p})
    check_grads(f, (pred,), order=2, modes=["rev", "fwd"], rtol=1e-2)


def test_parse_recipe():
    assert losses.parse_recipe("mse") == {"mse": 1.0}
    assert losses.parse_recipe(" bce + 0.5*mse ") == {"bce": 1.0, "mse": 0.5}
    assert losses.parse_recipe("1e-3 * mse") == {"mse": 1e-3}


@pytest.mark.parametrize(
    "recipe, message",
    [
        ("msee", "'msee' is not a known loss term; valid: .*mse"),
        ("mse + mse", "names 'mse' twice"),
        ("mse +", "cannot read ''"),
        ("2**mse", "cannot read"),
        ("", "must be a recipe"),
        ("1.2.3*mse", "is not a number"),
    ],
)
def test_parse_recipe_errors(recipe, message):
    with pytest.raises(ConfigError, match=message):
        losses.parse_recipe(recipe)


def test_total_loss_weights_and_metrics():
    x = jnp.array([[0.0, 1.0], [1.0, 1.0]])
    x_hat = jnp.array([[0.5, 1.0], [0.0, 0.0]])
    logits = jnp.zeros((2, 2))
    total, metrics = losses.total_loss({"mse": 2.0, "bce": 0.5}, x=x, x_hat=x_hat, logits=logits)
    mse = (0.25 + 2.0) / 2
    bce = 2 * math.log(2.0)
    np.testing.assert_allclose(metrics["mse"], mse, rtol=1e-6)
    np.testing.assert_allclose(metrics["bce"], bce, rtol=1e-6)
    np.testing.assert_allclose(total, 2 * mse + 0.5 * bce, rtol=1e-6)
    assert metrics["loss"] == total


def test_total_loss_names_the_missing_tensor():
    with pytest.raises(ConfigError, match="term 'bce' needs logits"):
        losses.total_loss({"bce": 1.0}, x=jnp.zeros((1, 2)), x_hat=jnp.zeros((1, 2)))


def test_term_options_are_checked():
    assert losses.term_options({}, {"mse": 1.0}) == {}
    with pytest.raises(ConfigError, match="takes no option 'rho'"):
        losses.term_options({"mse": {"rho": 0.1}}, {"mse": 1.0})
    with pytest.raises(ConfigError, match="'nope' is not a known loss term"):
        losses.term_options({"nope": {"a": 1}}, {"mse": 1.0})
