"""Time the original plain training recipe against the lab's compiled one, side by side.

Both train the core denoising autoencoder (784-32-784, adam, binary cross-entropy, batch 128,
shuffled) on the same noisy Fashion-MNIST samples from the same initial weights, alternating
which goes first in each repeat so that background load hits both alike. Prints the median
seconds per epoch of each (the first epoch, which includes tracing and compiling, is reported
apart), the speed-up and the final validation losses.

    .venv/bin/python benchmarks/bench_speed.py [--epochs 5] [--repeats 3] [--samples 60000]
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import helpers  # noqa: E402
import levelup  # noqa: E402


def compile_plain(model):
    """The original lab's recipe: default compile, one Python call per training step, no XLA."""
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def time_recipe(compile_fn, data, epochs, seed):
    """Build the core DAE from seed, compile it with compile_fn and train; return (seconds per epoch, val losses)."""
    x_noisy, x_clean, x_val_noisy, x_val = data
    keras.utils.set_random_seed(seed)
    model, _ = helpers.build_autoencoder(784, 32, name="dae")
    compile_fn(model)
    history, seconds = levelup.fit_timed(model, x_noisy, x_clean, validation_data=(x_val_noisy, x_val), epochs=epochs)
    return seconds, history.history["val_loss"]


def main(argv=None):
    """Command line: alternate the two recipes for --repeats rounds and print their timings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (the first is reported apart)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each recipe, alternating")
    parser.add_argument("--samples", type=int, default=60000, help="training samples (the lab uses all 60000)")
    parser.add_argument("--spe", type=int, default=32, help="steps_per_execution for the lab's recipe")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.epochs < 2 or args.repeats < 1 or args.samples < 128:
        parser.error("need --epochs >= 2 (the first epoch includes compiling), --repeats >= 1, --samples >= 128")

    (train_images, _), (test_images, _) = helpers.load_dataset()
    rng = np.random.default_rng(args.seed)
    x_train, x_test = helpers.prepare_images(train_images[: args.samples]), helpers.prepare_images(test_images)
    data = (helpers.add_noise(x_train, 0.5, rng), x_train, helpers.add_noise(x_test, 0.5, rng), x_test)
    recipes = {"plain": compile_plain, "lab": lambda m: helpers.compile_autoencoder(m, args.spe)}
    results = {name: {"first": [], "steady": [], "val": []} for name in recipes}
    print(f"{args.samples} samples, {args.epochs} epochs, {args.repeats} repeats, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    for repeat in range(args.repeats):
        order = list(recipes) if repeat % 2 == 0 else list(recipes)[::-1]
        for name in order:
            seconds, val = time_recipe(recipes[name], data, args.epochs, args.seed)
            results[name]["first"].append(seconds[0])
            results[name]["steady"].extend(seconds[1:])
            results[name]["val"].append(val[-1])
            print(f"  repeat {repeat + 1} {name:5s}: {np.median(seconds[1:]):.2f} s/epoch after a "
                  f"{seconds[0]:.2f} s first epoch, val loss {val[-1]:.4f}", flush=True)

    print("\n| recipe | s/epoch (median, epochs 2+) | first epoch (s) | final val loss |")
    print("| --- | ---: | ---: | ---: |")
    for name, label in (("plain", "plain: compile('adam', 'binary_crossentropy')"),
                        ("lab", f"lab: steps_per_execution={args.spe}, jit_compile=True")):
        r = results[name]
        print(f"| {label} | {np.median(r['steady']):.2f} | {np.median(r['first']):.2f} | {np.median(r['val']):.4f} |")
    ratio = np.median(results["plain"]["steady"]) / np.median(results["lab"]["steady"])
    total = (np.sum(results["plain"]["first"]) + np.sum(results["plain"]["steady"])) / (
        np.sum(results["lab"]["first"]) + np.sum(results["lab"]["steady"]))
    print(f"\nspeed-up per epoch (median): {ratio:.2f}x; over whole runs including compiling: {total:.2f}x; "
          f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    sys.exit(main())
