"""The exact contractive penalty ‖∂z/∂x‖²_F of Rifai et al. (2011), per example.

"Contractive Auto-Encoders: Explicit Invariance During Feature Extraction" (ICML 2011)
penalizes the squared Frobenius norm of the encoder's Jacobian J(x) = ∂z/∂x at each training
input. Every mode below computes it exactly (no sampling, no finite differences):

- `jacfwd`: the reference. Per example, J by forward mode: one Jacobian-vector product per
  input dimension D.
- `jacrev`: per example, J by reverse mode: one vector-Jacobian product per code unit C.
- `closed_form`: for an MLP encoder given as a `DenseChain` (the model puts one in
  aux["encoder_chain"]), from its weights. With h_0 = x, a_l = h_{l-1} W_l + b_l,
  h_l = φ_l(a_l), z = h_L and D_l = diag φ_l'(a_l), the Jacobian is
  J = D_L W_Lᵀ D_{L-1} ⋯ W_2ᵀ D_1 W_1ᵀ = M W_1ᵀ with M = D_L W_Lᵀ ⋯ W_2ᵀ D_1 [C, n_1], so

      ‖J‖²_F = tr(M G Mᵀ),   G = W_1ᵀ W_1 [n_1, n_1], computed once per batch.

  For one layer M = D_1 is diagonal and this is Rifai et al.'s closed form
  Σ_j φ'(a_j)² ‖W_{·j}‖² (for a sigmoid, φ' = h(1 − h)), O(n_1) per example. With two
  layers and a linear code, M Mᵀ's only per-example factor is D_1, and
  ‖J‖²_F = d_1ᵀ (G ⊙ W_2 W_2ᵀ) d_1, O(n_1²) per example. Otherwise M is built per example
  in O(C · Σ_{l≥2} n_l n_{l-1}) and the input dimension D never appears per example (only
  in G), which is what makes it cheaper than `jacrev` (O(C · Σ_l n_l n_{l-1}), with the
  D·n_1 first layer) when D is large. When n_1 > D the Gram matrix would be the larger
  object, so there ‖M W_1ᵀ‖²_F is summed directly.
- `auto` (the default): `closed_form` when the model provides a chain, else `jacrev` when
  the code is smaller than the input (fewer vector-Jacobian products), else `jacfwd`.

Why the closed form takes a `DenseChain` rather than the parameters: the loss term sees
only tensors by name (never the parameter tree, whose layout is the model family's
business), and the weights of the encoder are exactly what a closed form needs. An MLP
encoder knows its own layer structure and hands it over in aux; other families (conv,
batch norm) provide none, and `auto` then falls back to the exact autodiff modes.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.models.layers import get_activation, top_k_mask
from aejax.models.mlp import DenseChain

MODES = ("auto", "jacfwd", "jacrev", "closed_form")


def _sum_sq(j: jax.Array) -> jax.Array:
    """[B, ...] -> [B]: sums squares over every axis but the first."""
    return jnp.sum(jnp.square(j.reshape(j.shape[0], -1)), axis=1)


def jacobian_sq_norm_autodiff(
    encode: Callable[[jax.Array], jax.Array], x: jax.Array, mode: str = "jacfwd"
) -> jax.Array:
    """‖∂z/∂x‖²_F per example by `jax.jacfwd` or `jax.jacrev`.

    Each example's Jacobian is that of a one-example function, mapped over the batch
    (`vmap`), so no cross-example Jacobian blocks are ever formed.

    Args:
      encode: the deterministic encoder, [B, *input_shape] -> [B, *code_shape]; examples
        must not interact (no batch statistics).
      x: inputs, [B, *input_shape].
      mode: "jacfwd" or "jacrev".
    Returns:
      [B] squared Frobenius norms.
    """
    jac = {"jacfwd": jax.jacfwd, "jacrev": jax.jacrev}[mode]
    one = lambda xi: encode(xi[None])[0]  # [*input_shape] -> [*code_shape]
    return _sum_sq(jax.vmap(jac(one))(x))


def _derivative(name: str, a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(φ(a), φ'(a)) of an elementwise activation, by one JVP with a tangent of ones."""
    return jax.jvp(get_activation(name, "encoder_chain"), (a,), (jnp.ones_like(a),))


