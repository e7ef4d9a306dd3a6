"""Building blocks shared by the model families: activations by name and a dense stack."""

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from aejax.errors import ConfigError
from aejax.registry import lookup

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "linear": lambda x: x,
    "relu": nn.relu,
    "leaky_relu": nn.leaky_relu,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "sigmoid": nn.sigmoid,
    "tanh": nn.tanh,
    "softplus": nn.softplus,
}


# PyTorch's default for nn.Linear and nn.Conv*: kernels U(±1/√fan_in) (variance
# 1/(3·fan_in), a third of lecun_normal's) and biases U(±1/√fan_in) with the kernel's
# fan-in, which the layers below draw when their kernel initializer is this one. Matching it
# matters when comparing with a PyTorch peer: pythae's β-VAE and VAE-GAN on MNIST
# reconstruct from the encoder mean 9% and 31% worse under flax's default (docs/ZOO.md).
TORCH_KERNEL_INIT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")

# Kernel initializers by name (`config.model.kernel_init`); biases start at zero except with
# "torch". lecun_normal is flax's default (and stays the default, so existing configs give
# the same runs); glorot_uniform is Keras'; he_* suit ReLU stacks (He et al., 2015).
INITIALIZERS: dict[str, Callable[[], nn.initializers.Initializer]] = {
    "lecun_normal": nn.initializers.lecun_normal,
    "lecun_uniform": nn.initializers.lecun_uniform,
    "glorot_uniform": nn.initializers.glorot_uniform,
    "glorot_normal": nn.initializers.glorot_normal,
    "he_normal": nn.initializers.he_normal,
    "he_uniform": nn.initializers.he_uniform,
    "torch": lambda: TORCH_KERNEL_INIT,
}


def _torch_bias_init(kernel_shape):
    """PyTorch's bias initializer for a kernel [..., fan_in axes, out]: U(±1/√fan_in), fan_in
    the product of every axis but the last (a transposed convolution's input channels times
    its window, where PyTorch counts the output channels)."""
    bound = 1.0 / math.sqrt(math.prod(kernel_shape[:-1]))
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(
        key, shape, dtype, -bound, bound
    )


def get_initializer(name: str, where: str = "config.model.kernel_init"):
    """The kernel initializer called `name`; ConfigError naming `where` otherwise."""
    if not isinstance(name, str):
        raise ConfigError(f"{where}={name!r} must be the name of an initializer")
    return lookup(INITIALIZERS, name, what="initializer", where=where)()


class _ShapeCheckedParams:
    """Flax checks an existing parameter's shape on every `apply` by tracing its initializer
    (`jax.eval_shape`), a random draw per parameter: 15% of an AAE step's trace time.
    These layers give the check a `jnp.zeros` of the shape they pass the initializer (flax's
    initializers return that shape), so the check still fails on a mismatch but costs one
    traced op. Initialization (no parameter yet) calls the real initializer."""

    def param(self, name, init_fn, *init_args, unbox=True, **init_kwargs):
        if init_args and isinstance(init_args[0], tuple) and self.has_variable("params", name):
            shape = init_args[0]
            init_fn = lambda key, *args, **kwargs: jnp.zeros(shape)  # noqa: E731
        elif name == "bias" and _is_torch(getattr(self, "kernel_init", None)):
            # flax creates a layer's kernel before its bias
            init_fn = _torch_bias_init(self.get_variable("params", "kernel").shape)
        return super().param(name, init_fn, *init_args, unbox=unbox, **init_kwargs)


def _is_torch(kernel_init) -> bool:
    return kernel_init is TORCH_KERNEL_INIT or kernel_init == "torch"


class Dense(_ShapeCheckedParams, nn.Dense):
    """`nn.Dense` with a cheaper shape check (`_ShapeCheckedParams`)."""


class Conv(_ShapeCheckedParams, nn.Conv):
    """`nn.Conv` with a cheaper shape check (`_ShapeCheckedParams`)."""


class ConvTranspose(_ShapeCheckedParams, nn.ConvTranspose):
    """`nn.ConvTranspose` with a cheaper shape check (`_ShapeCheckedParams`)."""


# _PHASE_TAPS[a, r, i] = 1 where, at output parity a (even, odd), tap r of the kernel on the
# small map sums tap i of a 3-tap kernel applied after 2x nearest-neighbour upsampling:
# output 2i sees x[i-1] through tap 0 and x[i] through taps 1 and 2; output 2i+1 sees x[i]
# through taps 0 and 1 and x[i+1] through tap 2.
_PHASE_TAPS = np.array([[[1, 0, 0], [0, 1, 1], [0, 0, 0]], [[0, 0, 0], [1, 1, 0], [0, 0, 1]]])
# Both axes at once: [(r, s, a, b), (i, j)]
_PHASE_TAPS_2D = np.einsum("ari,bsj->rsabij", _PHASE_TAPS, _PHASE_TAPS).reshape(36, 9)


