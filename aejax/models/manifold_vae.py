"""VAEs whose latent space is a manifold: the hyperspherical VAE (S-VAE, Davidson et al.,
2018) with a von Mises-Fisher posterior and a uniform prior on the sphere S^{d−1}, and the
Poincaré VAE (P-VAE, Mathieu et al., 2019) with wrapped normal posterior and prior on the
Poincaré ball of curvature −c.

Both declare a "sampled" posterior (`aejax.models.interface`): `posterior_samples` draws z
with its log q(z|x), `log_prior` is the prior's log-density, and the likelihood bounds
weight these draws. The models only sample; the recipe holds the loss:

    bce + kl_vmf        the S-VAE's closed-form KL to the uniform prior (pythae's)
    bce + kl_sample     the one-sample log q(z|x) − log p(z), for either model (the P-VAE's
                        KL has no closed form; pythae uses this estimate)

aux holds z (the training draw), x_hat, logits, log_q and log_prior of that z, and the
posterior's parameters: "direction" and "kappa" (S-VAE), "loc" and "scale" (P-VAE).
Randomness comes from the "latent" rng, as in `aejax.models.vae`: z is drawn in training,
and at evaluation when `sample_at_eval` is set and the caller passes a "latent" rng;
otherwise z is the posterior's mode (μ), and log_q its density there.
"""

import math
from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.models import poincare, vmf
from aejax.models.interface import ModelInterface
from aejax.models.layers import get_activation
from aejax.models.mlp import MLPDecoder

# The fields of config.model that these families read, with their defaults (merged into
# aejax.models.FAMILY_FIELDS): pythae's PoincareVAEConfig curvature and a σ per dimension
# (its default encoder's), and the paper's gyroplane decoder (pythae's default decoder is
# the plain MLP, "mlp" here).
MANIFOLD_FIELDS = {
    "curvature": 1.0,  # pvae: c > 0, the Poincaré ball's curvature is −c (radius 1/√c)
    "pvae_decoder": "gyroplane",  # pvae: gyroplane (the paper's first layer) | mlp
    "pvae_isotropic": False,  # pvae: one posterior σ per example (else one per dimension)
}
PVAE_DECODERS = ("gyroplane", "mlp")

# The P-VAE's posterior variance is softplus(h) + this (pythae's reproduction script), so
# that σ stays away from 0.
_MIN_VARIANCE = 1e-5


