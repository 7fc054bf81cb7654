"""What each task's check reads, as plain tables in the lab's task order: the names its cell defines (`DEFINES`),
every variable its check may read (`READS`, all a grader exports) and the earlier tasks whose mistakes can explain its
own (`PREREQUISITES`). This module imports nothing, so a grader can plan its exports and find a task not attempted
without loading Keras; the checks themselves are in checks/tasks.py (`CHECKS`, in the same order).
"""

DEFINES = {  # task -> the names its cell must define (the check reports "not attempted" until they exist)
    "data": ("x_train", "x_test"),
    "regular_autoencoder": ("autoencoder", "encoder"),
    "reconstructions": ("codes", "reconstructions", "fig_autoencoder"),
    "noisy_data": ("x_train_noisy", "x_test_noisy"),
    "dae_model": ("dae",),
    "dae_training": ("history",),
    "predictions": ("x_test_denoised",),
    "view_results": ("fig_clean", "fig_results"),
    "loss_curve": ("fig_loss",),
}


READS = {  # task -> every variable its check may read (a grader exports only these)
    "data": ("x_train", "x_test", "train_images", "test_images", "DATASET"),
    "regular_autoencoder": (
        "autoencoder",
        "encoder",
        "ae_history",
        "dae",  # only to name an encoder the DAE's cell took over (its optional encoder is dae_encoder)
        "x_train",
        "x_test",
        "train_images",
        "test_images",
        "DATASET",
    ),
    "reconstructions": (
        "codes",
        "reconstructions",
        "fig_autoencoder",
        "x_test",
        "autoencoder",
        "encoder",
        "x_test_noisy",
        "x_train",
    ),
    "noisy_data": ("x_train_noisy", "x_test_noisy", "x_train", "x_test", "train_images", "test_images", "DATASET"),
    "dae_model": ("dae", "autoencoder"),
    "dae_training": (
        "history",
        "dae",
        "autoencoder",
        "x_train",
        "x_test",
        "x_train_noisy",
        "x_test_noisy",
        "train_images",
        "test_images",
        "DATASET",
    ),  # with the reads of data, noisy_data and dae_model
    "predictions": ("x_test_denoised", "dae", "x_test", "x_test_noisy", "autoencoder", "x_train_noisy", "x_train"),
    "view_results": (
        "fig_clean",
        "fig_results",
        "x_test",
        "x_test_noisy",
        "x_test_denoised",
        "x_train",
        "x_train_noisy",
        "reconstructions",
    ),
    "loss_curve": ("fig_loss", "history", "ae_history"),
}


PREREQUISITES = {  # task -> the earlier tasks whose mistakes can make its own verdict fail (checked in this order)
    "regular_autoencoder": ("data",),
    "dae_training": ("noisy_data", "data", "dae_model"),  # noise added in place makes x_train fail data's check too
}


TASKS = tuple(DEFINES)  # the lab's tasks, in order


OPTIONAL = ("challenge",)  # checks outside the core total (checks/challenge.py): not in DEFINES, READS or CHECKS
