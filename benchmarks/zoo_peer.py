"""pythae 0.1.2 beside aejax on MNIST: trains one pythae model and writes the zoo's JSON
and 10,000 samples (the peer of experiments/zoo.py; experiments/zoo_table.py pairs them).

Runs in a venv of its own with PyTorch and pythae; nothing here imports aejax (pythae is
an optional peer, never a requirement: see docs/BENCHMARKS.md, "The zoo beside pythae"):

    python3.11 -m venv /work/pvenv
    /work/pvenv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /work/pvenv/bin/pip install pythae==0.1.2
    /work/pvenv/bin/python benchmarks/zoo_peer.py --model=vae --epochs=1 --out=runs/zoo
    /work/pvenv/bin/python benchmarks/zoo_peer.py --model=vae --epochs=1 --out=runs/zoo --nll

Data: MNIST's IDX files and binarized MNIST's `.amat` from --data_dir (default
$AEJAX_DATA_DIR), read by benchmarks/zoo_schema.py; pythae's own download is not used. All
60,000 training images train (pythae's scripts hold 10,000 out to pick the best epoch;
here the last model is kept, as on aejax's side) and the 10,000 test images are scored.

The model: pythae's default MLP (`pythae.models.nn.default_architectures`, 784-512-latent
and latent-512-784 with a sigmoid), the values of examples/scripts/configs/mnist/
<model>_config.json at tag v0.1.2 (`MODELS` names the file) and base_training_config.json's
Adam at a constant 1e-3, batch 100. pythae's script hands that file to the coupled and
adversarial trainers too, whose own learning rates then stay at their 1e-4 defaults, and
RAE-L2's decoder gets no weight decay; here every optimizer gets 1e-3 and RAE-L2's decoder
weight_decay = reg_weight, as pythae's reproducibility/rae_l2.py sets it.
Departures from the files, to match aejax's side: the importance-weighted bounds (IWAE,
MIWAE, CIWAE, PIWAE) train pythae's "bce", as aejax's are Bernoulli; MIWAE, CIWAE, PIWAE
and P-VAE have no MNIST file (MIWAE, CIWAE and PIWAE take their reproducibility runs'
sample counts, P-VAE its class defaults); VAE-GAN's discriminator is the default MLP
(784-256-1), its hidden layer the features (the file's layer 3 needs the conv one).

Written to --out: `pythae_<model>.json` (benchmarks/zoo_schema.py's keys) and
`pythae_<model>.npy`, [10000, 784] float32 in [0, 1].
- seconds_per_epoch: the median over epochs of pythae's `trainer.train_step` (its data
  loader, forward, backward, optimizer; no evaluation, no progress bar), 2 torch threads
  with OpenMP's passive wait (--omp_wait_policy: the default spins, ruinous on a shared CPU).
- recon_mse_per_pixel (the mean of (x̂ − x)² over test images and pixels) and
  recon_sse_per_image (the mean over images of Σ_pixels (x̂ − x)²), in eval mode: x̂ decodes
  the encoder's mean (pythae's `predict`) where `MEAN_CODE`, else the forward pass's.
- samples: the model's sampler as pythae's benchmarks pair them (`SAMPLERS`).
- --nll (`LIKELIHOOD_MODELS`): a second model with reconstruction_loss "bce" trained on the
  50,000 binarized training images; nll is −`model.get_nll` (importance sampling from
  q(z|x), --nll_k samples) on the first --nll_images binarized test images, in nats.
"""

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from zoo_schema import load, machine, result, write

VERSION = "0.1.2"
CONFIGS = "examples/scripts/configs/mnist"  # in clementchadebec/benchmark_VAE at tag v0.1.2
_NO_CONFIG = "none at v0.1.2: the class defaults, latent_dim 16 as every MNIST config"

