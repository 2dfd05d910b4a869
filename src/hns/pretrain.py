"""The pretraining stages of Hide-and-Seek, each a run-store artifact found or made like
any upstream run (procedures/_upstream.upstream_run):

    SeekerStage          hns_seeker  the seeker alone, a classifier of unmasked inputs: its
                                     test accuracy is the fidelity baseline
    HiderStage           hns_hider   the hider alone, an autoencoder of the input (or of its
                                     channel mean): a start for hns.init=pretrained_hider
    EvaluatorStage       hns_evalx   the seeker's architecture on randomly masked inputs
                                     (src/hns/encoding.py), never a hider's: EVAL-X, which
                                     scores every run (keep rate hns.evalx_keep), and the
                                     judge, realx's frozen seeker (keep rate 1/2)

A stage's methods take the stage's own config: the run's, with `changes(cfg)` applied
(the procedure applies them). The evaluators' seeds come from hns.evalx_seed, s (null: the
run's seed): EVAL-X is trained with seed 2s, the judge with 2s + 1, so a realx hider is
scored by an evaluator it was not trained against. With a fixed s one pair serves every
run; with s the run's seed a table over seeds includes the evaluators' own variance.
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
    data_key: Callable[[DictConfig], dict]  # cfg -> the data's part of a run key
    optimizer_for: Callable[[DictConfig, int], keras.optimizers.Optimizer]  # (cfg, training examples)
    fit_classifier: Callable[[DictConfig, Run, keras.Model, Any], dict]  # trains, saves, finishes


def run_key(cfg: DictConfig, data: dict) -> dict:
    """What every Hide-and-Seek run key holds: the data's key, the training settings, seed, precision."""
    return {"dataset": data, "train": cfg.train, "seed": cfg.seed, "precision": cfg.precision}


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
        key = {"stage": self.name, **self.key(cfg.hns), **run_key(cfg, self.tools.data_key(cfg))}
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


def evaluator_seed(cfg: DictConfig, offset: int) -> int:
    """The seed of the evaluator `offset` (0 EVAL-X, 1 the judge) of the run cfg."""
    s = cfg.hns.evalx_seed if cfg.hns.evalx_seed is not None else cfg.seed
    return 2 * s + offset


class EvaluatorStage(PretrainStage):
    """A random-mask evaluator: random masks only, never a hider's. `judge`: realx's frozen
    seeker, at the method's keep rate 1/2; else EVAL-X, at hns.evalx_keep."""

    name = "hns_evalx"

    def __init__(self, judge: bool, tools: Toolkit, without: str):
        super().__init__(tools)
        self.offset, self.without = int(judge), without
        self.part = "realx judge" if judge else "EVAL-X evaluator"

    def changes(self, cfg: DictConfig) -> dict:
        return {**super().changes(cfg), "seed": evaluator_seed(cfg, self.offset)}

    def keep(self, h: DictConfig) -> tuple[float, float]:
        """(low, high) of the per-image keep rate."""
        if self.offset:
            return KEEP
        keep = [float(k) for k in h.evalx_keep]
        return (keep[0], keep[-1])

    def key(self, h: DictConfig) -> dict:
        low, high = self.keep(h)
        return {"seeker": h.seeker, "keep": low if low == high else [low, high]}

    def label(self, h: DictConfig) -> str:
        low, high = self.keep(h)
        return h.seeker if (low, high) == KEEP else f"{h.seeker}-keep{low:g}-{high:g}"

    def train(self, cfg: DictConfig, out: Run, data) -> dict:
        evaluator = build_seeker(cfg.hns.seeker, data.input_shape, data.num_classes)
        keep = self.keep(cfg.hns)
        fitter, result = self._fit(cfg, out, evaluator, evaluator_loss(evaluator, cfg.seed, keep), data.train,
                                   data.val)
        whole = Evaluator(classifier_loss(evaluator)).evaluate(data.test)["accuracy"]
        out.save_model(evaluator)
        metrics = {"test_accuracy": whole, "test_accuracy_random_masks": fitter.evaluate(data.test)["accuracy"],
                   "keep": list(keep), "epochs": result.epochs_run, "train_seconds": result.seconds}
        log.info("%s %s (seed %d): test accuracy %.4f on whole images, %.4f with pixels kept at random at rates %g-%g",
                 self.part, cfg.hns.seeker, cfg.seed, whole, metrics["test_accuracy_random_masks"], *keep)
        out.finish(metrics)
        return metrics


def stages(tools: Toolkit) -> dict[str, PretrainStage]:
    """Every stage by the part it makes: "seeker", "hider", "evalx" (EVAL-X) and "judge"
    (realx's frozen seeker: trained alike, with another seed)."""
    return {"seeker": SeekerStage(tools), "hider": HiderStage(tools),
            "evalx": EvaluatorStage(False, tools, without="set hns.evalx=false"),
            "judge": EvaluatorStage(True, tools, without="use hns.mode=joint")}
