"""The Hamiltonian VAE (Caterini, Doucet & Sejdinovic, 2018, "Hamiltonian Variational
Auto-Encoder"), with pythae 0.1.2's parametrization.

A Gaussian encoder gives z_0 ~ q(z_0|x) = N(μ, diag σ²); a momentum ρ_0 = γ_0/√β_0 with
γ_0 ~ N(0, I), i.e. ρ_0 ~ N(0, I/β_0); K leapfrog steps of size ε on the target
log p(x, z) = log p(x|z) + log N(z; 0, I) (its gradient ∇_z taken through the decoder with
`jax.grad`), each followed by tempering ρ ← √(β_{k−1}/β_k) ρ (`aejax.models.hamiltonian`),
move (z_0, ρ_0) to (z_K, ρ_K). The flow's Jacobian determinant is β_0^{d/2}, so the density
of (z_K, ρ_K) is q(z_0|x) N(ρ_0; 0, I/β_0) β_0^{−d/2} = q(z_0|x) N(γ_0; 0, I), and

    w = p(x|z_K) p(z_K) N(ρ_K; 0, I) / [q(z_0|x) N(γ_0; 0, I)]

is an unbiased importance weight of p(x): E[w] = ∫ p(x, z) N(ρ; 0, I) dz dρ = p(x). So the
model declares a "sampled" posterior whose draws are z_K with

    log_q = log q(z_0|x) + log N(γ_0; 0, I) − log N(ρ_K; 0, I)

(the density of the extended-space sample divided by the momentum's target density): then
p(x|z_K) p(z_K) / exp(log_q) = w, and the likelihood bounds and "bce + kl_sample" (the
extended-space negative ELBO, Caterini et al. eq. 9) use it unchanged.

Differences from pythae's `HVAE`: its `forward` takes σ = softplus(logvar), moves z with
the pre-half-step momentum and drops the tempering (`rho = rho__` overwrites it); here the
leapfrog and the tempering are those of the paper's Algorithm 1, σ = exp(½ logvar). Its
loss leaves out ½‖γ_0‖² and ½‖ε_0‖², constants of the gradient; here log_q keeps them, so
the numbers are bounds on log p(x). A learned ε (`learn_eps_lf`) is a raw parameter as in
pythae (any real ε gives a volume-preserving flow); a learned β_0 is log β_0.
"""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.models import hamiltonian
from aejax.models.interface import ModelInterface
from aejax.models.layers import get_activation

# The fields of config.model the Hamiltonian families read, with their defaults (merged
# into aejax.models.FAMILY_FIELDS). pythae 0.1.2's HVAEConfig defaults.
HVAE_FIELDS = {
    "likelihood": "bce",  # hvae, rhvae: log p(x|z) of the Hamiltonian: bce | gaussian_nll
    "likelihood_variance": 1.0,  # likelihood gaussian_nll: its fixed variance
    "n_lf": 3,  # hvae, rhvae: K, leapfrog steps
    "eps_lf": 0.001,  # hvae, rhvae: the leapfrog step size ε
    "beta_zero": 0.3,  # hvae, rhvae: β_0 in (0, 1], the initial inverse temperature
    "learn_eps_lf": False,  # hvae, rhvae: ε a parameter
    "learn_beta_zero": False,  # hvae, rhvae: β_0 a parameter (log β_0)
}
LIKELIHOODS = ("bce", "gaussian_nll")
LOG_2PI = math.log(2.0 * math.pi)


def log_normal(v: jax.Array) -> jax.Array:
    """log N(v; 0, I) over the last axis: [..., d] -> [...]."""
    return -0.5 * jnp.sum(jnp.square(v) + LOG_2PI, axis=-1)


