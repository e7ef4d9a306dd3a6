"""Scores generated MNIST digits: Fréchet distance (FD) and improved precision/recall
(k = 3) against the MNIST test set, in the feature space of a small MNIST classifier
(aejax/features.py). Inception weights cannot be fetched here, so these are not the FIDs
of papers: they compare models scored by the same classifier.

    python experiments/zoo_score.py --classifier_dir runs/mnist_classifier \
        --samples runs/vae_samples.npy,runs/pythae_vae_samples.npy [--json scores.json]

Trains the classifier into --classifier_dir first when it holds none (and prints its test
accuracy), else loads it. Each samples file is a .npy array of float images in [0, 1],
[N, 784] or [N, 28, 28, 1]; give 10,000 samples, like the reference, to make the numbers
comparable (the FD is biased upwards at small N). The first row scores MNIST's first
10,000 training images (the floor a perfect generator would reach); --sanity adds 10,000
images of uniform noise and 10,000 copies of the mean training image.

Measured with the classifier of seed 0 (98.92% test accuracy), `--sanity`:

    samples                            N         FD  precision  recall
    mnist train[:10000] (floor)    10000      1.038     0.8675  0.8730
    uniform noise                  10000    451.332     0.0004  0.0000
    mean training image            10000    668.007     0.0000  0.0000

Each row costs about 11 s of CPU time on the 2-core CPU: the features 1.3 s, precision
and recall 9.3 s (10,000 x 10,000 distances three times, float64, 1,000 rows at a time:
under 300 MB), the FD 0.2 s; about 45 s of wall time with the cores shared by about 16
other processes.
"""

import json
import os
import time

import numpy as np
from absl import flags

from aejax import cli, features, generation
from aejax.errors import AejaxError

flags.DEFINE_string(
    "classifier_dir", None, "The classifier (trained here if absent).", required=True
)
flags.DEFINE_list("samples", [], "Generated images: .npy files, comma-separated.")
flags.DEFINE_string("json", "", "Also write the scores to this JSON file.")
flags.DEFINE_string("data_dir", "", "The data folder holding mnist/ (default: $AEJAX_DATA_DIR).")
flags.DEFINE_integer("k", 3, "The neighbour whose distance is each ball's radius (P/R).")
flags.DEFINE_integer("num_reference", 10000, "Test images scored against (and training ones).")
flags.DEFINE_bool("sanity", False, "Add rows for uniform noise and the mean training image.")
flags.DEFINE_integer("classifier_seed", 0, "Training the classifier: its seed.")
flags.DEFINE_integer("classifier_max_train", 0, "Training it: first N images only (0: all).")
flags.DEFINE_integer("classifier_max_steps", 0, "Training it: stop after N steps (0: all).")


def _classifier(f, data):
    """(params, info): loaded from f.classifier_dir, or trained there first."""
    config = features.classifier_config(
        seed=f.classifier_seed,
        max_train=f.classifier_max_train,
        max_steps=f.classifier_max_steps,
    )
    directory = f.classifier_dir
    if os.path.isdir(directory) and os.listdir(directory):
        params, info = features.load(directory)
        if info.get("config") != config:
            raise AejaxError(
                f"--classifier_dir={directory} holds a classifier trained with "
                f"{info.get('config')}, not the {config} asked for: remove it or use another"
            )
        print(f"classifier {directory}: test accuracy {info['test_accuracy']:.4f}")
        return params, info
    print(f"training the classifier into {directory} ...")
    t0 = time.perf_counter()
    params = features.train_classifier(config, data, log=print)
    seconds = time.perf_counter() - t0
    acc = features.accuracy(params, data.test_x, data.test_y)
    features.save(directory, params, config, test_accuracy=acc, train_seconds=round(seconds, 1))
    print(f"classifier trained in {seconds:.0f} s: test accuracy {acc:.4f}")
    return params, {"config": config, "test_accuracy": acc}


def _read_samples(path: str, k: int) -> np.ndarray:
    if not os.path.isfile(path):
        raise AejaxError(f"--samples: {path} does not exist")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise AejaxError(f"--samples: {path} is not a .npy array ({e})") from None
    x = features.as_images(x, f"--samples: {path}")
    if len(x) <= k:
        raise AejaxError(f"--samples: {path} holds {len(x)} images; --k={k} needs more than {k}")
    return x


def main(argv):
    del argv
    f = flags.FLAGS
    if f.k < 1:
        raise AejaxError(f"--k={f.k} must be >= 1")
    if f.num_reference <= f.k or f.num_reference > 10000:
        raise AejaxError(f"--num_reference={f.num_reference} must be in [--k + 1, 10000]")
    samples = {path: _read_samples(path, f.k) for path in f.samples}  # bad files fail first
    data = features.load_mnist(f.data_dir)
    params, info = _classifier(f, data)
    n = f.num_reference
    real = features.features(params, data.test_x[:n])
    rows = {f"mnist train[:{n}] (floor)": data.train_x[:n]}
    if f.sanity:
        rng = np.random.default_rng(0)
        rows["uniform noise"] = rng.uniform(size=(n, 784)).astype(np.float32)
        rows["mean training image"] = np.broadcast_to(data.train_x.mean(0), (n, 28, 28, 1))
    rows.update(samples)
    print(f"against MNIST test[:{n}], k={f.k}:")
    print(f"{'samples':<40} {'N':>6} {'FD':>10} {'precision':>9} {'recall':>7}")
    results = []
    for name, images in rows.items():
        fake = features.features(params, images)
        pr = generation.precision_recall(real, fake, k=f.k)
        fd = generation.frechet_distance(real, fake)
        results.append({"samples": name, "n": len(fake), "fd": fd, **pr})
        print(f"{name:<40} {len(fake):>6} {fd:>10.3f} {pr['precision']:>9.4f} {pr['recall']:>7.4f}")
    if f.json:
        with open(f.json, "w") as out:
            summary = {"classifier_dir": f.classifier_dir, **info}
            json.dump(
                {
                    "classifier": summary,
                    "reference": f"mnist test[:{n}]",
                    "k": f.k,
                    "rows": results,
                },
                out,
                indent=2,
            )
        print(f"wrote {f.json}")


if __name__ == "__main__":
    cli.run(main)
