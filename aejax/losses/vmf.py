"""The hyperspherical VAE's closed-form KL term (Davidson et al., 2018; the model is
`aejax.models.manifold_vae.SphericalVAE`): the recipe "bce + kl_vmf" is its negative ELBO,
as pythae computes it, with the one-sample log-likelihood and the exact KL.
"""

import jax

from aejax.models.vmf import kl_to_uniform


def kl_vmf(*, direction: jax.Array, kappa: jax.Array, **_) -> jax.Array:
    """KL(vMF(μ, κ) ‖ U(S^{d−1})) = κ A_d(κ) + log C_d(κ) + log |S^{d−1}| per example.

    It depends on κ and d only (the uniform prior is rotation invariant); its gradient in κ
    is exact (`aejax.models.vmf.log_ive_and_ratio`).

    Args:
      direction: [B, d] the posterior's mean directions μ (aux "direction"; only d is read).
      kappa: [B] the concentrations κ > 0 (aux "kappa").
    Returns:
      [B] KL in nats.
    """
    return kl_to_uniform(direction.shape[-1], kappa)
