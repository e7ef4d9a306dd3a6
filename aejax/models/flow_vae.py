"""A VAE whose posterior is a Gaussian pushed through a normalizing flow: pythae's VAE_LinNF
(planar and radial flows, Rezende & Mohamed, 2015) and VAE_IAF (Kingma et al., 2016).

q(z|x): z0 = μ(x) + σ(x)·ε, ε ~ N(0, I), then z_K = f_K ∘ … ∘ f_1(z0) (`aejax.models.flows`),
so log q(z_K|x) = log N(z0; μ, diag σ²) − Σ_k log|det ∂f_k/∂z_{k−1}|. The prior is N(0, I)
and the decoder reads z_K. The model declares posterior = "sampled": its
`posterior_samples` draws z_K with log q for the likelihood bounds, and its aux holds the
log q and log p(z) of its own sample, so the recipe "bce + kl_sample" is the one-sample
negative ELBO (pythae's loss, whose KL is the same one-sample log q0 − log p − Σ log|det|).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.models.flows import FLOW_FIELDS, IAF, LINEAR_FLOWS, LinearFlows
from aejax.models.vae import VAE

_LOG_2PI = math.log(2.0 * math.pi)


def _log_normal(v: jax.Array) -> jax.Array:
    """Σ log N(v; 0, 1) over the last axis."""
    return -0.5 * jnp.sum(jnp.square(v) + _LOG_2PI, axis=-1)


class FlowVAE(VAE):
    """x -> z0 ~ N(μ(x), diag σ²(x)) -> z_K = flow(z0) -> x̂ = output_act(decoder(z_K)).

    A `VAE` (its decoder, prior N(0, I) and `generate`) with a flow after the Gaussian.
    Randomness as the VAE's: ε from the "latent" rng when training (or at evaluation with
    `sample_at_eval` and a "latent" rng); otherwise z0 = μ.

    Attributes:
      flow: maps (z0 [N, D], context [N, C] or None) to (z_K [N, D], Σ log|det J| [N])
        (`LinearFlows`, `IAF`).
      context_dim: C, the encoder's outputs after the 2·D means and log-variances that
        the flow reads as a context h(x) (Kingma et al.'s IAF); 0 for none.
      (the VAE's encoder, decoder, latent_shape (D,), output_activation, x_logvar and
      sample_at_eval; num_samples must be 1.)
    """

    flow: nn.Module | None = None
    context_dim: int = 0

    posterior = "sampled"

    def encode_base(self, x: jax.Array, *, train: bool = False):
        """[B, *input_shape] -> (mean, logvar) [B, D] of the base q0(z0|x), and the context
        [B, C] (None when C = 0)."""
        out = self.encoder(x, train=train)
        d = self.latent_shape[-1]
        context = out[:, 2 * d :] if self.context_dim else None
        return out[:, :d], out[:, d : 2 * d], context

    def encode_gaussian(self, x: jax.Array, *, train: bool = False):
        """(mean, logvar) of the base Gaussian q0(z0|x), before the flow; not the posterior."""
        return self.encode_base(x, train=train)[:2]

    def encode(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, *input_shape] -> the flow of the base mean, f(μ) [B, D]: the code the decoder
        reads when ε = 0 (reconstructions, the report's codes)."""
        mean, _, context = self.encode_base(x, train=train)
        return self.flow(mean, context)[0]

    def _flow_from_noise(self, mean, logvar, context, eps):
        """z0 = μ + σ·ε [N, D] -> (z_K [N, D], log q(z_K|x) [N])."""
        z, log_det = self.flow(mean + jnp.exp(0.5 * logvar) * eps, context)
        log_q0 = _log_normal(eps) - 0.5 * jnp.sum(logvar, axis=-1)
        return z, log_q0 - log_det

    def posterior_samples(self, x: jax.Array, keys: jax.Array):
        """Draws from q(z|x) with their log-densities (evaluation mode).

        Args:
          x: [B, *input_shape].
          keys: [B, S] PRNG keys; ε of sample (i, j) is normal(keys[i, j], (D,)).
        Returns:
          (z_K [B, S, D], log q(z_K|x) [B, S]).
        """
        mean, logvar, context = self.encode_base(x)
        b, s, d = keys.shape[0], keys.shape[1], self.latent_shape[-1]
        eps = jax.vmap(jax.vmap(lambda k: jax.random.normal(k, (d,), mean.dtype)))(keys)
        rep = lambda a: None if a is None else jnp.repeat(a, s, axis=0)  # row i·S + j
        z, log_q = self._flow_from_noise(rep(mean), rep(logvar), rep(context), eps.reshape(-1, d))
        return z.reshape(b, s, d), log_q.reshape(b, s)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        """[B, *input_shape] -> (x̂, aux {z, z0, log_q, log_prior, logits, x_hat[, x_logvar]}):
        z is z_K, log_q and log_prior [B] its log q(z_K|x) and log N(z_K; 0, I)."""
        mean, logvar, context = self.encode_base(x, train=train)
        if train or (self.sample_at_eval and self.has_rng("latent")):
            eps = jax.random.normal(self.make_rng("latent"), mean.shape, mean.dtype)
        else:
            eps = jnp.zeros_like(mean)
        z, log_q = self._flow_from_noise(mean, logvar, context, eps)
        x_hat, logits = self.decode(z, train=train)
        aux = {"z": z, "z0": mean + jnp.exp(0.5 * logvar) * eps, "log_q": log_q}
        aux.update(log_prior=_log_normal(z), logits=logits, x_hat=x_hat)
        if self.x_logvar != "none":
            shape = x_hat.shape[1:] if self.x_logvar == "pixel" else ()
            s = self.param("x_logvar", nn.initializers.zeros, shape)
            aux["x_logvar"] = jnp.broadcast_to(s, x_hat.shape)
        return x_hat, aux


def _field(cfg, name: str):
    return cfg[name] if name in cfg else FLOW_FIELDS[name]


def _int(cfg, name: str, low: int) -> int:
    v = _field(cfg, name)
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ConfigError(f"config.model.{name}={v!r} must be an integer >= {low}")
    return v


def _flow_names(cfg) -> tuple[str, ...]:
    flows = _field(cfg, "flows")
    names = (flows,) if isinstance(flows, str) else flows
    try:
        names = tuple(names)
    except TypeError:
        names = (flows,)
    bad = [n for n in names if n not in LINEAR_FLOWS]
    if bad:
        raise ConfigError(
            f"config.model.flows={flows!r}: {bad[0]!r} is not a flow; each must be one of "
            f"{', '.join(LINEAR_FLOWS)}, e.g. ('planar', 'radial')"
        )
    return names


def _made_widths(cfg) -> tuple[int, ...]:
    widths = _field(cfg, "made_widths")
    try:
        widths = tuple(widths)
    except TypeError:
        widths = None
    if not widths or not all(
        isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths
    ):
        raise ConfigError(
            f"config.model.made_widths={_field(cfg, 'made_widths')!r} must be a non-empty "
            "list of positive integers (each MADE block's hidden widths)"
        )
    return widths


def build_flow_vae(cfg, vae: VAE, kind: str) -> FlowVAE:
    """A flow VAE around the encoder and decoder of `vae`, the MLP VAE `build_vae` made from
    `cfg` (its fields checked there), with `cfg`'s flow fields checked.

    Args:
      cfg: config.model: `flows` (kind "nf"), or `iaf_blocks`, `made_widths` and
        `iaf_context` (kind "iaf").
      vae: a `VAE` with an MLP encoder (`widths`) and a latent vector.
      kind: "nf" (planar and radial flows) or "iaf".
    """
    if vae.num_samples != 1:
        raise ConfigError(
            f"config.model.num_samples={vae.num_samples}: a flow VAE draws one z per example "
            "in training (the recipe 'bce + kl_sample'); set it to 1"
        )
    (d,) = vae.latent_shape
    encoder, context = vae.encoder, 0
    if kind == "nf":
        flow = LinearFlows(_flow_names(cfg))
    else:
        flow = IAF(_int(cfg, "iaf_blocks", 1), _made_widths(cfg))
        context = _int(cfg, "iaf_context", 0)
        if context:  # the encoder also outputs h(x)
            encoder = encoder.clone(widths=(*encoder.widths[:-1], 2 * d + context))
    return FlowVAE(
        encoder=encoder,
        decoder=vae.decoder,
        latent_shape=(d,),
        output_activation=vae.output_activation,
        x_logvar=vae.x_logvar,
        sample_at_eval=vae.sample_at_eval,
        flow=flow,
        context_dim=context,
    )
