"""Which EVAL-X evaluator tells an encoding mask from a faithful one: trained on keep rate
1/2 (the method's), or on a range of keep rates that covers a hider's sparsity.

What it measures, on the validation split (the test split is for final figures), for
each evaluator (hns.evalx_keep) and seed (hns.evalx_seed = 0..n-1, the store's stages, so
a later `hns.evalx_seed=null` table over the same seeds reuses them):
  faithful  code-free masks (src.hns.encoding.support_masks): a fixed share of pixels,
            at random on the object, no code
  encoding  one fixed pattern per class, the same share of pixels at random positions
            anywhere in the image: the class is in where the mask keeps pixels, the
            image's own evidence is not looked for
  F         the evaluator's accuracy over its accuracy on whole images
  separation  F(faithful) - F(encoding), per seed; and the paired difference of the
            separations of the two evaluators (same seed), with 95% intervals over seeds

Usage (from the repo root; trains 2 x --seeds evaluators unless the store has them):
  python bench/evalx_separation.py [--experiment hns_mnist_sample] [--seeds 5] \
      [--ranged 0.02,0.5] [--shares 0.02,0.07] [overrides...]
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from bench import _timing as T  # noqa: E402
from procedures import hns_train  # noqa: E402
from procedures._inputs import load_data  # noqa: E402
from src.artifacts import load_model  # noqa: E402
from src.hns.encoding import _predict, support_masks  # noqa: E402
from src.schema import register, validate  # noqa: E402
from src.stats import seed_interval  # noqa: E402


def config(experiment: str, keep: str, seed: int, overrides: list[str]):
    register()
    with initialize_config_dir(config_dir=os.path.join(ROOT, "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={experiment}", f"hns.evalx_keep=[{keep}]",
                                                       f"hns.evalx_seed={seed}", *overrides])
    validate(cfg)
    return cfg


def share_masks(x: np.ndarray, share: float) -> np.ndarray:
    """Masks keeping round(share * pixels) of every image: the count support_masks draws on."""
    masks = np.zeros(x.shape[:3] + (1,), np.float32).reshape(len(x), -1)
    masks[:, :int(round(share * masks.shape[1]))] = 1.0
    return masks.reshape(x.shape[:3] + (1,))


def encoding_masks(y: np.ndarray, shape: tuple, classes: int, share: float, seed: int) -> np.ndarray:
    """One pattern per class: round(share * pixels) positions drawn at random in the image."""
    pixels, rng = shape[0] * shape[1], np.random.default_rng([seed, 5])
    patterns = np.zeros((classes, pixels), np.float32)
    for k in range(classes):
        patterns[k, rng.choice(pixels, int(round(share * pixels)), replace=False)] = 1.0
    return patterns[y].reshape((len(y), *shape[:2], 1))


def fidelity(evaluator, x: np.ndarray, y: np.ndarray, masks: np.ndarray, whole: float) -> float:
    predicted = _predict(lambda rows: evaluator(x[rows] * masks[rows], training=False), len(x))
    return float(np.mean(predicted == y)) / whole


def interval(values: list[float]) -> str:
    s = seed_interval(values)
    return f"{s['mean']:+.3f} [{s['low']:+.3f}, {s['high']:+.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="hns_mnist_sample")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ranged", default="0.02,0.5", help="the ranged evaluator's hns.evalx_keep")
    parser.add_argument("--shares", default="0.02,0.07", help="shares of pixels kept by the masks scored")
    args, overrides = parser.parse_known_args()
    T.header("EVAL-X: faithful against encoding masks, by the evaluator's keep rates",
             f"{args.experiment}, validation split, seeds 0-{args.seeds - 1}, {' '.join(overrides)}")
    shares = [float(s) for s in args.shares.split(",")]
    separation: dict[tuple[str, float], list[float]] = {}
    for keep in ("0.5", args.ranged):
        for seed in range(args.seeds):
            cfg = config(args.experiment, keep, seed, overrides)
            data = load_data(cfg)
            run = hns_train.pretrained_run(cfg, "evalx", "the separation bench")
            evaluator = load_model(run.dir, "EVAL-X evaluator")
            x, y = data.val["x"], data.val["y"]
            whole = float(np.mean(_predict(lambda rows: evaluator(x[rows], training=False), len(x)) == y))
            for share in shares:
                faithful = fidelity(evaluator, x, y, support_masks(x, share_masks(x, share), seed), whole)
                coded = fidelity(evaluator, x, y, encoding_masks(y, x.shape[1:], data.num_classes, share, seed), whole)
                separation.setdefault((keep, share), []).append(faithful - coded)
                print(f"  keep {keep:>9}  seed {seed}  whole {whole:.3f}  share {share:.2f}: F faithful "
                      f"{faithful:.3f}, encoding {coded:.3f}, separation {faithful - coded:+.3f}", flush=True)
    print("separation F(faithful) - F(encoding), mean [95% interval] over seeds:")
    for share in shares:
        plain, ranged = separation[("0.5", share)], separation[(args.ranged, share)]
        paired = [r - p for r, p in zip(ranged, plain)]
        print(f"  share {share:.2f}: keep 0.5 {interval(plain)}; keep {args.ranged} {interval(ranged)}; "
              f"ranged - 0.5 (paired by seed) {interval(paired)}")


if __name__ == "__main__":
    main()
