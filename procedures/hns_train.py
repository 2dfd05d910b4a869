"""hns_train: Hide-and-Seek (Alexandridis et al., arXiv 2005.00130): a hider masks the
input, a seeker classifies what is left; both are trained together to classify well
while hiding as much of the input as possible.

    python main.py procedure=hns_train dataset=fashion_mnist
    python main.py procedure=hns_train hns.stochastic=true hns.estimator=sa hns.rate=0.1 hns.alpha=0.7
    python main.py procedure=hns_train hns.init=pretrained_hider     # pretrains the hider first if needed
    python main.py -m procedure=hns_train hns.estimator=st1,st2,sa,reinforce seed=0,1,2,3,4

Three kinds of artifact, each a run-store folder keyed by what determines it:
  <runs>/<dataset>/hns_seeker/<seeker>-<hash>   the seeker alone (its test accuracy is the
                                                fidelity baseline); model.keras
  <runs>/<dataset>/hns_hider/<hider>-m<c>-<hash> the hider as an autoencoder of the input
                                                (binary cross-entropy); model.keras
  <runs>/<dataset>/hns_train/<hider>+<seeker>-<layer>-<hash>
                                                the joint model: hider.keras, seeker.keras,
                                                hns_history.csv (per epoch), metrics.json
                                                (incl. one row per alpha), masks.png, curves.png,
                                                alpha_weights/ (weights at every alpha)
Upstream stages are found in the store or trained first (auto_prereqs=true).
See docs/hns_train.md for the method and where it differs from the seed's code.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import time

import numpy as np
from omegaconf import DictConfig

import datasets
from models.hns import build_hider, build_seeker
from procedures._common import derive, load_data, optimizer_for
from src import runtime
from src.artifacts import load_model, resolve_model_file
from src.binary import slope_factor
from src.errors import ArtifactError
from src.fit import Evaluator, Fitter, steps_per_epoch
from src.hns_alpha import AlphaController
from src.hns_metrics import figures
from src.hns_model import HideAndSeek, transfer_by_name
from src.hns_plots import curves_png, masks_png
from src.losses import classifier_loss
from src.runstore import Run, atomic_write, file_digest, locate
from src.schema_hns import binary_layer

log = logging.getLogger(__name__)
DEFAULT_RATE = 0.5  # the seed's default slope growth per epoch
HISTORY = "hns_history.csv"
MAX_FIGURE_CLASSES = 20


# ---- where things live ---------------------------------------------------------------
def _stage_cfg(cfg: DictConfig) -> DictConfig:
    """cfg for a pretraining stage: train.* with hns.pretrain_epochs (if set) as epochs."""
    epochs = cfg.hns.pretrain_epochs or cfg.train.epochs
    return derive(cfg, "hns_train", **{"train.epochs": epochs})


def _common_key(cfg: DictConfig) -> dict:
    return {"dataset": cfg.dataset, "train": cfg.train, "seed": cfg.seed, "precision": cfg.precision}


def seeker_artifact(cfg: DictConfig) -> Run:
    """The pretrained seeker (a plain classifier of unmasked inputs) for cfg."""
    scfg = _stage_cfg(cfg)
    key = {"stage": "hns_seeker", "seeker": scfg.hns.seeker, **_common_key(scfg)}
    return locate(cfg.paths.runs, cfg.dataset.name, "hns_seeker", scfg.hns.seeker, key)


def hider_artifact(cfg: DictConfig) -> Run:
    """The pretrained hider (an autoencoder of the input, or of its channel mean) for cfg."""
    scfg = _stage_cfg(cfg)
    h = scfg.hns
    key = {"stage": "hns_hider", "hider": h.hider, "mask_channels": h.mask_channels, **_common_key(scfg)}
    return locate(cfg.paths.runs, cfg.dataset.name, "hns_hider", f"{h.hider}-m{h.mask_channels}", key)


def _layer_name(cfg: DictConfig) -> str:
    stochastic, estimator = binary_layer(cfg.hns)
    return estimator if stochastic else "det"


def _uses(cfg: DictConfig, part: str) -> bool:
    return cfg.hns.init in (f"pretrained_{part}", "pretrained_both")


def _source_id(path: str | None, stage: Run) -> str:
    return file_digest(resolve_model_file(path)) if path else stage.hash


def artifact(cfg: DictConfig) -> Run:
    """The joint run for cfg; the key holds every setting that changes its weights or its
    reported figures (the baseline), and the identity of the pretrained parts it starts from."""
    h = cfg.hns
    stochastic, estimator = binary_layer(h)
    settings = {"hider": h.hider, "seeker": h.seeker, "mask_channels": h.mask_channels, "stochastic": stochastic,
                "estimator": estimator, "alpha": h.alpha, "init": h.init}
    if h.logit_penalty:  # absent when off, so runs from before the setting keep their keys
        settings["logit_penalty"] = h.logit_penalty
    if estimator == "sa":
        settings.update(rate=h.rate if h.rate is not None else DEFAULT_RATE, slope_max=h.slope_max)
    if h.alpha is None:
        settings.update({k: h[k] for k in ("alpha_step", "alpha_min", "monitor", "patience", "smoothing",
                                           "min_delta", "keep_alpha_weights")})
        if h.keep_alpha_weights and h.select != "last":  # absent = last, the only choice before the setting
            settings["select"] = h.select
    key = {"procedure": "hns_train", "hns": settings, **_common_key(cfg)}
    if _uses(cfg, "hider"):
        key["hider_from"] = _source_id(h.hider_path, hider_artifact(cfg))
    if _uses(cfg, "seeker"):
        key["seeker_from"] = _source_id(h.seeker_path, seeker_artifact(cfg))
    key["baseline"] = h.baseline if h.baseline is not None else _source_id(h.seeker_path, seeker_artifact(cfg))
    name = f"{h.hider}+{h.seeker}-{_layer_name(cfg)}"
    return locate(cfg.paths.runs, cfg.dataset.name, "hns_train", name, key)


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    run_ = artifact(cfg)
    metrics = run_.produce(cfg, lambda: _joint(cfg, run_), f"hns_train on {cfg.dataset.name}")
    _print_summary(metrics, run_)
    return metrics


# ---- pretraining stages ----------------------------------------------------------------
def _ensure(cfg: DictConfig, stage: str, why: str) -> Run:
    """The finished stage run ('seeker' or 'hider'), trained first when missing and allowed."""
    scfg = _stage_cfg(cfg)
    run_ = seeker_artifact(cfg) if stage == "seeker" else hider_artifact(cfg)
    if run_.is_done():
        return run_
    if not cfg.auto_prereqs:
        raise ArtifactError(
            f"{why} needs a pretrained {stage} at {run_.dir}, and auto_prereqs=false: set auto_prereqs=true "
            f"(it is pretrained first), or give hns.{stage}_path=/path/to/{stage}.keras"
            + (", or hns.baseline=<the seeker's test accuracy>" if stage == "seeker" else ""))
    log.info("%s needs a pretrained %s that is not in the store yet: training it first -> %s", why, stage, run_.dir)
    make = _pretrain_seeker if stage == "seeker" else _pretrain_hider
    run_.produce(scfg, lambda: make(scfg, run_), f"pretrain {stage}")
    return run_


def _pretrain_seeker(cfg: DictConfig, run_: Run) -> dict:
    data = load_data(cfg)
    runtime.seed_everything(cfg.seed)
    seeker = build_seeker(cfg.hns.seeker, data.input_shape, data.num_classes)
    fitter = Fitter(seeker, classifier_loss(seeker), optimizer_for(cfg, len(data.x_train)),
                    jit_compile=runtime.use_xla(cfg))
    started = time.perf_counter()
    result = fitter.fit({"x": data.x_train, "y": data.y_train}, epochs=cfg.train.epochs,
                        batch_size=cfg.train.batch_size, seed=cfg.seed, run=run_,
                        val={"x": data.x_val, "y": data.y_val}, max_steps=cfg.train.max_steps)
    test = fitter.evaluate({"x": data.x_test, "y": data.y_test})
    atomic_write(run_.file("model.keras"), lambda tmp: seeker.save(tmp))
    metrics = {"test_accuracy": test["accuracy"], "test_loss": test["loss"], "epochs": result.epochs_run,
               "train_seconds": time.perf_counter() - started, "params": int(seeker.count_params())}
    run_.finish(metrics, ["model.keras", "history.csv"])
    log.info("pretrained seeker %s: test accuracy %.4f (the fidelity baseline)", cfg.hns.seeker, test["accuracy"])
    return metrics


def reconstruction_loss(hider, mask_channels: int):
    """loss_fn for src.fit: binary cross-entropy of sigmoid(hider(x)) against x, or
    against x's channel mean when one mask serves every colour channel (so the pretrained
    hider has exactly the joint hider's layers: the seed's RGB transfer skipped the last)."""
    import tensorflow as tf

    def loss_fn(batch: dict, training: bool) -> dict:
        x = tf.cast(batch["x"], tf.float32)
        target = tf.reduce_mean(x, axis=-1, keepdims=True) if mask_channels == 1 else x
        logits = tf.cast(hider(x, training=training), tf.float32)
        bce = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits))
        return {"loss": bce, "mse": tf.reduce_mean(tf.square(tf.sigmoid(logits) - target))}
    return loss_fn


def _pretrain_hider(cfg: DictConfig, run_: Run) -> dict:
    data = load_data(cfg)
    runtime.seed_everything(cfg.seed)
    hider = build_hider(cfg.hns.hider, data.input_shape, cfg.hns.mask_channels)
    fitter = Fitter(hider, reconstruction_loss(hider, cfg.hns.mask_channels), optimizer_for(cfg, len(data.x_train)),
                    jit_compile=runtime.use_xla(cfg))
    started = time.perf_counter()
    result = fitter.fit({"x": data.x_train}, epochs=cfg.train.epochs, batch_size=cfg.train.batch_size,
                        seed=cfg.seed, run=run_, val={"x": data.x_val}, max_steps=cfg.train.max_steps)
    test = fitter.evaluate({"x": data.x_test})
    atomic_write(run_.file("model.keras"), lambda tmp: hider.save(tmp))
    metrics = {"test_bce": test["loss"], "test_mse": test["mse"], "epochs": result.epochs_run,
               "train_seconds": time.perf_counter() - started, "params": int(hider.count_params())}
    run_.finish(metrics, ["model.keras", "history.csv"])
    return metrics


# ---- joint training ----------------------------------------------------------------------
def _baseline(cfg: DictConfig, data: datasets.Dataset) -> tuple[float, str]:
    """Test accuracy of the seeker alone: hns.baseline, else hns.seeker_path evaluated here,
    else the store's pretrained seeker (trained first when missing)."""
    h = cfg.hns
    if h.baseline is not None:
        return float(h.baseline), "hns.baseline"
    if h.seeker_path:
        model = load_model(h.seeker_path, "seeker")
        accuracy = Evaluator(classifier_loss(model)).evaluate({"x": data.x_test, "y": data.y_test})["accuracy"]
        return accuracy, str(h.seeker_path)
    run_ = _ensure(cfg, "seeker", "the fidelity baseline (F = accuracy / seeker's accuracy)")
    return float(run_.metrics()["test_accuracy"]), str(run_.dir)


