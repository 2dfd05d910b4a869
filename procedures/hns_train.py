"""hns_train: Hide-and-Seek (Alexandridis et al., arXiv 2005.00130): a hider masks the
input, a seeker classifies what is left; both are trained together to classify well
while hiding as much of the input as possible.

    python main.py procedure=hns_train dataset=fashion_mnist
    python main.py procedure=hns_train hns.stochastic=true hns.estimator=sa hns.rate=0.1 hns.alpha=0.7
    python main.py procedure=hns_train hns.init=pretrained_hider     # pretrains the hider first if needed
    python main.py -m procedure=hns_train hns.estimator=st1,st2,sa,reinforce seed=0,1,2,3,4

Four kinds of artifact, each a run-store folder keyed by what determines it:
  <runs>/<dataset>/hns_seeker/<seeker>-<hash>   the seeker alone (its test accuracy is the
                                                fidelity baseline); model.keras
  <runs>/<dataset>/hns_hider/<hider>-m<c>-<hash> the hider as an autoencoder of the input
                                                (binary cross-entropy); model.keras
  <runs>/<dataset>/hns_evalx/<seeker>-<hash>    the random-mask evaluators (once per data set):
                                                EVAL-X (seed 0) scores every run, the judge
                                                (seed 1) is realx's frozen seeker; model.keras
  <runs>/<dataset>/hns_train/<hider>+<seeker>-<layer>-<hash>
                                                the joint model: hider.keras, seeker.keras,
                                                history.csv (per epoch, with the test scores),
                                                metrics.json (incl. one row per alpha and the encoding
                                                diagnostics of src/hns/encoding.py), masks.png,
                                                curves.png, alpha_weights/ (weights at every alpha)
The pretraining stages are prerequisites like any other (found in the store or made
first, auto_prereqs=true). The method: src/hns and docs/hns_train.md.
"""
from __future__ import annotations

import logging
import time

import numpy as np
from omegaconf import DictConfig

import datasets
from models.hns import build_hider, build_seeker
from procedures._upstream import load_data, optimizer_for, upstream, upstream_config, upstream_run
from src import runtime
from src.artifacts import load_model, resolve_model_file
from src.fit import Evaluator, Fitter
from src.optim import steps_per_epoch
from src.hns.encoding import KEEP, chance_level, evalx_scores, evaluator_loss, mask_swap_shares, support_masks
from src.hns.losses import reconstruction_loss
from src.hns.pretrain import pretrain_hider
from src.hns.model import HideAndSeek, build_joint_model, slope_rate, transfer_by_name
from src.hns.plots import curves_png, masks_png, modes_png
from src.hns.scores import chosen_figures, oracle_fii, per_alpha, score, select
from src.losses import classifier_loss
from src.runstore import Run, atomic_write, file_digest, locate
from src.errors import ConfigError
from src.schema import validate
from src.schema.hns import binary_layer
from src.tables import format_table

log = logging.getLogger(__name__)
REPORT = {
    "hns_train": {
        "headline": "fii",
        "settings": ["hns.mode", "hns.hider", "hns.seeker", "hns.stochastic", "hns.estimator", "hns.rate", "hns.alpha",
                     "hns.init", "train.epochs", "train.batch_size"],
        "metrics": ["val_fii", "fii", "test_accuracy", "baseline", "fidelity", "interpretability", "fir", "collapsed",
                    "mask_only_accuracy", "chance_accuracy", "support_mask_only_accuracy", "swap_mask_class",
                    "swap_image_class", "support_swap_mask_class", "support_swap_image_class", "evalx_fii",
                    "evalx_accuracy", "evalx_fidelity", "selected", "final_fii", "test_accuracy_sampled",
                    "interpretability_sampled", "train_hidden", "final_alpha", "epochs"]},
    "hns_seeker": {"settings": ["hns.seeker", "train.epochs", "train.batch_size"],
                   "metrics": ["val_accuracy", "test_accuracy", "epochs", "train_seconds"]},
    "hns_hider": {"settings": ["hns.hider", "hns.mask_channels", "train.epochs"],
                  "metrics": ["test_bce", "test_mse", "epochs"]},
    "hns_evalx": {"settings": ["hns.seeker", "seed", "train.epochs"],
                  "metrics": ["test_accuracy", "test_accuracy_random_masks", "epochs", "train_seconds"]},
}
MAX_FIGURE_CLASSES = 20
ADAPTIVE_KEYS = ("alpha_step", "alpha_min", "monitor", "patience", "smoothing", "min_delta", "keep_alpha_weights",
                 "select")


