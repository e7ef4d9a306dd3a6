"""VQ-VAE (van den Oord et al., 2017, "Neural Discrete Representation Learning").

The encoder's code vectors are replaced by their nearest of K codebook vectors, with the
straight-through gradient (aejax/models/vq.py); the loss is the recipe
"mse + vq_codebook + 0.25*vq_commitment" (aejax/losses/vq.py), and "0*vq_perplexity +
0*vq_usage" log the codebook's perplexity and the fraction of its codes in use, each batch
(train/..., test/...). With the EMA codebook (`model.codebook_ema=True`, model state
checkpointed with the parameters) the codebook term is dropped. Defaults are pythae's:
K = 512, β = 0.25, EMA decay 0.99 (and Laplace smoothing ε = 1e-5, Sonnet's).
The report's compression section counts a VQ code as indices: log2(K) bits per code vector.

Presets (the part after the colon):

- `digits` (default): 8x8 digits, MLP 64-128-(16: 4 code vectors of 4) and its mirror,
  K = 512, mse + vq_codebook + 0.25*vq_commitment, 100 epochs.
    python experiments/train.py --config configs/vq_vae.py --workdir runs/vq_digits
- `digits_ema`: `digits` with the EMA codebook, mse + 0.25*vq_commitment.
- `conv`: 8x8 digits, Conv 16, pool, Conv 32, pool: a 2x2 map of 32-d code vectors, each
  quantized; the mirrored decoder.
- `mnist`: pythae's default MLP VQ-VAE: 784-512-16 and its mirror, one 16-d code vector
  per image (9 bits), K = 512, 10 epochs. Needs $AEJAX_DATA_DIR/mnist.
    python experiments/train.py --config configs/vq_vae.py:mnist --workdir runs/vq_mnist
- `mnist_ema`: `mnist` with the EMA codebook.
"""

from aejax.config import base_config, digits_schedule, mnist_schedule

PRESETS = ("digits", "digits_ema", "conv", "mnist", "mnist_ema")
DIAGNOSTICS = " + 0*vq_perplexity + 0*vq_usage"  # logged, weight 0: no gradient


def get_config(arg: str = "digits"):
    if arg not in PRESETS:
        raise ValueError(f"configs/vq_vae.py: unknown preset {arg!r}; valid: {', '.join(PRESETS)}")
    config = base_config()
    config.model.name = "vq_vae"
    config.model.num_embeddings = 512  # K
    config.model.code_groups = 1  # code vectors the code's last axis is cut into
    config.model.codebook_ema = arg.endswith("_ema")
    config.model.ema_decay = 0.99
    config.model.ema_epsilon = 1e-5
    if config.model.codebook_ema:
        config.loss = "mse + 0.25*vq_commitment" + DIAGNOSTICS
    else:
        config.loss = "mse + vq_codebook + 0.25*vq_commitment" + DIAGNOSTICS
    if arg.startswith("digits"):
        config.model.encoder_widths = (128, 16)
        config.model.code_groups = 4
        digits_schedule(config)
    elif arg == "conv":
        config.model.name = "conv_vq_vae"
        config.model.features = (16, 32)
        config.model.latent_dim = 0  # quantize each position of the 2x2x32 feature map
        digits_schedule(config)
    else:
        mnist_schedule(config, 10)
        config.model.encoder_widths = (512, 16)
    return config