def _pretrained(cfg: DictConfig, part: str):
    path = cfg.hns[f"{part}_path"]
    source = path or _ensure(cfg, part, f"hns.init={cfg.hns.init}").dir
    return load_model(source, part), str(source)


def build_joint(cfg: DictConfig, data: datasets.Dataset, train_examples: int) -> tuple[HideAndSeek, dict]:
    """The joint model for cfg (pretrained parts loaded by layer name); returns it and
    where its parts came from."""
    h = cfg.hns
    runtime.seed_everything(cfg.seed)
    hider = build_hider(h.hider, data.input_shape, h.mask_channels)
    seeker = build_seeker(h.seeker, data.input_shape, data.num_classes)
    sources = {"hider_from": "scratch", "seeker_from": "scratch"}
    for part, model in (("hider", hider), ("seeker", seeker)):
        if _uses(cfg, part):
            pretrained, sources[f"{part}_from"] = _pretrained(cfg, part)
            transfer_by_name(pretrained, model, part)
    stochastic, estimator = binary_layer(h)
    steps = steps_per_epoch(train_examples, cfg.train.batch_size, cfg.train.max_steps)
    rate = h.rate if h.rate is not None else DEFAULT_RATE
    controller = AlphaController(h.alpha, h.alpha_step, h.alpha_min, h.patience, h.smoothing, h.min_delta)
    model = HideAndSeek(hider, seeker, controller, estimator=estimator, monitor=h.monitor,
                        slope_factor=slope_factor(rate, steps) if estimator == "sa" else 1.0,
                        slope_max=h.slope_max, seed=cfg.seed, keep_alpha_weights=h.keep_alpha_weights,
                        logit_penalty=h.logit_penalty)
    return model, sources


