"""The zoo's pairs: for each pythae 0.1.2 model that aejax has, the aejax config that is
pythae's setting on its default MLP (experiments/zoo.py trains it; benchmarks/zoo_peer.py's
MODELS is pythae's side)."""


def _capacity(steps_per_epoch: int) -> dict:
    """pythae's DisentangledBetaVAE capacity (C 30, warmup_epoch 25) as `kl_capacity_example`
    options: C = 30·min(1, epoch / 26), raised at each epoch's first step."""
    return {
        "capacity_max": 30.0,
        "anneal_steps": 26 * steps_per_epoch,
        "stair_steps": steps_per_epoch,
    }


# pythae model: (aejax config:preset, overrides beyond pythae's MLP and trainer, the recipe of
# the binarized run or None (no likelihood), a note). pythae's reconstruction term "mse" is
# ½‖x − x̂‖² in its VAEs (a unit-variance Gaussian up to a constant), ‖x − x̂‖² in its AEs;
# its "bce" is aejax's bce. The binarized recipe is a recipe, or a dict of overrides.
_REPRO = "pythae's reproducibility run (no MNIST config file)"
_HAMILTONIAN_BCE = {"loss": "bce + kl_sample", "model.likelihood": "bce"}

PAIRS = {
    "ae": ("ae:mnist", {"loss": "mse"}, None, ""),
    "vae": ("vae:mnist", {"loss": "0.5*mse + kl_normal"}, "bce + kl_normal", ""),
    "beta_vae": ("vae:mnist", {"loss": "0.5*mse + 2*kl_normal"}, "bce + 2*kl_normal", ""),
    # The importance-weighted bounds are Bernoulli in aejax: pythae's side trains "bce" too.
    "iwae": ("vae:iwae", {}, "iwae_bce", "k = 5, Bernoulli on both sides (pythae's file: mse)"),
    "miwae": ("miwae:mnist", {}, "miwae_bce", _REPRO + ": M = K = 8, bce"),
    "ciwae": ("ciwae:mnist", {}, "ciwae_bce", _REPRO + ": K = 64, β = 0.5, bce"),
    "piwae": ("piwae:mnist", {}, "iwae_bce", _REPRO + ": M = K = 8, bce; two optimizers"),
    "wae": ("wae:mnist", {}, None, ""),
    "info_vae": ("info_vae:mnist", {}, "bce + 1*kl_normal + 999*mmd_imq", ""),
    "rae_l2": ("rae:l2_mnist", {}, None, ""),
    "rae_gp": ("rae:gp_mnist", {}, None, ""),
    # pythae's VQ-VAE reshapes the MLP's 16-d code to 16 positions of one channel: each
    # coordinate is quantized alone, to one of 256 scalars (its embedding_dim is 1).
    "vqvae": (
        "vq_vae:mnist_ema",
        {"model.num_embeddings": 256, "model.code_groups": 16},
        None,
        "16 code vectors of 1 dimension, K = 256 each (pythae's embedding_dim 1)",
    ),
    "vamp": ("vamp:mnist", {}, "bce + kl_sample", "50 pseudo-inputs, hardtanh"),
    "vae_lin_nf": ("vae_nf:mnist", {}, "bce + kl_sample", "5 planar flows"),
    "vae_iaf": (
        "vae_iaf:mnist",
        {},
        "bce + kl_sample",
        "2 MADE blocks of 32-32; aejax's IAF step is gated, pythae's z·exp(s) + m",
    ),
    "msssim_vae": ("msssim_vae:mnist", {}, None, ""),
    "svae": ("svae:mnist", {}, "bce + kl_vmf", ""),
    # pythae ships no MNIST PoincareVAE config: its class defaults on the default MLP.
    "pvae": (
        "pvae:mnist",
        {
            "model.curvature": 1.0,
            "model.pvae_isotropic": False,
            "model.pvae_decoder": "mlp",
            "loss": "gaussian_nll + kl_sample",
        },
        "bce + kl_sample",
        "pythae's class defaults: curvature 1, wrapped normals, diagonal σ, MLP decoder",
    ),
    # The Hamiltonian flows' likelihood is a model field too (their leapfrog steps use it).
    "hvae": ("hvae:mnist", {}, _HAMILTONIAN_BCE, ""),
    "rhvae": ("rhvae:mnist", {}, _HAMILTONIAN_BCE, ""),
    # The disentangling VAEs on pythae's MNIST files. pythae's β-TC-VAE estimates log q(z) by
    # its minibatch-stratified matrix, which as released (the stride of Chen et al.'s code)
    # weights the batch's first example 1/N (in all rows but one) and the others 1/M or
    # about: minibatch-weighted sampling, aejax's estimator, up to a constant (docs/ZOO.md).
    "beta_tc_vae": (
        "vae:mnist",
        {"loss": "0.5*mse + tc_mutual_information + 2*tc_total_correlation + tc_dimwise_kl"},
        "bce + tc_mutual_information + 2*tc_total_correlation + tc_dimwise_kl",
        "α = 1, β = 2, γ = 1; minibatch-weighted sampling (pythae's use_mss matrix, see "
        "docs/ZOO.md)",
    ),
    # C = 30·min(1, epoch / 26), raised once an epoch (600 steps; 500 on binarized MNIST).
    "disentangled_beta_vae": (
        "vae:mnist",
        {
            "loss": "0.5*mse + 5*kl_capacity_example",
            "loss_options": {"kl_capacity_example": _capacity(600)},
        },
        {
            "loss": "bce + 5*kl_capacity_example",
            "loss_options": {"kl_capacity_example": _capacity(500)},
        },
        "β = 5, C = 30 over 25 warm-up epochs, each example's own |KL − C|",
    ),
    # pythae's FactorVAE halves each batch: 50 images for the VAE, the other 50's codes
    # shuffled for the discriminator (16-1000x5-2, leaky relu 0.2); aejax's shuffles the
    # batch's own codes (disentanglement_lib's choice), the discriminator 16-1000x5-1.
    "factor_vae": (
        "disentangle:factor_vae",
        {"model.discriminator_widths": (1000,) * 5, "loss": "0.5*mse + kl_normal + 5*factor_tc"},
        "bce + kl_normal + 5*factor_tc",
        "γ = 5; the VAE's update on the whole batch of 100 (pythae's: 50), the batch's own "
        "codes shuffled",
    ),
    # pythae's Adversarial_AE samples its Gaussian posterior and updates the autoencoder on
    # ½·mse + 0.9·(its BCE on D(z)) and the discriminator from one forward pass; aejax makes
    # the discriminator's update after the autoencoder's, from a second forward pass.
    "aae": (
        "aae:mnist_gaussian",
        {},
        None,
        "Gaussian posterior, discriminator 16-256-1 relu; the discriminator's update follows "
        "the autoencoder's (pythae's: both from one forward pass)",
    ),
    # pythae's default MLP discriminator (784-256-1) on both sides, its hidden layer the
    # features (the file's reconstruction_layer 3 needs pythae's convolutional one).
    "vaegan": (
        "vae_gan:mnist_mlp",
        {},
        None,
        "MLP discriminator 784-256-1, features from its hidden layer (reconstruction_layer 1)",
    ),
}