# The models of pythae 0.1.2 (pythae.models). name: (model class, trainer, sampler kind, the
# config file (in CONFIGS) or _NO_CONFIG, its values, copied from the file at tag v0.1.2;
# the config class is the model's, `CONFIG_CLASS`). Trainers: pythae's BaseTrainer, the
# coupled one (separate encoder and decoder optimizers), the adversarial ones.
M16 = {"latent_dim": 16, "reconstruction_loss": "mse"}
B16 = {"latent_dim": 16, "reconstruction_loss": "bce"}
_REPRO = (
    "none at v0.1.2: examples/scripts/reproducibility/{}.py's bound and likelihood, "
    "latent_dim 16 as every MNIST config"
)
# fmt: off
MODELS = {
    "ae": ("AE", "base", "gmm", "ae_config.json", {"latent_dim": 16}),
    "vae": ("VAE", "base", "normal", "vae_config.json", M16),
    "beta_vae": ("BetaVAE", "base", "normal", "beta_vae_config.json", M16 | {"beta": 2}),
    # The importance-weighted bounds train "bce" (aejax's are Bernoulli; iwae's file says
    # "mse"); MIWAE, CIWAE and PIWAE have no MNIST file: their reproducibility runs' values.
    "iwae": ("IWAE", "base", "normal", "iwae_config.json",
             B16 | {"number_samples": 5, "beta": 1}),
    "miwae": ("MIWAE", "base", "normal", _REPRO.format("miwae"),
              B16 | {"number_gradient_estimates": 8, "number_samples": 8}),
    "ciwae": ("CIWAE", "base", "normal", _REPRO.format("ciwae"),
              B16 | {"number_samples": 64, "beta": 0.5}),
    "piwae": ("PIWAE", "coupled", "normal", _REPRO.format("piwae"),
              B16 | {"number_gradient_estimates": 8, "number_samples": 8}),
    "wae": ("WAE_MMD", "base", "gmm", "wae_config.json",
            {"latent_dim": 16, "kernel_choice": "imq", "reg_weight": 10,
             "kernel_bandwidth": 1.0}),
    "info_vae": ("INFOVAE_MMD", "base", "normal", "info_vae_config.json",
                 M16 | {"kernel_choice": "imq", "alpha": 0, "lbd": 1000,
                        "kernel_bandwidth": 1.0}),
    "rae_l2": ("RAE_L2", "coupled", "gmm", "rae_l2_config.json",
               {"latent_dim": 16, "embedding_weight": 1e-2, "reg_weight": 1e-4}),
    "rae_gp": ("RAE_GP", "base", "gmm", "rae_gp_config.json",
               {"latent_dim": 16, "embedding_weight": 1e-2, "reg_weight": 1e-4}),
    "vqvae": ("VQVAE", "base", "gmm", "vqvae_config.json",
              {"latent_dim": 16, "commitment_loss_factor": 0.25,
               "quantization_loss_factor": 1, "num_embeddings": 256, "use_ema": True}),
    "vamp": ("VAMP", "base", "vamp", "vamp_config.json", M16 | {"number_components": 50}),
    "vae_lin_nf": ("VAE_LinNF", "base", "normal", "vae_lin_nf_config.json",
                   M16 | {"flows": ["Planar"] * 5}),
    "vae_iaf": ("VAE_IAF", "base", "normal", "vae_iaf_config.json",
                M16 | {"n_made_blocks": 2, "n_hidden_in_made": 2, "hidden_size": 32}),
    "msssim_vae": ("MSSSIM_VAE", "base", "normal", "msssim_vae_config.json",
                   {"latent_dim": 16, "window_size": 3, "beta": 1e-2}),
    "svae": ("SVAE", "base", "hypersphere", "svae_config.json", M16),
    "pvae": ("PoincareVAE", "base", "poincare", _NO_CONFIG, {"latent_dim": 16}),
    "hvae": ("HVAE", "base", "normal", "hvae_config.json",
             M16 | {"n_lf": 3, "eps_lf": 0.001, "beta_zero": 0.3, "learn_eps_lf": False,
                    "learn_beta_zero": False}),
    "rhvae": ("RHVAE", "base", "normal", "rhvae_config.json",
              M16 | {"n_lf": 3, "eps_lf": 0.001, "beta_zero": 0.3, "temperature": 0.8,
                     "regularization": 0.01}),
    # The file's reconstruction_layer 3 is the last hidden layer of pythae's convolutional
    # MNIST discriminator; the default MLP discriminator (784-256-1) has 2 layers (pythae
    # refuses 3), and its hidden layer, 1, is the same role (aejax's vae_gan:mnist_mlp).
    "vaegan": ("VAEGAN", "coupled_adversarial", "normal", "vaegan_config.json",
               M16 | {"adversarial_loss_scale": 0.8, "reconstruction_layer": 1,
                      "margin": 0.4, "equilibrium": 0.68}),
    "aae": ("Adversarial_AE", "adversarial", "normal", "aae_config.json",
            M16 | {"adversarial_loss_scale": 0.9}),
    "beta_tc_vae": ("BetaTCVAE", "base", "normal", "beta_tc_vae_config.json",
                    M16 | {"beta": 2, "gamma": 1, "alpha": 1, "use_mss": True}),
    "disentangled_beta_vae": ("DisentangledBetaVAE", "base", "normal",
                              "disentangled_beta_vae_config.json",
                              M16 | {"beta": 5, "C": 30.0, "warmup_epoch": 25}),
    "factor_vae": ("FactorVAE", "adversarial", "normal", "factor_vae_config.json",
                   M16 | {"gamma": 5}),
}
# fmt: on
CONFIG_CLASS = {
    "Adversarial_AE": "Adversarial_AE_Config",
    "INFOVAE_MMD": "INFOVAE_MMD_Config",
    "WAE_MMD": "WAE_MMD_Config",
    "RAE_L2": "RAE_L2_Config",
    "RAE_GP": "RAE_GP_Config",
    "VAE_LinNF": "VAE_LinNF_Config",
    "VAE_IAF": "VAE_IAF_Config",
    "MSSSIM_VAE": "MSSSIM_VAEConfig",
}
# NEEDS_GRAD: the forward pass (and get_nll) differentiates: the RAE's gradient penalty, the
# Hamiltonian flows' leapfrog steps.
NEEDS_GRAD = frozenset({"rae_gp", "hvae", "rhvae"})
# The models whose training objective bounds a likelihood (an ELBO or IWAE-type bound, maybe
# with a penalty): their NLL means something. msssim_vae, vaegan and aae inherit get_nll but
# are not trained on a likelihood.
LIKELIHOOD_MODELS = frozenset(MODELS) - {
    "ae",
    "wae",
    "rae_l2",
    "rae_gp",
    "vqvae",
    "msssim_vae",
    "vaegan",
    "aae",
}
# The sampler of each kind: pythae's NormalSampler for an N(0, I) prior, the model's own
# prior (VAMP's mixture, the hypersphere's uniform, the Poincaré disk's wrapped normal), a
# 10-component full-covariance GaussianMixtureSampler for the models without a prior.
SAMPLERS = {
    "normal": "NormalSampler",
    "gmm": "GaussianMixtureSampler",
    "vamp": "VAMPSampler",
    "hypersphere": "HypersphereUniformSampler",
    "poincare": "PoincareDiskSampler",
}
# Reconstructed from the decoded encoder mean (pythae's `predict`): the Gaussian encoders and
# the deterministic ones; the others by their forward pass (a VQ code, a flow or a Hamiltonian
# flow after the Gaussian, a hyperspherical or Poincaré posterior).
MEAN_CODE = frozenset(MODELS) - {"vqvae", "vae_lin_nf", "vae_iaf", "svae", "pvae", "hvae", "rhvae"}
# --------------------------------------------------------------------------- pythae (torch)


