"""The VampPrior VAE (Tomczak & Welling, 2018, "VAE with a VampPrior", AISTATS 2018).

The prior is the "variational mixture of posteriors"

    p(z) = (1/K) Σ_k q(z | u_k),

the encoder's own Gaussian posteriors at K pseudo-inputs u_k, which are parameters of the
model shaped like one example and learned with the rest. The KL between the posterior and
this mixture has no closed form, so the model returns log q(z|x) and log p(z) of its
training sample z in aux and the recipe "bce + kl_sample" (or a Gaussian likelihood +
kl_sample) is the one-sample negative ELBO; the likelihood bounds (`aejax.likelihood`) use
`log_prior`.

The pseudo-inputs are made as pythae 0.1.2's VAMP makes them: a dense layer applied to the
K one-hot vectors, u_k = φ(W_k + b) with W [K, *input_shape] and a bias b [*input_shape]
shared by all components, both drawn uniformly from ±1/√K (PyTorch's `nn.Linear`
initialization), and φ the hard tanh to [0, 1] (`pseudo_activation` "hardtanh", whose
gradient is zero where W_k + b is outside [0, 1]; "sigmoid", the authors' code's choice for
binary and grey-level data, or "linear" for data that are not in [0, 1]).

pythae's log-densities drop the log 2π constants (they cancel in log q − log p); here both
keep them, so that `log_prior` is a normalized density for the likelihood bounds.
"""

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.models.vae import VAE

# The fields of config.model that the VampPrior family reads, with their defaults (merged
# into aejax.models.FAMILY_FIELDS). pythae's VAMP default: 50 components.
VAMP_FIELDS = {
    "num_pseudo_inputs": 50,  # vamp_vae: K, the prior's components
    "pseudo_activation": "hardtanh",  # vamp_vae: hardtanh (to [0, 1]) | sigmoid | linear
}

PSEUDO_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "hardtanh": lambda u: jnp.clip(u, 0.0, 1.0),  # pythae's nn.Hardtanh(0.0, 1.0)
    "sigmoid": jax.nn.sigmoid,
    "linear": lambda u: u,
}

_LOG_2PI = math.log(2.0 * math.pi)


def log_gaussian_mixture(z: jax.Array, means: jax.Array, logvars: jax.Array) -> jax.Array:
    """log (1/K) Σ_k N(z; μ_k, diag exp(logvar_k)), summed over a code's axes.

    Computed as a logsumexp over the components' log-densities, so a z far from every
    component (each density underflowing to 0 in float32) still gets a finite value.

    Args:
      z: [..., *latent_shape] codes (any leading axes).
      means, logvars: [K, *latent_shape], the components.
    Returns:
      [...] log-densities in nats.
    """
    n_latent = means.ndim - 1
    axes = tuple(range(-n_latent, 0))
    diff = jnp.expand_dims(z, -n_latent - 1) - means  # [..., K, *latent_shape]
    log_n = -0.5 * jnp.sum(logvars + jnp.square(diff) * jnp.exp(-logvars) + _LOG_2PI, axes)
    return jax.nn.logsumexp(log_n, axis=-1) - math.log(means.shape[0])


