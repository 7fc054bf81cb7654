"""Print the quality table: PSNR and SSIM of classical denoisers and the lab's autoencoders, with training times.

Every method is scored on the same noisy Fashion-MNIST test images (the lab's noise, seeded), with the
same code the notebook calls (levelup.quality_rows). The autoencoders are trained here, the lab's
way (helpers.compile_autoencoder) on all 60,000 training images: the shallow 784-32-784 DAE and a
128-unit one for 30 epochs, the deep DAE for --deep-epochs, the convolutional DAE for as many
epochs as fit in --budget seconds, and the hybrid DAE (dense layers + a conv over 4x4 blocks) on
fresh noise every epoch, with an MSE + SSIM loss and a decaying learning rate (benchmarks/hybrid.py),
for --hybrid-epochs, stopping at --budget.
`--tune` instead prints the grid that picked the classical denoisers' settings
(levelup.CLASSICAL_PARAMS), scored on training images.

    .venv/bin/python benchmarks/bench_quality.py [--n-test 2000] [--budget 180] [--tune]
"""

import argparse
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import helpers  # noqa: E402
from helpers import NOISE_FACTOR  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import levelup  # noqa: E402
from benchmarks import hybrid  # noqa: E402

TUNE_GRID = {
    "Gaussian filter": [{"sigma": s} for s in (0.7, 1.0, 1.3, 1.6)],
    "median filter": [{"size": k} for k in (3, 5)],
    "TV (Chambolle)": [{"weight": w} for w in (0.1, 0.2, 0.3, 0.5)],
    "non-local means": [
        {"h": h, "patch_size": p, "patch_distance": d} for h in (0.15, 0.2, 0.25) for p, d in ((3, 3), (5, 6))
    ],
    "PCA-32": [{"n_components": n} for n in (16, 32, 64)],
}


def tune(x_train, seed):
    """Print each classical denoiser's PSNR and SSIM over its grid, on 300 held-back training images."""
    clean = x_train[-300:]
    noisy = helpers.add_noise(clean, NOISE_FACTOR, np.random.default_rng(seed))
    print("| method | settings | PSNR (dB) | SSIM |\n| --- | --- | ---: | ---: |")
    for method, grid in TUNE_GRID.items():
        for params in grid:
            results = levelup.classical_denoise(noisy, x_train[:-300], params={method: params})
            psnr, ssim = levelup.mean_scores(clean, results[method][0])
            print(f"| {method} | {params} | {psnr:.2f} | {ssim:.3f} |", flush=True)


def train(kind, data, seed, epochs, budget=None, **options):
    """Build and train one autoencoder the lab's way; return (model, seconds, epochs run)."""
    x_noisy, x_clean = data
    keras.utils.set_random_seed(seed)
    model, _ = hybrid.build_denoiser(kind, **options)
    helpers.compile_autoencoder(model)
    _, seconds = levelup.fit_timed(model, x_noisy, x_clean, epochs=epochs, budget=budget)
    print(f"  {model.name}: {len(seconds)} epochs in {sum(seconds):.0f} s", flush=True)
    return model, sum(seconds), len(seconds)


def train_hybrid(x_train, seed, epochs, budget, batch_size=128):
    """Build the hybrid DAE and train it (MSE + SSIM loss) on fresh noise each epoch, its learning rate decaying to 0; return (model, seconds, epochs run)."""
    keras.utils.set_random_seed(seed)
    model, _ = hybrid.build_denoiser("hybrid")
    hybrid.compile_with_decay(model, steps=epochs * math.ceil(len(x_train) / batch_size), loss=hybrid.loss_with_ssim())
    _, seconds = hybrid.fit_fresh_noise(model, x_train, epochs, seed=seed, batch_size=batch_size, budget=budget)
    print(f"  {model.name}: {len(seconds)} epochs in {sum(seconds):.0f} s", flush=True)
    return model, sum(seconds), len(seconds)


def print_target(rows, budget, psnr=20.0, ssim=0.75):
    """Print, from unrounded scores, whether the best autoencoder meets the issue's target (PSNR, SSIM, training time)."""
    best = max((row for row in rows if row["kind"] == "autoencoder"), key=lambda row: row["psnr"])
    met = best["psnr"] >= psnr and best["ssim"] >= ssim and best["train_s"] <= budget
    print(
        f"\nBest autoencoder: {best['method']}, {best['psnr']:.3f} dB, SSIM {best['ssim']:.4f}, trained in "
        f"{best['train_s']:.0f} s. Target (>= {psnr:g} dB, SSIM >= {ssim:g}, <= {budget:g} s): {'met' if met else 'NOT met'}."
    )


def main(argv=None):
    """Command line: train the autoencoders, then print the quality table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-test", type=int, default=2000, help="test images to score (the first N)")
    parser.add_argument("--budget", type=float, default=180, help="seconds of training for the conv and hybrid DAEs")
    parser.add_argument("--deep-epochs", type=int, default=30)
    parser.add_argument("--filters", type=int, default=32, help="filters of the conv DAE (the notebook uses 32)")
    parser.add_argument("--hybrid-epochs", type=int, default=16)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tune", action="store_true", help="print the classical denoisers' tuning grid instead")
    args = parser.parse_args(argv)

    (train_images, _), (test_images, _) = helpers.load_dataset()
    x_train, x_test = helpers.prepare_images(train_images), helpers.prepare_images(test_images)
    if args.tune:
        return tune(x_train, args.seed)
    if not 0 < args.n_test <= len(x_test):
        parser.error(f"--n-test must be from 1 to {len(x_test)}")
    rng = np.random.default_rng(args.seed)  # drawn in the notebook's order: training noise, then test noise
    data = (helpers.add_noise(x_train, NOISE_FACTOR, rng), x_train)
    x_test_noisy = helpers.add_noise(x_test, NOISE_FACTOR, rng)
    print(f"training on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    models = {}
    for code_size in (helpers.CODE_SIZE, 128):
        model, seconds, epochs = train("shallow", data, args.seed, 30, code_size=code_size)
        models[f"shallow DAE {helpers.INPUT_DIM}-{code_size}-{helpers.INPUT_DIM} ({epochs} epochs)"] = (model, seconds)
    model, seconds, epochs = train("deep", data, args.seed, args.deep_epochs)
    models[f"deep DAE 784-256-128-64 ({epochs} epochs)"] = (model, seconds)
    model, seconds, epochs = train("conv", data, args.seed, 1000, budget=args.budget, filters=args.filters)
    models[f"convolutional DAE, {args.filters} filters ({epochs} epochs)"] = (model, seconds)
    model, seconds, epochs = train_hybrid(x_train, args.seed, args.hybrid_epochs, args.budget)
    models[f"hybrid DAE, fresh noise ({epochs} epochs)"] = (model, seconds)
    rows = levelup.quality_rows(x_test[: args.n_test], x_test_noisy[: args.n_test], x_train, models)
    print(
        f"\nNoise {NOISE_FACTOR:g}, the first {args.n_test} test images; mean PSNR and SSIM per image. "
        f"Load average now {os.getloadavg()[0]:.1f}.\n"
    )
    print(levelup.format_table(rows))
    print_target(rows, args.budget)


if __name__ == "__main__":
    sys.exit(main())