def _joint(cfg: DictConfig, run_: Run) -> dict:
    data = load_data(cfg)
    baseline, baseline_source = _baseline(cfg, data)
    model, sources = build_joint(cfg, data, len(data.x_train))
    fitter = Fitter(model, model.loss_fn, optimizer_for(cfg, len(data.x_train)),
                    variables=model.trainable_variables, jit_compile=runtime.use_xla(cfg))
    sampled = Evaluator(model.sampled_fn) if model.estimator else None
    train, val = {"x": data.x_train, "y": data.y_train}, {"x": data.x_val, "y": data.y_val}
    test = {"x": data.x_test, "y": data.y_test}
    history = _read_rows(run_.file(HISTORY))  # epochs scored before a kill, when resuming

    def score_epoch(epoch: int, train_row: dict) -> None:
        """After each epoch: the joint model on the test split (F and I per epoch)."""
        history[:] = [row for row in history if row["epoch"] < epoch]  # an epoch redone after a kill
        history.append(_epoch_row(model, fitter, sampled, test, baseline, epoch, train_row))
        _write_rows(run_.file(HISTORY), history)

    started = time.perf_counter()
    result = fitter.fit(train, epochs=cfg.train.epochs, batch_size=cfg.train.batch_size, seed=cfg.seed, run=run_,
                        val=val, max_steps=cfg.train.max_steps, on_epoch_end=score_epoch)
    resumed_from = result.resumed_from
    seconds = time.perf_counter() - started
    final = history[-1]
    per_alpha = _per_alpha(model, fitter, sampled, test, val, baseline, run_, final)
    chosen = _select(per_alpha, cfg.hns.select)
    if chosen is not per_alpha[-1]:
        model.restore_alpha(chosen["alpha"])
        log.info("selected the weights of alpha %.2f (validation FII %.4f; the final weights: %.4f)",
                 chosen["alpha"], chosen["val_fii"], per_alpha[-1]["val_fii"])
    fill = float(np.mean(data.x_test))
    mask_only = Evaluator(lambda batch, training: model.mask_only_fn(batch, fill)).evaluate(test)["accuracy"]
    files = _save(model, run_, data, history, cfg)
    best = max(history + per_alpha, key=lambda r: r["fii"] if r["fii"] is not None else -1)
    metrics = {
        "test_accuracy": chosen["accuracy"], "fidelity": chosen["fidelity"],
        "interpretability": chosen["interpretability"], "fir": chosen["fir"], "fii": chosen["fii"],
        "collapsed": chosen["collapsed"], "test_accuracy_sampled": chosen.get("accuracy_sampled"),
        "interpretability_sampled": chosen.get("hidden_sampled"), "mask_only_accuracy": mask_only,
        "selected": "final" if chosen is per_alpha[-1] else f"alpha {chosen['alpha']:.2f}",
        "final_fii": final["fii"], "final_collapsed": final["collapsed"],
        "train_hidden": final["train_hidden"], "interpretability_first_epoch": history[0]["interpretability"],
        "baseline": baseline, "baseline_source": baseline_source, **sources,
        "final_alpha": final["alpha_end"], "final_slope": final["slope_end"],
        "best_fii": best["fii"], "best_fii_at": f"alpha {best['alpha']:.2f}" if "epoch" not in best
        else f"epoch {best['epoch']}", "alphas": per_alpha,
        "layer": _layer_name(cfg), "init": cfg.hns.init, "epochs": final["epoch"], "train_seconds": seconds,
        "resumed_from_epoch": resumed_from, "hider_params": int(model.hider.count_params()),
        "seeker_params": int(model.seeker.count_params()), "train_examples": len(data.x_train),
    }
    run_.finish(metrics, files)
    return metrics