def _upsample2_phases(kernel: jax.Array) -> jax.Array:
    """[3, 3, C, F] -> [3, 3, C, 4 * F]: the 3x3 kernels through which the four output phases
    (row parity, column parity) of the upsampled-then-convolved map see the small map, on the
    output axis in (row parity, column parity, F) order. One product with the 0/1 matrix
    `_PHASE_TAPS_2D`: XLA makes it two kernels and its gradient two, where building the
    phases with slices and stacks took eight per layer (conv VAE 167 -> 157 kernels)."""
    c, f = kernel.shape[2:]
    weights = jnp.asarray(_PHASE_TAPS_2D, kernel.dtype)
    # HIGHEST: the phase taps are sums of the kernel's taps, which the default precision of
    # GPUs and TPUs would round to TF32 or bf16
    phases = jnp.dot(weights, kernel.reshape(9, c * f), precision=jax.lax.Precision.HIGHEST)
    return phases.reshape(3, 3, 4, c, f).transpose(0, 1, 3, 2, 4).reshape(3, 3, c, 4 * f)


class Upsample2ConvTranspose(_ShapeCheckedParams, nn.Module):
    """`ConvTranspose(features, (3, 3), padding="SAME")` of the 2x nearest-neighbour
    upsampled input, with the same parameters ("kernel" [3, 3, C, features], "bias"), the
    same initialization and the same values up to float rounding, computed on the small map:
    one 3x3 convolution to the four output phases' channels, then depth-to-space. The
    upsampled map is never built, so its gradient needs no sum over 2x2 blocks.

    Attributes:
      features: output channels.
      kernel_init: name of the kernel initializer (`INITIALIZERS`).
    """

    features: int
    kernel_init: str = "lecun_normal"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """[B, h, w, C] -> [B, 2h, 2w, features]."""
        b, h, w, c = x.shape
        shape = (3, 3, c, self.features)
        kernel = self.param("kernel", get_initializer(self.kernel_init), shape, jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        y = jax.lax.conv_general_dilated(
            x,
            _upsample2_phases(kernel),
            window_strides=(1, 1),
            padding=((1, 1), (1, 1)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        y = y.reshape(b, h, w, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
        return y.reshape(b, 2 * h, 2 * w, self.features) + bias


class BatchNorm(_ShapeCheckedParams, nn.BatchNorm):
    """`nn.BatchNorm` with a cheaper shape check (`_ShapeCheckedParams`)."""


def get_activation(name: str, where: str) -> Callable[[jax.Array], jax.Array]:
    """Returns the activation called `name`; ConfigError naming `where` otherwise."""
    return lookup(ACTIVATIONS, name, what="activation", where=where)


class DenseStack(nn.Module):
    """Dense layers with an activation (and optional batch norm, dropout) between them.

    The last layer is left linear: the caller applies the code or output activation, so that
    losses that want pre-activations (logits) can have them.

    Attributes:
      widths: output width of each Dense layer; the last is the stack's output width.
      activation: name of the hidden activation.
      dropout: dropout rate after each hidden activation (0 disables it).
      batch_norm: batch norm before each hidden activation.
      kernel_init: name of the kernel initializer (`INITIALIZERS`).
    """

    widths: Sequence[int]
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = False
    kernel_init: str = "lecun_normal"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, D] -> [B, widths[-1]]."""
        act = get_activation(self.activation, "config.model.activation")
        init = get_initializer(self.kernel_init)
        for i, width in enumerate(self.widths):
            x = Dense(width, kernel_init=init, name=f"dense_{i}")(x)
            if i == len(self.widths) - 1:
                break
            if self.batch_norm:
                x = BatchNorm(use_running_average=not train, name=f"bn_{i}")(x)
            x = act(x)
            if self.dropout > 0:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return x


def flatten(x: jax.Array) -> jax.Array:
    """[B, ...] -> [B, D]."""
    return jnp.reshape(x, (x.shape[0], -1))


def top_k_mask(z: jax.Array, k: int) -> jax.Array:
    """1 at the k largest entries of each example's code, 0 elsewhere.

    Ties are broken by position (`lax.top_k`), so exactly k entries are kept.

    Args:
      z: codes, [B, ...].
      k: how many entries to keep per example, 1 <= k <= prod(z.shape[1:]).
    Returns:
      mask of z's shape and dtype; it is built from indices, so no gradient flows through it.
    """
    flat = z.reshape(z.shape[0], -1)
    _, idx = jax.lax.top_k(flat, k)
    mask = jnp.zeros_like(flat).at[jnp.arange(flat.shape[0])[:, None], idx].set(1.0)
    return mask.reshape(z.shape)


def keep_top_k(z: jax.Array, k: int) -> jax.Array:
    """The k-sparse code of Makhzani & Frey (2013), "k-Sparse Autoencoders": keeps the k
    largest activations of each example and zeroes the rest; gradients flow through the
    kept ones only. [B, ...] -> same shape."""
    return z * top_k_mask(z, k)
