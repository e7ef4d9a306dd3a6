"""Convolutional encoders and decoders (the seeds' conv AE and deeper ones).

Encoder: per entry of `features`, a 3x3 conv (SAME) and a 2x2 max-pool, so a 28x28 input
with features (16, 32) gives the seeds' 7x7x32 code; optionally flattened and mapped by a
Dense layer to a latent vector. Decoder: the mirror, each stage a nearest-neighbour 2x
upsampling and a 3x3 transposed conv, then a crop to the input size, which the upsampling
overshoots when a side is not divisible by 2^depth (28 with three pools: 4 -> 32 -> crop 28).
Or a decoder written out layer by layer (`config.model.decoder_layers`), such as Keras'
conv AE: convolutions before each upsampling, one at the code's resolution, VALID padding.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.models.layers import (
    Conv,
    ConvTranspose,
    Dense,
    Upsample2ConvTranspose,
    get_activation,
    get_initializer,
)

# One decoder layer: ("conv", channels, "SAME" | "VALID") or ("up", 0, "").
DecoderLayer = tuple[str, int, str]


def code_spatial_shape(input_shape: Sequence[int], depth: int) -> tuple[int, int]:
    """(h, w) after `depth` SAME 2x2 max-pools of an (H, W, C) input: ceil-halved each time."""
    h, w = input_shape[0], input_shape[1]
    for _ in range(depth):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    return h, w


def _windows(x: jax.Array, fill: float) -> jax.Array:
    """[B, H, W, C] -> [B, ceil(H/2), 2, ceil(W/2), 2, C]: the 2x2 windows of a stride-2
    pool, an odd side padded at the bottom/right with `fill` (where SAME padding puts it)."""
    b, h, w, c = x.shape
    if h % 2 or w % 2:
        x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=fill)
    return x.reshape(b, (h + 1) // 2, 2, (w + 1) // 2, 2, c)


@jax.custom_jvp
def max_pool2(x: jax.Array) -> jax.Array:
    """2x2 max-pool, stride 2, SAME padding: `nn.max_pool(x, (2, 2), (2, 2), "SAME")`.

    The same values, and the same gradient: each window's gradient goes to its first
    maximum in row-major order, where XLA's `select_and_scatter` (the reverse mode of
    `reduce_window`) puts it. Written with reshapes and comparisons, because
    `select_and_scatter` is slow on CPU (about 10x the whole forward pass of a small conv
    AE). Forward mode selects the same first maximum (the reference's forward mode may pick
    another one of tied maxima; there the derivative is not defined anyway).

    [B, H, W, C] -> [B, ceil(H/2), ceil(W/2), C].
    """
    return jnp.max(_windows(x, -jnp.inf), axis=(2, 4))


@max_pool2.defjvp
def _max_pool2_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    xw = _windows(x, -jnp.inf)
    m = jnp.max(xw, axis=(2, 4))
    # One-hot of each window's first maximum, in row-major order (a, b / c, d).
    hit = [xw[:, :, i, :, j] == m for i in (0, 1) for j in (0, 1)]
    first, taken = [], jnp.zeros_like(hit[0])
    for h in hit:
        first.append(h & ~taken)
        taken = taken | h
    mask = jnp.stack([jnp.stack(first[:2], axis=3), jnp.stack(first[2:], axis=3)], axis=2)
    # `where`, not a product: a NaN or Inf tangent elsewhere in the window must not leak in.
    return m, jnp.sum(jnp.where(mask, _windows(t, 0.0), 0.0), axis=(2, 4))


def upsample2(x: jax.Array) -> jax.Array:
    """[B, h, w, c] -> [B, 2h, 2w, c], nearest neighbour (each pixel repeated 2x2)."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def upsample_conv(features: int, kernel_size: int, name: str, kernel_init: str = "lecun_normal"):
    """The decoder's stage: 2x nearest-neighbour upsampling, then a SAME transposed conv;
    for 3x3 kernels computed on the small map (`Upsample2ConvTranspose`: the same
    parameters; the conv AE and VAE train 1.35x and 1.44x faster on CPU, docs/BENCHMARKS.md)."""
    if kernel_size == 3:
        return Upsample2ConvTranspose(features, kernel_init, name=name)
    k = (kernel_size, kernel_size)
    init = get_initializer(kernel_init)
    conv = ConvTranspose(features, k, padding="SAME", kernel_init=init, name=name)
    return lambda x: conv(upsample2(x))


def parse_decoder_layers(spec, where: str = "config.model.decoder_layers") -> tuple:
    """Reads a decoder written layer by layer: "conv:C" (a SAME conv to C channels and the
    hidden activation), "conv:C:valid" (VALID padding: each side shrinks by kernel_size − 1)
    and "up" (2x nearest-neighbour upsampling). Keras' conv AE decoder is
    ("conv:8", "up", "conv:8", "up", "conv:16:valid", "up"); the output conv is added.

    Returns:
      a tuple of `DecoderLayer`; ConfigError naming `where` for anything else.
    """
    if isinstance(spec, str) or not isinstance(spec, Sequence):
        raise ConfigError(f"{where}={spec!r} must be a list such as ('conv:8', 'up')")
    layers = []
    for item in spec:
        parts = item.split(":") if isinstance(item, str) else []
        if parts == ["up"]:
            layers.append(("up", 0, ""))
            continue
        padding = parts[2].upper() if len(parts) == 3 else "SAME"
        ok = len(parts) in (2, 3) and parts[0] == "conv" and parts[1].isdigit()
        if not ok or int(parts[1]) <= 0 or padding not in ("SAME", "VALID"):
            raise ConfigError(
                f"{where}: cannot read {item!r}; write 'conv:C', 'conv:C:valid' or 'up' "
                "(C a positive number of channels)"
            )
        layers.append(("conv", int(parts[1]), padding))
    return tuple(layers)


