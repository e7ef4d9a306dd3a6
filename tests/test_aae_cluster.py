"""The clustering AAE: its category GAN terms by hand, the cluster error against a hand
count, the categorical prior, each update touching only its parameters, bad settings, and
a short run whose clusters beat those of the untrained network."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import override
from jax.test_util import check_grads
from test_aae import trees_equal
from test_denoising import load_config

from aejax import clustering, losses, train
from aejax.errors import AejaxError, ConfigError
from aejax.models.aae_cluster import sample_categorical_prior


def test_category_terms_by_hand():
    d_real, d_fake = jnp.array([0.0, 2.0, -3.0]), jnp.array([0.0, -1.0, 4.0])
    sp = lambda v: np.log1p(np.exp(v))
    disc = losses.get_loss("adv_cat_discriminator")
    gen = losses.get_loss("adv_cat_generator")
    np.testing.assert_allclose(
        disc(d_real_y=d_real, d_fake_y=d_fake),
        [2 * np.log(2), sp(-2.0) + sp(-1.0), sp(3.0) + sp(4.0)],
        rtol=1e-6,
    )
    np.testing.assert_allclose(gen(d_fake_y=d_fake), [np.log(2), sp(1.0), sp(-4.0)], rtol=1e-6)
    assert np.isfinite(disc(d_real_y=jnp.array([-200.0]), d_fake_y=jnp.array([200.0])))
    # Moderate logits: second differences in float32 lose digits where softplus is flat.
    r, f = jnp.array([0.5, -1.0, 1.5]), jnp.array([0.0, 1.0, -0.5])
    check_grads(lambda r, f: jnp.sum(disc(d_real_y=r, d_fake_y=f)), (r, f), order=2)
    check_grads(lambda f: jnp.sum(gen(d_fake_y=f)), (f,), order=2)


def test_cluster_error_against_a_hand_count():
    # Validation: cluster 0 holds classes 3, 3, 5 -> 3; cluster 1 holds 7, 1, 1 -> 1;
    # cluster 2 a tie of 2 and 4 -> 2 (the smaller); cluster 3 no example -> unlabelled.
    valid_a = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    valid_y = np.array([3, 3, 5, 7, 1, 1, 4, 2])
    np.testing.assert_array_equal(
        clustering.majority_labels(valid_a, valid_y, 4), [3, 1, 2, clustering.UNLABELLED]
    )
    # Test: right, wrong, right, right, wrong (class 4 in cluster 2 -> 2), wrong (cluster 3).
    test_a = np.array([0, 0, 1, 2, 2, 3])
    test_y = np.array([3, 5, 1, 2, 4, 0])
    r = clustering.cluster_accuracy(test_a, test_y, valid_a, valid_y, num_clusters=5)
    assert r["error"] == pytest.approx(3 / 6) and r["accuracy"] == pytest.approx(3 / 6)
    assert r["cluster_classes"] == [3, 1, 2, -1, -1] and r["empty_clusters"] == 1
    # Labelled on the scored examples themselves: the purity, 4 of 6 (cluster 0: 3 or 5).
    assert clustering.cluster_accuracy(test_a, test_y)["accuracy"] == pytest.approx(4 / 6)
    # The paper's rule: the class of the most probable example of each cluster.
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    np.testing.assert_array_equal(clustering.max_posterior_labels(probs, [4, 7, 9]), [4, 7])
    # A permutation of the cluster indices changes nothing.
    perm = np.array([2, 0, 3, 1])
    same = clustering.cluster_accuracy(perm[test_a], test_y, perm[valid_a], valid_y, 4)
    assert same["error"] == pytest.approx(r["error"])


@pytest.mark.parametrize(
    "args, message",
    [
        (([0, 1], [1]), "2 assignments but 1 labels"),
        (([0.5, 1.0], [1, 2]), "must be a 1-D integer array"),
        (([0, -1], [1, 2]), "must be >= 0"),
        (([0, 1], [1, 2], [0, 3], [1, 1], 2), "not below K=2"),
        (([0, 1], [1, 2], [0, 1]), "give both valid_assignments and valid_labels"),
    ],
)
def test_bad_inputs_are_named(args, message):
    with pytest.raises(AejaxError, match=message):
        clustering.cluster_accuracy(*args)


def test_categorical_prior_is_uniform_and_one_hot():
    y = np.asarray(sample_categorical_prior(jax.random.key(0), 16000, 16))
    assert set(np.unique(y)) == {0.0, 1.0} and (y.sum(1) == 1).all()
    np.testing.assert_allclose(y.mean(0), 1 / 16, atol=0.006)


def cluster_config(**overrides):
    config = load_config("aae_cluster.py", "digits")
    config.data.valid_fraction = 0.2
    config.model.encoder_widths = (32, 3)
    config.model.discriminator_widths = (16,)
    config.model.num_clusters = 5
    config.progress_bar = False
    return override(config, **overrides)


def _step(config):
    exp = train.Experiment.from_config(config, "/nonexistent")
    state = exp.init_state()
    new, metrics = jax.jit(exp.train_step())(state, exp.dataset.train_x[:32], jax.random.key(3))
    return exp, state, new, metrics


def test_code_layout_and_each_update_touches_only_its_parameters():
    exp, before, full, metrics = _step(cluster_config())
    code = exp.model.apply(
        {"params": before.params, **before.model_state}, exp.dataset.test_x[:7], method="encode"
    )
    assert code.shape == (7, 5 + 3)
    np.testing.assert_allclose(code[:, :5].sum(1), 1.0, rtol=1e-5)
    _, _, no_phases, _ = _step(cluster_config(extra_phases=()))
    _, _, disc_only, _ = _step(cluster_config(extra_phases=(cluster_config().extra_phases[0],)))
    p0, p1, p2, p3 = (s.params for s in (before, no_phases, disc_only, full))
    assert trees_equal(p0["discriminators"], p1["discriminators"])
    assert not trees_equal(p0["autoencoder"], p1["autoencoder"])
    assert trees_equal(p1["autoencoder"], p2["autoencoder"])
    for name in ("style", "category"):  # one phase updates both discriminators
        assert not trees_equal(p1["discriminators"][name], p2["discriminators"][name])
    assert trees_equal(p2["discriminators"], p3["discriminators"])
    assert trees_equal(p2["autoencoder"]["decoder"], p3["autoencoder"]["decoder"])
    assert not trees_equal(p2["autoencoder"]["encoder"], p3["autoencoder"]["encoder"])
    for term in ("adv_discriminator", "adv_cat_discriminator", "adv_cat_generator"):
        assert np.isfinite(metrics[term]), term


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model.num_clusters": 1}, "config.model.num_clusters=1 must be an integer >= 2"),
        ({"model.top_k": 2}, "top_k must be 0 and code_activation 'linear'"),
        ({"model.code_activation": "relu"}, "top_k must be 0 and code_activation 'linear'"),
    ],
)
def test_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        train.Experiment.from_config(cluster_config(**overrides), "/nonexistent")


def test_short_run_clusters_digits_better_than_the_untrained_network(tmp_path):
    """The digits preset (16 clusters), 30 epochs: the test error, each cluster labelled by
    its validation majority, falls far below the untrained network's and the run uses
    several clusters."""
    config = load_config("aae_cluster.py", "digits")
    config.num_epochs = 30
    config.data.valid_fraction = 0.2  # 288 of the 1438 training digits label the clusters
    config.progress_bar = False
    workdir = str(tmp_path / "run")
    train.train_and_evaluate(config, workdir)
    exp = train.Experiment.from_workdir(workdir)
    ds = exp.dataset
    errors = {}
    for name, state in (("untrained", exp.init_state()), ("trained", exp.restore_or_init())):
        variables = {"params": state.params, **state.model_state}
        probs = lambda x, v=variables: exp.model.apply(v, x, method="cluster_probabilities")
        r = clustering.cluster_accuracy(
            np.asarray(probs(ds.test_x)).argmax(1),
            ds.test_y,
            np.asarray(probs(ds.valid_x)).argmax(1),
            ds.valid_y,
            16,
        )
        errors[name] = r["error"]
        if name == "trained":
            assert 16 - r["empty_clusters"] >= 6, r
    assert errors["trained"] < 0.5 and errors["trained"] < errors["untrained"] - 0.25, errors