# Random-mask evaluators, trained alike with fixed seeds whatever the run's, so one serves
# every run: "evalx" scores every run's masks, "judge" is the frozen seeker of realx runs.
# A realx hider is scored by an evaluator it was not trained against, so a mask tuned to
# one network's quirks does not pass as evidence.
EVALUATOR_SEEDS = {"evalx": 0, "judge": 1}


def _stage_cfg(cfg: DictConfig, part: str = "seeker") -> DictConfig:
    """cfg for a pretraining stage: train.* with hns.pretrain_epochs (if set) as epochs;
    the random-mask evaluators with their fixed seeds."""
    changes = {"train.epochs": cfg.hns.pretrain_epochs or cfg.train.epochs, "train.early_stopping": 0,
               "augment": "none"}
    if part in EVALUATOR_SEEDS:
        changes["seed"] = EVALUATOR_SEEDS[part]
    return upstream_config(cfg, "hns_train", changes)


def _common_key(cfg: DictConfig) -> dict:
    return {"dataset": cfg.dataset, "train": cfg.train, "seed": cfg.seed, "precision": cfg.precision}


class Pretraining:
    """A pretraining stage: the seeker alone (a classifier of unmasked inputs), the hider
    alone (an autoencoder of the input, or of its channel mean), or the EVAL-X evaluator
    (the seeker's architecture on randomly masked inputs, src/hns/encoding.py). Its
    methods take the stage's config (_stage_cfg)."""

    def __init__(self, part: str):
        self.part, self.name = part, f"hns_{part}"

    def artifact(self, cfg: DictConfig) -> Run:
        h = cfg.hns
        if self.part == "seeker":
            key, name = {"stage": self.name, "seeker": h.seeker}, h.seeker
        elif self.part == "evalx":
            key, name = {"stage": self.name, "seeker": h.seeker, "keep": KEEP}, h.seeker
        else:
            key, name = {"stage": self.name, "hider": h.hider, "mask_channels": h.mask_channels}, \
                f"{h.hider}-m{h.mask_channels}"
        return locate(cfg.paths.runs, cfg.dataset.name, self.name, name, {**key, **_common_key(cfg)})

    def run(self, cfg: DictConfig) -> dict:
        run_ = self.artifact(cfg)
        return run_.produce(cfg, lambda: self._train(cfg, run_), f"pretrain {self.part}")

    def _train(self, cfg: DictConfig, run_: Run) -> dict:
        data = load_data(cfg)
        runtime.seed_everything(cfg.seed)
        if self.part == "seeker":
            metrics = upstream("train").fit_classifier(cfg, run_, build_seeker(cfg.hns.seeker, data.input_shape,
                                                                               data.num_classes), data)
            log.info("pretrained seeker %s: test accuracy %.4f (the fidelity baseline)", cfg.hns.seeker,
                     metrics["test_accuracy"])
            return metrics
        if self.part == "evalx":
            return self._train_evaluator(cfg, run_, data)
        hider = build_hider(cfg.hns.hider, data.input_shape, cfg.hns.mask_channels)
        fitter = Fitter(hider, reconstruction_loss(hider, cfg.hns.mask_channels),
                        optimizer_for(cfg, len(data.x_train)), jit_compile=runtime.use_xla(cfg))
        return pretrain_hider(fitter, run_, data, cfg.train, cfg.seed)

    @staticmethod
    def _train_evaluator(cfg: DictConfig, run_: Run, data) -> dict:
        """The EVAL-X evaluator: random masks only, never a hider's."""
        evaluator = build_seeker(cfg.hns.seeker, data.input_shape, data.num_classes)
        fitter = Fitter(evaluator, evaluator_loss(evaluator, cfg.seed), optimizer_for(cfg, len(data.x_train)),
                        jit_compile=runtime.use_xla(cfg))
        started = time.perf_counter()
        result = fitter.fit({"x": data.x_train, "y": data.y_train}, epochs=cfg.train.epochs,
                            batch_size=cfg.train.batch_size, seed=cfg.seed, run=run_,
                            val={"x": data.x_val, "y": data.y_val}, max_steps=cfg.train.max_steps)
        test = {"x": data.x_test, "y": data.y_test}
        whole = Evaluator(classifier_loss(evaluator)).evaluate(test)["accuracy"]
        atomic_write(run_.file("model.keras"), lambda tmp: evaluator.save(tmp))
        metrics = {"test_accuracy": whole, "test_accuracy_random_masks": fitter.evaluate(test)["accuracy"],
                   "keep": KEEP, "epochs": result.epochs_run, "train_seconds": time.perf_counter() - started}
        log.info("EVAL-X evaluator %s: test accuracy %.4f on whole images, %.4f with half the pixels kept at random",
                 cfg.hns.seeker, whole, metrics["test_accuracy_random_masks"])
        run_.finish(metrics)
        return metrics


