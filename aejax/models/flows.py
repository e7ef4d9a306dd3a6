"""Normalizing flows on a latent vector, each layer with its log-determinant in closed form.

- planar and radial flows (Rezende & Mohamed, 2015, "Variational Inference with Normalizing
  Flows", section 4.1 and appendix A), the layers of pythae's VAE_LinNF: a chain named by a
  list such as ("planar", "radial", "planar");
- the inverse autoregressive flow (Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling,
  2016, "Improved Variational Inference with Inverse Autoregressive Flow", eq. 14 and
  Algorithm 1), pythae's VAE_IAF: blocks of a MADE network (Germain, Gregor, Murray &
  Larochelle, 2015) whose masks make each output depend only on the inputs before it.

Every layer maps z [N, D] to (z', log|det ∂z'/∂z| [N]); a chain returns the sum of its
layers' log-determinants, so a density q0(z0) pushed through it is
log q(z_K) = log q0(z0) − Σ_k log|det J_k|. The flows' parameters are global (the same for
every example), as in pythae; the IAF can also read a context vector h(x) from the encoder
(Kingma et al.'s choice; pythae passes none).
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

LINEAR_FLOWS = ("planar", "radial")

# The fields of config.model that the flow families read, with their defaults (merged into
# aejax.models.FAMILY_FIELDS). pythae 0.1.2's class defaults: VAE_LinNF_Config's two planar
# flows, VAE_IAF_Config's 2 MADE blocks of 3 hidden layers of 128.
FLOW_FIELDS = {
    "flows": ("planar", "planar"),  # vae_nf: the chain, each "planar" or "radial"
    "iaf_blocks": 2,  # vae_iaf: MADE blocks, the variables' order reversed before each
    "made_widths": (128, 128, 128),  # vae_iaf: each MADE block's hidden widths
    "iaf_context": 0,  # vae_iaf: size of a context h(x) from the encoder fed to MADE (0: none)
}

# IAF: s is offset so that σ = sigmoid(s) starts near sigmoid(2) ≈ 0.88, each step near
# the identity (Kingma et al., 2016, appendix: "outputs s_t ... sufficiently positive, such
# as close to +1 or +2").
IAF_GATE_OFFSET = 2.0


# --- planar and radial flows ---------------------------------------------------------------


def planar_u_hat(u: jax.Array, w: jax.Array) -> jax.Array:
    """û such that w·û = −1 + softplus(w·u) > −1: the planar flow is then invertible
    (Rezende & Mohamed, 2015, appendix A.1).

    Args:
      u, w: [D] raw parameters (any values).
    Returns:
      [D] û = u + (m(w·u) − w·u) w / ‖w‖², m(a) = −1 + softplus(a).
    """
    return _planar_parts(u, w)[0]


def _planar_parts(u, w):
    """(û, 1 + w·û), the second computed without cancellation."""
    wu, w2 = jnp.dot(w, u), jnp.dot(w, w)
    # ‖w‖² floored: at w = 0 the flow is a translation whatever û is; r = 1 but for
    # ‖w‖² < 1e-12, where the correction is scaled down with ‖w‖².
    r = w2 / jnp.maximum(w2, 1e-12)
    sp = jax.nn.softplus(wu)
    u_hat = u + (sp - 1.0 - wu) * r * w / jnp.maximum(w2, 1e-12)
    # 1 + w·û = r·softplus(w·u) + (1 − r)(1 + w·u): softplus(w·u) > 0 for any ‖w‖ ≥ 1e-6;
    # from û, 1 + w·û would cancel to 0 or below in float32 when w·u ≪ −1.
    return u_hat, r * sp + (1.0 - r) * (1.0 + wu)


def planar(z: jax.Array, w: jax.Array, u: jax.Array, b: jax.Array):
    """f(z) = z + û tanh(w·z + b), with log|det ∂f/∂z| = log(1 + (1 − tanh²(w·z + b)) w·û).

    The matrix determinant lemma gives det(I + û ψᵀ) = 1 + ψ·û with ψ = tanh'(w·z + b) w;
    with w·û > −1 and 0 < tanh' ≤ 1 it is positive. It is computed as
    tanh² + (1 − tanh²)(1 + w·û), a sum of two non-negative numbers (finite in float32
    unless w·u < −87, where softplus(w·u) underflows, and w·z + b is within 1e-19 of 0).

    Args:
      z: [N, D]; w, u: [D] raw parameters; b: [] bias.
    Returns:
      (f(z) [N, D], log|det J| [N]).
    """
    u_hat, one_plus_wu_hat = _planar_parts(u, w)
    h = jnp.tanh(z @ w + b)
    h2 = jnp.square(h)
    return z + h[:, None] * u_hat, jnp.log(h2 + (1.0 - h2) * one_plus_wu_hat)


def radial(z: jax.Array, z0: jax.Array, log_alpha: jax.Array, beta_raw: jax.Array):
    """f(z) = z + β h(r) (z − z0), h = 1/(α + r), r = ‖z − z0‖ (Rezende & Mohamed, 2015, eq. 14).

    α = exp(log_alpha) > 0 and β = −α + softplus(beta_raw) > −α, which makes f invertible
    (their appendix A.2, as pythae). The Jacobian is (1 + βh) I + βh'(r) (z − z0)(z − z0)ᵀ/r,
    so log|det J| = (D − 1) log(1 + βh) + log(1 + βh + βh'r), and 1 + βh + βh'r = 1 + βαh².

    Args:
      z: [N, D]; z0: [D] the centre; log_alpha, beta_raw: [] raw parameters.
    Returns:
      (f(z) [N, D], log|det J| [N]).
    """
    alpha = jnp.exp(log_alpha)
    beta = -alpha + jax.nn.softplus(beta_raw)
    diff = z - z0
    r = jnp.sqrt(jnp.sum(jnp.square(diff), axis=-1))
    h = 1.0 / (alpha + r)
    log_det = (z.shape[-1] - 1) * jnp.log1p(beta * h) + jnp.log1p(beta * alpha * jnp.square(h))
    return z + (beta * h)[:, None] * diff, log_det


class Planar(nn.Module):
    """A planar flow layer; its parameters w, u, b drawn from N(0, 1) as pythae's."""

    @nn.compact
    def __call__(self, z: jax.Array):
        """[N, D] -> (f(z) [N, D], log|det J| [N])."""
        d = z.shape[-1]
        init = nn.initializers.normal(1.0)
        w, u = self.param("w", init, (d,)), self.param("u", init, (d,))
        return planar(z, w, u, self.param("b", init, ()))


class Radial(nn.Module):
    """A radial flow layer; its parameters z0, log α, β drawn from N(0, 1) as pythae's."""

    @nn.compact
    def __call__(self, z: jax.Array):
        """[N, D] -> (f(z) [N, D], log|det J| [N])."""
        init = nn.initializers.normal(1.0)
        z0 = self.param("z0", init, (z.shape[-1],))
        return radial(z, z0, self.param("log_alpha", init, ()), self.param("beta", init, ()))


class LinearFlows(nn.Module):
    """A chain of planar and radial layers (pythae's VAE_LinNF).

    Attributes:
      names: each layer's kind, "planar" or "radial", in the order applied.
    """

    names: Sequence[str]

    @nn.compact
    def __call__(self, z: jax.Array, context: jax.Array | None = None):
        """z [N, D] -> (z_K [N, D], Σ_k log|det J_k| [N]); `context` is not read."""
        total = jnp.zeros(z.shape[:1], z.dtype)
        for i, kind in enumerate(self.names):
            layer = {"planar": Planar, "radial": Radial}[kind]
            z, log_det = layer(name=f"{kind}_{i}")(z)
            total = total + log_det
        return z, total


# --- MADE and the inverse autoregressive flow ----------------------------------------------


def made_masks(dim: int, widths: Sequence[int]) -> list[np.ndarray]:
    """MADE's masks with sequential degrees (Germain et al., 2015; pythae's "sequential").

    Input i has degree i (0..D−1); hidden unit k of each layer has degree k mod (D − 1); a
    unit sees the units of the layer below whose degree is ≤ its own, and output i sees the
    last hidden units of degree < i. So output i depends on inputs 0..i−1 only (output 0 on
    none), and ∂output/∂input is strictly lower triangular.

    Args:
      dim: D, the number of variables.
      widths: the hidden layers' widths.
    Returns:
      len(widths) + 1 float32 masks, [fan_in, fan_out] each (flax's kernel layout).
    """
    # max(.., 1): with D = 1 every hidden degree is 0 and the output sees no input.
    degrees = [np.arange(dim)] + [np.arange(w) % max(dim - 1, 1) for w in widths]
    masks = [
        (out[None, :] >= inp[:, None]) for inp, out in zip(degrees[:-1], degrees[1:], strict=True)
    ]
    masks.append(degrees[0][None, :] > degrees[-1][:, None])
    return [m.astype(np.float32) for m in masks]


class MaskedDense(nn.Module):
    """A Dense layer whose kernel is multiplied by a fixed 0/1 mask [fan_in, fan_out]."""

    mask: np.ndarray

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """[N, fan_in] -> [N, fan_out]."""
        kernel = self.param("kernel", nn.initializers.lecun_normal(), self.mask.shape)
        bias = self.param("bias", nn.initializers.zeros, self.mask.shape[1:])
        return x @ (kernel * jnp.asarray(self.mask)) + bias


class MADE(nn.Module):
    """z [N, D] (and a context [N, C]) -> (m, s), each [N, D], output i a function of
    z_0..z_{i−1} (and the context) alone: ReLU hidden layers of `widths`, as pythae's.

    Attributes:
      widths: the hidden layers' widths (at least one).
    """

    widths: Sequence[int]

    @nn.compact
    def __call__(self, z: jax.Array, context: jax.Array | None = None):
        """z [N, D], context [N, C] or None -> (m [N, D], s [N, D])."""
        masks = made_masks(z.shape[-1], self.widths)
        h = MaskedDense(masks[0], name="masked_0")(z)
        if context is not None:  # the context reaches every output: no mask
            h = h + nn.Dense(self.widths[0], use_bias=False, name="context")(context)
        for i, mask in enumerate(masks[1:-1], 1):
            h = MaskedDense(mask, name=f"masked_{i}")(nn.relu(h))
        out_mask = np.concatenate([masks[-1], masks[-1]], axis=1)  # m and s, each D wide
        out = MaskedDense(out_mask, name=f"masked_{len(masks) - 1}")(nn.relu(h))
        return jnp.split(out, 2, axis=-1)


def iaf_update(z: jax.Array, m: jax.Array, s: jax.Array):
    """The gated IAF update (Kingma et al., 2016, eq. 14): σ = sigmoid(s + offset),
    z' = σ ⊙ z + (1 − σ) ⊙ m, with log|det ∂z'/∂z| = Σ_i log σ_i when (m, s) are
    autoregressive in z.

    A convex combination of z and m rather than z·exp(s) + m (pythae's form): it cannot
    overflow, and log σ = −softplus(−s) is computed without cancellation.

    Args:
      z, m, s: [N, D].
    Returns:
      (z' [N, D], log|det J| [N]).
    """
    s = s + IAF_GATE_OFFSET
    sigma = jax.nn.sigmoid(s)
    return sigma * z + (1.0 - sigma) * m, jnp.sum(jax.nn.log_sigmoid(s), axis=-1)


class IAF(nn.Module):
    """The inverse autoregressive flow of pythae's VAE_IAF, with Kingma et al.'s gated step.

    Block b reverses the order of the variables (pythae's flip; Kingma et al. reverse it
    between steps), then applies `iaf_update` with (m, s) = MADE_b(z, context).

    Attributes:
      blocks: the number of MADE blocks.
      widths: each MADE's hidden widths.
    """

    blocks: int
    widths: Sequence[int]

    @nn.compact
    def __call__(self, z: jax.Array, context: jax.Array | None = None):
        """z [N, D], context [N, C] or None -> (z_K [N, D], Σ_b log|det J_b| [N])."""
        total = jnp.zeros(z.shape[:1], z.dtype)
        for b in range(self.blocks):
            z = z[:, ::-1]  # a permutation: |det| = 1
            m, s = MADE(self.widths, name=f"made_{b}")(z, context)
            z, log_det = iaf_update(z, m, s)
            total = total + log_det
        return z, total
