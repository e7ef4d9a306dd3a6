"""Shared fixtures: a tiny fast config, and the offline data folder (skip when absent); the
quick tier (`pytest -m quick`)."""

import os

import pytest

from aejax.config import base_config


def tiny_config(**overrides):
    """An MLP AE on the embedded digits that trains a few steps in about a second."""
    config = base_config()
    config.model.encoder_widths = (32, 8)
    config.batch_size = 32
    config.num_steps = 8
    config.eval_every_steps = 4
    config.checkpoint_every_steps = 4
    config.log_every_steps = 2
    config.eval_batch_size = 128
    config.progress_bar = False
    return override(config, **overrides)


def override(config, **overrides):
    """Sets each dotted key of `overrides` ("model.top_k") in config; returns config."""
    for key, value in overrides.items():
        node = config
        *path, last = key.split(".")
        for p in path:
            node = node[p]
        node[last] = value
    return config


@pytest.fixture
def data_dir():
    """The shared offline data folder ($AEJAX_DATA_DIR, or ../shared/data); skips if absent."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get("AEJAX_DATA_DIR", ""), os.path.join(here, "../../shared/data")]
    for path in candidates:
        if path and os.path.isdir(os.path.join(path, "mnist")):
            return os.path.abspath(path)
    pytest.skip("offline data (AEJAX_DATA_DIR with mnist/) is not present")


# The quick tier: the numerical checks, config and data checks, and the real training loop
# on tiny data once for each model family (MLP and conv AE, VAE, adversarial AE, VQ-VAE,
# WAE/RAE, HVAE/RHVAE); `python -m pytest -m quick tests`. Whole files, one test of a file
# (every case of a parametrized one), or one case.
QUICK = (
    "test_losses.py",
    "test_data.py",
    "test_models.py",
    "test_contractive.py",
    "test_metrics.py",
    "test_likelihood.py::test_exact_posterior_gives_log_px_for_every_k",
    "test_likelihood.py::test_iwae_term_on_the_models_k_samples_matches_numpy",
    "test_samplers.py::test_gaussian_mixture_draws_have_the_fitted_mixtures_moments",
    "test_architecture.py",
    "test_bad_configs.py",
    "test_vae.py",
    "test_conv.py::test_seeds_conv_ae_shapes",
    "test_conv.py::test_upsample2_phase_kernels_by_hand",
    "test_conv.py::test_conv_ae_trains_end_to_end",
    "test_keras.py::test_rmsprop_by_hand_with_eps_outside_the_square_root",
    "test_keras.py::test_mean_terms_by_hand_and_against_keras_formula",
    "test_keras.py::test_keras_conv_autoencoder_shapes_parameters_and_values",
    "test_train.py::test_resume_is_bit_exact[1]",
    "test_aae.py::test_adversarial_terms_by_hand",
    "test_aae.py::test_a_nonfinite_update_is_skipped_alone",
    "test_vq.py::test_nearest_code_and_quantizer_match_numpy",
    "test_vq.py::test_ema_update_matches_a_hand_step",
    "test_vq.py::test_ema_codebook_is_checkpointed_and_resumed_bit_exactly",
    "test_zoo.py::test_mmd_terms_match_a_numpy_double_loop",
    "test_hvae.py::test_leapfrog_is_volume_preserving_and_reversible",
    "test_hvae.py::test_hvae_importance_weights_are_unbiased_and_iwae_tends_to_log_px",
    "test_hvae.py::test_tiny_run_lowers_the_negative_elbo_and_its_bounds_order",
    "test_rhvae.py::test_metric_matches_numpy_is_positive_definite_and_has_its_log_det",
    "test_rhvae.py::test_state_is_checkpointed_resumed_bit_exactly_and_the_loss_falls",
    "test_flows.py::test_linear_flow_log_det_matches_jacfwd",
    "test_flows.py::test_each_model_trains_and_its_iwae_bound_is_above_its_elbo[vae_iaf:context]",
    "test_zoo.py::test_wae_resume_is_bit_exact",
    "test_importance.py::test_relations_between_the_bounds",
    "test_importance.py::test_log_weights_match_numpy",
    "test_vmf.py::test_log_bessel_and_ratio_match_scipy_in_float32",
    "test_vmf.py::test_kl_closed_form_matches_scipy_entropy_and_monte_carlo",
    "test_poincare.py::test_wrapped_normal_density_integrates_to_one_on_the_ball[1.0-mu0-scale0]",
    "test_manifold_vae.py::test_recipes_that_read_another_posterior_are_refused",
    "test_run_memory.py::test_without_config_json_another_config_is_refused_by_the_checkpoints",
    "test_variants.py::test_every_digits_preset_states_its_expected_number",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        where = f"{os.path.basename(str(item.fspath))}::{item.name}"
        if any(where == q or where.startswith(q + "[") or where.split("::")[0] == q for q in QUICK):
            item.add_marker(pytest.mark.quick)
