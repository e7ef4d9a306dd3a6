import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.errors import ScopeParamShapeError

from aejax import models
from aejax.config import base_config
from aejax.errors import ConfigError
from aejax.models import build_model, layers


def _model_config(**kw):
    cfg = base_config().model
    for k, v in kw.items():
        cfg[k] = v
    return cfg


def _init(model, shape, batch=4):
    x = jax.random.uniform(jax.random.key(1), (batch, *shape))
    variables = model.init(jax.random.key(0), x, train=False)
    return variables, x


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3), (10,)])
def test_mlp_shapes(shape):
    model = build_model(_model_config(encoder_widths=(64, 32, 7)), shape)
    variables, x = _init(model, shape)
    x_hat, aux = model.apply(variables, x)
    assert x_hat.shape == x.shape
    assert aux["z"].shape == (4, 7)
    assert aux["logits"].shape == x.shape
    # The sigmoid output is the sigmoid of the logits that `bce` consumes.
    np.testing.assert_allclose(x_hat, jax.nn.sigmoid(aux["logits"]), rtol=1e-6)


def test_mirrored_and_custom_decoder_widths():
    shape = (28, 28, 1)
    mirrored = build_model(_model_config(encoder_widths=(512, 256, 128, 32)), shape)
    variables, _ = _init(mirrored, shape)
    widths = lambda tree: [tree[k]["kernel"].shape for k in sorted(tree)]
    assert widths(variables["params"]["encoder"]["stack"]) == [
        (784, 512),
        (512, 256),
        (256, 128),
        (128, 32),
    ]
    assert widths(variables["params"]["decoder"]["stack"]) == [
        (32, 128),
        (128, 256),
        (256, 512),
        (512, 784),
    ]
    custom = build_model(_model_config(encoder_widths=(64, 16), decoder_widths=()), shape)
    variables, _ = _init(custom, shape)
    assert widths(variables["params"]["decoder"]["stack"]) == [(16, 784)]


def test_linear_code_by_default_and_output_activations():
    shape = (8, 8, 1)
    model = build_model(_model_config(encoder_widths=(16, 4), output_activation="linear"), shape)
    variables, x = _init(model, shape)
    x_hat, aux = model.apply(variables, x)
    assert (aux["z"] < 0).any()  # not squashed by a code activation
    np.testing.assert_array_equal(x_hat, aux["logits"])
    tanh = build_model(_model_config(encoder_widths=(16, 4), output_activation="tanh"), shape)
    x_hat, aux = tanh.apply(variables, x)
    np.testing.assert_allclose(x_hat, jnp.tanh(aux["logits"]), rtol=1e-6)


def test_batch_norm_and_dropout():
    shape = (8, 8, 1)
    model = build_model(_model_config(encoder_widths=(16, 4), batch_norm=True, dropout=0.5), shape)
    variables, x = _init(model, shape)
    assert "batch_stats" in variables
    run = lambda key: model.apply(
        variables, x, train=True, rngs={"dropout": key}, mutable=["batch_stats"]
    )
    (a, _), updates = run(jax.random.key(0))
    (b, _), _ = run(jax.random.key(0))
    (c, _), _ = run(jax.random.key(1))
    np.testing.assert_array_equal(a, b)  # same key, same dropout mask
    assert not np.allclose(a, c)
    assert jax.tree.leaves(updates["batch_stats"])  # running statistics are updated
    e1, _ = model.apply(variables, x, train=False)
    e2, _ = model.apply(variables, x, train=False)
    np.testing.assert_array_equal(e1, e2)  # evaluation is deterministic


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("name", "resnet", "config.model.name='resnet' is not a known model; valid: .*mlp"),
        ("activation", "swishy", "config.model.activation='swishy' is not a known activation"),
        ("output_activation", "soft", "config.model.output_activation='soft'"),
        ("encoder_widths", (32, 0), "encoder_widths=.* must be a non-empty list of positive"),
        ("encoder_widths", (), "encoder_widths=.* must be a non-empty list"),
        ("dropout", 1.0, "config.model.dropout=1.0 must be in"),
    ],
)
def test_model_config_errors(field, value, message):
    with pytest.raises(ConfigError, match=message):
        build_model(_model_config(**{field: value}), (8, 8, 1))


@pytest.mark.parametrize(
    "ours, flax_layer, shape",
    [
        (layers.Dense(5), nn.Dense(5), (3, 4)),
        (layers.Conv(5, (3, 3)), nn.Conv(5, (3, 3)), (2, 6, 6, 3)),
        (layers.ConvTranspose(5, (3, 3)), nn.ConvTranspose(5, (3, 3)), (2, 6, 6, 3)),
        (layers.BatchNorm(use_running_average=False), nn.BatchNorm(False), (3, 4)),
    ],
)
def test_layers_check_parameter_shapes_cheaply_as_flax_does(ours, flax_layer, shape):
    """The layers' cheaper check of existing parameters (`_ShapeCheckedParams`) still fails
    on a wrong shape, with flax's error; initialization and outputs are flax's own."""
    x = jax.random.uniform(jax.random.key(1), shape)
    variables = ours.init(jax.random.key(0), x)
    reference = flax_layer.init(jax.random.key(0), x)
    for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(reference), strict=True):
        np.testing.assert_array_equal(a, b)
    out = ours.apply(variables, x, mutable=["batch_stats"])
    np.testing.assert_array_equal(
        out[0], flax_layer.apply(reference, x, mutable=["batch_stats"])[0]
    )
    wrong = jax.tree.map(lambda a: a, variables)
    name = "scale" if "scale" in wrong["params"] else "kernel"
    wrong["params"][name] = jnp.zeros((*wrong["params"][name].shape[:-1], 6))
    with pytest.raises(ScopeParamShapeError, match=name):
        ours.apply(wrong, x, mutable=["batch_stats"])


def test_family_field_tables_agree_on_the_fields_they_share():
    """Families' field tables merge into one FAMILY_FIELDS, the later table winning: a field
    two tables declare (M2 and the Hamiltonian families both read `likelihood`) must have
    one default, or one family silently gets the other's."""
    from aejax.models import aae_cluster, flows, hvae, m2, manifold_vae, rhvae, vamp, vq

    tables = {
        "CLUSTER_FIELDS": aae_cluster.CLUSTER_FIELDS,
        "VQ_FIELDS": vq.VQ_FIELDS,
        "VAMP_FIELDS": vamp.VAMP_FIELDS,
        "FLOW_FIELDS": flows.FLOW_FIELDS,
        "MANIFOLD_FIELDS": manifold_vae.MANIFOLD_FIELDS,
        "HVAE_FIELDS": hvae.HVAE_FIELDS,
        "RHVAE_FIELDS": rhvae.RHVAE_FIELDS,
        "M2_FIELDS": m2.M2_FIELDS,
    }
    seen = {}
    for table_name, table in tables.items():
        for field, default in table.items():
            if field in seen:
                first, value = seen[field]
                assert value == default, f"{field}: {first} has {value!r}, {table_name} {default!r}"
            seen[field] = (table_name, default)
    for field, (_, default) in seen.items():
        assert models.FAMILY_FIELDS[field] == default
