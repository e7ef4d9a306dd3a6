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
    posterior = "sampled"    it has posterior_samples(x, keys) -> (z, log_q): keys [B, S]
                             draw z [B, S, *latent] (sample (i, j) from keys[i, j] alone)
                             with log q [B, S], the log-density of each draw (a flow, a von
                             Mises-Fisher, a Hamiltonian posterior); the likelihood bounds
                             importance-weight these draws
    log_prior(z) -> [...]    log p(z) summed over a code's axes, z [..., *latent] (any
                             leading axes); needed for the bounds when the prior is not
                             "standard_normal" (a VampPrior, a uniform on the sphere)
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

POSTERIORS = ("gaussian", "sampled")
# The method each posterior family must have.
_POSTERIOR_METHODS = {"gaussian": "encode_gaussian", "sampled": "posterior_samples"}


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
    method = _POSTERIOR_METHODS.get(posterior)
    if method is not None and not callable(getattr(model, method, None)):
        raise ConfigError(
            f"config.model.name={name!r} declares posterior={posterior!r} without a "
            f"{method} method; see aejax.models.interface"
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


def has_posterior(model) -> bool:
    """Whether the model declares a posterior q(z|x) the likelihood bounds can weight."""
    return posterior_of(model) in POSTERIORS


def has_log_prior(model) -> bool:
    """Whether the model defines log_prior(z) (else its prior, if any, is N(0, I) or has
    no density the bounds can use)."""
    return callable(getattr(model, "log_prior", None))


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