def build(name: str, binarized: bool = False):
    """The pythae model `name` with its MNIST config and the default MLP; for the binarized
    run, reconstruction_loss "bce"."""
    import pythae.models as pm

    cls, _, _, _, values = MODELS[name]
    cfg_cls = CONFIG_CLASS.get(cls, cls + "Config")
    values = dict(values, input_dim=(1, 28, 28))
    if binarized:
        values["reconstruction_loss"] = "bce"
    return getattr(pm, cls)(model_config=getattr(pm, cfg_cls)(**values))


def trainer_for(
    name: str, model, dataset, epochs: int, out_dir: str, seed: int, lr: float, batch: int
):
    """pythae's trainer for the model, every learning rate `lr`, prepared for train_step."""
    import pythae.trainers as pt
    from pythae.trainers.training_callbacks import ProgressBarCallback

    kind = MODELS[name][1]
    common = dict(
        output_dir=out_dir,
        per_device_train_batch_size=batch,
        per_device_eval_batch_size=batch,
        num_epochs=epochs,
        learning_rate=lr,
        seed=seed,
        no_cuda=True,
    )
    if kind == "base":
        cfg, cls = pt.BaseTrainerConfig(**common), pt.BaseTrainer
    elif kind == "coupled":
        decay = {"weight_decay": MODELS[name][4]["reg_weight"]} if name == "rae_l2" else None
        cfg = pt.CoupledOptimizerTrainerConfig(
            **common,
            encoder_learning_rate=lr,
            decoder_learning_rate=lr,
            decoder_optimizer_params=decay,
        )
        cls = pt.CoupledOptimizerTrainer
    elif kind == "adversarial":
        cfg = pt.AdversarialTrainerConfig(
            **common, autoencoder_learning_rate=lr, discriminator_learning_rate=lr
        )
        cls = pt.AdversarialTrainer
    else:
        cfg = pt.CoupledOptimizerAdversarialTrainerConfig(
            **common,
            encoder_learning_rate=lr,
            decoder_learning_rate=lr,
            discriminator_learning_rate=lr,
        )
        cls = pt.CoupledOptimizerAdversarialTrainer
    trainer = cls(model=model, train_dataset=dataset, training_config=cfg)
    trainer.prepare_training()
    # No progress bar, as aejax's side runs with none: each bar update costs host time.
    handler = trainer.callback_handler
    handler.callbacks = [c for c in handler.callbacks if not isinstance(c, ProgressBarCallback)]
    return trainer