STAGES = {"seeker": Pretraining("seeker"), "hider": Pretraining("hider"), "evalx": Pretraining("evalx"),
          "judge": Pretraining("evalx")}


def pretrained_artifact(cfg: DictConfig, part: str) -> Run:
    """Where the pretrained `part` ("seeker", "hider", "evalx" or "judge") for cfg lives."""
    return STAGES[part].artifact(_stage_cfg(cfg, part))


def _pretrained_run(cfg: DictConfig, part: str, why: str) -> Run:
    fix = {"evalx": "set hns.evalx=false", "judge": "use hns.mode=joint"}.get(
        part, f"give hns.{part}_path=/path/to/{part}.keras")
    if part == "seeker":
        fix += ", or hns.baseline=<the seeker's test accuracy>"
    return upstream_run(STAGES[part], _stage_cfg(cfg, part), why, fix)


def _layer_name(cfg: DictConfig) -> str:
    stochastic, estimator = binary_layer(cfg.hns)
    return estimator if stochastic else "det"


def _uses(cfg: DictConfig, part: str) -> bool:
    return cfg.hns.init in (f"pretrained_{part}", "pretrained_both")


def _source_id(cfg: DictConfig, part: str) -> str:
    path = cfg.hns[f"{part}_path"]
    return file_digest(resolve_model_file(path)) if path else pretrained_artifact(cfg, part).hash


def artifact(cfg: DictConfig) -> Run:
    """The joint run for cfg; the key holds every setting that changes its weights or its
    reported figures (the baseline), and the identity of the pretrained parts it starts from."""
    h = cfg.hns
    stochastic, estimator = binary_layer(h)
    settings = {"hider": h.hider, "seeker": h.seeker, "mask_channels": h.mask_channels, "stochastic": stochastic,
                "estimator": estimator, "alpha": h.alpha, "init": h.init, "logit_penalty": h.logit_penalty}
    if h.mode == "realx":
        settings["mode"] = "realx"
    if estimator == "sa":
        settings.update(rate=slope_rate(h), slope_max=h.slope_max)
    if h.alpha is None:
        settings.update({k: h[k] for k in ADAPTIVE_KEYS})
    key = {"procedure": "hns_train", "hns": settings, **_common_key(cfg)}
    for part in ("hider", "seeker"):
        if _uses(cfg, part):
            key[f"{part}_from"] = _source_id(cfg, part)
    if h.mode == "realx":  # the seeker and the baseline are the judge's
        key["seeker_from"] = key["baseline"] = pretrained_artifact(cfg, "judge").hash
    else:
        key["baseline"] = h.baseline if h.baseline is not None else _source_id(cfg, "seeker")
    name = f"{h.hider}+{h.seeker}-{_layer_name(cfg)}"
    return locate(cfg.paths.runs, cfg.dataset.name, "hns_train", name, key)


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    run_ = artifact(cfg)
    metrics = run_.produce(cfg, lambda: _joint(cfg, run_), f"hns_train on {cfg.dataset.name}")
    _print_summary(metrics, run_)
    return metrics


