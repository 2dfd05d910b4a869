"""Pretraining the hider alone: an autoencoder of its input (the joint model can start
from it, hns.init=pretrained_hider)."""
from __future__ import annotations

import time

from src.fit import Fitter
from src.runstore import Run, atomic_write


def pretrain_hider(fitter: Fitter, run_: Run, data, train, seed: int) -> dict:
    """Fit the hider of `fitter` (its loss: src.hns.losses.reconstruction_loss) with the
    train.* section `train`, save it as run_'s model.keras and finish the run."""
    started = time.perf_counter()
    result = fitter.fit({"x": data.x_train}, epochs=train.epochs, batch_size=train.batch_size, seed=seed, run=run_,
                        val={"x": data.x_val}, max_steps=train.max_steps)
    test = fitter.evaluate({"x": data.x_test})
    atomic_write(run_.file("model.keras"), lambda tmp: fitter.model.save(tmp))
    metrics = {"test_bce": test["loss"], "test_mse": test["mse"], "epochs": result.epochs_run,
               "train_seconds": time.perf_counter() - started, "params": int(fitter.model.count_params())}
    run_.finish(metrics)
    return metrics