def _epoch_row(model: HideAndSeek, fitter, sampled, test: dict, baseline: float, epoch: int, train_row: dict) -> dict:
    row = _score(fitter, sampled, test, baseline)
    row.update(epoch=epoch, alpha_end=float(model.controller.alpha.numpy()), slope_end=float(model.slope.numpy()),
               **{f"train_{k}": v for k, v in train_row.items() if k != "epoch"})
    log.info("epoch %d: test accuracy %.4f  F %.4f  I %.4f  FII %.4f  (train hidden %.4f, alpha %.2f%s)",
             epoch, row["accuracy"], row["fidelity"], row["interpretability"], row["fii"], row["train_hidden"],
             row["alpha_end"], f", slope {row['slope_end']:.3g}" if model.estimator == "sa" else "")
    return row


def _score(fitter: Evaluator, sampled: Evaluator | None, arrays: dict, baseline: float) -> dict:
    """Test figures of the current weights: thresholded mask (and sampled, if stochastic)."""
    out = fitter.evaluate(arrays)
    row = figures(out["accuracy"], out["hidden"], baseline)
    if sampled is not None:
        s = sampled.evaluate(arrays)
        row.update(accuracy_sampled=s["accuracy"], hidden_sampled=s["hidden"])
    return row


def _val_fii(fitter: Evaluator, val: dict, baseline: float) -> dict:
    """FII of the current weights on the validation split (with the test baseline) and its
    standard error from the binomial spread of the accuracy: what `hns.select=val_fii`
    ranks by, so the test split never chooses the model."""
    n = len(val["x"])
    if not n:
        return {"val_fii": None, "val_fii_se": None}
    out = fitter.evaluate(val)
    fii = figures(out["accuracy"], out["hidden"], baseline)["fii"]
    spread = math.sqrt(out["accuracy"] * (1.0 - out["accuracy"]) / n)
    return {"val_fii": fii, "val_fii_se": out["hidden"] / baseline * spread if baseline else None}


