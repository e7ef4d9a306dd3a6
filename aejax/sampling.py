"""Sampling from a trained generative model's prior."""

import jax

from aejax.errors import ConfigError


def sample_prior(model, variables, key: jax.Array, n: int) -> jax.Array:
    """n new examples: z ~ N(0, I) drawn from `key`, decoded to the decoder's means.

    The same key gives the same samples; the draw depends on nothing else.

    Args:
      model: a model with a prior, such as a `VAE` (model names "vae", "conv_vae").
      variables: its variables ({"params": ..., maybe "batch_stats": ...}).
      key: a PRNG key.
      n: how many samples (a Python int: it fixes the shapes).
    Returns:
      [n, *input_shape] decoder means (pixel probabilities for a Bernoulli decoder).
    """
    if not hasattr(model, "generate"):
        raise ConfigError(
            f"a {type(model).__name__} has no prior to sample from; use a model with a "
            "Gaussian latent (config.model.name 'vae' or 'conv_vae')"
        )
    return model.apply(variables, n, method="generate", rngs={"latent": key})
