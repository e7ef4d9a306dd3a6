"""Sampling from a trained generative model's prior."""

import jax

from aejax.errors import ConfigError
from aejax.models import interface


def sample_prior(model, variables, key: jax.Array, n: int) -> jax.Array:
    """n new examples: codes drawn from the model's prior with `key` (a VAE's N(0, I), an
    AAE's Gaussian or mixture prior), decoded to the decoder's means.

    The same key gives the same samples; the draw depends on nothing else.

    Args:
      model: a model that declares a prior (`aejax.models.interface.prior_of`).
      variables: its variables ({"params": ..., maybe "batch_stats": ...}).
      key: a PRNG key.
      n: how many samples (a Python int: it fixes the shapes).
    Returns:
      [n, *input_shape] decoder means (pixel probabilities for a Bernoulli decoder).
    """
    if interface.prior_of(model) is None:
        raise ConfigError(
            f"a {type(model).__name__} has no prior to sample from; use a model that has one "
            "(config.model.name 'vae', 'conv_vae' or 'aae')"
        )
    return model.apply(variables, n, method="generate", rngs={"latent": key})
