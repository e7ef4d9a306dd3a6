"""Colour patches cut from the real photographs that ship inside scikit-learn and
scikit-image: offline colour data for colorization.

Seven photographs (no synthetic images): scikit-learn's `china` (a temple among trees,
427x640) and `flower` (427x640, `sklearn.datasets.load_sample_images`), and
scikit-image's `astronaut` (512x512), `coffee` (400x600), `chelsea` (a cat, 300x451),
`rocket` (427x640) and `motorcycle` (the left view of `stereo_motorcycle`, 500x741).
scikit-image's microscopy, retina and Hubble images are left out: not photographs of
everyday scenes.

The data source "color_patches" (`config.data.source`) cuts 32x32 RGB patches at random
positions (uniform, overlapping; drawn from `config.data.split_seed`) from whole photos:
the training patches from some photos and the test patches from the others (the held-out
photos are `config.data.name`, comma-separated; empty: `DEFAULT_TEST`), so test patches
come from photos the model never saw. A validation split is carved from the training
patches by `config.data.valid_fraction`. Labels are the photo's index in `PHOTOS`.
"""

import functools

import numpy as np

from aejax.data.sources import Dataset, check_split_seed
from aejax.errors import ConfigError, DataError, import_extra
from aejax.registry import did_you_mean

PATCH = 32
# name -> (package, loader name): scikit-learn's sample images or a scikit-image datum.
PHOTOS = {
    "china": ("sklearn", "china.jpg"),
    "flower": ("sklearn", "flower.jpg"),
    "astronaut": ("skimage", "astronaut"),
    "coffee": ("skimage", "coffee"),
    "chelsea": ("skimage", "chelsea"),
    "rocket": ("skimage", "rocket"),
    "motorcycle": ("skimage", "stereo_motorcycle"),
}
# The held-out photos when config.data.name is empty: one of each package, fixed before
# any result was seen.
DEFAULT_TEST = ("china", "chelsea")
# Patches per training / test photo when config.data.max_train / max_test are 0.
TRAIN_PER_PHOTO, TEST_PER_PHOTO = 2_000, 500


@functools.cache  # a run loads its data again to evaluate; decoding takes a second
def load_photo(name: str) -> np.ndarray:
    """The photograph `name` (a key of PHOTOS) as float32 [H, W, 3] in [0, 1], read-only
    (cached).

    scikit-image's photos need scikit-image (the `results` or `test` extra).
    """
    if name not in PHOTOS:
        raise ConfigError(
            f"unknown photo {name!r}; valid: {', '.join(PHOTOS)}{did_you_mean(name, list(PHOTOS))}"
        )
    package, key = PHOTOS[name]
    if package == "sklearn":
        from sklearn.datasets import load_sample_image

        image = load_sample_image(key)
    else:
        skimage_data = import_extra("skimage", "results", f"the photo {name!r}")
        image = getattr(skimage_data.data, key)()
        if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
            image = image[0]
    image = np.asarray(image, np.float32)[..., :3] / np.float32(255)
    image.flags.writeable = False
    return image


def held_out_photos(name: str) -> tuple[str, ...]:
    """The held-out photos named by `config.data.name` ("chelsea,china"; empty: DEFAULT_TEST),
    checked: known, distinct, and leaving at least one photo to train on."""
    if not isinstance(name, str):
        raise ConfigError(f"config.data.name={name!r} must be a string such as 'china,chelsea'")
    names = tuple(n.strip() for n in name.split(",")) if name.strip() else DEFAULT_TEST
    for n in names:
        if n not in PHOTOS:
            raise ConfigError(
                f"config.data.name={name!r}: unknown photo {n!r}; valid: {', '.join(PHOTOS)}"
                f"{did_you_mean(n, list(PHOTOS))}"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"config.data.name={name!r} names a photo twice")
    if len(names) == len(PHOTOS):
        raise ConfigError(
            f"config.data.name={name!r} holds out every photo, leaving none to train on"
        )
    return names


def random_patches(image: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n PATCHxPATCH crops of image [H, W, C] at uniform random top-left corners:
    [n, PATCH, PATCH, C]."""
    h, w = image.shape[:2]
    if h < PATCH or w < PATCH:
        raise DataError(f"an image of {h}x{w} pixels is smaller than one {PATCH}x{PATCH} patch")
    top = rng.integers(0, h - PATCH + 1, n)
    left = rng.integers(0, w - PATCH + 1, n)
    rows = top[:, None] + np.arange(PATCH)  # [n, PATCH]
    cols = left[:, None] + np.arange(PATCH)
    return image[rows[:, :, None], cols[:, None, :]]


def _split(photos: tuple[str, ...], total: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`total` patches spread evenly over `photos` (the first get one more when it does not
    divide), each photo's positions drawn from (seed, its index in PHOTOS); then shuffled
    with the seed so that a prefix mixes the photos. (x [total, 32, 32, 3], y [total])."""
    index = {n: i for i, n in enumerate(PHOTOS)}
    counts = [total // len(photos) + (i < total % len(photos)) for i in range(len(photos))]
    xs, ys = [], []
    for name, n in zip(photos, counts, strict=True):
        rng = np.random.default_rng([seed, index[name]])
        xs.append(random_patches(load_photo(name), n, rng))
        ys.append(np.full(n, index[name], np.int32))
    x, y = np.concatenate(xs), np.concatenate(ys)
    order = np.random.default_rng([seed, len(PHOTOS)]).permutation(len(x))
    return x[order], y[order]


def load_color_patches(cfg) -> Dataset:
    """32x32 RGB patches of seven shipped photos; the test split's from held-out photos.

    `config.data` for source "color_patches"; values in [0, 1].

    Fields read: name (the held-out photos, see `held_out_photos`), split_seed (the patch
    positions), max_train and max_test (patches in all; 0: TRAIN_PER_PHOTO per training
    photo and TEST_PER_PHOTO per held-out photo).
    Returns:
      Dataset: train_x float32 [N, 32, 32, 3] from the training photos, test_x from the
      held-out ones; labels the photo's index in PHOTOS.
    """
    check_split_seed(cfg.split_seed)
    held_out = held_out_photos(cfg.name)
    train = tuple(n for n in PHOTOS if n not in held_out)
    n_train = cfg.max_train or TRAIN_PER_PHOTO * len(train)
    n_test = cfg.max_test or TEST_PER_PHOTO * len(held_out)
    train_x, train_y = _split(train, n_train, cfg.split_seed)
    test_x, test_y = _split(held_out, n_test, cfg.split_seed)
    name = f"color_patches (train: {', '.join(train)}; test: {', '.join(held_out)})"
    return Dataset(train_x, train_y, test_x, test_y, name)