def _baseline(cfg: DictConfig, data: datasets.Dataset) -> tuple[float, str]:
    """Test accuracy of the seeker alone: hns.baseline, else hns.seeker_path evaluated here,
    else the store's pretrained seeker (trained first when missing)."""
    h = cfg.hns
    if h.mode == "realx":
        run_ = _pretrained_run(cfg, "judge", "hns.mode=realx (the frozen seeker)")
        return float(run_.metrics()["test_accuracy"]), str(run_.dir)
    if h.baseline is not None:
        return float(h.baseline), "hns.baseline"
    if h.seeker_path:
        model = load_model(h.seeker_path, "seeker")
        accuracy = Evaluator(classifier_loss(model)).evaluate({"x": data.x_test, "y": data.y_test})["accuracy"]
        return accuracy, str(h.seeker_path)
    run_ = _pretrained_run(cfg, "seeker", "the fidelity baseline (F = accuracy / seeker's accuracy)")
    return float(run_.metrics()["test_accuracy"]), str(run_.dir)


def build_joint(cfg: DictConfig, data: datasets.Dataset, train_examples: int) -> tuple[HideAndSeek, dict]:
    """The joint model for cfg (pretrained parts loaded by layer name); returns it and
    where its parts came from. With hns.mode=realx the seeker is the judge, a random-mask
    evaluator, frozen: only the hider learns, against a network that cannot read a code."""
    h = cfg.hns
    runtime.seed_everything(cfg.seed)
    parts = {"hider": build_hider(h.hider, data.input_shape, h.mask_channels),
             "seeker": build_seeker(h.seeker, data.input_shape, data.num_classes)}
    sources = {"hider_from": "scratch", "seeker_from": "scratch"}
    for part, model in parts.items():
        if _uses(cfg, part):
            source = h[f"{part}_path"] or _pretrained_run(cfg, part, f"hns.init={h.init}").dir
            transfer_by_name(load_model(source, part), model, part)
            sources[f"{part}_from"] = str(source)
    if h.mode == "realx":
        source = _pretrained_run(cfg, "judge", "hns.mode=realx (the frozen seeker)").dir
        transfer_by_name(load_model(source, "realx judge"), parts["seeker"], "seeker")
        parts["seeker"].trainable = False
        sources["seeker_from"] = f"{source} (frozen)"
    steps = steps_per_epoch(train_examples, cfg.train.batch_size, cfg.train.max_steps)
    return build_joint_model(h, parts["hider"], parts["seeker"], steps, cfg.seed), sources


def _joint(cfg: DictConfig, run_: Run) -> dict:
    data = load_data(cfg)
    baseline, baseline_source = _baseline(cfg, data)
    model, sources = build_joint(cfg, data, len(data.x_train))
    fitter = Fitter(model, model.loss_fn, optimizer_for(cfg, len(data.x_train)),
                    variables=model.trainable_variables, jit_compile=runtime.use_xla(cfg))
    sampled = Evaluator(model.sampled_fn) if model.estimator else None
    val, test = {"x": data.x_val, "y": data.y_val}, {"x": data.x_test, "y": data.y_test}

    def score_epoch(epoch: int, row: dict) -> dict:
        """After each epoch: the joint model's figures on the test split, into history.csv."""
        scores = {f"test_{k}": v for k, v in score(fitter, sampled, test, baseline).items()}
        scores.update(alpha_end=float(model.controller.alpha.numpy()), slope_end=float(model.slope.numpy()))
        log.info("epoch %d: test accuracy %.4f  F %.4f  I %.4f  FII %.4f  (train hidden %.4f, alpha %.2f)", epoch,
                 scores["test_accuracy"], scores["test_fidelity"] or 0, scores["test_interpretability"],
                 scores["test_fii"] or 0, row["hidden"], scores["alpha_end"])
        return scores

    started = time.perf_counter()
    result = fitter.fit({"x": data.x_train, "y": data.y_train}, epochs=cfg.train.epochs,
                        batch_size=cfg.train.batch_size, seed=cfg.seed, run=run_, val=val,
                        max_steps=cfg.train.max_steps, on_epoch_end=score_epoch)
    seconds = time.perf_counter() - started
    history, final = result.history, result.history[-1]
    final_scores = {"alpha": final["alpha_end"], **{k[5:]: v for k, v in final.items() if k.startswith("test_")}}
    rows = per_alpha(model, fitter, sampled, test, val, baseline, final_scores,
                     on_kept=lambda alpha: _save_alpha_weights(model, run_, alpha))
    chosen = select(rows, cfg.hns.select)
    if chosen is not rows[-1]:
        model.restore_alpha(chosen["alpha"])
        log.info("selected the weights of alpha %.2f (validation FII %.4f; the final weights: %.4f)",
                 chosen["alpha"], chosen["val_fii"], rows[-1]["val_fii"])
    files = _save(model, run_, data, history, cfg)
    metrics = {**chosen_figures(chosen, rows), **_encoding(cfg, model, data), **oracle_fii(history, rows),
               "final_fii": final["test_fii"], "final_collapsed": final["test_collapsed"],
               "train_hidden": final["hidden"], "interpretability_first_epoch": history[0]["test_interpretability"],
               "baseline": baseline, "baseline_source": baseline_source, **sources,
               "final_alpha": final["alpha_end"], "final_slope": final["slope_end"], "alphas": rows,
               "layer": _layer_name(cfg), "init": cfg.hns.init, "epochs": final["epoch"], "train_seconds": seconds,
               "resumed_from_epoch": result.resumed_from, "hider_params": int(model.hider.count_params()),
               "seeker_params": int(model.seeker.count_params()), "train_examples": len(data.x_train)}
    run_.finish(metrics)
    return metrics


