"""The regularizers of the regularized autoencoders (RAE) of Ghosh, Sajjadi, Vergari, Black
& Schölkopf (2020), "From Variational to Deterministic Autoencoders" (ICLR 2020), §3.

A deterministic autoencoder trained on

    L = ‖x − x̂‖² + β·½‖z‖² + λ·R(θ_dec)

is an RAE: the code penalty ½‖z‖² (`code_l2`) keeps the codes in a bounded region in
place of the VAE's noise, and R smooths the decoder. The paper's two choices:

- RAE-L2: R = ‖θ_dec‖², an L2 penalty on the decoder's parameters (`decoder_l2`).
  pythae 0.1.2 puts it in a second Adam optimizer's `weight_decay=λ` over the decoder
  only; PyTorch's Adam adds λ·θ to the gradient, which is the gradient of λ·½‖θ‖², so the
  recipe "mse + β*code_l2 + λ*decoder_l2" with Adam makes the same updates;
- RAE-GP: R = ‖∇_z D(z)‖² at z = E(x), the decoder's gradient penalty
  (`decoder_gradient_penalty`: ‖∂(Σ_i x̂_i)/∂z‖², the gradient of the summed output, which
  is how autograd's `grad(outputs, inputs, grad_outputs=ones)` reads the gradient of a
  vector, as pythae does), or the exact squared Frobenius norm of the decoder's Jacobian
  ‖∂x̂/∂z‖²_F (`decoder_jacobian`). pythae 0.1.2's RAE_GP (`_compute_gp`) differentiates
  with respect to the *input* x rather than the code z, a penalty on the whole
  autoencoder; these terms follow the paper's ∇_z.

The decoder terms read it from aux["decoder_chain"], the `DenseChain` an MLP autoencoder
hands over (its weights and activations, no computation): like the contractive penalty's
closed form, a term sees tensors by name, never the model's parameter tree. The chain is
the deterministic decoder (no dropout). A model without one (conv, batch norm) is refused
at start-up, naming the missing tensor.
"""

import jax
import jax.numpy as jnp

from aejax.models.layers import get_activation
from aejax.models.mlp import DenseChain


def apply_chain(chain: DenseChain, z: jax.Array) -> jax.Array:
    """The network a `DenseChain` describes: h_l = φ_l(h_{l−1} W_l + b_l), [B, n_0] -> [B, n_L].

    For a decoder's chain this is x̂ = D(z), flattened.
    """
    h = z.reshape(z.shape[0], -1)
    for w, b, name in zip(chain.kernels, chain.biases, chain.activations, strict=True):
        h = get_activation(name, "decoder_chain")(h @ w + b)
    return h


def code_l2(*, z: jax.Array, **_) -> jax.Array:
    """The RAE's code penalty ½‖z‖² (Ghosh et al., 2020, L_Z^RAE), per example.

    Args:
      z: codes, [B, ...].
    Returns:
      [B] half the squared Euclidean norm of each code.
    """
    return 0.5 * jnp.sum(jnp.square(z.reshape(z.shape[0], -1)), axis=1)


def decoder_l2(*, z: jax.Array, decoder_chain: DenseChain, **_) -> jax.Array:
    """½‖θ_dec‖², half the squared L2 norm of every decoder parameter (kernels and biases,
    as pythae's decoder weight decay covers them), the RAE-L2 regularizer.

    Its weight λ in the recipe is pythae's `reg_weight` (see the module docstring).

    Args:
      z: codes, [B, ...] (only the batch size is read).
      decoder_chain: the decoder's weights.
    Returns:
      [B]: the same value for every example (it does not depend on the batch).
    """
    leaves = (*decoder_chain.kernels, *decoder_chain.biases)
    value = 0.5 * sum(jnp.sum(jnp.square(p)) for p in leaves)
    return jnp.broadcast_to(value, z.shape[:1])


def decoder_gradient_penalty(*, z: jax.Array, decoder_chain: DenseChain, **_) -> jax.Array:
    """‖∂(Σ_i x̂_i)/∂z‖² = ‖J(z)ᵀ 1‖² per example, J = ∂x̂/∂z the decoder's Jacobian at the
    example's code: the RAE-GP penalty of Ghosh et al. (2020) with a vector output's
    gradient taken as autograd takes it (the gradient of the summed output).

    One reverse pass over the batch: the examples do not interact, so the gradient of the
    batch's summed output with respect to z [B, d] holds each example's Jᵀ1 in its row.

    Args:
      z: codes, [B, d].
      decoder_chain: the decoder's weights and activations.
    Returns:
      [B] squared norms.
    """
    flat = z.reshape(z.shape[0], -1)
    grads = jax.grad(lambda c: jnp.sum(apply_chain(decoder_chain, c)))(flat)
    return jnp.sum(jnp.square(grads), axis=1)


def decoder_jacobian(*, z: jax.Array, decoder_chain: DenseChain, **_) -> jax.Array:
    """‖∂x̂/∂z‖²_F = Σ_{i,j} (∂x̂_i/∂z_j)², the decoder Jacobian's squared Frobenius norm
    per example: the exact reading of the RAE-GP penalty ‖∇_z D(z)‖² for a vector-valued D.

    Forward mode, one Jacobian-vector product per code unit d (codes are small).

    Args:
      z: codes, [B, d].
      decoder_chain: the decoder's weights and activations.
    Returns:
      [B] squared Frobenius norms.
    """
    flat = z.reshape(z.shape[0], -1)
    one = lambda c: apply_chain(decoder_chain, c[None])[0]  # [d] -> [D]
    jac = jax.vmap(jax.jacfwd(one))(flat)  # [B, D, d]
    return jnp.sum(jnp.square(jac), axis=(1, 2))
