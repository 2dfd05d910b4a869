"""The pretraining stages of Hide-and-Seek, each a run-store artifact found or made like
any upstream run (procedures/_upstream.upstream_run):

    SeekerStage          hns_seeker  the seeker alone, a classifier of unmasked inputs: its
                                     test accuracy is the fidelity baseline
    HiderStage           hns_hider   the hider alone, an autoencoder of the input (or of its
                                     channel mean): a start for hns.init=pretrained_hider
    EvaluatorStage(seed) hns_evalx   the seeker's architecture on randomly masked inputs
                                     (src/hns/encoding.py), never a hider's: seed 0 is
                                     EVAL-X, which scores every run; seed 1 the judge,
                                     realx's frozen seeker

A stage's methods take the stage's own config: the run's, with `changes(cfg)` applied
(the procedure applies them). The evaluators have fixed seeds whatever the run's, so one
serves every run, and a realx hider is scored by an evaluator it was not trained against.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import keras
from omegaconf import DictConfig

from models.hns import build_hider, build_seeker
from src import runtime
from src.fit import Evaluator, FitResult, Fitter
from src.hns.encoding import KEEP, evaluator_loss
from src.hns.losses import reconstruction_loss
from src.losses import classifier_loss
from src.runstore import Run, locate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Toolkit:
    """What a stage trains with from the procedure layer, which src/hns may not import."""

    load_data: Callable[[DictConfig], Any]  # cfg -> datasets.Dataset
    optimizer_for: Callable[[DictConfig, int], keras.optimizers.Optimizer]  # (cfg, training examples)
    fit_classifier: Callable[[DictConfig, Run, keras.Model, Any], dict]  # trains, saves, finishes


def run_key(cfg: DictConfig) -> dict:
    """What every Hide-and-Seek run key holds: the data, the training settings, seed, precision."""
    return {"dataset": cfg.dataset, "train": cfg.train, "seed": cfg.seed, "precision": cfg.precision}


class PretrainStage:
    """A stage: its folder `name`, its part of the key, how its config differs from the run's."""

    name: str
    part: str  # in log lines
    without: str  # how a run does without it: the fix when it is missing and auto_prereqs=false

    def __init__(self, tools: Toolkit):
        self.tools = tools

    def changes(self, cfg: DictConfig) -> dict:
        """{"dotted.key": value} that turn the run's config into this stage's."""
        return {"train.epochs": cfg.hns.pretrain_epochs, "train.early_stopping": 0, "augment": "none"}

    def key(self, h: DictConfig) -> dict:
        """The hns.* settings (section h) that make this stage's network."""
        raise NotImplementedError

    def label(self, h: DictConfig) -> str:
        """The folder name before the key's hash."""
        raise NotImplementedError

    def artifact(self, cfg: DictConfig) -> Run:
        key = {"stage": self.name, **self.key(cfg.hns), **run_key(cfg)}
        return locate(cfg.paths.runs, cfg.dataset.name, self.name, self.label(cfg.hns), key)

    def run(self, cfg: DictConfig) -> dict:
        out = self.artifact(cfg)
        return out.produce(cfg, lambda: self._train(cfg, out), f"pretrain {self.part}")

    def _train(self, cfg: DictConfig, out: Run) -> dict:
        data = self.tools.load_data(cfg)
        runtime.seed_everything(cfg.seed)
        return self.train(cfg, out, data)

    def train(self, cfg: DictConfig, out: Run, data) -> dict:
        """Train the stage's model on data, save it as out's model.keras, finish out."""
        raise NotImplementedError

    def _fit(self, cfg: DictConfig, out: Run, model: keras.Model, loss_fn, train: dict,
             val: dict) -> tuple[Fitter, FitResult]:
        """Fit model with the stage's train.* settings."""
        settings = cfg.train
        optimizer = self.tools.optimizer_for(cfg, len(train["x"]))
        fitter = Fitter(model, loss_fn, optimizer, jit_compile=runtime.use_xla(cfg))
        result = fitter.fit(train, epochs=settings.epochs, batch_size=settings.batch_size, seed=cfg.seed, run=out,
                            val=val, max_steps=settings.max_steps)
        return fitter, result