def _encoding(cfg: DictConfig, model: HideAndSeek, data: datasets.Dataset) -> dict:
    """The encoding diagnostics of the chosen weights on the test split (src/hns/encoding.py)."""
    test = {"x": data.x_test, "y": data.y_test}
    fill = float(np.mean(data.x_test))
    out = {"mask_only_accuracy": Evaluator(lambda batch, training: model.mask_only_fn(batch, fill)).evaluate(test)[
        "accuracy"], "chance_accuracy": chance_level(data.num_classes)}
    masks = np.concatenate([np.asarray(model.mask(model.hider(data.x_test[i:i + 1024], training=False), False))
                            for i in range(0, len(data.x_test), 1024)])

    def classify(x, m):
        return np.argmax(np.asarray(model.classify(x, m, False)), -1)

    out.update(mask_swap_shares(classify, data.x_test, data.y_test, masks, cfg.seed))
    control = support_masks(data.x_test, masks, cfg.seed)  # as sparse, on the object, no code
    shares = mask_swap_shares(classify, data.x_test, data.y_test, control, cfg.seed)
    out.update({"support_mask_only_accuracy": float(np.mean(
        classify(np.full_like(data.x_test, fill), control) == data.y_test)),
        **{f"support_{k}": v for k, v in shares.items()}})
    if cfg.hns.evalx:
        run_ = _pretrained_run(cfg, "evalx", "the EVAL-X score (hns.evalx=true)")
        evaluator = load_model(run_.dir, "EVAL-X evaluator")
        out.update(evalx_scores(evaluator, data.x_test, data.y_test, masks, run_.metrics()["test_accuracy"]),
                   evalx_whole_accuracy=run_.metrics()["test_accuracy"], evalx_run=str(run_.dir))
    return out


def _save_alpha_weights(model: HideAndSeek, run_: Run, alpha: float) -> None:
    for part in ("hider", "seeker"):
        path = run_.file("alpha_weights") / f"alpha_{alpha:.2f}_{part}.weights.h5"
        atomic_write(path, lambda tmp, m=getattr(model, part): m.save_weights(str(tmp)))


def _save(model: HideAndSeek, run_: Run, data: datasets.Dataset, history: list[dict], cfg: DictConfig) -> list[str]:
    for part in ("hider", "seeker"):
        atomic_write(run_.file(f"{part}.keras"), lambda tmp, m=getattr(model, part): m.save(tmp))
    title = f"{cfg.hns.hider}+{cfg.hns.seeker} ({_layer_name(cfg)}) on {data.name}"
    curves_png(history, run_.file("curves.png"), title)
    files = ["hider.keras", "seeker.keras", "history.csv", "curves.png"]
    per_class = cfg.hns.figures_per_class
    classes = range(min(data.num_classes, MAX_FIGURE_CLASSES))
    chosen = np.concatenate([np.flatnonzero(data.y_test == c)[:per_class] for c in classes]) if per_class else []
    if len(chosen):
        x = data.x_test[chosen]
        mask = np.asarray(model.mask(model.hider(x, training=False), training=False))
        predicted = np.argmax(np.asarray(model.classify(x, mask, training=False)), -1)
        masks_png(x, mask, data.y_test[chosen], predicted, data.class_names, run_.file("masks.png"),
                  title + ": test image | mask | what the seeker saw", per_class)
        files.append("masks.png")
        files += _modes_figure(cfg, run_, x, mask, data, chosen, title)
    return files


