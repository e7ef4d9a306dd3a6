"""The interface a model declares; the trainer and evaluation ask it, never guess.

Every model (a flax.linen module) provides:

    __call__(x, *, train) -> (x̂, aux)        aux: name -> tensor, what loss terms read
    encode(x, *, train=False) -> z             the deterministic code
    decode(z, *, train=False) -> (x̂, logits)   both [B, *input_shape]

and may declare, as class attributes or methods of `ModelInterface` (a mixin with the
defaults: nothing optional):

    posterior = "gaussian"   it has encode_gaussian(x) -> (mean, logvar): q(z|x) is
                             N(mean, diag exp(logvar)) (likelihood bounds, the ELBO anomaly
                             score)
    latent_prior() -> str    the name of its prior ("standard_normal", "mixture", ...);
                             then generate(n) draws n samples from it with the "latent" rng
    codebook_size() -> int   K when the code is discrete: every code vector (the last axis
                             of encode's output) is one of K codebook vectors, so each
                             carries log2(K) bits (a VQ-VAE); None for a continuous code

Model state beyond parameters (batch statistics, an EMA codebook) is any variable
collection other than "params": the trainer applies the model with those collections
mutable, keeps what it returns and checkpoints it with the parameters.
"""

from typing import ClassVar

from aejax.errors import ConfigError

POSTERIORS = ("gaussian",)


class ModelInterface:
    """Mixin declaring a model's optional capabilities (defaults: none)."""

    posterior: ClassVar[str | None] = None

    def latent_prior(self) -> str | None:
        """The name of the prior `generate` samples from, or None (no prior)."""
        return None

    def codebook_size(self) -> int | None:
        """K, when every code vector is one of K codebook vectors; None (continuous)."""
        return None


def check(model, name: str):
    """Returns `model` if it has the required methods and a known posterior; ConfigError
    naming the model otherwise (before any training work)."""
    missing = [m for m in ("encode", "decode", "__call__") if not callable(getattr(model, m, None))]
    if missing:
        raise ConfigError(
            f"config.model.name={name!r} built a {type(model).__name__} without "
            f"{', '.join(missing)}; see aejax.models.interface"
        )
    posterior = posterior_of(model)
    if posterior is not None and posterior not in POSTERIORS:
        raise ConfigError(
            f"config.model.name={name!r} declares posterior={posterior!r}; known: "
            + ", ".join(POSTERIORS)
        )
    k = codebook_size_of(model)
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 2):
        raise ConfigError(
            f"config.model.name={name!r} declares codebook_size()={k!r}; it must be an "
            "integer >= 2 (or None for a continuous code)"
        )
    return model


def posterior_of(model) -> str | None:
    """The declared posterior family ("gaussian"), or None."""
    return getattr(type(model), "posterior", None)


def has_gaussian_posterior(model) -> bool:
    """Whether the model declares a Gaussian posterior with `encode_gaussian`."""
    return posterior_of(model) == "gaussian"


def prior_of(model) -> str | None:
    """The name of the model's prior (it can `generate`), or None."""
    declared = getattr(model, "latent_prior", None)
    return declared() if callable(declared) else None


def codebook_size_of(model) -> int | None:
    """K of a model whose code vectors are each one of K codebook vectors, or None."""
    declared = getattr(model, "codebook_size", None)
    return declared() if callable(declared) else None
