"""Ex-post samplers: new examples from any trained autoencoder with a decoder, by fitting a
density to its training codes and decoding draws from it. Separate from the models, so a
deterministic autoencoder (WAE, RAE, a plain AE) generates too, and a VAE can be sampled
from its aggregate posterior instead of its prior.

- `GaussianMixtureSampler`: a Gaussian mixture (scikit-learn's `GaussianMixture`, full
  covariances, 10 components, as pythae 0.1.2's `GaussianMixtureSampler`) fitted to the
  codes: the ex-post density estimation of Ghosh et al. (2020), "From Variational to
  Deterministic Autoencoders", §4.
- `TwoStageVAESampler`: a second, small VAE trained on the codes, sampled through its
  decoder: Dai & Wipf (2019), "Diagnosing and Enhancing VAE Models", §4.
- `ClassConditionalGaussianSampler`: one Gaussian per class fitted to labelled codes, so
  each draw comes with its class: labelled samples for data augmentation
  (experiments/app_augment.py).

Both take codes [N, *code_shape] (`TrainedModel.encode(train_x)`) and give codes; decode
them with the model (`sample_decoded`). Draws are functions of the seed.

Measured on the 60000 training codes (16 units) of `configs/rae.py:l2_mnist` after 10
epochs: the two-stage fit with its defaults (width 1024, depth 2, 5000 steps of 100) took
204 s on a shared 2-core CPU (load average about 10), and its draws' per-unit standard
deviations were 0.89 to 1.02 times the codes'.
"""

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aejax import losses
from aejax.errors import AejaxError
from aejax.models.mlp import MLPDecoder, MLPEncoder
from aejax.models.vae import VAE


def _flat_codes(codes) -> np.ndarray:
    codes = np.asarray(codes, np.float64)
    if codes.ndim < 2 or len(codes) < 2 or not np.all(np.isfinite(codes)):
        raise AejaxError(
            f"a sampler needs at least 2 finite codes shaped [N, ...]; got shape {codes.shape}"
        )
    return codes.reshape(len(codes), -1)


@dataclasses.dataclass(frozen=True)
class GaussianMixtureSampler:
    """A Gaussian mixture fitted to codes: p(z) = Σ_k π_k N(z; μ_k, Σ_k).

    Attributes:
      weights: π, [K].
      means: μ, [K, d].
      covariances: Σ, [K, d, d].
      code_shape: the shape of one code (draws are reshaped to it).
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    code_shape: tuple[int, ...]

    @classmethod
    def fit(
        cls, codes, n_components: int = 10, seed: int = 0, max_iter: int = 2000, tol: float = 1e-3
    ) -> "GaussianMixtureSampler":
        """EM fit of a full-covariance mixture to codes [N, *code_shape] (pythae's settings:
        10 components, at most 2000 iterations, tolerance 1e-3; fewer components when there
        are fewer codes, as pythae does)."""
        from sklearn.mixture import GaussianMixture

        flat = _flat_codes(codes)
        if not isinstance(n_components, int) or n_components < 1:
            raise AejaxError(f"n_components={n_components!r} must be an integer >= 1")
        gmm = GaussianMixture(
            n_components=min(n_components, len(flat)),
            covariance_type="full",
            max_iter=max_iter,
            tol=tol,
            random_state=seed,
        ).fit(flat)
        return cls(gmm.weights_, gmm.means_, gmm.covariances_, tuple(np.shape(codes)[1:]))

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n codes drawn from the mixture: [n, *code_shape] float32.

        A component k ~ π per draw, then μ_k + L_k ε with Σ_k = L_k L_kᵀ and ε ~ N(0, I),
        all from numpy's generator seeded with `seed`.
        """
        rng = np.random.default_rng(seed)
        k = rng.choice(len(self.weights), size=n, p=self.weights / self.weights.sum())
        chol = np.linalg.cholesky(self.covariances)
        eps = rng.standard_normal((n, self.means.shape[1]))
        z = self.means[k] + np.einsum("nij,nj->ni", chol[k], eps)
        return z.reshape(n, *self.code_shape).astype(np.float32)


def _second_stage_vae(d: int, width: int, depth: int):
    """Dai & Wipf's second VAE as in pythae: `depth` ReLU layers of `width` each way, a
    d-unit Gaussian latent, and a linear decoder output with a learned variance γ² (one
    scalar, `x_logvar="scalar"`), trained on "gaussian_nll_learned + kl_normal"."""
    return VAE(
        encoder=MLPEncoder((width,) * depth + (2 * d,)),
        decoder=MLPDecoder((width,) * depth, (d,)),
        latent_shape=(d,),
        output_activation="linear",
        x_logvar="scalar",
    )


