"""Fully connected encoders and decoders (undercomplete, deep and overcomplete AEs)."""

import math
from collections.abc import Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.models.layers import DenseStack, flatten


@flax.struct.dataclass
class DenseChain:
    """An MLP encoder (or decoder) written out as data, for loss terms with a closed form
    (`contractive`) or on the weights (`aejax.losses.regularizers`).

    The encoder it describes is h_0 = flatten(x), a_l = h_{l-1} W_l + b_l, h_l = φ_l(a_l)
    for l = 1..L, and z = h_L (times the top-k mask when top_k > 0).

    Attributes:
      kernels: W_1..W_L, each [n_{l-1}, n_l] (flax's layout).
      biases: b_1..b_L, each [n_l].
      activations: names of φ_1..φ_L; the last is the code activation (static).
      top_k: the k of a k-sparse code, 0 for none (static).
    """

    kernels: tuple[jax.Array, ...]
    biases: tuple[jax.Array, ...]
    activations: tuple[str, ...] = flax.struct.field(pytree_node=False)
    top_k: int = flax.struct.field(pytree_node=False, default=0)


class MLPEncoder(nn.Module):
    """Flattens the input and maps it through Dense layers to the code.

    Attributes:
      widths: hidden widths followed by the code size, e.g. (512, 256, 128, 32).
      kernel_init: name of the kernel initializer (`aejax.models.layers.INITIALIZERS`).
    """

    widths: Sequence[int]
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = False
    kernel_init: str = "lecun_normal"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, ...] -> [B, widths[-1]] code pre-activations."""
        stack = DenseStack(
            self.widths,
            self.activation,
            self.dropout,
            self.batch_norm,
            self.kernel_init,
            name="stack",
        )
        return stack(flatten(x), train=train)

    def dense_chain(self, code_activation: str, top_k: int = 0) -> DenseChain | None:
        """This encoder's weights and activations as a `DenseChain` (call after the encoder
        has run); None with batch norm, which the chain does not describe. Dropout is left
        out: it is off in the deterministic encoder that Jacobian penalties differentiate."""
        if self.batch_norm:
            return None
        params = self.variables["params"]["stack"]
        layers = [params[f"dense_{i}"] for i in range(len(self.widths))]
        return DenseChain(
            kernels=tuple(p["kernel"] for p in layers),
            biases=tuple(p["bias"] for p in layers),
            activations=(self.activation,) * (len(self.widths) - 1) + (code_activation,),
            top_k=top_k,
        )


class MLPDecoder(nn.Module):
    """Maps the code through Dense layers to logits shaped like the input.

    Attributes:
      widths: hidden widths (the last Dense layer, of size prod(output_shape), is added).
      output_shape: the shape of one example, e.g. (28, 28, 1).
      kernel_init: name of the kernel initializer (`aejax.models.layers.INITIALIZERS`).
    """

    widths: Sequence[int]
    output_shape: Sequence[int]
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = False
    kernel_init: str = "lecun_normal"

    @nn.compact
    def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, code_dim] -> [B, *output_shape] logits."""
        widths = (*self.widths, math.prod(self.output_shape))
        stack = DenseStack(
            widths, self.activation, self.dropout, self.batch_norm, self.kernel_init, name="stack"
        )
        out = stack(flatten(z), train=train)
        return jnp.reshape(out, (z.shape[0], *self.output_shape))

    def dense_chain(self, output_activation: str) -> DenseChain | None:
        """This decoder as a `DenseChain` from the flat code to the flat output after
        `output_activation` (call after the decoder has run), for terms on the decoder's
        weights or its Jacobian (`aejax.losses.regularizers`); None with batch norm."""
        if self.batch_norm:
            return None
        params = self.variables["params"]["stack"]
        layers = [params[f"dense_{i}"] for i in range(len(self.widths) + 1)]
        return DenseChain(
            kernels=tuple(p["kernel"] for p in layers),
            biases=tuple(p["bias"] for p in layers),
            activations=(self.activation,) * len(self.widths) + (output_activation,),
        )
