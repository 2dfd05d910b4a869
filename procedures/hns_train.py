"""hns_train: Hide-and-Seek (Alexandridis et al., arXiv 2005.00130): a hider masks the
input, a seeker classifies what is left; both are trained together to classify well
while hiding as much of the input as possible.

    python main.py procedure=hns_train dataset=fashion_mnist
    python main.py procedure=hns_train hns.stochastic=true hns.estimator=sa hns.rate=0.1 hns.alpha=0.7
    python main.py procedure=hns_train hns.init=pretrained_hider     # pretrains the hider first if needed
    python main.py -m procedure=hns_train hns.estimator=st1,st2,sa,reinforce seed=0,1,2,3,4

Artifacts: <runs>/<dataset>/hns_train/<hider>+<seeker>-<layer>-<hash>, the joint model
(hider.keras, seeker.keras, history.csv with the per-epoch test scores, metrics.json with a row
per alpha and the encoding diagnostics, masks.png, curves.png, modes.png once the other
hns.mode's run is finished, alpha_weights/); <runs>/<dataset>/hns_{seeker,hider,evalx}/...,
the pretraining stages (src/hns/pretrain.py), prerequisites found in the store or made first.
The method: src/hns and docs/hns_train.md.
"""
from __future__ import annotations

import logging

from omegaconf import DictConfig

import datasets
from procedures._inputs import data_key, load_data, optimizer_for
from procedures._upstream import upstream, upstream_config, upstream_run
from src import runtime
from src.artifacts import load_model, resolve_model_file
from src.fit import Evaluator, Fitter
from src.hns.encoding import diagnostics
from src.hns.model import HideAndSeek, build_joint_model, slope_rate
from src.hns.plots import run_figures
from src.hns.pretrain import Toolkit, run_key, stages
from src.hns.scores import choose, chosen_figures, epoch_scorer, history_figures
from src.hns.summary import summary as run_summary
from src.losses import classifier_loss
from src.optim import steps_per_epoch
from src.runstore import Run, file_digest, locate
from src.schema.hns import HNS_MODES, binary_layer, layer_name, mode_applies, pretrained_parts
from src.tables import print_summary

log = logging.getLogger(__name__)
REPORT = {
    "hns_train": {
        "headline": "fii",
        "settings": ["hns.mode", "hns.hider", "hns.seeker", "hns.stochastic", "hns.estimator", "hns.rate", "hns.alpha",
                     "hns.init", "train.epochs", "train.batch_size"],
        "metrics": ["val_fii", "fii", "test_accuracy", "baseline", "fidelity", "interpretability", "fir", "collapsed",
                    "mask_only_accuracy", "chance_accuracy", "support_mask_only_accuracy", "swap_mask_class",
                    "swap_image_class", "support_swap_mask_class", "support_swap_image_class", "evalx_fii",
                    "evalx_accuracy", "evalx_fidelity", "evalx_control_fidelity", "evalx_fidelity_vs_control",
                    "evalx_control_fii", "selected", "final_fii", "test_accuracy_sampled",
                    "interpretability_sampled", "train_hidden", "final_alpha", "epochs"]},
    "hns_seeker": {"settings": ["hns.seeker", "train.epochs", "train.batch_size"],
                   "metrics": ["val_accuracy", "test_accuracy", "epochs", "train_seconds"]},
    "hns_hider": {"settings": ["hns.hider", "hns.mask_channels", "train.epochs"],
                  "metrics": ["test_bce", "test_mse", "epochs"]},
    "hns_evalx": {"settings": ["hns.seeker", "hns.evalx_keep", "seed", "train.epochs"],
                  "metrics": ["test_accuracy", "test_accuracy_random_masks", "epochs", "train_seconds"]},
}
ADAPTIVE_KEYS = ("alpha_step", "alpha_min", "monitor", "patience", "smoothing", "min_delta", "keep_alpha_weights",
                 "select")
