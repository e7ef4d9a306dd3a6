"""The base experiment config and its validation.

`base_config()` is the one documented base: every field the trainer, the model families
and the data sources read, with its default and a comment. Experiment configs in
`aejax/configs/` start from it and change what they need;
`validate` checks every field before any expensive work, with one clear message per error.
"""

import importlib.util
import json
import math
import os

import ml_collections
from ml_collections import config_dict

from aejax import models
from aejax.errors import ConfigError


def base_config() -> ml_collections.ConfigDict:
    """Every field the trainer reads, with defaults; presets override a few."""
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.source = "digits"  # digits | idx | binarized_mnist | npz | tfds | sprites
    # idx: folder under data_dir (mnist); npz: file (adbench_classical/6_cardio); sprites:
    # dSprites' original file (empty: the re-rendering); the source color_patches: the
    # photos held out for test, comma-separated (empty: china,chelsea; aejax/data/photos.py)
    c.data.name = ""
    c.data.data_dir = os.environ.get("AEJAX_DATA_DIR", "")
    # tfds: the catalog dataset `name` through tfds.data_source (no TensorFlow), these
    # splits; stream=True streams the train split through grain instead of holding it in
    # memory (for datasets larger than memory; MNIST-scale ones are faster in memory).
    c.data.tfds_train_split = "train"
    c.data.tfds_test_split = "test"
    c.data.stream = False
    c.data.max_train = 0  # keep only the first N examples (0: all)
    c.data.max_test = 0
    # npz: the seed of its random 80/20 train/test split; fixed apart from config.seed, so
    # runs with different seeds are scored on the same test rows.
    c.data.split_seed = 0
    # npz: z-score each feature with the train split's mean and std (constant ones only
    # centred). Tabular features differ in scale by orders of magnitude; unscaled, the
    # largest would dominate a squared-error loss.
    c.data.standardize = True
    # npz: the fraction of the rows (of train_classes, if set) that go to train.
    c.data.train_fraction = 0.8
    # Train only on examples of these labels (e.g. (3,) for one-class anomaly detection):
    # sources with a fixed test split (idx, digits, tfds) keep all of it and drop the other
    # classes' training examples; npz sends every row of the other labels to test.
    c.data.train_classes = ()
    # Set this fraction of the training examples aside as a validation split (seeded with
    # split_seed; not trained on), for choices such as thresholds and denoiser settings.
    c.data.valid_fraction = 0.0

    c.model = ml_collections.ConfigDict()
    c.model.name = "mlp"
    c.model.encoder_widths = (128, 64, 16)  # hidden widths, then the code size
    c.model.decoder_widths = config_dict.placeholder(tuple)  # None: mirror the encoder
    c.model.activation = "relu"
    c.model.code_activation = "linear"
    c.model.output_activation = "sigmoid"
    c.model.dropout = 0.0
    c.model.batch_norm = False
    # Kernel initializer of the MLP and conv layers: lecun_normal (flax's default),
    # lecun_uniform, glorot_uniform (Keras' default), glorot_normal, he_normal, he_uniform,
    # torch (PyTorch's: kernels and biases U(±1/√fan_in); the others start biases at 0).
    c.model.kernel_init = "lecun_normal"
    # The fields only some families read (top_k, x_logvar, features, latent_dim, prior, ...),
    # with their defaults from the one table that holds them, aejax.models.FAMILY_FIELDS.
    for name, default in models.FAMILY_FIELDS.items():
        c.model[name] = default

    c.corruption = ml_collections.ConfigDict()
    c.corruption.name = "none"  # none | gaussian | masking | salt_and_pepper | grayscale
    c.corruption.sigma = 0.0  # gaussian: noise standard deviation
    c.corruption.fraction = 0.0  # masking, salt_and_pepper: fraction of entries hit
    c.corruption.clip = False  # gaussian: clip the noisy input to [0, 1]

    c.loss = "mse"  # a recipe: terms joined by '+', e.g. "bce + 0.5*kl_normal"
    c.loss_options = ml_collections.ConfigDict()  # term -> its options, e.g. kl_sparsity.rho
    # The parameters config.loss updates, a path such as "autoencoder" (empty: every one);
    # its optimizer state covers only these.
    c.loss_params = ""
    # Further updates of each step, in order, after the one of config.loss: "recipe @
    # params/path", each with its own optimizer state. The adversarial AE's:
    # ("adv_discriminator @ discriminator", "adv_generator @ autoencoder/encoder").
    c.extra_phases = ()

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = "adam"  # adam | adamw | sgd | rmsprop | adadelta
    c.optimizer.learning_rate = 1e-3
    c.optimizer.schedule = "cosine"  # cosine | constant
    c.optimizer.warmup_steps = 0
    c.optimizer.end_lr_fraction = 0.01  # cosine ends at this fraction of the peak rate
    c.optimizer.weight_decay = 1e-4  # adamw only
    c.optimizer.momentum = 0.9  # sgd only
    c.optimizer.eps = 1e-8  # adam, adamw, rmsprop, adadelta: the ε of the denominator
    c.optimizer.rho = 0.9  # rmsprop: decay of the squared-gradient average; adadelta: ρ
    c.optimizer.clip_norm = 0.0  # global-norm clipping (0: off)

    c.batch_size = 128
    c.num_epochs = 10
    c.num_steps = 0  # if > 0, train this many steps instead of num_epochs
    c.eval_every_steps = 0  # 0: once per epoch
    c.eval_batch_size = 1000
    c.log_every_steps = 50
    c.checkpoint_every_steps = 0  # 0: once per epoch
    c.keep_checkpoints = 3
    c.steps_per_dispatch = 1  # steps run in one compiled call (lax.scan)
    c.progress_bar = True
    c.parallelism = "jit"  # jit (a 1-D data mesh) | pmap: same results (batch-level terms: jit)
    # CPU performance (aejax/perf.py): convolutions through "eigen" (measured faster on CPU)
    # or "xla" (XLA's default, YNNPACK); glibc keeps large freed buffers for reuse.
    c.cpu_convolutions = "eigen"
    c.keep_freed_host_memory = True
    c.num_devices = 0  # 0: all devices of all processes
    c.distributed = ml_collections.ConfigDict()  # many hosts: jax.distributed.initialize
    c.distributed.enabled = False
    c.distributed.coordinator_address = ""  # empty: let JAX detect the cluster
    c.distributed.num_processes = 1
    c.distributed.process_id = 0
    c.distributed.cpu_collectives = False  # CPU devices across processes (gloo), for tests
    c.distributed.timeout_s = 300  # how long to wait for the coordinator and the others
    c.on_nonfinite = "stop"  # stop | skip: what a NaN/Inf loss or gradient does
    c.skip_limit = 20  # skip: stop once more than this many steps in a row were skipped
    return c


