"""Fully connected encoders and decoders (undercomplete, deep and overcomplete AEs)."""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.models.layers import DenseStack, flatten


class MLPEncoder(nn.Module):
    """Flattens the input and maps it through Dense layers to the code.

    Attributes:
      widths: hidden widths followed by the code size, e.g. (512, 256, 128, 32).
    """

    widths: Sequence[int]
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, ...] -> [B, widths[-1]] code pre-activations."""
        stack = DenseStack(self.widths, self.activation, self.dropout, self.batch_norm)
        return stack(flatten(x), train=train)


class MLPDecoder(nn.Module):
    """Maps the code through Dense layers to logits shaped like the input.

    Attributes:
      widths: hidden widths (the last Dense layer, of size prod(output_shape), is added).
      output_shape: the shape of one example, e.g. (28, 28, 1).
    """

    widths: Sequence[int]
    output_shape: Sequence[int]
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = False

    @nn.compact
    def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, code_dim] -> [B, *output_shape] logits."""
        widths = (*self.widths, math.prod(self.output_shape))
        stack = DenseStack(widths, self.activation, self.dropout, self.batch_norm)
        out = stack(flatten(z), train=train)
        return jnp.reshape(out, (z.shape[0], *self.output_shape))