def _per_alpha(model: HideAndSeek, fitter, sampled, test: dict, val: dict, baseline: float, run_: Run,
               final: dict) -> list[dict]:
    """Test figures, validation FII and saved weights of the model as it was when it left
    each alpha, plus the final weights; the model is left with its final weights."""
    rows = []
    kept = model.kept_alphas()
    if kept:
        current = [w.numpy() for w in model.joint_weights]
        for alpha, weights in kept:
            model.set_joint_weights(weights)
            rows.append({"alpha": alpha, **_score(fitter, sampled, test, baseline), **_val_fii(fitter, val, baseline)})
            for part in ("hider", "seeker"):
                path = run_.file("alpha_weights") / f"alpha_{alpha:.2f}_{part}.weights.h5"
                atomic_write(path, lambda tmp, m=getattr(model, part): m.save_weights(str(tmp)))
        model.set_joint_weights(current)
    last = {k: v for k, v in final.items() if not k.startswith("train_") and k not in ("epoch", "slope_end")}
    rows.append({"alpha": last.pop("alpha_end"), **last, **_val_fii(fitter, val, baseline)})
    return rows


def _select(rows: list[dict], how: str) -> dict:
    """The row whose weights become the run's result: the final weights (`last`), or, for
    `val_fii`, the last row (lowest alpha, the final weights last of all) whose
    validation FII is within one standard error of the best: the one-standard-error rule
    (Breiman et al. 1984). Differences smaller than that are noise of the validation split,
    and between equals the longer-trained, more hiding weights win. Without a validation
    split: the final weights."""
    if how == "last" or any(r["val_fii"] is None for r in rows):
        return rows[-1]
    best = max(rows, key=lambda r: r["val_fii"])
    return [r for r in rows if r["val_fii"] >= best["val_fii"] - (best["val_fii_se"] or 0.0)][-1]


