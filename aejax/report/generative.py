"""Report sections that decode new codes: generation (and likelihood bounds),
interpolation, inpainting and compression. Each is a function of a `TrainedModel` and
`Options` returning a `Section`."""

import gzip
import math
import os
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from aejax import plots
from aejax.errors import ConfigError
from aejax.evaluate import TrainedModel, map_batches
from aejax.models import interface
from aejax.report.base import Options, Section, _is_image, _records, _table


def _gaussian_prior(m: TrainedModel) -> bool:
    """A standard normal prior (a VAE's, an AAE trained to a Gaussian prior)."""
    return interface.prior_of(m.model) == "standard_normal"


def _latent_size(m: TrainedModel) -> int:
    """The number of entries of one code."""
    return int(np.prod(m.encode(m.dataset.test_x[:1]).shape[1:]))


def manifold_codes(n: int) -> np.ndarray:
    """The codes of Keras' 2-D digit manifold: the standard normal's quantiles at n evenly
    spaced probabilities from 0.05 to 0.95 on each axis (`norm.ppf(linspace(0.05, 0.95,
    n))`). Returns [n, n, 2]: row i has z[1] at the i-th largest quantile (the figure's top
    row is the largest, as on a plot's y axis), column j z[0] at the j-th smallest."""
    q = np.asarray(jax.scipy.stats.norm.ppf(jnp.linspace(0.05, 0.95, n)), np.float64)
    z0, z1 = np.meshgrid(q, q[::-1])
    return np.stack([z0, z1], axis=-1).astype(np.float32)


def _manifold(m: TrainedModel, opts: Options, s: Section, n: int = 15) -> None:
    """The decoded n x n grid of prior quantiles (Keras' digit manifold) into `s`."""
    codes = manifold_codes(n)
    images = m.decode(codes.reshape(n * n, 2)).reshape(n, n, *m.dataset.example_shape)
    plots.save_image_grid(
        os.path.join(opts.out_dir, "manifold.png"),
        images,
        f"{m.dataset.name}: decoded prior quantiles (5% to 95%) of the 2-D latent",
        "z[0]",
        "z[1]",
        codes[0, :, 0],
        codes[:, 0, 1],
    )
    s.figures.append((f"The {n}x{n} manifold of the 2-D latent", "manifold.png"))
    s.results["manifold_quantiles"] = codes[0, :, 0].tolist()


def generation(m: TrainedModel, opts: Options) -> Section:
    """Samples from the prior (for a 2-D standard normal latent also the decoded grid of
    its quantiles), or for a model without one from a Gaussian mixture fitted to its
    training codes; for VAEs the ELBO and IWAE bounds on the test split."""
    from aejax.sampling import sample_prior

    s = Section("Generation and likelihood")
    if interface.prior_of(m.model) is None:
        return _ex_post_generation(m, opts, s)
    if _is_image(m):
        samples = np.asarray(sample_prior(m.model, m.variables, jax.random.key(opts.seed), 80))
        _plot_samples(m, opts, s, samples, "samples.png", "the prior")
        if _gaussian_prior(m) and _latent_size(m) == 2:
            _manifold(m, opts, s)
    if interface.has_posterior(m.model):
        from aejax import likelihood

        try:
            density = likelihood.get_likelihood(m.exp.weights, m.exp.options)
            likelihood.check_model(m.model, m.variables, density)
        except ConfigError as e:  # e.g. mse + kl_normal: the samples stand, the bounds don't
            s.lines.append(f"Likelihood bounds skipped: {e}")
            return s
        t0 = time.perf_counter()
        bounds = likelihood.evaluate_bounds(
            m.model,
            m.variables,
            m.dataset.test_x,
            jax.random.key(opts.seed),
            density,
            k=opts.iwae_k,
        )
        means = {name: float(np.mean(v)) for name, v in bounds.items()}
        kl = "analytic" if likelihood.analytic_kl(m.model) else "one-sample"
        s.results.update(means, iwae_k=opts.iwae_k, seconds=time.perf_counter() - t0)
        s.lines += [
            f"Test-split means in nats over {len(m.dataset.test_x)} examples "
            f"({s.results['seconds']:.1f} s); the negative IWAE bound estimates the negative "
            "log-likelihood from above. With `bce` on grey-level data the Bernoulli "
            "likelihood is not a normalized density (see aejax.likelihood).",
            "",
            *_table(
                ["quantity", "nats"],
                [
                    [f"negative ELBO (one z, {kl} KL)", -means["elbo"]],
                    ["KL(q(z|x) ‖ p(z))", means["kl"]],
                    [f"negative IWAE bound, k={opts.iwae_k}", -means["iwae"]],
                ],
            ),
        ]
    return s


