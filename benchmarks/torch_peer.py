"""The PyTorch peer of the benchmark: the same architecture, batch and optimizer written in
plain PyTorch (`torch_peer`), timed like the bare step (`measure_torch`), eager and under
`torch.compile`, in a process of its own (`runner.run_isolated`) that never starts a JAX
backend. Float32 matrix products and convolutions are computed at the precision set for
JAX in that process (`timing.MATMUL_PRECISIONS`).
"""

import math
import sys
import time

import jax

from measure import variant_config
from timing import MATMUL_PRECISIONS, cpus, peak_memory, summarize, time_windows

# --------------------------------------------------------------------------- PyTorch peer


def torch_peer(config, example_shape, device: str = "cpu"):
    """The variant in plain PyTorch on `device`: (model, loss of (model output, x),
    optimizer, input shape), or None where there is no peer. Written out: MLP and conv
    autoencoders with a plain mse or bce loss, and MLP and conv VAEs (latent vector) with
    "bce + β*kl_normal", one latent sample per example; no corruption, dropout, batch norm
    or top-k code.

    The same layers, initialization aside; Adam (or the config's optimizer) at a constant
    learning rate (the JAX step follows a cosine schedule, a few scalar operations).
    """
    import torch
    from torch import nn

    from aejax import losses
    from aejax.models.conv import code_spatial_shape

    m = config.model
    weights = losses.parse_recipe(config.loss)
    vae = m.name in ("vae", "conv_vae")
    if vae:
        recipe_ok = set(weights) == {"bce", "kl_normal"} and m.get("x_logvar", "none") == "none"
        recipe_ok &= m.get("num_samples", 1) == 1
    else:
        recipe_ok = weights in ({"mse": 1.0}, {"bce": 1.0})
    plain = (
        recipe_ok
        and config.corruption.name == "none"
        and not config.extra_phases
        and not m.get("dropout", 0.0)
        and not m.get("batch_norm", False)
        and not m.get("top_k", 0)
    )
    acts = {
        "linear": nn.Identity,
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(0.01),
        "elu": nn.ELU,
        "gelu": nn.GELU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "softplus": nn.Softplus,
    }
    if not plain or any(m[f] not in acts for f in ("activation", "code_activation")):
        return None
    act, code_act = acts[m.activation], acts[m.code_activation]
    d = math.prod(example_shape)
    if m.name in ("mlp", "vae"):
        enc = tuple(m.encoder_widths)
        dec = tuple(reversed(enc[:-1])) if m.decoder_widths is None else tuple(m.decoder_widths)
        out = (*enc[:-1], 2 * enc[-1]) if vae else enc  # a VAE's means and log-variances
        encoder, width = [nn.Flatten()], d
        for i, w in enumerate(out):
            encoder += [nn.Linear(width, w), act() if i < len(out) - 1 else code_act()]
            width = w
        decoder, width = [], enc[-1]
        for w in dec:
            decoder += [nn.Linear(width, w), act()]
            width = w
        decoder.append(nn.Linear(width, d))
        shape = (d,)
    elif m.name in ("conv", "conv_vae") and (m.get("latent_dim", 0) > 0) == vae:

        class Crop(nn.Module):
            """[B, C, H', W'] -> [B, C, h, w]: the decoder's overshoot cropped off."""

            def forward(self, x):
                return x[:, :, : example_shape[0], : example_shape[1]]

        c = example_shape[2]
        k = m.get("kernel_size", 3)
        features = tuple(m.features)
        encoder, ch = [], c
        for i, f in enumerate(features):
            encoder.append(nn.Conv2d(ch, f, k, padding=k // 2))
            if i < len(features) - 1 or vae:
                encoder.append(act())
            encoder.append(nn.MaxPool2d(2, ceil_mode=True))  # SAME pooling
            ch = f
        decoder = []
        if vae:  # a dense bottleneck to the means and log-variances, and back
            h, w = code_spatial_shape(example_shape, len(features))
            encoder += [nn.Flatten(), nn.Linear(h * w * ch, 2 * m.latent_dim)]
            decoder += [nn.Linear(m.latent_dim, h * w * ch), act(), nn.Unflatten(1, (ch, h, w))]
        else:
            encoder.append(code_act())
        for f in reversed(features[:-1]):
            decoder += [nn.Upsample(scale_factor=2), nn.ConvTranspose2d(ch, f, k, padding=k // 2)]
            decoder.append(act())
            ch = f
        decoder += [nn.Upsample(scale_factor=2), nn.ConvTranspose2d(ch, c, k, padding=k // 2)]
        decoder.append(Crop())
        shape = (c, *example_shape[:2])
    else:
        return None
    per_image = lambda v: v.flatten(1).sum(1)

    if vae:

        class VAE(nn.Module):
            """x -> (logits, mean, logvar), z = mean + exp(logvar / 2) * eps."""

            def __init__(self):
                super().__init__()
                self.encoder, self.decoder = nn.Sequential(*encoder), nn.Sequential(*decoder)

            def forward(self, x):
                mean, logvar = self.encoder(x).chunk(2, dim=1)
                z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
                return self.decoder(z), mean, logvar

        model = VAE()

        def loss_fn(out, x):
            logits, mean, logvar = out
            bce = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
            kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)
            return (weights["bce"] * per_image(bce) + weights["kl_normal"] * per_image(kl)).mean()
    else:
        model = nn.Sequential(*encoder, *decoder)
        if "mse" in weights:

            def loss_fn(logits, x):
                return per_image((torch.sigmoid(logits) - x).square()).mean()
        else:

            def loss_fn(logits, x):
                bce = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
                return per_image(bce).mean()

    model = model.to(device)
    lr = float(config.optimizer.learning_rate)
    o = config.optimizer
    if o.name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    elif o.name == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=o.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=o.momentum)
    return model, loss_fn, opt, shape


def measure_torch(
    name: str,
    mode: str,
    batch_size: int = 0,
    windows: int = 5,
    window_s: float = 1.0,
    threads: int = 0,
) -> dict:
    """Times the PyTorch peer of a variant, `mode` "eager" or "compile" (`torch.compile` of
    the whole step: forward, loss, backward, optimizer), like `bare_step`, with `threads`
    intra-op threads (0: one per CPU)."""
    import torch

    from aejax import perf

    out_alloc = perf.keep_freed_host_memory()  # the same allocator settings as JAX's runs
    config = variant_config(name, batch_size)
    example_shape = (28, 28, 1)  # the MNIST presets
    out = {"variant": name, "framework": "torch", "mode": mode, "torch": torch.__version__}
    out["keep_freed_host_memory"] = out_alloc
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out["device"] = device
    peer = torch_peer(config, example_shape, device)
    if peer is None:
        return {**out, "skipped": "no PyTorch peer for this variant"}
    model, loss_fn, opt, shape = peer
    precision = jax.config.jax_default_matmul_precision or "float32"
    if device == "cuda":  # CPU float32 products are full float32 in either setting
        if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # PyTorch >= 2.9
            torch.backends.cuda.matmul.fp32_precision = MATMUL_PRECISIONS[precision]
            torch.backends.cudnn.conv.fp32_precision = MATMUL_PRECISIONS[precision]
        else:
            tf32 = MATMUL_PRECISIONS[precision] == "tf32"
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    torch.set_num_threads(threads or cpus())
    out["threads"] = torch.get_num_threads()
    out["params"] = sum(p.numel() for p in model.parameters())
    torch.manual_seed(0)
    x = torch.rand(config.batch_size, *shape, device=device)

    def step(x):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), x)
        loss.backward()
        opt.step()
        return loss.detach()

    fn = torch.compile(step) if mode == "compile" else step
    t0 = time.perf_counter()
    fn(x).item()
    out["compile_s"] = time.perf_counter() - t0  # eager: the first step

    def run(n):
        for _ in range(n):
            loss = fn(x)
        loss.item()  # waits for the steps (on a GPU too)

    out.update(summarize(time_windows(run, windows, window_s), config.batch_size))
    out.update(peak_memory(jax_device=False))
    if device == "cuda":
        out["peak_device_mb"] = torch.cuda.max_memory_allocated() / 2**20
    # JAX never started a backend here: on a GPU it would have claimed most of the memory.
    out["jax_started"] = backends_started()
    return out


def backends_started() -> bool:
    """Whether JAX has started its backends (on a GPU it then holds its memory pool)."""
    if "jax" not in sys.modules:
        return False
    from jax._src import xla_bridge  # no public API tells

    return xla_bridge.backends_are_initialized()