@dataclasses.dataclass(frozen=True)
class TwoStageVAESampler:
    """A second VAE fitted to the (standardized) codes; draws from its generative model,
    u ~ N(0, I) and z ~ N(D(u), γ²I) with the learned γ (as pythae's second decoder adds
    γ-scaled noise to its mean), so the draws have the density the VAE fitted.

    Attributes:
      params: the second VAE's parameters.
      shift, scale: the codes' per-unit mean and standard deviation, [d] (the second VAE
        sees (z − shift) / scale; draws are mapped back).
      width, depth: its architecture.
      code_shape: the shape of one code.
      losses: the training loss (negative ELBO in nats of the standardized codes) every
        100 steps, for checking that the fit converged.
    """

    params: dict
    shift: np.ndarray
    scale: np.ndarray
    width: int
    depth: int
    code_shape: tuple[int, ...]
    losses: tuple[float, ...] = ()

    @classmethod
    def fit(
        cls,
        codes,
        steps: int = 5000,
        batch_size: int = 100,
        learning_rate: float = 1e-3,
        width: int = 1024,
        depth: int = 2,
        seed: int = 0,
    ) -> "TwoStageVAESampler":
        """Trains the second VAE with Adam on codes [N, *code_shape] for `steps` steps of
        `batch_size` codes (epochs reshuffled from `seed`). pythae's architecture is
        width 1024, depth 2."""
        flat = _flat_codes(codes)
        for name, v in (("steps", steps), ("batch_size", batch_size), ("width", width)):
            if not isinstance(v, int) or v < 1:
                raise AejaxError(f"{name}={v!r} must be an integer >= 1")
        shift, scale = flat.mean(0), flat.std(0) + 1e-6
        data = jnp.asarray((flat - shift) / scale, jnp.float32)
        model = _second_stage_vae(data.shape[1], width, depth)
        key = jax.random.key(seed)
        params = model.init({"params": key, "latent": key}, data[:1])["params"]
        tx = optax.adam(learning_rate)
        weights = {"gaussian_nll_learned": 1.0, "kl_normal": 1.0}

        def loss_fn(params, x, key):
            _, aux = model.apply({"params": params}, x, train=True, rngs={"latent": key})
            return losses.total_loss(weights, x=x, **aux)[0]

        @jax.jit
        def step(params, opt_state, x, key):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, key)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        opt_state = tx.init(params)
        rng = np.random.default_rng(seed)
        batch_size = min(batch_size, len(data))
        per_epoch = len(data) // batch_size
        order, trace = None, []
        for i in range(steps):
            if i % per_epoch == 0:
                order = rng.permutation(len(data))
            rows = order[(i % per_epoch) * batch_size : (i % per_epoch + 1) * batch_size]
            params, opt_state, loss = step(
                params, opt_state, data[rows], jax.random.fold_in(key, i)
            )
            if i % 100 == 0 or i == steps - 1:
                trace.append(float(loss))
        if not math.isfinite(trace[-1]):
            raise AejaxError(f"the second-stage VAE diverged (loss {trace[-1]}); lower the rate")
        return cls(params, shift, scale, width, depth, tuple(np.shape(codes)[1:]), tuple(trace))

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n codes: u ~ N(0, I) and ε ~ N(0, I) from `seed`, z = D(u) + γε, unstandardized:
        [n, *code_shape] float32."""
        model = _second_stage_vae(len(self.shift), self.width, self.depth)
        ku, ke = jax.random.split(jax.random.key(seed))
        u = jax.random.normal(ku, (n, len(self.shift)))
        gamma = jnp.exp(0.5 * self.params["x_logvar"])
        z = model.apply({"params": self.params}, u, method="decode")[0]
        z = z + gamma * jax.random.normal(ke, z.shape)
        z = np.asarray(z, np.float64) * self.scale + self.shift
        return z.reshape(n, *self.code_shape).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class ClassConditionalGaussianSampler:
    """p(z | y = k) = N(z; μ_k, Σ_k), one Gaussian per class fitted to labelled codes.

    With few codes per class (10 labelled images a class, codes of 8 to 20 units) a class's
    sample covariance S_k is singular, so Σ_k shrinks it towards the pooled within-class
    covariance S (all classes' deviations from their own means, which has N − K degrees of
    freedom instead of N_k − 1): Σ_k = (1 − λ) S_k + λ S + ε·mean(diag S)·I, with a small
    ridge ε that keeps Σ_k positive definite when S itself is singular.

    Attributes:
      classes: the class labels, [K] int.
      means: μ, [K, d].
      covariances: Σ, [K, d, d].
      code_shape: the shape of one code (draws are reshaped to it).
    """

    classes: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    code_shape: tuple[int, ...]

    @classmethod
    def fit(
        cls, codes, labels, shrinkage: float = 0.5, ridge: float = 1e-3
    ) -> "ClassConditionalGaussianSampler":
        """Per-class means and shrunk covariances of codes [N, *code_shape] with integer
        labels [N]; each class needs at least 2 codes. `shrinkage` λ in [0, 1] (1: every
        class gets the pooled covariance, a linear-discriminant model), `ridge` ε >= 0."""
        flat = _flat_codes(codes)
        labels = np.asarray(labels)
        if labels.shape != (len(flat),) or not np.issubdtype(labels.dtype, np.integer):
            raise AejaxError(
                f"labels must be integers shaped [{len(flat)}] like the codes; got "
                f"{labels.dtype} {labels.shape}"
            )
        if isinstance(shrinkage, bool) or not 0.0 <= shrinkage <= 1.0:
            raise AejaxError(f"shrinkage={shrinkage!r} must be a number in [0, 1]")
        if isinstance(ridge, bool) or not ridge >= 0.0:
            raise AejaxError(f"ridge={ridge!r} must be a number >= 0")
        classes, counts = np.unique(labels, return_counts=True)
        if counts.min() < 2:
            raise AejaxError(
                f"class {classes[counts.argmin()]} has {counts.min()} code; each class needs 2"
            )
        means = np.stack([flat[labels == k].mean(0) for k in classes])
        centred = flat - means[np.searchsorted(classes, labels)]
        pooled = centred.T @ centred / max(len(flat) - len(classes), 1)
        own = np.stack(
            [np.cov(centred[labels == k].T, ddof=1).reshape(pooled.shape) for k in classes]
        )
        eye = np.eye(len(pooled)) * ridge * max(float(np.mean(np.diag(pooled))), 1e-12)
        covs = (1.0 - shrinkage) * own + shrinkage * pooled + eye
        return cls(classes, means, covs, tuple(np.shape(codes)[1:]))

    def sample(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """n labelled codes, the classes in turn (balanced: n // K or one more each): codes
        [n, *code_shape] float32 and their labels [n] int32, z = μ_y + L_y ε with
        Σ_y = L_y L_yᵀ and ε ~ N(0, I) from numpy's generator seeded with `seed`."""
        if not isinstance(n, int) or n < 1:
            raise AejaxError(f"n={n!r} must be an integer >= 1")
        rng = np.random.default_rng(seed)
        k = np.arange(n) % len(self.classes)
        chol = np.linalg.cholesky(self.covariances)
        eps = rng.standard_normal((n, self.means.shape[1]))
        z = self.means[k] + np.einsum("nij,nj->ni", chol[k], eps)
        labels = self.classes[k].astype(np.int32)
        return z.reshape(n, *self.code_shape).astype(np.float32), labels

    def log_prob(self, codes, labels) -> np.ndarray:
        """log N(z_i; μ_{y_i}, Σ_{y_i}) of codes [N, *code_shape] with labels [N] among the
        fitted classes: [N] (to choose the shrinkage on held-out codes)."""
        flat = _flat_codes(codes)
        labels = np.asarray(labels)
        idx = np.searchsorted(self.classes, labels)
        idx = np.minimum(idx, len(self.classes) - 1)
        if labels.shape != (len(flat),) or np.any(self.classes[idx] != labels):
            raise AejaxError(f"labels must be [{len(flat)}] among the fitted classes")
        chol = np.linalg.cholesky(self.covariances)
        diff = flat - self.means[idx]
        # Solve L u = diff per code: ‖u‖² is the Mahalanobis distance; log|Σ| = 2 Σ log diag L.
        u = np.linalg.solve(chol[idx], diff[..., None])[..., 0]
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(-1)
        d = flat.shape[1]
        return -0.5 * (np.sum(u**2, -1) + logdet[idx] + d * np.log(2 * np.pi))


def sample_decoded(
    sampler, decode: Callable[[np.ndarray], np.ndarray], n: int, seed: int = 0
) -> np.ndarray:
    """n new examples: codes from a fitted sampler, decoded (e.g. `TrainedModel.decode`):
    [n, *example_shape]."""
    return np.asarray(decode(sampler.sample(n, seed)))
