"""VQ-VAE (van den Oord et al., 2017, "Neural Discrete Representation Learning").

The encoder's code vectors are replaced by their nearest of K codebook vectors, with the
straight-through gradient (aejax/models/vq.py); the loss is the recipe
"mse + vq_codebook + 0.25*vq_commitment" (aejax/losses/vq.py), and "0*vq_perplexity +
0*vq_usage" log the codebook's perplexity and the fraction of its codes in use, each batch
(train/..., test/...). With the EMA codebook (`model.codebook_ema=True`, model state
checkpointed with the parameters) the codebook term is dropped. Defaults are pythae's:
K = 512, β = 0.25, EMA decay 0.99 (and Laplace smoothing ε = 1e-5, Sonnet's).
The report's compression section counts a VQ code as indices: log2(K) bits per code vector.

Presets (the part after the colon). The numbers are test-split means of one run each
(seed 0) on a 2-core CPU (AMD EPYC) shared with other jobs, so the wall times (start-up,
compilation and evaluation included) vary from run to run; test/vq_perplexity is
per evaluation batch of up to 1000 (of 512 possible), test/vq_usage the fraction of the codes a
batch uses.

- `digits` (default): 8x8 digits, MLP 64-128-16 whose 16-d code is cut into 4 code
  vectors of 4 (4 x 9 = 36 bits an image), the mirrored decoder, K = 512,
  mse + vq_codebook + 0.25*vq_commitment, 100 epochs.
    aejax train vq_vae --workdir runs/vq_digits
  Expected: test/sq_err_per_image 0.900, test/vq_perplexity 96.9, test/vq_usage 0.219;
  about 10 s on a 2-core CPU.
- `digits_ema`: `digits` with the EMA codebook, mse + 0.25*vq_commitment.
  Expected: test/sq_err_per_image 0.646, test/vq_perplexity 338, test/vq_usage 0.850;
  about 10 s.
- `conv`: 8x8 digits, Conv 16, pool, Conv 32, pool: a 2x2 map of 32-d code vectors (36
  bits), each quantized; the mirrored decoder; the `digits` recipe and schedule.
  Expected: test/sq_err_per_image 1.73, test/vq_perplexity 22.9, test/vq_usage 0.051;
  about 22 s.
- `mnist`: pythae's default MLP VQ-VAE: 784-512-16 and its mirror, one 16-d code vector
  per image (9 bits), K = 512, β = 0.25; batch 128, Adam 1e-3 with a cosine schedule, 10
  epochs. Needs $AEJAX_DATA_DIR/mnist.
    aejax train vq_vae:mnist --workdir runs/vq_mnist
  Expected: test/sq_err_per_image 39.5, test/vq_perplexity 12.7, test/vq_usage 0.030;
  171 s. The codebook, initialized in [-1/K, 1/K] as pythae's, mostly goes unused: few
  codes are ever nearest, and only chosen codes move. Report (compression): 9 bits an
  image, 3.84 entropy-coded.
- `mnist_ema`: `mnist` with the EMA codebook (decay 0.99), mse + 0.25*vq_commitment.
    aejax train vq_vae:mnist_ema --workdir runs/vq_mnist_ema
  Expected: test/sq_err_per_image 25.0, test/vq_perplexity 212, test/vq_usage 0.548; 64 s
  (another job shared the CPU). Report (compression): 9 bits an image, 8.37 entropy-coded.
"""

from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

PRESETS = ("digits", "digits_ema", "conv", "mnist", "mnist_ema")
DIAGNOSTICS = " + 0*vq_perplexity + 0*vq_usage"  # logged, weight 0: no gradient


def get_config(arg: str = "digits"):
    if arg not in PRESETS:
        raise unknown_preset("vq_vae", arg, PRESETS)
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