def log_diagonal_gaussian(z: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """log N(z; μ, diag exp(logvar)) of each code, [B, *latent_shape] -> [B] nats."""
    terms = logvar + jnp.square(z - mean) * jnp.exp(-logvar) + _LOG_2PI
    return -0.5 * jnp.sum(terms, axis=tuple(range(1, z.ndim)))


def _pythae_uniform(num: int):
    """U(−1/√K, 1/√K): PyTorch's nn.Linear initialization of a layer with K inputs (its
    weight and its bias), which pythae's pseudo-input layer keeps."""
    bound = 1.0 / math.sqrt(num)
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(
        key, shape, dtype, -bound, bound
    )


class PseudoInputs(nn.Module):
    """The K pseudo-inputs u_k = φ(W_k + b), [K, *example_shape] (see the module docstring).

    Attributes:
      num: K.
      example_shape: the shape of one example.
      activation: φ, a name in PSEUDO_ACTIVATIONS.
    """

    num: int
    example_shape: Sequence[int]
    activation: str = "hardtanh"

    @nn.compact
    def __call__(self) -> jax.Array:
        init = _pythae_uniform(self.num)
        kernel = self.param("kernel", init, (self.num, *self.example_shape))
        bias = self.param("bias", init, tuple(self.example_shape))
        return PSEUDO_ACTIVATIONS[self.activation](kernel + bias)


class VampVAE(VAE):
    """A `VAE` (its Gaussian posterior, decoder, sampling and likelihood options) whose
    prior is the VampPrior of its encoder at learned pseudo-inputs.

    aux holds z, x_hat, logits, log_q (log q(z|x) of z) and log_prior (log p(z)), [B] each
    (and x_logvar with a learned Gaussian variance). It leaves out the posterior's mean and
    logvar and the k-sample tensors on purpose: the terms that read them (kl_normal,
    iwae_bce) assume the N(0, I) prior, so a recipe with them is refused with a one-line
    error instead of training another model than this one.

    Attributes (beyond VAE's):
      pseudo_inputs: a `PseudoInputs` module; its parameters are the model's
        ("pseudo_inputs": kernel, bias).
    """

    pseudo_inputs: nn.Module | None = None

    def latent_prior(self) -> str:
        """The VampPrior."""
        return "vamp"

    def prior_components(self) -> tuple[jax.Array, jax.Array]:
        """The K components' (mean, logvar), each [K, *latent_shape]: the encoder at the
        pseudo-inputs, in evaluation mode (the same prior in training and evaluation)."""
        return self.encode_gaussian(self.pseudo_inputs(), train=False)

    def log_prior(self, z: jax.Array) -> jax.Array:
        """log p(z) = log (1/K) Σ_k q(z | u_k), z [..., *latent_shape] -> [...] nats."""
        means, logvars = self.prior_components()
        return log_gaussian_mixture(z, means, logvars)

    def prior_samples(self, n: int) -> jax.Array:
        """n codes from the prior, [n, *latent_shape]: a component k uniformly from the
        "latent" rng, then z = μ_k + σ_k·ε."""
        means, logvars = self.prior_components()
        k_key, eps_key = jax.random.split(self.make_rng("latent"))
        k = jax.random.randint(k_key, (n,), 0, means.shape[0])
        eps = jax.random.normal(eps_key, (n, *means.shape[1:]), means.dtype)
        return means[k] + jnp.exp(0.5 * logvars[k]) * eps

    def generate(self, n: int) -> jax.Array:
        """n samples from the model: z from the VampPrior, then x̂ = decode(z).

        Returns:
          [n, *input_shape] decoder means.
        """
        return self.decode(self.prior_samples(n), train=False)[0]

    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        """[B, *input_shape] -> (x̂, aux {z, x_hat, logits, log_q, log_prior[, x_logvar]})."""
        x_hat, aux = super().__call__(x, train=train)
        z = aux["z"]
        log_q = log_diagonal_gaussian(z, aux.pop("mean"), aux.pop("logvar"))
        del aux["z_samples"], aux["logits_samples"]
        return x_hat, {**aux, "log_q": log_q, "log_prior": self.log_prior(z)}


def build_vamp(cfg, vae: VAE, input_shape: Sequence[int]) -> VampVAE:
    """A VampPrior VAE with the parts of `vae` (built from `cfg` by the VAE builder, which
    checked its fields) and `cfg`'s pseudo-inputs (num_pseudo_inputs, pseudo_activation).

    Refuses (ConfigError) what would make the prior not a function of the parameters alone
    (batch norm, dropout in the encoder that encodes the pseudo-inputs) and num_samples > 1
    (the k-sample training term assumes N(0, I)).
    """
    field = lambda name: cfg[name] if name in cfg else VAMP_FIELDS[name]
    k = field("num_pseudo_inputs")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100_000:
        raise ConfigError(f"config.model.num_pseudo_inputs={k!r} must be an integer in [1, 100000]")
    activation = field("pseudo_activation")
    if activation not in PSEUDO_ACTIVATIONS:
        raise ConfigError(
            f"config.model.pseudo_activation={activation!r} is not known; valid: "
            + ", ".join(PSEUDO_ACTIVATIONS)
        )
    for name, off in (("batch_norm", False), ("dropout", 0.0)):
        if name in cfg and cfg[name] != off:
            raise ConfigError(
                f"config.model.{name}={cfg[name]!r}: the VampPrior encodes its pseudo-inputs "
                f"with the encoder, which must then be deterministic; set it to {off!r}"
            )
    if vae.num_samples != 1:
        raise ConfigError(
            f"config.model.num_samples={vae.num_samples!r}: a VampPrior VAE trains on one "
            "sample (kl_sample); its IWAE bound is computed at evaluation. Set it to 1"
        )
    return VampVAE(
        encoder=vae.encoder,
        decoder=vae.decoder,
        latent_shape=vae.latent_shape,
        output_activation=vae.output_activation,
        x_logvar=vae.x_logvar,
        sample_at_eval=vae.sample_at_eval,
        pseudo_inputs=PseudoInputs(k, tuple(input_shape), activation),
    )