STAGES = stages(Toolkit(load_data, data_key, optimizer_for, lambda *args: upstream("train").fit_classifier(*args)))


def stage_config(cfg: DictConfig, part: str) -> DictConfig:
    """The config of the pretraining stage `part` ("seeker", "hider", "evalx", "judge") of cfg."""
    return upstream_config(cfg, "hns_train", STAGES[part].changes(cfg))


def pretrained_artifact(cfg: DictConfig, part: str) -> Run:
    """Where the pretrained `part` for cfg lives."""
    return STAGES[part].artifact(stage_config(cfg, part))


def pretrained_run(cfg: DictConfig, part: str, why: str) -> Run:
    """The finished pretrained `part` for cfg, made first when missing (auto_prereqs=true)."""
    return upstream_run(STAGES[part], stage_config(cfg, part), why, STAGES[part].without)


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
    key = {"procedure": "hns_train", "hns": settings, **run_key(cfg, data_key(cfg))}
    key.update({f"{part}_from": _source_id(cfg, part) for part in pretrained_parts(h)})
    if h.evalx:  # the encoding figures are scored by this evaluator
        key["evalx_from"] = pretrained_artifact(cfg, "evalx").hash
    if h.mode == "realx":  # the seeker and the baseline are the judge's
        key["seeker_from"] = key["baseline"] = pretrained_artifact(cfg, "judge").hash
    else:
        key["baseline"] = h.baseline if h.baseline is not None else _source_id(cfg, "seeker")
    name = f"{h.hider}+{h.seeker}-{layer_name(h)}"
    return locate(cfg.paths.runs, cfg.dataset.name, "hns_train", name, key)


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    out = artifact(cfg)
    metrics = out.produce(cfg, lambda: _joint(cfg, out), f"hns_train on {cfg.dataset.name}")
    print_summary(*summary(cfg, metrics), out.dir)
    return metrics


def summary(cfg: DictConfig, metrics: dict) -> tuple[list[dict], list[str]]:
    """The run's table and notes (src/hns/summary.py)."""
    return run_summary(metrics)


def _baseline(cfg: DictConfig, data: datasets.Dataset) -> tuple[float, str]:
    """Test accuracy of the seeker alone: hns.baseline, else hns.seeker_path evaluated here,
    else the store's pretrained seeker (trained first when missing)."""
    h = cfg.hns
    if h.mode == "realx":
        judge = pretrained_run(cfg, "judge", "hns.mode=realx (the frozen seeker)")
        return float(judge.metrics()["test_accuracy"]), str(judge.dir)
    if h.baseline is not None:
        return float(h.baseline), "hns.baseline"
    if h.seeker_path:
        model = load_model(h.seeker_path, "seeker")
        return Evaluator(classifier_loss(model)).evaluate(data.test)["accuracy"], str(h.seeker_path)
    seeker = pretrained_run(cfg, "seeker", "the fidelity baseline (F = accuracy / seeker's accuracy)")
    return float(seeker.metrics()["test_accuracy"]), str(seeker.dir)


def _joint_model(cfg: DictConfig, data: datasets.Dataset) -> tuple[HideAndSeek, dict]:
    """The joint model for cfg, from the pretrained parts hns.init names (and, for realx,
    the judge); returns it and where its parts came from."""
    h = cfg.hns
    start = {f"{part}_from": h[f"{part}_path"] or pretrained_run(cfg, part, f"hns.init={h.init}").dir
             for part in pretrained_parts(h)}
    if h.mode == "realx":
        start["judge_from"] = pretrained_run(cfg, "judge", "hns.mode=realx (the frozen seeker)").dir
    steps = steps_per_epoch(len(data.x_train), cfg.train.batch_size, cfg.train.max_steps)
    model = build_joint_model(h, data.input_shape, data.num_classes, steps, cfg.seed, **start)
    seeker = f"{start['judge_from']} (frozen)" if h.mode == "realx" else str(start.get("seeker_from", "scratch"))
    return model, {"hider_from": str(start.get("hider_from", "scratch")), "seeker_from": seeker}


