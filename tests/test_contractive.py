"""The contractive penalty: every exact mode against the jacfwd reference, hand-computed
values, its gradient, and the term inside the training loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config
from jax.test_util import check_grads

from aejax import contractive, losses, train
from aejax.errors import ConfigError
from aejax.models import Autoencoder, MLPDecoder, MLPEncoder
from aejax.models.mlp import DenseChain

D = 6  # input size of the random encoders


def _encoder(act, hidden, code, top_k=0, seed=4, code_act=None):
    """A random MLP autoencoder (act everywhere, also on the code unless code_act is given)
    and a batch of inputs.

    Returns (encode(params, x), chain(params, x), params, x): the deterministic encoder and
    the DenseChain the model hands to loss terms, as functions of the parameters. The
    default seed gives every parametrization below an encoder where no example sits on
    dead ReLU units only (a zero Jacobian would make the comparison trivial).
    """
    model = Autoencoder(
        MLPEncoder((*hidden, code), act), MLPDecoder((), (D,)), code_act or act, "sigmoid", top_k
    )
    k_init, k_x = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(k_x, (5, D))
    params = model.init(k_init, x)["params"]
    encode = lambda p, x: model.apply({"params": p}, x, method="encode")
    chain = lambda p, x: model.apply({"params": p}, x)[1]["encoder_chain"]
    return encode, chain, params, x


def _penalty(mode, encode, chain, params, x):
    e = lambda x: encode(params, x)
    return contractive.contractive(x_in=x, encode=e, mode=mode, encoder_chain=chain(params, x))


def _all_modes(encode, chain, params, x):
    """{mode: [B] penalty} for every mode and for "auto" without a chain, in one compiled
    call (op-by-op dispatch would dominate the test's time)."""

    @jax.jit
    def f(params, x):
        out = {m: _penalty(m, encode, chain, params, x) for m in contractive.MODES}
        e = lambda x: encode(params, x)
        out["auto_without_chain"] = contractive.contractive(x_in=x, encode=e)
        return out

    return f(params, x)


LAYERS = [(), (7,), (4, 5)]  # 1 to 3 layers (hidden widths before the code)


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("hidden", LAYERS, ids=["1layer", "2layers", "3layers"])
@pytest.mark.parametrize("code", [3, 9], ids=["code<input", "code>input"])
def test_every_mode_equals_jacfwd(act, hidden, code):
    encode, chain, params, x = _encoder(act, hidden, code)
    out = _all_modes(encode, chain, params, x)
    ref = out.pop("jacfwd")
    assert ref.shape == (5,) and np.all(np.asarray(ref) > 0)
    # "auto_without_chain": another model family, where "auto" takes an autodiff mode.
    for mode, got in out.items():
        np.testing.assert_allclose(got, ref, rtol=1e-5, err_msg=mode)


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("hidden", LAYERS, ids=["1layer", "2layers", "3layers"])
def test_every_mode_equals_jacfwd_with_a_linear_code(act, hidden):
    """A linear code (the default) takes the closed form's quadratic-form path at 2 layers."""
    out = _all_modes(*_encoder(act, hidden, 3, code_act="linear"))
    for mode, got in out.items():
        np.testing.assert_allclose(got, out["jacfwd"], rtol=1e-5, err_msg=mode)


def test_auto_picks_the_cheaper_exact_mode():
    encode, chain, params, x = _encoder("tanh", (7,), 3)
    e = lambda x: encode(params, x)
    assert contractive.resolve_mode("auto", x, e, chain(params, x)) == "closed_form"
    assert contractive.resolve_mode("auto", x, e, None) == "jacrev"  # code 3 < input 6
    encode, _, params, x = _encoder("tanh", (7,), 9)
    assert contractive.resolve_mode("auto", x, lambda x: encode(params, x), None) == "jacfwd"


def test_top_k_code_in_every_mode():
    encode, chain, params, x = _encoder("tanh", (7,), 9, top_k=2)
    out = _all_modes(encode, chain, params, x)
    for mode, got in out.items():
        np.testing.assert_allclose(got, out["jacfwd"], rtol=1e-5, err_msg=mode)


def test_one_sigmoid_layer_by_hand():
    """Σ_j (h_j(1 − h_j))² ‖W_j‖² for z = σ(xW + b), computed with numpy."""
    w = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])  # [D=2, code=3]
    b = np.array([0.1, -0.2, 0.3])
    x = np.array([[0.5, -1.0], [2.0, 0.0]])
    h = 1 / (1 + np.exp(-(x @ w + b)))
    want = np.sum((h * (1 - h)) ** 2 * np.sum(w**2, axis=0), axis=1)
    chain = DenseChain((jnp.asarray(w),), (jnp.asarray(b),), ("sigmoid",))
    encode = lambda x: jax.nn.sigmoid(x @ w + b)
    for mode in contractive.MODES:
        got = contractive.contractive(
            x_in=jnp.asarray(x), encode=encode, mode=mode, encoder_chain=chain
        )
        np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=mode)


def test_linear_encoder_is_the_frobenius_norm_of_w():
    """For z = xW the penalty is ‖W‖²_F at every input."""
    w = jnp.arange(12.0).reshape(4, 3) / 10
    x = jnp.ones((2, 4))
    got = contractive.contractive(x_in=x, encode=lambda x: x @ w, mode="jacrev")
    np.testing.assert_allclose(got, [float(jnp.sum(w**2))] * 2, rtol=1e-6)


@pytest.mark.parametrize("mode", contractive.MODES)
@pytest.mark.parametrize("act", ["sigmoid", "tanh"])
def test_gradient_passes_check_grads(mode, act):
    with jax.enable_x64(True):
        encode, chain, params, x = _encoder(act, (4,), 3)
        params, x = jax.tree.map(lambda a: a.astype(jnp.float64), (params, x))
        f = jax.jit(lambda p: jnp.sum(_penalty(mode, encode, chain, p, x)))
        check_grads(f, (params,), order=1, modes=["rev"])


def test_gradient_relu_closed_form():
    """ReLU's slopes are piecewise constant: away from kinks the gradient is still exact."""
    with jax.enable_x64(True):
        encode, chain, params, x = _encoder("relu", (7,), 3, seed=1)
        params, x = jax.tree.map(lambda a: a.astype(jnp.float64), (params, x))
        f = jax.jit(lambda p: jnp.sum(_penalty("closed_form", encode, chain, p, x)))
        check_grads(f, (params,), order=1, modes=["rev"], eps=1e-6)


def test_bad_modes_fail_clearly():
    encode, _, params, x = _encoder("tanh", (), 3)
    with pytest.raises(ConfigError, match="mode='jacobi' is not known; valid: auto"):
        contractive.contractive(x_in=x, encode=lambda x: encode(params, x), mode="jacobi")
    with pytest.raises(ConfigError, match="'closed_form' needs an encoder with a closed form"):
        contractive.contractive(x_in=x, encode=lambda x: encode(params, x), mode="closed_form")


def test_term_is_registered_and_trains(tmp_path):
    assert losses.get_loss("contractive") is contractive.contractive
    assert losses.required_inputs(contractive.contractive) == ("x_in", "encode")
    config = tiny_config(loss="mse + 0.1*contractive", num_steps=4)
    config.loss_options.contractive = {"mode": "jacrev"}
    _, metrics = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert metrics["test/contractive"] > 0