class SeekerStage(PretrainStage):
    name, part = "hns_seeker", "seeker"
    without = "give hns.seeker_path=/path/to/seeker.keras, or hns.baseline=<the seeker's test accuracy>"

    def key(self, h: DictConfig) -> dict:
        return {"seeker": h.seeker}

    def label(self, h: DictConfig) -> str:
        return h.seeker

    def train(self, cfg: DictConfig, out: Run, data) -> dict:
        seeker = build_seeker(cfg.hns.seeker, data.input_shape, data.num_classes)
        metrics = self.tools.fit_classifier(cfg, out, seeker, data)
        log.info("pretrained seeker %s: test accuracy %.4f (the fidelity baseline)", cfg.hns.seeker,
                 metrics["test_accuracy"])
        return metrics


class HiderStage(PretrainStage):
    name, part = "hns_hider", "hider"
    without = "give hns.hider_path=/path/to/hider.keras"

    def key(self, h: DictConfig) -> dict:
        return {"hider": h.hider, "mask_channels": h.mask_channels}

    def label(self, h: DictConfig) -> str:
        return f"{h.hider}-m{h.mask_channels}"

    def train(self, cfg: DictConfig, out: Run, data) -> dict:
        """The hider as an autoencoder (src.hns.losses.reconstruction_loss): inputs only."""
        hider = build_hider(cfg.hns.hider, data.input_shape, cfg.hns.mask_channels)
        loss = reconstruction_loss(hider, cfg.hns.mask_channels)
        fitter, result = self._fit(cfg, out, hider, loss, {"x": data.x_train}, {"x": data.x_val})
        test = fitter.evaluate({"x": data.x_test})
        out.save_model(hider)
        metrics = {"test_bce": test["loss"], "test_mse": test["mse"], "epochs": result.epochs_run,
                   "train_seconds": result.seconds, "params": int(hider.count_params())}
        out.finish(metrics)
        return metrics


class EvaluatorStage(PretrainStage):
    """A random-mask evaluator: random masks only, never a hider's."""

    name = "hns_evalx"

    def __init__(self, seed: int, tools: Toolkit, without: str):
        super().__init__(tools)
        self.seed, self.without, self.part = seed, without, f"random-mask evaluator (seed {seed})"

    def changes(self, cfg: DictConfig) -> dict:
        return {**super().changes(cfg), "seed": self.seed}

    def key(self, h: DictConfig) -> dict:
        return {"seeker": h.seeker, "keep": KEEP}

    def label(self, h: DictConfig) -> str:
        return h.seeker

    def train(self, cfg: DictConfig, out: Run, data) -> dict:
        evaluator = build_seeker(cfg.hns.seeker, data.input_shape, data.num_classes)
        fitter, result = self._fit(cfg, out, evaluator, evaluator_loss(evaluator, cfg.seed), data.train, data.val)
        whole = Evaluator(classifier_loss(evaluator)).evaluate(data.test)["accuracy"]
        out.save_model(evaluator)
        metrics = {"test_accuracy": whole, "test_accuracy_random_masks": fitter.evaluate(data.test)["accuracy"],
                   "keep": KEEP, "epochs": result.epochs_run, "train_seconds": result.seconds}
        log.info("EVAL-X evaluator %s: test accuracy %.4f on whole images, %.4f with half the pixels kept at random",
                 cfg.hns.seeker, whole, metrics["test_accuracy_random_masks"])
        out.finish(metrics)
        return metrics


def stages(tools: Toolkit) -> dict[str, PretrainStage]:
    """Every stage by the part it makes: "seeker", "hider", "evalx" (EVAL-X, seed 0) and
    "judge" (realx's frozen seeker, seed 1: trained alike, on other random masks)."""
    return {"seeker": SeekerStage(tools), "hider": HiderStage(tools),
            "evalx": EvaluatorStage(0, tools, without="set hns.evalx=false"),
            "judge": EvaluatorStage(1, tools, without="use hns.mode=joint")}
