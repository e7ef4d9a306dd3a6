"""The MLP variant configs (mlp_ae, sparse_ae, dae, cae): every preset builds, and every
digits preset trains end to end for a few steps, logging each of its loss terms."""

import jax
import jax.numpy as jnp
import pytest
from test_denoising import load_config

from aejax import losses, models, train

PRESETS = {
    "mlp_ae.py": ["shallow", "hinton", "overcomplete"],
    "sparse_ae.py": ["kl", "topk"],
    "dae.py": ["digits"],
    "cae.py": ["sigmoid", "deep"],
}
DIGITS = [(f, p) for f, presets in PRESETS.items() for p in presets]
MNIST = [(f, "mnist" if p == "digits" else f"{p}_mnist") for f, p in DIGITS]


@pytest.mark.parametrize("file, preset", DIGITS, ids=[f"{f}:{p}" for f, p in DIGITS])
def test_digits_preset_steps(tmp_path, file, preset):
    """One train step and one eval step of the real step bodies (the full loop is tested
    in test_train.py); every term of the recipe is measured, and finite."""
    config = load_config(file, preset)
    assert config.data.source == "digits"
    exp = train.Experiment.from_config(config, str(tmp_path))  # checks the whole config
    step = train.make_train_step(exp.model, exp.tx, exp.weights, exp.corrupt, exp.options)
    x = exp.dataset.train_x[: config.batch_size]
    state, metrics = jax.jit(step)(jax.jit(exp.init_state)(), x, jax.random.key(0))
    eval_metrics = train.make_eval_step(exp.model, exp.weights, exp.options)(
        {"params": state.params}, exp.dataset.test_x[:8]
    )
    for term in exp.weights:
        assert jnp.isfinite(metrics[term]) and eval_metrics[term].shape == (8,)


@pytest.mark.parametrize("file, preset", MNIST, ids=[f"{f}:{p}" for f, p in MNIST])
def test_mnist_preset_builds(file, preset):
    """Without loading MNIST: the model builds for 28x28x1 and provides what the terms need."""
    config = load_config(file, preset)
    assert (config.data.source, config.data.name) == ("idx", "mnist")
    weights = losses.parse_recipe(config.loss)
    losses.term_options(config.loss_options, weights)
    model = models.build_model(config.model, (28, 28, 1))
    x = jnp.zeros((2, 28, 28, 1))
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
    _, aux = jax.eval_shape(lambda v: model.apply(v, x), variables)
    losses.check_inputs(weights, {"x", "x_in", "encode", *aux})
    widths = {
        "shallow": (32,),
        "hinton": (1000, 500, 250, 30),
        "overcomplete": (1024,),
        "topk": (1000,),
    }
    name = preset.split("_")[0]
    if name in widths:
        assert tuple(config.model.encoder_widths) == widths[name]


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid: shallow, shallow_mnist, hinton"):
        load_config("mlp_ae.py", "shalow")


def test_overcomplete_code_is_wider_than_mnist():
    config = load_config("mlp_ae.py", "overcomplete_mnist")
    assert config.model.encoder_widths[-1] > 784
    assert "l1_activity" in losses.parse_recipe(config.loss)
