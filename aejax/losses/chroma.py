"""The colorization term: squared error of the chroma alone (`aejax.color`'s YUV).

A colorization model is given the luminance; what it has to find is the chroma. Its
output's luminance is replaced by the input's when it is used (`aejax.color.with_chroma`),
so the term leaves the output's luminance free and spends the model on colour (as
Zhang, Isola & Efros (2016) predict only the ab channels of Lab given L).
"""

import jax
import jax.numpy as jnp

from aejax import color


def chroma_mse(*, x: jax.Array, x_hat: jax.Array, **_) -> jax.Array:
    """Squared error of the chroma alone: Σ over pixels of (Û − U)² + (V̂ − V)², YUV's.

    U and V are BT.601 YUV's chroma (`aejax.color.rgb_to_yuv`).

    Args:
      x: clean RGB targets, [B, H, W, 3].
      x_hat: the model's RGB outputs, same shape.
    Returns:
      [B] per-example squared chroma error.
    """
    diff = color.rgb_to_yuv(x_hat)[..., 1:] - color.rgb_to_yuv(x)[..., 1:]
    return jnp.sum(jnp.square(diff).reshape(diff.shape[0], -1), axis=1)