def train(name, train_x, epochs, args, binarized=False):
    """Trains a fresh model; returns (model in eval mode, seconds of each epoch's train_step)."""
    import torch
    from pythae.data.preprocessors import DataProcessor

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model = build(name, binarized)
    dataset = DataProcessor().to_dataset(torch.from_numpy(train_x))
    with tempfile.TemporaryDirectory() as tmp:  # pythae's trainer makes an output folder
        trainer = trainer_for(name, model, dataset, epochs, tmp, args.seed, args.lr, args.batch)
        seconds = []
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            loss = trainer.train_step(epoch)  # adversarial trainers: (loss, its parts)
            seconds.append(time.perf_counter() - t0)
            loss = loss[0] if isinstance(loss, tuple) else loss
            print(
                f"{name} epoch {epoch}: train loss {loss:.4f}, {seconds[-1]:.1f} s", file=sys.stderr
            )
    return trainer.model.eval(), seconds


def reconstruct(name, model, x, batch=500) -> np.ndarray:
    """x̂ [n, 784] of x [n, 1, 28, 28]: the decoded encoder mean for Gaussian encoders
    (pythae's `predict`), else the forward pass's reconstruction, with a fixed seed."""
    import torch
    from pythae.data.datasets import DatasetOutput

    torch.manual_seed(0)
    out = []
    with torch.set_grad_enabled(name in NEEDS_GRAD):
        for i in range(0, len(x), batch):
            b = torch.from_numpy(x[i : i + batch])
            if name in MEAN_CODE:
                r = model.predict(b).recon_x
            else:
                r = model(DatasetOutput(data=b)).recon_x
            out.append(r.detach().reshape(len(b), -1).numpy())
    return np.concatenate(out)


def sample(name, model, train_x, n, seed) -> np.ndarray:
    """n samples [n, 784] float32 in [0, 1] from the model's sampler (`SAMPLERS`)."""
    import pythae.samplers as ps
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)  # scikit-learn's mixture draws from numpy's global generator
    kind = MODELS[name][2]
    if kind == "gmm":
        sampler = ps.GaussianMixtureSampler(model, ps.GaussianMixtureSamplerConfig(n_components=10))
        sampler.fit(torch.from_numpy(train_x))  # its own no_grad, else (RAE-GP) with grads
    else:
        sampler = getattr(ps, SAMPLERS[kind])(model)
    with torch.no_grad():
        x = sampler.sample(num_samples=n, batch_size=500, return_gen=True)
    return np.clip(x.reshape(n, -1).numpy(), 0.0, 1.0).astype(np.float32)