def _plot_samples(m: TrainedModel, opts: Options, s: Section, samples, file: str, source: str):
    """80 samples in 8 rows of 10, saved to `file` and linked from the section."""
    plots.save_image_rows(
        os.path.join(opts.out_dir, file),
        {f"row {r + 1}": samples[10 * r : 10 * r + 10] for r in range(8)},
        f"{m.dataset.name}: 80 samples from {source} (decoder means)",
        xlabel="sample",
    )
    s.figures.append((f"Samples from {source}", file))


def _ex_post_generation(m: TrainedModel, opts: Options, s: Section, max_codes: int = 10_000):
    """For a model without a prior: decoded draws from a Gaussian mixture fitted to its
    training codes (`aejax.samplers.GaussianMixtureSampler`, the ex-post density estimation
    of Ghosh et al., 2020)."""
    from aejax.samplers import GaussianMixtureSampler, sample_decoded

    if not _is_image(m):
        s.lines.append("Skipped: the model has no prior, and the data are not images to show.")
        return s
    codes = m.encode(m.dataset.train_x[:max_codes])
    sampler = GaussianMixtureSampler.fit(codes, seed=opts.seed)
    samples = sample_decoded(sampler, m.decode, 80, opts.seed)
    k = len(sampler.weights)
    _plot_samples(m, opts, s, samples, "samples_gaussian_mixture.png", "a Gaussian mixture")
    s.results = {"sampler": "gaussian_mixture", "components": k, "codes": len(codes)}
    s.lines.append(
        f"The model has no prior: the samples decode draws from a Gaussian mixture of {k} "
        f"full-covariance components fitted to {len(codes)} training codes (ex-post density "
        "estimation, `aejax.samplers`)."
    )
    return s


def slerp(z0: jax.Array, z1: jax.Array, t: jax.Array) -> jax.Array:
    """Spherical interpolation between codes along the great circle through them (for
    Gaussian priors, where straight lines pass through improbably small norms).

    Args:
      z0, z1: [B, D] codes; t: [T] fractions in [0, 1].
    Returns:
      [B, T, D]; falls back to linear interpolation for (nearly) parallel codes.
    """
    n0 = z0 / jnp.linalg.norm(z0, axis=-1, keepdims=True)
    n1 = z1 / jnp.linalg.norm(z1, axis=-1, keepdims=True)
    omega = jnp.arccos(jnp.clip(jnp.sum(n0 * n1, -1), -1.0, 1.0))[:, None, None]
    t = t[None, :, None]
    so = jnp.sin(omega)
    safe = jnp.where(so > 1e-6, so, 1.0)
    spherical = (jnp.sin((1 - t) * omega) * z0[:, None] + jnp.sin(t * omega) * z1[:, None]) / safe
    linear = (1 - t) * z0[:, None] + t * z1[:, None]
    return jnp.where(so > 1e-6, spherical, linear)


def lerp(z0: jax.Array, z1: jax.Array, t: jax.Array) -> jax.Array:
    """Straight-line interpolation: [B, D] and [B, D] at [T] fractions -> [B, T, D]."""
    return (1 - t)[None, :, None] * z0[:, None] + t[None, :, None] * z1[:, None]


def interpolation(m: TrainedModel, opts: Options, pairs: int = 8, steps: int = 10) -> Section:
    """Decoded images along lines (and great circles) between codes of test pairs."""
    ds = m.dataset
    s = Section("Interpolation")
    if not _is_image(m):
        s.lines.append("Skipped: the data are not images.")
        return s
    rng = np.random.default_rng(opts.seed)
    idx = rng.choice(len(ds.test_x), 2 * pairs, replace=False)
    codes = m.encode(ds.test_x[idx])
    shape = codes.shape[1:]
    z0, z1 = codes[:pairs].reshape(pairs, -1), codes[pairs:].reshape(pairs, -1)
    t = jnp.linspace(0.0, 1.0, steps)
    paths = {"linear": lerp}
    if _gaussian_prior(m):
        paths["great circle"] = slerp
    for name, path in paths.items():
        z = np.asarray(path(z0, z1, t)).reshape(pairs * steps, *shape)
        images = m.decode(z).reshape(pairs, steps, *ds.example_shape)
        file = f"interpolation_{name.replace(' ', '_')}.png"
        plots.save_image_rows(
            os.path.join(opts.out_dir, file),
            {f"pair {p + 1}": images[p] for p in range(pairs)},
            f"{ds.name}: decoded codes along {name} paths between test pairs",
            xlabel="fraction of the way from the first code to the second (0 to 1)",
        )
        s.figures.append((f"Interpolation along {name} paths", file))
    s.results = {"pairs": idx.reshape(2, pairs).T.tolist(), "paths": list(paths)}
    s.lines.append(f"{pairs} random test pairs, {steps} steps each, ends included.")
    return s