class _ManifoldVAE(ModelInterface, nn.Module):
    """What the two models share: decoding, the sampled posterior's plumbing, generation.

    A subclass defines `posterior_params(x) -> params` (a tuple of [B, ...] arrays, the
    mode first), `draw(key, *params_of_one_example) -> (z, log_q)`, `mode_log_q`,
    `prior_draw(key, n)`, `log_prior(z)` and `aux_names`.
    """

    encoder: nn.Module
    decoder: nn.Module
    latent_dim: int
    output_activation: str = "sigmoid"
    sample_at_eval: bool = True

    posterior = "sampled"
    aux_names: ClassVar[tuple[str, ...]] = ()

    def encode(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, *input_shape] -> the posterior's mode [B, d], the deterministic code."""
        return self.posterior_params(x, train=train)[0]

    def decode(self, z: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """code z [B, d] -> (x̂, logits), both [B, *input_shape]."""
        logits = self.decoder(z, train=train)
        act = get_activation(self.output_activation, "config.model.output_activation")
        return act(logits), logits

    def posterior_samples(self, x: jax.Array, keys: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Draws from q(z|x): x [B, ...], keys [B, S] -> (z [B, S, d], log q [B, S]);
        sample (i, j) is drawn from keys[i, j] alone (eval mode)."""
        params = self.posterior_params(x)
        per_example = jax.vmap(self.draw, in_axes=(0, *(None,) * len(params)))
        return jax.vmap(per_example)(keys, *params)

    def generate(self, n: int) -> jax.Array:
        """n samples from the model: z from the prior (the "latent" rng), x̂ = decode(z).

        Returns:
          [n, *input_shape] decoder means.
        """
        z = self.prior_draw(self.make_rng("latent"), n)
        return self.decode(z, train=False)[0]

    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        """[B, *input_shape] -> (x̂, aux {z, x_hat, logits, log_q, log_prior, and the
        posterior's parameters by `aux_names`})."""
        params = self.posterior_params(x, train=train)
        if train or (self.sample_at_eval and self.has_rng("latent")):
            keys = jax.random.split(self.make_rng("latent"), x.shape[0])
            z, log_q = jax.vmap(self.draw)(keys, *params)
        else:
            z, log_q = params[0], self.mode_log_q(*params)
        x_hat, logits = self.decode(z, train=train)
        aux = {"z": z, "x_hat": x_hat, "logits": logits, "log_q": log_q}
        aux["log_prior"] = self.log_prior(z)
        aux.update(zip(self.aux_names, params, strict=True))
        return x_hat, aux


class SphericalVAE(_ManifoldVAE):
    """The S-VAE: q(z|x) = vMF(μ(x), κ(x)) on S^{d−1} ⊂ R^d, p(z) uniform on S^{d−1}.

    The encoder's last layer gives d + 1 numbers: μ is the first d normalized, κ =
    softplus(last) + 1 (pythae's; κ ≥ 1). Densities are with respect to the sphere's
    surface measure.

    Attributes:
      encoder: [B, *input_shape] -> [B, latent_dim + 1].
      decoder: codes [B, latent_dim] -> logits [B, *input_shape].
      latent_dim: d, the sphere's ambient dimension (≥ 2).
    """

    aux_names: ClassVar[tuple[str, ...]] = ("direction", "kappa")

    def latent_prior(self) -> str:
        """The uniform distribution on the unit sphere S^{d−1}."""
        return "uniform_sphere"

    def posterior_params(self, x: jax.Array, *, train: bool = False):
        """[B, *input_shape] -> (μ [B, d] unit vectors, κ [B] ≥ 1)."""
        h = self.encoder(x, train=train)
        loc = h[:, : self.latent_dim]
        norm = jnp.sqrt(jnp.maximum(jnp.sum(loc * loc, -1, keepdims=True), 1e-30))
        return loc / norm, jax.nn.softplus(h[:, self.latent_dim]) + 1.0

    def draw(self, key, direction, kappa):
        """One draw of vMF(μ, κ) and its log-density ([d], scalar)."""
        return vmf.sample(key, direction, kappa)

    def mode_log_q(self, direction, kappa):
        """log q(μ|x) = κ + log C_d(κ), [B]."""
        return vmf.log_prob(direction, direction, kappa)

    def log_prior(self, z: jax.Array) -> jax.Array:
        """−log |S^{d−1}| for every code: z [..., d] -> [...]."""
        return jnp.full(z.shape[:-1], -vmf.log_sphere_area(self.latent_dim), z.dtype)

    def prior_draw(self, key, n: int) -> jax.Array:
        """n uniform draws on S^{d−1}, [n, d]."""
        return vmf.sample_uniform(key, (n,), self.latent_dim)


class PoincareVAE(_ManifoldVAE):
    """The P-VAE: q(z|x) = N_W(μ(x), diag σ²(x)) and p(z) = N_W(0, I), wrapped normals on
    the Poincaré ball of curvature −c (`aejax.models.poincare`).

    The encoder's last layer gives d numbers for μ = exp_0(h) and d (or 1, `isotropic`) for
    σ² = softplus(h') + 1e-5 (the paper's encoder as pythae's reproduction script writes
    it). Densities are with respect to the ball's Riemannian volume.

    Attributes:
      encoder: [B, *input_shape] -> [B, latent_dim + (1 if isotropic else latent_dim)].
      decoder: points of the ball [B, latent_dim] -> logits [B, *input_shape]
        (`GyroplaneDecoder`, the paper's, or an MLP).
      latent_dim: d, the ball's dimension.
      curvature: c > 0 (the ball has radius 1/√c).
      isotropic: one σ per example instead of one per latent dimension.
    """

    curvature: float = 1.0
    isotropic: bool = False

    aux_names: ClassVar[tuple[str, ...]] = ("loc", "scale")

    def latent_prior(self) -> str:
        """The wrapped normal N_W(0, I) on the Poincaré ball."""
        return "wrapped_normal"

    def posterior_params(self, x: jax.Array, *, train: bool = False):
        """[B, *input_shape] -> (μ [B, d] points of the ball, σ [B, d])."""
        h = self.encoder(x, train=train)
        d = self.latent_dim
        mu = poincare.project(poincare.expmap0(h[:, :d], self.curvature), self.curvature)
        scale = jnp.sqrt(jax.nn.softplus(h[:, d:]) + _MIN_VARIANCE)
        return mu, jnp.broadcast_to(scale, mu.shape)

    def draw(self, key, loc, scale):
        """One draw of N_W(μ, diag σ²) and its log-density ([d], scalar)."""
        return poincare.wrapped_normal_sample(key, loc, scale, self.curvature)

    def mode_log_q(self, loc, scale):
        """log q(μ|x), the density at v = 0, [B]."""
        return poincare.wrapped_normal_log_prob_tangent(jnp.zeros_like(loc), scale, self.curvature)

    def log_prior(self, z: jax.Array) -> jax.Array:
        """log N_W(z; 0, I): z [..., d] -> [...]."""
        return poincare.wrapped_normal_log_prob(z, jnp.zeros_like(z), 1.0, self.curvature)

    def prior_draw(self, key, n: int) -> jax.Array:
        """n draws of N_W(0, I): exp_0(v/2), v ~ N(0, I); [n, d]."""
        v = jax.random.normal(key, (n, self.latent_dim))
        return poincare.project(poincare.expmap0(0.5 * v, self.curvature), self.curvature)


class Gyroplanes(nn.Module):
    """A layer of `features` signed distances to gyroplanes of the Poincaré ball (pythae's
    GeodesicLayer, the paper's first decoder layer, section 3.3).

    Unit k has a direction w_k ∈ R^d and an offset b_k: its gyroplane passes through
    p_k = exp_0(b_k w_k) with normal a_k = w_k (1 − c‖p_k‖²) (w_k transported from the
    origin to p_k), the hyperbolic analogue of the hyperplane w_kᵀx = b_k‖w_k‖². The
    output is the signed distance (`poincare.gyroplane_distance`). Initialized as pythae:
    w ~ N(0, 1/(3 fan_in)) (Kaiming's with a = √5), b ~ U(±4/√fan_in).
    """

    features: int
    curvature: float = 1.0

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        """[B, d] points of the ball -> [B, features]."""
        d = z.shape[-1]
        w_init = nn.initializers.normal(1.0 / math.sqrt(3.0 * d))
        bound = 4.0 / math.sqrt(d)
        b_init = lambda key, shape: jax.random.uniform(key, shape, minval=-bound, maxval=bound)
        w = self.param("direction", w_init, (self.features, d))
        b = self.param("offset", b_init, (self.features, 1))
        p = poincare.expmap0(w * b, self.curvature)
        a = w * (1.0 - self.curvature * jnp.sum(p * p, axis=-1, keepdims=True))
        return poincare.gyroplane_distance(z, p, a, self.curvature)


class GyroplaneDecoder(nn.Module):
    """Gyroplanes(widths[0]) and the activation, then an `MLPDecoder` of the other widths
    (its dropout and batch norm, if any, act there only).

    Attributes:
      widths: hidden widths, at least one (the gyroplane layer's).
      output_shape: the shape of one example.
    """

    widths: Sequence[int]
    output_shape: Sequence[int]
    curvature: float = 1.0
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = False
    kernel_init: str = "lecun_normal"

    @nn.compact
    def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, d] -> [B, *output_shape] logits."""
        h = Gyroplanes(self.widths[0], self.curvature, name="gyroplanes")(z)
        h = get_activation(self.activation, "config.model.activation")(h)
        rest = MLPDecoder(
            tuple(self.widths[1:]),
            self.output_shape,
            self.activation,
            self.dropout,
            self.batch_norm,
            self.kernel_init,
            name="mlp",
        )
        return rest(h, train=train)


def build_manifold_vae(cfg, ae, input_shape: Sequence[int], family: str) -> _ManifoldVAE:
    """The S-VAE (`family` "svae") or the P-VAE ("pvae") around the encoder and decoder of
    `ae`, the MLP autoencoder `build_mlp` made from `cfg` (its fields checked there): the
    encoder's last layer widened to the posterior's parameters, the decoder kept (or, for
    "pvae" with `pvae_decoder="gyroplane"`, its first layer made of gyroplanes).

    Raises ConfigError for a field these families do not take or a bad value of theirs.
    """
    for name, ok in (("code_activation", "linear"), ("top_k", 0), ("x_logvar", "none")):
        if name in cfg and cfg[name] != ok:
            raise ConfigError(
                f"config.model.{name}={cfg[name]!r}: the {family} family takes none; "
                f"set it to {ok!r}"
            )
    if "num_samples" in cfg and cfg.num_samples != 1:
        raise ConfigError(
            f"config.model.num_samples={cfg.num_samples!r}: the {family} family draws one z "
            "per example in training (its bounds draw their own); set it to 1"
        )
    sample_at_eval = cfg.get("sample_at_eval", True)
    if not isinstance(sample_at_eval, bool):
        raise ConfigError(f"config.model.sample_at_eval={sample_at_eval!r} must be true or false")
    *hidden, d = ae.encoder.widths
    common = dict(
        decoder=ae.decoder,
        latent_dim=d,
        output_activation=ae.output_activation,
        sample_at_eval=sample_at_eval,
    )
    if family == "svae":
        if d < 2:
            raise ConfigError(
                f"config.model.encoder_widths={tuple(ae.encoder.widths)!r}: the sphere "
                f"S^(d-1) needs a latent size d >= 2 (the last width), not {d}"
            )
        encoder = ae.encoder.clone(widths=(*hidden, d + 1))
        return SphericalVAE(encoder=encoder, **common)
    get = lambda name: cfg[name] if name in cfg else MANIFOLD_FIELDS[name]  # noqa: E731
    c, decoder, isotropic = get("curvature"), get("pvae_decoder"), get("pvae_isotropic")
    if isinstance(c, bool) or not isinstance(c, int | float) or not 0 < c < math.inf:
        raise ConfigError(f"config.model.curvature={c!r} must be a finite number > 0")
    if not isinstance(isotropic, bool):
        raise ConfigError(f"config.model.pvae_isotropic={isotropic!r} must be true or false")
    if decoder not in PVAE_DECODERS:
        raise ConfigError(
            f"config.model.pvae_decoder={decoder!r} is not known; valid: {', '.join(PVAE_DECODERS)}"
        )
    if decoder == "gyroplane":
        widths = tuple(ae.decoder.widths)
        if not widths:
            raise ConfigError(
                "config.model.decoder_widths=(): pvae_decoder='gyroplane' needs a hidden "
                "decoder layer (the gyroplanes); give one, or use pvae_decoder='mlp'"
            )
        dec = ae.decoder
        common["decoder"] = GyroplaneDecoder(
            widths,
            tuple(input_shape),
            float(c),
            dec.activation,
            dec.dropout,
            dec.batch_norm,
            dec.kernel_init,
        )
    encoder = ae.encoder.clone(widths=(*hidden, d + (1 if isotropic else d)))
    return PoincareVAE(encoder=encoder, curvature=float(c), isotropic=isotropic, **common)