class HVAE(ModelInterface, nn.Module):
    """x -> q(z_0|x) -> K tempered leapfrog steps on log p(x, z) -> z_K -> x̂.

    Randomness: with train=True, ε_0 and γ_0 come from the "latent" rng; with train=False
    too when `sample_at_eval` and a "latent" rng is given (the trainer's eval step: test/loss
    is then a one-sample negative ELBO), else z_0 = μ and ρ_0 = 0 (deterministic).

    Attributes:
      encoder: [B, *input_shape] -> [B, 2·latent_dim] (means, then log-variances).
      decoder: codes [B, latent_dim] -> logits [B, *input_shape].
      latent_dim: d.
      likelihood: an `aejax.likelihood.Likelihood` ("bce" or "gaussian_nll"), the log p(x|z)
        of the Hamiltonian's target.
      output_activation: the activation giving x̂ from the logits.
      n_lf, eps_lf, beta_zero: K, ε and β_0.
      learn_eps_lf, learn_beta_zero: make ε (raw) or β_0 (as log β_0) parameters.
      sample_at_eval: as `aejax.models.vae.VAE`.
    """

    encoder: nn.Module
    decoder: nn.Module
    latent_dim: int
    likelihood: Any
    output_activation: str = "sigmoid"
    n_lf: int = 3
    eps_lf: float = 0.001
    beta_zero: float = 0.3
    learn_eps_lf: bool = False
    learn_beta_zero: bool = False
    sample_at_eval: bool = True

    posterior = "sampled"

    def latent_prior(self) -> str:
        """N(0, I) on the latent."""
        return "standard_normal"

    def setup(self):
        # The learned ones are parameters; the others stay Python constants.
        self.step_size = self.eps_lf
        if self.learn_eps_lf:
            init = lambda _: jnp.asarray(self.eps_lf, jnp.float32)
            self.step_size = self.param("eps_lf", init)
        self.log_beta_zero = math.log(self.beta_zero)
        if self.learn_beta_zero:
            init = lambda _: jnp.log(jnp.asarray(self.beta_zero, jnp.float32))
            self.log_beta_zero = self.param("log_beta_zero", init)

    def _sqrt_betas(self):
        """[K + 1] √β_k of the tempering schedule."""
        return hamiltonian.tempering(jnp.exp(self.log_beta_zero), self.n_lf)

    def encode_gaussian(self, x: jax.Array, *, train: bool = False):
        """[B, *input_shape] -> (mean, logvar) of q(z_0|x), each [B, d]."""
        mean, logvar = jnp.split(self.encoder(x, train=train), 2, axis=-1)
        return mean, logvar

    def decode(self, z: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """code z [B, d] -> (x̂, logits), both [B, *input_shape]."""
        logits = self.decoder(z, train=train)
        act = get_activation(self.output_activation, "config.model.output_activation")
        return act(logits), logits

    def generate(self, n: int) -> jax.Array:
        """n decoder means of z ~ N(0, I) drawn from the "latent" rng: [n, *input_shape]."""
        z = jax.random.normal(self.make_rng("latent"), (n, self.latent_dim))
        return self.decode(z)[0]

    def _grad_log_target(self, x: jax.Array):
        """z [N, d] -> ∇_z log p(x, z) [N, d] for the rows of x [N, ...], through the decoder
        (its parameters traced, so training differentiates through the flow)."""
        decoder, variables = self.decoder.unbind()
        act = get_activation(self.output_activation, "config.model.output_activation")

        def log_joint(z):
            logits = decoder.apply(variables, z)
            log_px = self.likelihood.log_prob(x, x_hat=act(logits), logits=logits)
            return jnp.sum(log_px + log_normal(z))

        return jax.grad(log_joint)

    def _metric(self, x, mean, *, train: bool):
        """The Riemannian metric of the flow (None: the identity, HVAE)."""
        return None

    def _flow(self, x, z0, gamma, metric):
        """(z_0, γ_0), each [N, d], rows of x [N, ...] -> (z_K, log N(γ_0; 0, I) −
        log N(ρ_K; 0, I)) with ρ_0 = γ_0/√β_0: z_K [N, d] and [N]."""
        sqrt_betas = self._sqrt_betas()
        eps, grad = self.step_size, self._grad_log_target(x)
        step = lambda z, rho, g: hamiltonian.leapfrog(grad, z, rho, eps, g)
        z, rho = hamiltonian.tempered_flow(step, z0, gamma / sqrt_betas[0], sqrt_betas)
        return z, log_normal(gamma) - log_normal(rho)

    def _sample(self, x, mean, logvar, eps0, gamma, metric):
        """The flow from z_0 = μ + σ·ε_0: (z_K, log_q), [N, d] and [N] (see the module)."""
        z0 = mean + jnp.exp(0.5 * logvar) * eps0
        log_q0 = log_normal(eps0) - 0.5 * jnp.sum(logvar, -1)  # log N(z_0; μ, diag σ²)
        if self.is_initializing():
            # The decoder's parameters exist once it has run; the flow adds none, and init
            # runs op by op, where the flow's gradients are most of its time.
            self.decode(mean)
            return z0, log_q0
        z, log_ratio = self._flow(x, z0, gamma, metric)
        return z, log_q0 + log_ratio

    def encode(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, *input_shape] -> z_K [B, d] of the flow from z_0 = μ, ρ_0 = 0 (deterministic)."""
        mean, logvar = self.encode_gaussian(x)
        zeros, metric = jnp.zeros_like(mean), self._metric(x, None, train=False)
        return self._sample(x, mean, logvar, zeros, zeros, metric)[0]

    def posterior_samples(self, x: jax.Array, keys: jax.Array):
        """S extended-space draws per example (`aejax.models.interface`).

        Sample (i, j) draws ε_0 and γ_0 (one normal draw [2, d]) from keys[i, j] alone.

        Args:
          x: [B, *input_shape].
          keys: [B, S] PRNG keys.
        Returns:
          (z_K [B, S, d], log_q [B, S]), log_q as in the module docstring.
        """
        mean, logvar = self.encode_gaussian(x)
        b, s = keys.shape
        noise = jax.vmap(jax.vmap(lambda k: jax.random.normal(k, (2, self.latent_dim))))(keys)
        rows = lambda a: jnp.broadcast_to(a[:, None], (b, s, *a.shape[1:])).reshape(
            b * s, *a.shape[1:]
        )
        x_rows = rows(x)
        metric = self._metric(x_rows, None, train=False)
        eps0, gamma = noise[:, :, 0].reshape(b * s, -1), noise[:, :, 1].reshape(b * s, -1)
        z, log_q = self._sample(x_rows, rows(mean), rows(logvar), eps0, gamma, metric)
        return z.reshape(b, s, -1), log_q.reshape(b, s)

    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        """[B, *input_shape] -> (x̂, aux {z (z_K), z0, mean, logvar, logits, x_hat, log_q,
        log_prior}); "bce + kl_sample" on aux is the one-sample extended-space negative
        ELBO."""
        mean, logvar = self.encode_gaussian(x, train=train)
        metric = self._metric(x, mean, train=train)
        if train or (self.sample_at_eval and self.has_rng("latent")):
            noise = jax.random.normal(self.make_rng("latent"), (2, *mean.shape), mean.dtype)
        else:
            noise = jnp.zeros((2, *mean.shape), mean.dtype)
        z, log_q = self._sample(x, mean, logvar, noise[0], noise[1], metric)
        x_hat, logits = self.decode(z, train=train)
        z0 = mean + jnp.exp(0.5 * logvar) * noise[0]
        aux = dict(z=z, z0=z0, mean=mean, logvar=logvar, logits=logits, x_hat=x_hat)
        return x_hat, {**aux, "log_q": log_q, "log_prior": log_normal(z)}


def _field(cfg, name: str, fields: dict):
    return cfg[name] if name in cfg else fields[name]


def check_number(cfg, name: str, ok, what: str, fields=HVAE_FIELDS, integer: bool = False):
    """`config.model.<name>` (or its default in `fields`) if a finite number for which `ok`
    holds; a one-line ConfigError otherwise."""
    value = _field(cfg, name, fields)
    kind = int if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kind)
        or not math.isfinite(value)
        or not ok(value)
    ):
        raise ConfigError(f"config.model.{name}={value!r} must be {what}")
    return value


def check_flag(cfg, name: str, fields=HVAE_FIELDS) -> bool:
    value = _field(cfg, name, fields)
    if not isinstance(value, bool):
        raise ConfigError(f"config.model.{name}={value!r} must be true or false")
    return value


def hamiltonian_settings(cfg, family: str) -> dict:
    """The checked fields every Hamiltonian family reads: likelihood, n_lf, eps_lf,
    beta_zero (and the VAE fields they refuse)."""
    # Imported here: aejax.likelihood imports aejax.models (its interface).
    from aejax.likelihood.bounds import get_likelihood

    for name, ok in (("x_logvar", "none"), ("num_samples", 1), ("dropout", 0.0)):
        if name in cfg and cfg[name] != ok:
            raise ConfigError(
                f"config.model.{name}={cfg[name]!r}: the {family} family does not support "
                f"it; set it to {ok!r}"
            )
    if cfg.get("batch_norm"):
        raise ConfigError(
            f"config.model.batch_norm=True: the {family} family's leapfrog differentiates "
            "the decoder row by row; set it to False"
        )
    name = _field(cfg, "likelihood", HVAE_FIELDS)
    if name not in LIKELIHOODS:
        raise ConfigError(
            f"config.model.likelihood={name!r} is not known; valid: {', '.join(LIKELIHOODS)}"
        )
    variance = check_number(cfg, "likelihood_variance", lambda v: v > 0, "a finite number > 0")
    options = {"gaussian_nll": {"variance": float(variance)}} if name == "gaussian_nll" else {}
    return dict(
        likelihood=get_likelihood(name, options, where="config.model.likelihood"),
        n_lf=check_number(
            cfg, "n_lf", lambda v: 1 <= v <= 100, "an integer in [1, 100]", integer=True
        ),
        eps_lf=float(check_number(cfg, "eps_lf", lambda v: v > 0, "a finite number > 0")),
        beta_zero=float(
            check_number(cfg, "beta_zero", lambda v: 0 < v <= 1, "a finite number in (0, 1]")
        ),
    )


def build_hvae(cfg, vae) -> HVAE:
    """An HVAE around the encoder and decoder of `vae`, the MLP VAE that
    `aejax.models.build_vae` made from `cfg` (encoder_widths = (hidden..., latent size)),
    with `cfg`'s Hamiltonian fields checked."""
    return HVAE(
        encoder=vae.encoder,
        decoder=vae.decoder,
        latent_dim=vae.latent_shape[0],
        output_activation=vae.output_activation,
        learn_eps_lf=check_flag(cfg, "learn_eps_lf"),
        learn_beta_zero=check_flag(cfg, "learn_beta_zero"),
        sample_at_eval=vae.sample_at_eval,
        **hamiltonian_settings(cfg, "hvae"),
    )