def inpaint(
    reconstruct: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    observed: jax.Array,
    fill: jax.Array,
    steps: int,
) -> jax.Array:
    """Fills missing entries by iterating reconstruct-and-replace.

    x ← observed·x_obs + (1 − observed)·reconstruct(x), starting from `fill` in the missing
    entries; the observed entries never change.

    Args:
      reconstruct: [B, ...] -> [B, ...], the autoencoder.
      x: [B, ...] the inputs (missing entries are ignored).
      observed: [B, ...] booleans, True where the entry is known.
      fill: [...] or [B, ...] starting values of the missing entries (e.g. the train mean).
      steps: iterations.
    Returns:
      [B, ...] the completed inputs.
    """
    start = jnp.where(observed, x, fill)
    body = lambda _, cur: jnp.where(observed, x, reconstruct(cur))
    return jax.lax.fori_loop(0, steps, body, start)


def _masks(m: TrainedModel, seed: int) -> dict[str, np.ndarray]:
    """Observed-entry masks of the test split: for images the lower half missing and a random
    half of the pixels missing; for vectors a random 20% of the features missing."""
    x = m.dataset.test_x
    rng = np.random.default_rng(seed)
    if not _is_image(m):
        return {"random 20% of features": rng.uniform(size=x.shape) >= 0.2}
    h = x.shape[1]
    lower = np.ones(x.shape, bool)
    lower[:, h // 2 :] = False
    return {"lower half": lower, "random 50% of pixels": rng.uniform(size=x.shape) >= 0.5}


def inpainting(m: TrainedModel, opts: Options) -> Section:
    """Masked entries filled by the autoencoder beside mean imputation; error on them only."""
    ds = m.dataset
    mean = ds.train_x.mean(axis=0)
    recon = lambda v, x: m.model.apply(v, m.model.apply(v, x, method="encode"), method="decode")[0]
    rows, figure = [], {"test input": ds.test_x[:10]}
    for name, observed in _masks(m, opts.seed).items():
        fn = jax.jit(
            lambda b: {
                "x": inpaint(
                    lambda x: recon(m.variables, x),
                    b[:, 0],
                    b[:, 1] > 0.5,
                    mean,
                    opts.inpaint_steps,
                )
            }
        )
        stacked = np.stack([ds.test_x, observed.astype(np.float32)], 1)
        filled = map_batches(fn, stacked, m.exp.config.eval_batch_size)["x"]
        baseline = np.where(observed, ds.test_x, mean)
        errors = [float(np.mean((est - ds.test_x)[~observed] ** 2)) for est in (filled, baseline)]
        rows.append([name, *errors, float(1.0 - observed.mean())])
        if _is_image(m):
            shown = np.where(observed[:10], ds.test_x[:10], 0.5)  # missing pixels drawn grey
            figure[f"{name} missing"] = shown
            figure[f"{name} filled"] = filled[:10]
    s = Section("Inpainting and imputation")
    s.results = {
        "steps": opts.inpaint_steps,
        "masks": _records(["mask", "autoencoder_mse", "mean_mse", "missing"], rows),
    }
    s.lines += [
        f"Missing entries start at the training mean; {opts.inpaint_steps} iterations of "
        "reconstruct-and-replace. Mean squared error over the missing entries only.",
        "",
        *_table(["mask", "autoencoder MSE", "mean imputation MSE", "missing fraction"], rows),
    ]
    if _is_image(m):
        plots.save_image_rows(
            os.path.join(opts.out_dir, "inpainting.png"),
            figure,
            "Test images with missing pixels (grey) and the autoencoder's completions",
            xlabel="test example",
        )
        s.figures.append(("Inpainting", "inpainting.png"))
    return s


def quantize(codes: np.ndarray, low: np.ndarray, high: np.ndarray, bits: int = 8) -> np.ndarray:
    """Uniform quantization of each code dimension to 2**bits levels between `low` and
    `high` (the training codes' range), returned dequantized (what a decoder would see).

    Args:
      codes: [N, D]; low, high: [D].
    """
    levels = 2**bits - 1
    span = np.where(high > low, high - low, 1.0)
    q = np.round(np.clip((codes - low) / span, 0.0, 1.0) * levels)
    return (q / levels * span + low).astype(np.float32)


def index_bits(train_codes: np.ndarray, test_codes: np.ndarray, k: int) -> float:
    """Bits per test code vector under an entropy code of the training codes' frequencies:
    the mean of −log2 p(c) with p(c) = (training count of c + 1) / (training vectors + K),
    add-one smoothed so that a code no training vector chose costs finite bits.

    Args:
      train_codes, test_codes: [N, ..., D] codebook vectors (a VQ model's `encode`); the
        codes are told apart by value, so no codebook is needed.
      k: K, the codebook's size.
    """
    d = train_codes.shape[-1]
    vectors = np.concatenate([train_codes.reshape(-1, d), test_codes.reshape(-1, d)])
    _, label = np.unique(vectors, axis=0, return_inverse=True)
    label = label.reshape(-1)
    n_train = train_codes.size // d
    counts = np.bincount(label[:n_train], minlength=label.max() + 1)
    p = (counts[label[n_train:]] + 1.0) / (n_train + k)
    return float(np.mean(-np.log2(p)))


def compression(m: TrainedModel, opts: Options) -> Section:
    """Bits per example of the code against the raw input and gzip, with the error at each.
    A model that declares a codebook (`interface.codebook_size_of`) sends indices."""
    ds = m.dataset
    n, d = len(ds.test_x), int(np.prod(ds.example_shape))
    eight_bit = bool(np.all(np.round(ds.test_x * 255) == ds.test_x * 255))
    raw_bits = 8 * d if eight_bit else 32 * d
    raw = (np.round(ds.test_x * 255).astype(np.uint8) if eight_bit else ds.test_x).tobytes()
    gzip_bits = 8 * len(gzip.compress(raw, 9)) / n
    codes = m.encode(ds.test_x)
    flat = codes.reshape(n, -1)
    sq = lambda x_hat: float(np.mean(np.sum((x_hat - ds.test_x).reshape(n, -1) ** 2, 1)))
    rows = [
        ["raw input", raw_bits, 1.0, gzip_bits / raw_bits, 0.0],  # each ratio: ref. / row
        ["gzip -9 of the test set", gzip_bits, raw_bits / gzip_bits, 1.0, 0.0],
    ]
    k = interface.codebook_size_of(m.model)
    train_codes = m.encode(ds.train_x[:10_000])
    if k is not None:  # each code vector (the code's last axis) is one of K: an index
        positions = int(np.prod(codes.shape[1:-1]))
        entropy_coded = positions * index_bits(train_codes, codes, k)
        representations = [
            (f"code, indices (K = {k})", codes, positions * math.log2(k)),
            ("code, indices entropy-coded", codes, entropy_coded),
        ]
    else:
        train_codes = train_codes.reshape(min(10_000, ds.num_train), -1)
        q = quantize(flat, train_codes.min(0), train_codes.max(0)).reshape(codes.shape)
        representations = [("code, float32", codes, 32 * flat.shape[1])]
        representations.append(("code, 8-bit", q, 8 * flat.shape[1]))
    for name, z, b in representations:
        rows.append([name, b, raw_bits / b, gzip_bits / b, sq(m.decode(z))])
    header = ["representation", "bits / example", "ratio vs raw", "ratio vs gzip", "sq. error"]
    s = Section("Compression")
    s.results = {"rows": _records(header, rows)}
    s.lines += [
        f"Raw input: {d} values at {'8' if eight_bit else '32'} bits. "
        + (
            "The code is one index of the K-vector codebook per code vector, log2(K) bits "
            "each (the codebook is sent once); entropy-coded, each index costs −log2 of its "
            "add-one smoothed frequency among the training codes (the K counts are sent "
            "once). "
            if k is not None
            else "The 8-bit code quantizes each dimension uniformly over its range on "
            "training codes (the range, 2 floats per dimension, is sent once). "
        )
        + "Squared error per example on the test split.",
        "",
        *_table(header, rows),
    ]
    return s