def _save(model: HideAndSeek, run_: Run, data: datasets.Dataset, history: list[dict], cfg: DictConfig) -> list[str]:
    for part in ("hider", "seeker"):
        atomic_write(run_.file(f"{part}.keras"), lambda tmp, m=getattr(model, part): m.save(tmp))
    files = ["hider.keras", "seeker.keras", HISTORY, "history.csv"]
    title = f"{cfg.hns.hider}+{cfg.hns.seeker} ({_layer_name(cfg)}) on {data.name}"
    curves_png(history, run_.file("curves.png"), title)
    files.append("curves.png")
    per_class = cfg.hns.figures_per_class
    if per_class:
        classes = set(range(min(data.num_classes, MAX_FIGURE_CLASSES)))
        chosen = np.concatenate([np.flatnonzero(data.y_test == c)[:per_class] for c in sorted(classes)])
        if len(chosen):
            x = data.x_test[chosen]
            a = model.hider(x, training=False)
            mask = np.asarray(model.mask(a, training=False))
            logits = model.classify(x, mask, training=False)
            masks_png(x, mask, data.y_test[chosen], np.argmax(np.asarray(logits), -1), data.class_names,
                      run_.file("masks.png"), title + ": test image | what the seeker saw", per_class)
            files.append("masks.png")
    return files


def _write_rows(path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda tmp: tmp.write_text(buffer.getvalue()))


def _read_rows(path) -> list[dict]:
    """hns_history.csv of an interrupted run (epochs before its last checkpoint)."""
    if not path.exists():
        return []

    def value(text: str):
        if text in ("", "None"):
            return None
        if text in ("True", "False"):
            return text == "True"
        return int(text) if text.isdigit() else float(text)
    with open(path, newline="") as handle:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _print_summary(m: dict, run_: Run) -> None:
    def pct(v):
        return "n/a" if v is None else f"{v:.4f}"
    selected = m.get("selected", "final")  # runs stored before hns.select kept their final weights
    chosen = "the final weights" if selected == "final" else f"the weights of {selected} (chosen on validation)"
    lines = [f"hns_train ({m['layer']}, init {m['init']}, {m['epochs']} epochs), {chosen}: "
             f"test accuracy {pct(m['test_accuracy'])} (seeker alone {pct(m['baseline'])})",
             f"  F {pct(m['fidelity'])}  I {pct(m['interpretability'])}  FIR {pct(m['fir'])}  FII {pct(m['fii'])}"
             f"{'  COLLAPSED' if m['collapsed'] else ''}"]
    if m.get("test_accuracy_sampled") is not None:
        lines.append(f"  sampled mask: accuracy {pct(m['test_accuracy_sampled'])}  hidden {pct(m['interpretability_sampled'])}")
    if m.get("mask_only_accuracy") is not None:
        share = m["mask_only_accuracy"] / m["test_accuracy"] if m["test_accuracy"] else 0.0
        lines.append(f"  the mask alone (kept pixels a constant grey): accuracy {pct(m['mask_only_accuracy'])}, "
                     f"{share:.0%} of the test accuracy: how much the mask's layout tells by itself")
    lines.append(f"  hidden on training batches {pct(m['train_hidden'])}; final alpha {m['final_alpha']:.2f} "
                 f"(FII {pct(m.get('final_fii', m['fii']))}); "
                 f"best FII {pct(m['best_fii'])} at {m['best_fii_at']}")
    if len(m["alphas"]) > 1:
        lines.append("  alpha   acc     F       I       FII     val FII")
        lines += [f"  {r['alpha']:.2f}  {r['accuracy']:.4f}  {pct(r['fidelity'])}  {r['interpretability']:.4f}  "
                  f"{pct(r['fii'])}  {pct(r.get('val_fii'))}" for r in m["alphas"]]
    lines.append(f"artifacts: {run_.dir}")
    print("\n".join(lines), flush=True)
