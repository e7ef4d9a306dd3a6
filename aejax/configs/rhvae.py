"""Riemannian Hamiltonian VAE (Chadebec, Mantoux & Allassonnière, 2020, "Geometry-Aware
Hamiltonian Variational Auto-Encoder").

The HVAE (configs/hvae.py) with a learned Riemannian metric G⁻¹(z) = Σ_i L_i L_iᵀ
exp(−‖z − c_i‖²/T²) + λI on the latent space, its centroids c_i the encoder means of
training examples and L_i from a metric network, and the generalized leapfrog
(`aejax.models.rhvae`). The centroids and their L matrices seen last in training are model
state (the collection "rhvae_metric", checkpointed with the parameters): evaluation and
the sampler use them. Recipe "<likelihood> + kl_sample", as the HVAE's.

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, MLP 64-128-(8 Gaussian) and its mirror,
  Bernoulli likelihood, metric network 64-400-L, T = 1.5, λ = 0.01 (pythae's defaults),
  the last 1408 training codes (one epoch) as centroids, K = 3, ε = 0.01, β_0 = 0.3,
  100 epochs.
    aejax train rhvae --workdir runs/rhvae_digits
  Expected: test/loss 24.36 (test/bce 21.05, test/kl_sample 3.30) after 2200 steps;
  179 s on a 2-core CPU shared with other jobs (55 s of CPU time). `aejax evaluate ...
  --sections=generation` (k = 1000, 208 s: every flow step evaluates the metric at 1408
  centroids): negative ELBO 24.39, negative IWAE bound 24.15, the HVAE's numbers
  (configs/hvae.py) within their noise. pythae's sampler (HMC on the metric's volume,
  started at the stored centroids) on that run, 80 codes in 13 s:
    from aejax.evaluate import TrainedModel
    m = TrainedModel.load("runs/rhvae_digits")
    z = m.model.apply(m.variables, 80, method="riemannian_samples",
                      rngs={"latent": jax.random.key(0)})
    images = m.decode(z)

- `mnist`: pythae 0.1.2's MNIST RHVAE (examples/scripts/configs/mnist/rhvae_config.json:
  latent 16, "mse" (a unit-variance Gaussian likelihood: gaussian_nll), n_lf = 3,
  ε = 0.001, β_0 = 0.3, T = 0.8, λ = 0.01; its default MLPs 784-512-(16 Gaussian), the
  mirror and the metric network 784-400-L; the last 100 batches' 10000 codes as
  centroids; Adam at a constant 1e-3, batch 100, 100 epochs). Needs MNIST's IDX files in
  $AEJAX_DATA_DIR/mnist.
    aejax train rhvae:mnist --workdir runs/rhvae_mnist
  Measured with --config.num_epochs=1 (600 steps), not the 100 epochs: test/loss 742.3
  (test/gaussian_nll 737.5, test/kl_sample 4.74, test/sq_err_per_image 34.1), in 116 s
  on the 2-core CPU (100 s of CPU time). The report's IWAE bound at its default k = 1000
  would evaluate the 10000-centroid metric about 10^9 times per flow step: on a CPU use
  --iwae_k=10 (see below) or a GPU.
"""

from aejax.config import base_config, digits_schedule
from aejax.configs import hvae, unknown_preset, wae

PRESETS = ("digits", "mnist")


def get_config(arg: str = "digits"):
    if arg not in PRESETS:
        raise unknown_preset("rhvae", arg, PRESETS)
    config = base_config()
    config.model.metric_widths = (400,)
    config.model.metric_regularization = 0.01
    config.model.fixed_point_steps = 3
    if arg == "mnist":
        hvae.hamiltonian_model(config, "rhvae", "gaussian_nll")
        config.model.metric_temperature = 0.8
        config.model.metric_capacity = 10000  # pythae: the last 100 batches of 100
        wae.pythae_mnist(config)
    else:
        hvae.hamiltonian_model(config, "rhvae", "bce")
        config.model.eps_lf = 0.01
        config.model.metric_temperature = 1.5
        config.model.metric_capacity = 1408  # one epoch: 22 batches of 64
        config.model.encoder_widths = (128, 8)
        digits_schedule(config)
    return config