def nll(name, args) -> dict:
    """The binarized run: trains on 50k binarized images, −get_nll on the first test images."""
    import torch

    train_x, test_x = load(args.data_dir, binarized=True)
    train_x = train_x[: args.train_limit or None]
    model, seconds = train(name, train_x, args.nll_epochs or args.epochs, args, binarized=True)
    k, n = args.nll_k, min(args.nll_images, len(test_x))
    batch = k if k <= 1000 else 1000
    if k % batch:
        raise SystemExit(f"--nll_k={k} must be at most 1000 or a multiple of 1000")
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    # get_nll decodes `batch` copies of one image n_samples // batch times.
    with torch.set_grad_enabled(name in NEEDS_GRAD):
        log_px = model.get_nll(torch.from_numpy(test_x[:n]), n_samples=k, batch_size=batch)
    return {
        "value": -float(log_px),
        "k": k,
        "test_images": n,
        "epochs": len(seconds),
        "train_examples": len(train_x),
        "data": "binarized_mnist",
        "likelihood": "bce",
        "seconds": time.perf_counter() - t0,
        "seconds_per_epoch": statistics.median(seconds),
        "estimator": "-pythae get_nll (importance sampling from q(z|x))",
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", required=True, choices=sorted(MODELS))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--out", default="runs/zoo")
    p.add_argument("--data_dir", default=os.environ.get("AEJAX_DATA_DIR", "../shared/data"))
    p.add_argument("--batch", type=int, default=100, help="base_training_config.json's")
    p.add_argument("--lr", type=float, default=1e-3, help="base_training_config.json's")
    p.add_argument("--num_samples", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--omp_wait_policy", default="PASSIVE", help="OpenMP's, set before torch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train_limit", type=int, default=0, help="first N images only (tests)")
    p.add_argument("--test_images", type=int, default=0, help="reconstruct the first N only")
    p.add_argument("--nll", action="store_true", help="also the binarized run and its NLL")
    p.add_argument("--nll_epochs", type=int, default=0, help="default: --epochs")
    p.add_argument("--nll_k", type=int, default=1000)
    p.add_argument("--nll_images", type=int, default=1000)
    args = p.parse_args(argv)
    if args.nll and args.model not in LIKELIHOOD_MODELS:
        raise SystemExit(f"--nll: {args.model} is not trained on a likelihood; no NLL")
    # OpenMP's default (active) wait spins its idle threads: on a CPU shared with other
    # processes, 2 threads took about 1 s a VAE step instead of 14 ms (see docs/BENCHMARKS.md).
    os.environ.setdefault("OMP_WAIT_POLICY", args.omp_wait_policy)
    import pythae
    import torch

    for name in list(logging.root.manager.loggerDict):  # pythae logs every step at INFO
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    train_x, test_x = load(args.data_dir, binarized=False)
    if args.train_limit:
        train_x = train_x[: args.train_limit]
    model, seconds = train(args.model, train_x, args.epochs, args)
    test_x = test_x[: args.test_images or None]  # RHVAE: about 0.1 s an image on 2 cores
    x_hat = reconstruct(args.model, model, test_x)
    sq = (x_hat - test_x.reshape(len(test_x), -1)) ** 2
    samples = sample(args.model, model, train_x[:10_000], args.num_samples, args.seed)
    os.makedirs(args.out, exist_ok=True)
    npy = os.path.join(args.out, f"pythae_{args.model}.npy")
    np.save(npy, samples)
    cls, _, kind, source, values = MODELS[args.model]
    out = result(
        model=args.model,
        library=f"pythae {pythae.__version__ if hasattr(pythae, '__version__') else VERSION}",
        source=f"{CONFIGS}/{source}" if source.endswith(".json") else source,
        hyperparameters={"class": cls, **values},
        epochs=args.epochs,
        batch_size=args.batch,
        learning_rate=args.lr,
        train_examples=len(train_x),
        seconds_per_epoch=statistics.median(seconds),
        steady_seconds_per_epoch=statistics.median(seconds),  # nothing to compile
        epoch_seconds=seconds,
        timing="trainer.train_step per epoch (data loader, forward, backward, optimizer)",
        recon_mse_per_pixel=float(sq.mean()),
        recon_sse_per_image=float(sq.sum(1).mean()),
        recon_code="encoder mean" if args.model in MEAN_CODE else "forward pass (fixed seed)",
        test_images=len(test_x),
        samples=os.path.basename(npy),
        sampler=SAMPLERS[kind] + (" (fitted to 10000 training codes)" if kind == "gmm" else ""),
        nll=nll(args.model, args) if args.nll else None,
        machine=machine(args.threads)
        | {"torch": torch.__version__, "OMP_WAIT_POLICY": os.environ["OMP_WAIT_POLICY"]},
    )
    write(out, os.path.join(args.out, f"pythae_{args.model}.json"))


if __name__ == "__main__":
    main()