def _joint(cfg: DictConfig, out: Run) -> dict:
    data = load_data(cfg)
    baseline, baseline_source = _baseline(cfg, data)
    model, sources = _joint_model(cfg, data)
    fitter = Fitter(model, model.loss_fn, optimizer_for(cfg, len(data.x_train)),
                    variables=model.trainable_variables, jit_compile=runtime.use_xla(cfg))
    sampled = Evaluator(model.sampled_fn) if model.estimator else None
    result = fitter.fit(data.train, epochs=cfg.train.epochs, batch_size=cfg.train.batch_size, seed=cfg.seed, run=out,
                        val=data.val, max_steps=cfg.train.max_steps,
                        on_epoch_end=epoch_scorer(model, fitter, sampled, data.test, baseline))
    chosen, rows = choose(model, fitter, sampled, data.test, data.val, baseline, result.history, cfg.hns.select,
                          on_kept=lambda alpha: _save_alpha_weights(model, out, alpha))
    _save(cfg, out, model, data, result.history)
    metrics = {**chosen_figures(chosen, rows), **_encoding(cfg, model, data), **history_figures(result.history, rows),
               "baseline": baseline, "baseline_source": baseline_source, **sources, "alphas": rows,
               "layer": layer_name(cfg.hns), "init": cfg.hns.init, "train_seconds": result.seconds,
               "resumed_from_epoch": result.resumed_from, "hider_params": int(model.hider.count_params()),
               "seeker_params": int(model.seeker.count_params()), "train_examples": len(data.x_train)}
    out.finish(metrics)
    return metrics


def _encoding(cfg: DictConfig, model: HideAndSeek, data: datasets.Dataset) -> dict:
    """The encoding diagnostics of the chosen weights on the test split, with EVAL-X's
    scores unless hns.evalx=false (src/hns/encoding.py)."""
    if not cfg.hns.evalx:
        return diagnostics(model, data.test, data.num_classes, cfg.seed)
    evalx = pretrained_run(cfg, "evalx", "the EVAL-X score (hns.evalx=true)")
    evaluator = load_model(evalx.dir, "EVAL-X evaluator")
    return {**diagnostics(model, data.test, data.num_classes, cfg.seed, evaluator, evalx.metrics()["test_accuracy"]),
            "evalx_run": str(evalx.dir)}


def _save_alpha_weights(model: HideAndSeek, out: Run, alpha: float) -> None:
    for part in ("hider", "seeker"):
        out.write(f"alpha_weights/alpha_{alpha:.2f}_{part}.weights.h5",
                  lambda tmp, m=getattr(model, part): m.save_weights(str(tmp)))


def _save(cfg: DictConfig, out: Run, model: HideAndSeek, data: datasets.Dataset, history: list[dict]) -> None:
    """The two parts (hider.keras, seeker.keras) and the figures (src/hns/plots.run_figures)."""
    out.save_model(model.hider, "hider.keras")
    out.save_model(model.seeker, "seeker.keras")
    title = f"{cfg.hns.hider}+{cfg.hns.seeker} ({layer_name(cfg.hns)}) on {data.name}"
    others = _other_mode_hider(cfg) if cfg.hns.figures_per_class else None
    run_figures(model, history, data.test, data.class_names, out.dir, title, cfg.hns.figures_per_class,
                mode=cfg.hns.mode, others=others)


def _other_mode_hider(cfg: DictConfig) -> dict:
    """{mode: hider} of the finished run of the other hns.mode with these settings, if that
    mode accepts them (realx refuses a seeker of its own) and the run exists."""
    other = next(mode for mode in HNS_MODES if mode != cfg.hns.mode)
    if not mode_applies(cfg.hns, other):
        return {}
    finished = artifact(upstream_config(cfg, "hns_train", {"hns.mode": other}))
    return {other: load_model(finished.file("hider.keras"), f"the {other} run's hider")} if finished.is_done() else {}
