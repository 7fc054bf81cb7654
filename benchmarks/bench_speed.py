"""Time the core DAE's training on every installed Keras backend, the plain recipe against the lab's settings.

Each run trains the core denoising autoencoder (784-32-784, adam, binary cross-entropy, batch 128,
shuffled, validated on 10,000 noisy test images) on the same noisy Fashion-MNIST samples from the
same seed, in a fresh subprocess per backend and recipe (a backend must be chosen before Keras is
imported): "plain" is the original lab's compile("adam", "binary_crossentropy") with the backend's
own defaults, "lab" is helpers.compile_autoencoder with helpers.compile_options(). Runs go round
robin over backends and recipes, the order turned each repeat, so background load hits all alike.
Prints the median seconds per epoch (the first epoch, which includes tracing and compiling, is
reported apart), each against the plain TensorFlow recipe, and the bound: the model's arithmetic at
this machine's measured float32 matrix-multiply rate.

    .venv/bin/python benchmarks/bench_speed.py [--epochs 5] [--repeats 3] [--samples 60000] [--backends jax torch]
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}  # Keras backend -> the package it needs
LAYERS = ((784, 32), (32, 784))  # the core DAE's dense layers (inputs, outputs)
VALIDATION_SAMPLES = 10000


def installed_backends():
    """The Keras backends whose packages are installed here, TensorFlow first."""
    return [name for name, package in BACKENDS.items() if importlib.util.find_spec(package) is not None]


def epoch_flop(samples, layers=LAYERS, validation=VALIDATION_SAMPLES):
    """Floating-point operations of one epoch's matrix multiplies: forward and backward on samples, forward on validation.

    A dense layer costs 2 * inputs * outputs per image forward, as much again for its weights'
    gradient, and once more for its input's gradient in every layer but the first.
    """
    forward = sum(2 * n_in * n_out for n_in, n_out in layers)
    backward = sum((2 if i else 1) * 2 * n_in * n_out for i, (n_in, n_out) in enumerate(layers))
    return samples * (forward + backward) + validation * forward


def matmul_rate(size=1024, repeats=7):
    """This machine's float32 matrix-multiply rate in FLOP/s (numpy, median of repeats, all cores)."""
    a, b = np.random.default_rng(0).random((2, size, size), dtype="float32")
    a @ b  # warm up the BLAS threads
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        seconds.append(time.perf_counter() - start)
    return 2 * size**3 / np.median(seconds)


def run_worker(backend, recipe, args):
    """Train once in a fresh process on backend; return its result dict (seconds per epoch, val losses, settings)."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [
        sys.executable,
        __file__,
        "--worker",
        recipe,
        "--epochs",
        str(args.epochs),
        "--samples",
        str(args.samples),
        "--seed",
        str(args.seed),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"{backend} {recipe} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def train_once(recipe, epochs, samples, seed):
    """In this process's backend: build the core DAE from seed, compile it by recipe and train; return a result dict."""
    sys.path.insert(0, str(ROOT))
    import helpers  # first: it imports Keras for the backend in KERAS_BACKEND

    import keras

    import levelup

    (train_images, _), (test_images, _) = helpers.load_dataset()
    rng = np.random.default_rng(seed)
    x_train, x_test = helpers.prepare_images(train_images[:samples]), helpers.prepare_images(test_images)
    x_noisy, x_test_noisy = (
        helpers.add_noise(x_train, helpers.NOISE_FACTOR, rng),
        helpers.add_noise(x_test, helpers.NOISE_FACTOR, rng),
    )
    keras.utils.set_random_seed(seed)
    model, _ = helpers.build_autoencoder(helpers.INPUT_DIM, helpers.CODE_SIZE, name="dae")
    options = helpers.compile_options() if recipe == "lab" else {}
    if recipe == "lab":
        helpers.compile_autoencoder(model)
    else:
        model.compile(optimizer="adam", loss="binary_crossentropy")  # the original lab's recipe
    history, seconds = levelup.fit_timed(model, x_noisy, x_train, validation_data=(x_test_noisy, x_test), epochs=epochs)
    return {
        "seconds": seconds,
        "val_loss": history.history["val_loss"][-1],
        "options": options,
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }


def describe(backend, recipe, result):
    """A table label: the backend, the recipe and its settings."""
    if recipe == "plain":
        return f"{backend}, plain compile('adam', 'binary_crossentropy')"
    settings = ", ".join(f"{key}={value}" for key, value in result["options"].items())
    threads = f", OMP_NUM_THREADS={result['threads']}" if backend == "torch" and result["threads"] else ""
    return f"{backend}, lab: {settings}{threads}"


def main(argv=None):
    """Command line: time every installed backend's plain and lab recipes, round robin, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (the first is reported apart)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each backend and recipe")
    parser.add_argument("--samples", type=int, default=60000, help="training samples (the lab uses all 60000)")
    parser.add_argument("--backends", nargs="+", choices=list(BACKENDS), help="default: every installed one")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--worker", choices=["plain", "lab"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 2 or args.repeats < 1 or args.samples < 128:
        parser.error("need --epochs >= 2 (the first epoch includes compiling), --repeats >= 1, --samples >= 128")
    if args.worker:
        print(json.dumps(train_once(args.worker, args.epochs, args.samples, args.seed)), flush=True)
        return 0

    backends = args.backends or installed_backends()
    runs = [(backend, recipe) for backend in backends for recipe in ("plain", "lab")]
    results = {run: [] for run in runs}
    print(
        f"{args.samples} samples, {args.epochs} epochs, {args.repeats} repeats of {len(runs)} runs on "
        f"{', '.join(backends)}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    for repeat in range(args.repeats):
        turn = repeat % len(runs)
        for backend, recipe in runs[turn:] + runs[:turn]:
            result = run_worker(backend, recipe, args)
            results[backend, recipe].append(result)
            print(
                f"  repeat {repeat + 1} {backend:10s} {recipe:5s}: {np.median(result['seconds'][1:]):.2f} s/epoch "
                f"after a {result['seconds'][0]:.2f} s first epoch, val loss {result['val_loss']:.4f}",
                flush=True,
            )

    rate = matmul_rate()
    flop = epoch_flop(args.samples)
    steady = {run: np.median([s for r in results[run] for s in r["seconds"][1:]]) for run in runs}
    baseline = steady.get(("tensorflow", "plain"))
    print(
        "\n| backend and settings | s/epoch (median, epochs 2+) | first epoch (s) | vs plain TensorFlow | final val loss |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for run in sorted(runs, key=steady.get):
        first = np.median([r["seconds"][0] for r in results[run]])
        ratio = f"{baseline / steady[run]:.2f}x" if baseline else "n/a"
        val = np.median([r["val_loss"] for r in results[run]])
        print(f"| {describe(*run, results[run][0])} | {steady[run]:.2f} | {first:.2f} | {ratio} | {val:.4f} |")
    print(
        f"| bound: {flop / 1e9:.1f} GFLOP of matrix multiplies at numpy's {rate / 1e9:.0f} GFLOP/s (float32) | "
        f"{flop / rate:.2f} | | {f'{baseline * rate / flop:.1f}x' if baseline else 'n/a'} | |"
    )
    print(f"\nload average now {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