def digits_schedule(config: ml_collections.ConfigDict, learning_rate: float = 3e-3) -> None:
    """The presets' schedule on the embedded digits (22 steps an epoch at batch 64): 100
    epochs, a checkpoint every 10, a log and a dispatch of 22 scanned steps per epoch."""
    config.batch_size = 64
    config.num_epochs = 100
    config.optimizer.learning_rate = learning_rate
    config.checkpoint_every_steps = 220
    config.log_every_steps = 22
    config.steps_per_dispatch = 22


def mnist_schedule(config: ml_collections.ConfigDict, num_epochs: int, name="mnist") -> None:
    """The presets' MNIST-format data (IDX files in data_dir/name) and schedule: batch 128
    (468 steps an epoch), 12 logs per epoch, 39 scanned steps per dispatch."""
    config.data.source = "idx"
    config.data.name = name
    config.batch_size = 128
    config.num_epochs = num_epochs
    config.log_every_steps = 39
    config.steps_per_dispatch = 39


def check_number(
    value,
    where: str,
    *,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
):
    """Returns `value` if it is a finite number (an integer when `integer`) within the
    bounds; ConfigError naming `where` and the range otherwise. Booleans are not numbers."""
    kind = "an integer" if integer else "a finite number"
    ok_type = int if integer else (int, float)
    if low is not None and high is not None:
        what = f"{kind} in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        what = f"{kind} {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        what = f"{kind} {'<' if high_open else '<='} {high:g}"
    else:
        what = kind
    if isinstance(value, bool) or not isinstance(value, ok_type) or not math.isfinite(value):
        raise ConfigError(f"{where}={value!r} must be {what}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ConfigError(f"{where}={value!r} must be {what}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ConfigError(f"{where}={value!r} must be {what}")
    return value


def _positive_int(config, field: str):
    check_number(config[field], f"config.{field}", integer=True, low=1)


def validate(config: ml_collections.ConfigDict) -> None:
    """Checks values the registries do not: sizes, rates, choices. Raises ConfigError.

    Names (model, loss terms, corruption, data source, activations) are checked where they are
    looked up, which also happens before any training work.
    """
    for field in (
        "batch_size",
        "eval_batch_size",
        "log_every_steps",
        "keep_checkpoints",
        "steps_per_dispatch",
        "skip_limit",
    ):
        _positive_int(config, field)
    seed = config.seed
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        # numpy's generators (the batch order) refuse negative seeds, and JAX's keys keep
        # only 32 bits: 2**32 would give the same draws as 0.
        raise ConfigError(f"config.seed={seed!r} must be an integer in [0, 2**32)")
    for field in ("num_epochs", "num_steps", "eval_every_steps", "checkpoint_every_steps"):
        check_number(config[field], f"config.{field}", integer=True, low=0)
    if config.num_epochs == 0 and config.num_steps == 0:
        raise ConfigError("config.num_epochs and config.num_steps are both 0: nothing to train")
    opt = config.optimizer
    where = "config.optimizer."
    check_number(opt.learning_rate, where + "learning_rate", low=0, low_open=True)
    check_number(opt.warmup_steps, where + "warmup_steps", integer=True, low=0)
    check_number(opt.end_lr_fraction, where + "end_lr_fraction", low=0, high=1)
    check_number(opt.weight_decay, where + "weight_decay", low=0)
    check_number(opt.momentum, where + "momentum", low=0, high=1, high_open=True)
    check_number(opt.clip_norm, where + "clip_norm", low=0)
    check_number(opt.eps, where + "eps", low=0, low_open=True)
    check_number(opt.rho, where + "rho", low=0, high=1, high_open=True)
    check_number(config.corruption.sigma, "config.corruption.sigma", low=0)
    check_number(config.corruption.fraction, "config.corruption.fraction", low=0, high=1)
    check_number(config.model.dropout, "config.model.dropout", low=0, high=1, high_open=True)
    if not isinstance(config.corruption.clip, bool):
        raise ConfigError(
            f"config.corruption.clip={config.corruption.clip!r} must be true or false"
        )
    for field in ("max_train", "max_test"):
        check_number(config.data[field], f"config.data.{field}", integer=True, low=0)
    if config.on_nonfinite not in ("stop", "skip"):
        raise ConfigError(
            f"config.on_nonfinite={config.on_nonfinite!r} is not known; valid: skip, stop"
        )
    if config.cpu_convolutions not in ("eigen", "xla"):
        raise ConfigError(
            f"config.cpu_convolutions={config.cpu_convolutions!r} is not known; valid: eigen, xla"
        )


def to_json(config: ml_collections.ConfigDict) -> str:
    """The resolved config as JSON (tuples become lists)."""
    return json.dumps(config.to_dict(), indent=2, sort_keys=True)


def from_json(text: str) -> ml_collections.ConfigDict:
    """Rebuilds a ConfigDict saved by `to_json`, on top of the base config's defaults.

    Raises ValueError (one line) for text that is not a JSON object of config fields.
    """
    try:
        saved = json.loads(text)
    except ValueError as e:
        raise ValueError(f"not valid JSON ({e})") from None
    if not isinstance(saved, dict):
        kinds = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
        kind = "null" if saved is None else kinds.get(type(saved), type(saved).__name__)
        raise ValueError(f"a JSON {kind}, not an object of config fields")
    config = base_config()
    config.unlock()
    try:
        config.update(saved)
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"its fields do not fit the config ({first})") from None
    return config


def load_config(spec: str) -> ml_collections.ConfigDict:
    """The config of "name:preset" or "file.py:preset": a bundled config of aejax/configs/
    when named bare ("vae", "vae.py"), else a path (the preset passed to its get_config;
    without one, get_config's default). Bare names look among the bundled configs first, so
    that a script of the same name in the working directory (experiments/results.py) is
    never run as a config."""
    from aejax import configs

    path, _, preset = spec.partition(":")
    path = configs.path(path) or path
    if not os.path.isfile(path):
        raise ConfigError(f"config file {spec.partition(':')[0]!r} does not exist")
    module_spec = importlib.util.spec_from_file_location("aejax_loaded_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not callable(getattr(module, "get_config", None)):
        raise ConfigError(f"config file {path} has no get_config() function")
    config = module.get_config(preset) if preset else module.get_config()
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(
            f"get_config() of {path} returned a {type(config).__name__}, not an "
            "ml_collections.ConfigDict (start from aejax.config.base_config())"
        )
    return config