def _modes_figure(cfg: DictConfig, run_: Run, x: np.ndarray, mask: np.ndarray, data: datasets.Dataset, chosen,
                  title: str) -> list[str]:
    """modes.png when the run of the other hns.mode (same settings otherwise) is finished:
    the same test images through the joint and the realx masks."""
    other_mode = "joint" if cfg.hns.mode == "realx" else "realx"
    other_cfg = upstream_config(cfg, "hns_train", {"hns.mode": other_mode})
    try:
        validate(other_cfg)
    except ConfigError:  # a setting the other mode refuses (a seeker of its own)
        return []
    other = artifact(other_cfg)
    if not other.is_done():
        return []
    hider = load_model(other.file("hider.keras"), "hider")
    other_mask = (np.asarray(hider(x, training=False)) > 0).astype(mask.dtype)  # the threshold sigmoid(a) > 0.5
    pair = {cfg.hns.mode: mask, other_mode: other_mask}
    ordered = {mode: pair[mode] for mode in ("joint", "realx")}
    modes_png(x, ordered, data.y_test[chosen], data.class_names, run_.file("modes.png"),
              f"{title}: image | joint mask, seen | realx mask, seen")
    return ["modes.png"]


def _print_summary(m: dict, run_: Run) -> None:
    def pct(v):
        return "n/a" if v is None else f"{v:.4f}"
    chosen = "the final weights" if m["selected"] == "final" else f"the weights of {m['selected']} (chosen on validation)"
    lines = [f"hns_train ({m['layer']}, init {m['init']}, {m['epochs']} epochs), {chosen}: "
             f"test accuracy {pct(m['test_accuracy'])} (seeker alone {pct(m['baseline'])})",
             f"  F {pct(m['fidelity'])}  I {pct(m['interpretability'])}  FIR {pct(m['fir'])}  FII {pct(m['fii'])}"
             f"{'  COLLAPSED' if m['collapsed'] else ''}  (validation FII {pct(m['val_fii'])})"]
    if m["test_accuracy_sampled"] is not None:
        lines.append(f"  sampled mask: accuracy {pct(m['test_accuracy_sampled'])}  "
                     f"hidden {pct(m['interpretability_sampled'])}")
    share = m["mask_only_accuracy"] / m["test_accuracy"] if m["test_accuracy"] else 0.0
    lines.append(f"  the mask alone (kept pixels a constant grey): accuracy {pct(m['mask_only_accuracy'])} "
                 f"(chance {pct(m['chance_accuracy'])}; a code-free mask as sparse, on the object: "
                 f"{pct(m.get('support_mask_only_accuracy'))}), {share:.0%} of the test accuracy: how much the "
                 "mask's layout tells by itself")
    lines.append(f"  an image seen through another class's mask: classified as the mask's class "
                 f"{pct(m['swap_mask_class'])}, as its own {pct(m['swap_image_class'])} (code-free masks: "
                 f"{pct(m.get('support_swap_mask_class'))} / {pct(m.get('support_swap_image_class'))})")
    if m.get("evalx_fii") is not None:
        lines.append(f"  EVAL-X (an evaluator that never saw a hider's mask): accuracy {pct(m['evalx_accuracy'])} "
                     f"(whole images {pct(m['evalx_whole_accuracy'])})  F {pct(m['evalx_fidelity'])}  "
                     f"FII {pct(m['evalx_fii'])}: the figure to trust")
    lines.append(f"  hidden on training batches {pct(m['train_hidden'])}; final alpha {m['final_alpha']:.2f} "
                 f"(FII {pct(m['final_fii'])})")
    if len(m["alphas"]) > 1:
        table = [{"alpha": f"{r['alpha']:.2f}", "acc": r["accuracy"], "F": r["fidelity"], "I": r["interpretability"],
                  "FII": r["fii"], "val FII": r.get("val_fii")} for r in m["alphas"]]
        lines += ["  " + line for line in format_table(table).splitlines()]
    lines.append(f"artifacts: {run_.dir}")
    print("\n".join(lines), flush=True)