def decoder_output_hw(code_hw: Sequence[int], layers, kernel_size: int) -> tuple[int, int]:
    """(h, w) after `layers` (then the SAME output conv) from a code map of `code_hw`."""
    h, w = code_hw
    for kind, _, padding in layers:
        if kind == "up":
            h, w = 2 * h, 2 * w
        elif padding == "VALID":
            h, w = h - kernel_size + 1, w - kernel_size + 1
    return h, w


class ConvEncoder(nn.Module):
    """Conv + pool stages, then optionally a Dense bottleneck.

    The last layer is left linear (the model applies the code activation; max-pooling
    before a monotone activation equals pooling after it, so the seeds' Conv32 + ReLU + pool
    is this encoder followed by a ReLU code activation).

    Attributes:
      features: output channels of each conv stage, e.g. (16, 32).
      latent_dim: 0 for a spatial code [B, h, w, features[-1]]; else flatten and map by a
        Dense layer to [B, latent_dim].
      kernel_size: side of the square conv kernels.
      activation: name of the hidden activation.
      kernel_init: name of the kernel initializer (`aejax.models.layers.INITIALIZERS`).
    """

    features: Sequence[int]
    latent_dim: int = 0
    kernel_size: int = 3
    activation: str = "relu"
    kernel_init: str = "lecun_normal"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, H, W, C] -> [B, ceil(H/2^d), ceil(W/2^d), features[-1]] or [B, latent_dim]."""
        del train  # no dropout or batch norm here
        act = get_activation(self.activation, "config.model.activation")
        init = get_initializer(self.kernel_init)
        k = (self.kernel_size, self.kernel_size)
        for i, f in enumerate(self.features):
            x = Conv(f, k, padding="SAME", kernel_init=init, name=f"conv_{i}")(x)
            if i < len(self.features) - 1 or self.latent_dim:
                x = act(x)
            x = max_pool2(x)
        if self.latent_dim:
            x = Dense(self.latent_dim, kernel_init=init, name="dense")(x.reshape(x.shape[0], -1))
        return x


class ConvDecoder(nn.Module):
    """Optionally a Dense layer back to a feature map, then upsample + transposed-conv stages.

    Attributes:
      features: channels of the hidden stages, e.g. (16,); one more stage gives the output
        channels, so there are len(features) + 1 upsamplings.
      code_shape: (h, w, c) of the feature map the upsampling starts from.
      output_shape: (H, W, C) of one example; the output is cropped to it.
      from_vector: the code is a vector: map it by Dense + activation to `code_shape` first.
      kernel_size: side of the square kernels.
      activation: name of the hidden activation.
      kernel_init: name of the kernel initializer (`aejax.models.layers.INITIALIZERS`).
      layers: empty for the mirror above; else the decoder written out (`DecoderLayer`s
        from `parse_decoder_layers`; `features` unused), then a SAME conv to the output
        channels ("conv_out").
    """

    features: Sequence[int]
    code_shape: Sequence[int]
    output_shape: Sequence[int]
    from_vector: bool = False
    kernel_size: int = 3
    activation: str = "relu"
    kernel_init: str = "lecun_normal"
    layers: Sequence[DecoderLayer] = ()

    @nn.compact
    def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, latent_dim] or [B, *code_shape] -> [B, *output_shape] logits."""
        del train
        act = get_activation(self.activation, "config.model.activation")
        init = get_initializer(self.kernel_init)
        k = self.kernel_size
        x = z
        if self.from_vector:
            x = act(Dense(math.prod(self.code_shape), kernel_init=init, name="dense")(z))
            x = x.reshape(z.shape[0], *self.code_shape)
        if self.layers:
            for i, (kind, channels, padding) in enumerate(self.layers):
                if kind == "up":
                    x = upsample2(x)
                    continue
                conv = Conv(channels, (k, k), padding=padding, kernel_init=init, name=f"conv_{i}")
                x = act(conv(x))
            channels = self.output_shape[-1]
            x = Conv(channels, (k, k), padding="SAME", kernel_init=init, name="conv_out")(x)
        else:
            for i, f in enumerate(self.features):
                x = act(upsample_conv(f, k, f"deconv_{i}", self.kernel_init)(x))
            x = upsample_conv(self.output_shape[-1], k, "deconv_out", self.kernel_init)(x)
        h, w = self.output_shape[0], self.output_shape[1]
        # SAME pooling pads at the bottom/right, so the overshoot is there: crop it off.
        return x[:, :h, :w, :]
