"""Semi-supervised M2 (aejax.data.semisup, aejax.models.m2, aejax.losses.semisup): the
label split and the partly labelled source, the bounds against a numpy computation and
their gradients, the model's shapes, and a short training run against chance."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from aejax import config as config_lib
from aejax.data import load_dataset
from aejax.data.semisup import label_split, observed_labels, repeats
from aejax.errors import AejaxError, ConfigError
from aejax.losses import parse_recipe
from aejax.losses import semisup as terms
from aejax.models import build_model


def _tiny_config(**data):
    config = config_lib.load_config("semi_supervised:tiny")
    for k, v in data.items():
        config.data[k] = v
    return config


def test_label_split_is_class_balanced_disjoint_and_seeded():
    y = np.repeat(np.arange(4), 30)
    np.random.default_rng(1).shuffle(y)
    train, valid, labelled = label_split(y, 8, 20, seed=3)
    assert len(valid) == 20 and len(train) == 100 and not set(train) & set(valid)
    assert np.bincount(y[train][labelled], minlength=4).tolist() == [2, 2, 2, 2]
    again = label_split(y, 8, 20, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, valid, labelled), again, strict=True))
    other = label_split(y, 8, 20, seed=4)
    assert not np.array_equal(labelled, other[2])
    with pytest.raises(ConfigError, match="multiple of the 4 classes"):
        label_split(y, 6, 20, seed=0)


def test_the_source_appends_the_label_part_and_repeats_labelled_rows():
    config = _tiny_config()
    ds = load_dataset(config.data)
    k, n_pool = 10, 1438 - 100
    assert ds.train_x.shape[1] == 64 + k and ds.train_y is None
    assert ds.valid_x.shape == (100, 64 + k) and ds.test_x.shape == (359, 64 + k)
    lab, y = observed_labels(ds.train_x, k)
    r = repeats(50, n_pool - 50, 0.5)
    assert lab.sum() == 50 * r and len(ds.train_x) == n_pool + 50 * (r - 1)
    assert abs(lab.mean() - 0.5) < 0.02
    assert np.bincount(y[lab], minlength=k).tolist() == [5 * r] * k
    # The label part is one-hot on labelled rows and zero elsewhere; valid and test: zero.
    part = ds.train_x[:, -k:]
    assert np.all(part.sum(1) == lab) and np.all(part.max(1) == lab)
    assert not ds.valid_x[:, -k:].any() and not ds.test_x[:, -k:].any()
    # The labels are right: the labelled pixels are the digits' images of that label.
    from sklearn.datasets import load_digits

    d = load_digits()
    pixels = (d.images.reshape(len(d.images), -1) / 16.0).astype(np.float32)
    first = np.flatnonzero(lab)[0]
    match = np.flatnonzero(np.all(pixels == ds.train_x[first, :64], axis=1))
    assert y[first] in d.target[match]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("num_labels", 55, "multiple of the 10 classes"),
        ("labelled_fraction", 1.0, "must be in"),
        ("num_valid", 0, "integer >= 1"),
        ("valid_fraction", 0.1, "does not apply"),
        ("base_source", "partly_labelled", "another source"),
        ("base_source", "digitz", "digits"),
        ("num_labels", 1400, "exceed"),
    ],
)
def test_bad_source_settings_say_what_is_wrong(field, value, message):
    with pytest.raises(AejaxError, match=message):
        load_dataset(_tiny_config(**{field: value}).data)


def _np_bound(x, class_logits, mean, logvar, x_logits, gaussian_logvar=None):
    """−L at the label for labelled rows, −U for the others, written out in numpy."""
    b, k, _ = mean.shape
    out = []
    for i in range(b):
        pixels, y_obs = x[i, :-k], x[i, -k:]
        q = np.exp(class_logits[i] - class_logits[i].max())
        q /= q.sum()
        neg_l = []
        for c in range(k):
            if gaussian_logvar is None:
                p = 1 / (1 + np.exp(-x_logits[i, c]))
                nll = -np.sum(pixels * np.log(p) + (1 - pixels) * np.log(1 - p))
            else:
                var = np.exp(gaussian_logvar)
                nll = np.sum(
                    0.5 * (pixels - x_logits[i, c]) ** 2 / var + 0.5 * np.log(2 * np.pi * var)
                )
            kl = 0.5 * np.sum(mean[i, c] ** 2 + np.exp(logvar[i, c]) - 1 - logvar[i, c])
            neg_l.append(nll + kl + np.log(k))
        neg_l = np.array(neg_l)
        if y_obs.sum() > 0:
            out.append(neg_l[np.argmax(y_obs)])
        else:
            out.append(np.sum(q * neg_l) + np.sum(q * np.log(q)))
    return np.array(out)


def _case(seed=0, b=3, k=3, z=2, d=4):
    rng = np.random.default_rng(seed)
    pixels = rng.uniform(0.05, 0.95, (b, d))
    part = np.zeros((b, k))
    part[0, 2] = 1.0  # the first example is labelled 2, the others are not
    x = np.concatenate([pixels, part], axis=1)
    return (
        x,
        rng.normal(size=(b, k)),
        rng.normal(size=(b, k, z)),
        rng.normal(size=(b, k, z)) * 0.5,
        rng.normal(size=(b, k, d)),
    )


def test_the_bounds_and_the_classification_term_match_numpy():
    x, logits, mean, logvar, x_logits = _case()
    args = dict(
        x=jnp.asarray(x),
        class_logits=jnp.asarray(logits),
        m2_mean=jnp.asarray(mean),
        m2_logvar=jnp.asarray(logvar),
        m2_x_logits=jnp.asarray(x_logits),
    )
    got = terms.m2_elbo(**args)
    np.testing.assert_allclose(got, _np_bound(x, logits, mean, logvar, x_logits), rtol=1e-5)
    s = np.array([0.3, -0.2, 0.1, 0.0])
    got = terms.m2_elbo_gaussian(**args, m2_x_logvar=jnp.asarray(s))
    np.testing.assert_allclose(got, _np_bound(x, logits, mean, logvar, x_logits, s), rtol=1e-5)
    ce = terms.m2_classify(x=args["x"], class_logits=args["class_logits"])
    log_q2 = logits[0, 2] - np.log(np.sum(np.exp(logits[0])))
    np.testing.assert_allclose(ce, [-log_q2, 0.0, 0.0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(terms.m2_labelled(**args), [1.0, 0.0, 0.0])


def test_the_unlabelled_bound_is_the_labelled_one_under_a_sure_classifier():
    x, logits, mean, logvar, x_logits = _case(seed=1)
    sure = np.full_like(logits, -60.0)
    sure[:, 1] = 60.0  # q(y|x) puts all its mass on class 1: H = 0
    labelled = x.copy()
    labelled[:, -3:] = np.eye(3)[1]
    args = lambda x: dict(
        x=jnp.asarray(x),
        class_logits=jnp.asarray(sure),
        m2_mean=jnp.asarray(mean),
        m2_logvar=jnp.asarray(logvar),
        m2_x_logits=jnp.asarray(x_logits),
    )
    unl = x.copy()
    unl[:, -3:] = 0.0
    np.testing.assert_allclose(
        terms.m2_elbo(**args(unl)), terms.m2_elbo(**args(labelled)), rtol=1e-5
    )


def test_the_bounds_gradients():
    x, logits, mean, logvar, x_logits = _case(seed=2)
    x = jnp.asarray(x)

    def f(logits, mean, logvar, x_logits):
        args = dict(x=x, class_logits=logits, m2_mean=mean, m2_logvar=logvar)
        return terms.m2_elbo(**args, m2_x_logits=x_logits) + terms.m2_classify(
            x=x, class_logits=logits
        )

    def g(x_logits, s):
        args = dict(x=x, class_logits=jnp.asarray(logits), m2_mean=jnp.asarray(mean))
        return terms.m2_elbo_gaussian(
            **args, m2_logvar=jnp.asarray(logvar), m2_x_logits=x_logits, m2_x_logvar=s
        )

    cast = lambda *a: tuple(jnp.asarray(v, jnp.float64) for v in a)
    with jax.enable_x64():
        check_grads(f, cast(logits, mean, logvar, x_logits), order=1, modes=["rev"])
        check_grads(g, cast(x_logits, np.array([0.3, -0.2, 0.1, 0.0])), order=1)


def test_the_model_gives_every_class_and_declares_its_parts():
    config = _tiny_config()
    config.model.encoder_widths, config.model.classifier_widths = (16, 8), (16,)
    model = build_model(config.model, (64 + 10,))
    x = jnp.concatenate(
        [jnp.full((2, 64), 0.5), jnp.eye(10)[jnp.array([3, 0])] * jnp.array([[1.0], [0.0]])], 1
    )
    v = model.init({"params": jax.random.key(0), "latent": jax.random.key(1)}, x)
    x_hat, aux = model.apply(v, x, train=True, rngs={"latent": jax.random.key(2)})
    assert x_hat.shape == (2, 74) and aux["class_logits"].shape == (2, 10)
    assert aux["m2_mean"].shape == aux["m2_z"].shape == (2, 10, 8)
    assert aux["m2_x_logits"].shape == (2, 10, 64)
    # The labelled example's reconstruction is p(x|y=3, z)'s mean.
    np.testing.assert_allclose(x_hat[0, :64], jax.nn.sigmoid(aux["m2_x_logits"][0, 3]), rtol=1e-5)
    code = model.apply(v, x, method="encode")
    assert code.shape == (2, 8 + 10)
    assert model.apply(v, code, method="decode")[0].shape == (2, 74)
    assert model.apply(v, x, method="classify").shape == (2, 10)
    weights = parse_recipe(config.loss)
    assert weights["m2_classify"] == pytest.approx(0.1 * (1338 - 50) / 50, rel=1e-3)
    with pytest.raises(ConfigError, match="partly_labelled"):
        build_model(config.model, (8, 8, 1))
    config.model.likelihood = "poisson"
    with pytest.raises(ConfigError, match="likelihood='poisson'"):
        build_model(config.model, (74,))


def test_a_short_run_classifies_far_better_than_chance(tmp_path):
    from aejax.evaluate import TrainedModel
    from aejax.train import train_and_evaluate

    config = _tiny_config()
    config.num_steps, config.batch_size, config.progress_bar = 120, 32, False
    config.checkpoint_every_steps = config.eval_every_steps = 120
    train_and_evaluate(config, str(tmp_path))
    m = TrainedModel.load(str(tmp_path))
    logits = jax.jit(lambda v, x: m.model.apply(v, x, method="classify"))(
        m.variables, m.dataset.test_x
    )
    error = float(np.mean(np.argmax(logits, 1) != m.dataset.test_y))
    majority = 1 - np.bincount(m.dataset.test_y).max() / len(m.dataset.test_y)
    assert error < 0.5 * majority, (error, majority)
    assert math.isfinite(error)