def jacobian_sq_norm_closed_form(chain: DenseChain, x: jax.Array) -> jax.Array:
    """‖∂z/∂x‖²_F per example from an MLP encoder's weights (see the module docstring).

    Args:
      chain: the encoder as a `DenseChain` (kernels W_l [n_{l-1}, n_l], biases, activations).
      x: inputs, [B, *input_shape] with prod(input_shape) = n_0.
    Returns:
      [B] squared Frobenius norms, equal to the autodiff modes' up to rounding.
    """
    h = x.reshape(x.shape[0], -1)
    slopes = []  # φ_l'(a_l), each [B, n_l]
    for w, b, name in zip(chain.kernels, chain.biases, chain.activations, strict=True):
        h, d = _derivative(name, h @ w + b)
        slopes.append(d)
    if chain.top_k > 0:  # zeroed code units have zero rows in J
        slopes[-1] = slopes[-1] * top_k_mask(h, chain.top_k)
    w1 = chain.kernels[0]
    if len(chain.kernels) == 1:  # M = D_1 is diagonal: Σ_j φ'(a_j)² ‖W_{·j}‖²
        return jnp.sum(jnp.square(slopes[0]) * jnp.sum(jnp.square(w1), axis=0), axis=1)
    if len(chain.kernels) == 2 and chain.activations[-1] == "linear" and chain.top_k == 0:
        # J = W_2ᵀ D_1 W_1ᵀ: only D_1 varies per example, so ‖J‖² = d_1ᵀ (G ⊙ H) d_1 with
        # G = W_1ᵀ W_1 and H = W_2 W_2ᵀ formed once per batch: O(n_1²) per example, no C.
        w2 = chain.kernels[1]
        q = (w1.T @ w1) * (w2 @ w2.T)
        return jnp.sum((slopes[0] @ q) * slopes[0], axis=1)
    # M = D_L W_Lᵀ ⋯ W_2ᵀ D_1, built per example from the code side: [B, C, n_l].
    m = slopes[-1][:, :, None] * chain.kernels[-1].T[None]
    for w, d in zip(chain.kernels[-2:0:-1], slopes[-2:0:-1], strict=True):
        m = (m * d[:, None, :]) @ w.T
    m = m * slopes[0][:, None, :]
    n0, n1 = w1.shape
    if n1 <= n0:  # tr(M G Mᵀ) with the [n_1, n_1] Gram matrix, formed once per batch
        return jnp.sum((m @ (w1.T @ w1)) * m, axis=(1, 2))
    return _sum_sq(m @ w1.T)


def resolve_mode(mode: str, x: jax.Array, encode, chain: DenseChain | None) -> str:
    """The exact mode to use: `mode` itself, or for "auto" the cheapest one available."""
    if mode not in MODES:
        raise ConfigError(
            f"config.loss_options.contractive.mode={mode!r} is not known; valid: "
            + ", ".join(MODES)
        )
    if mode == "closed_form" and chain is None:
        raise ConfigError(
            "config.loss_options.contractive.mode='closed_form' needs an encoder with a closed "
            "form (an MLP without batch norm); use 'auto', 'jacrev' or 'jacfwd'"
        )
    if mode != "auto":
        return mode
    if chain is not None:
        return "closed_form"
    code = jax.eval_shape(encode, x[:1]).size  # no computation, shapes only
    return "jacrev" if code < x[0].size else "jacfwd"


def contractive(
    *,
    x_in: jax.Array,
    encode: Callable[[jax.Array], jax.Array],
    mode: str = "auto",
    encoder_chain: DenseChain | None = None,
    **_,
) -> jax.Array:
    """Contractive penalty ‖∂z/∂x‖²_F = Σ_{j,i} (∂z_j/∂x_i)², exact, per example.

    Rifai et al. (2011), "Contractive Auto-Encoders: Explicit Invariance During Feature
    Extraction": the recipe "mse + λ*contractive" is their CAE objective (they write λ‖J‖²_F
    beside the reconstruction error). The Jacobian is that of the deterministic encoder at
    the input the model saw (`x_in`, the corrupted input when there is corruption).

    Args:
      x_in: the encoder's input, [B, *input_shape].
      encode: the deterministic encoder, [B, *input_shape] -> [B, *code_shape].
      mode: "auto" (default), "jacfwd", "jacrev" or "closed_form"; all exact (see
        `aejax.contractive`). An option: `config.loss_options.contractive.mode`.
      encoder_chain: the encoder's weights, which MLP autoencoders put in their aux; used
        by "closed_form" and by "auto" when present.
    Returns:
      [B] per-example squared Frobenius norms.
    """
    mode = resolve_mode(mode, x_in, encode, encoder_chain)
    if mode == "closed_form":
        return jacobian_sq_norm_closed_form(encoder_chain, x_in)
    return jacobian_sq_norm_autodiff(encode, x_in, mode)
