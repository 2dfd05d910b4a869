"""The summary an hns_train run prints: a row per weights (the seeker alone, every kept
alpha, the final ones, EVAL-X on the result's masks and on code-free masks as sparse), and
notes on what the masks encode (src/hns/encoding.py)."""
from __future__ import annotations


def summary(metrics: dict) -> tuple[list[dict], list[str]]:
    """The seeker alone, the weights kept at every alpha and the final ones (the result
    marked), EVAL-X on the result's masks; notes on the result and what its masks encode."""
    m = metrics
    rows = [{"weights": "seeker alone", "alpha": None, "test acc": m["baseline"]}]
    rows += [_weights_row(m, i) for i in range(len(m["alphas"]))]
    if m.get("evalx_fii") is not None:
        rows += [{"weights": "EVAL-X evaluator, whole images", "test acc": m["evalx_whole_accuracy"]},
                 {"weights": "EVAL-X evaluator, the result's masks", "test acc": m["evalx_accuracy"],
                  "F": m["evalx_fidelity"], "I": m["interpretability"], "FII": m["evalx_fii"]},
                 {"weights": "EVAL-X evaluator, code-free masks as sparse", "test acc": m["evalx_control_accuracy"],
                  "F": m["evalx_control_fidelity"], "FII": m["evalx_control_fii"]}]
    return rows, _notes(m)


def _notes(m: dict) -> list[str]:
    """The result, and how much its masks tell by themselves (src/hns/encoding.py)."""
    chosen = "the final weights" if m["selected"] == "final" else \
        f"the weights of {m['selected']} (chosen on validation)"
    share = m["mask_only_accuracy"] / m["test_accuracy"] if m["test_accuracy"] else 0.0
    notes = [f"hns_train ({m['layer']}, init {m['init']}, {m['epochs']} epochs): the result is {chosen}"
             f"{', COLLAPSED' if m['collapsed'] else ''}; hidden on training batches {_value(m['train_hidden'])}",
             f"the mask alone (kept pixels a constant grey): accuracy {_value(m['mask_only_accuracy'])} (chance "
             f"{_value(m['chance_accuracy'])}; a code-free mask as sparse, on the object: "
             f"{_value(m.get('support_mask_only_accuracy'))}), {share:.0%} of the test accuracy: how much the mask's "
             "layout tells by itself",
             f"an image seen through another class's mask: classified as the mask's class "
             f"{_value(m['swap_mask_class'])}, as its own {_value(m['swap_image_class'])} (code-free masks: "
             f"{_value(m.get('support_swap_mask_class'))} / {_value(m.get('support_swap_image_class'))})"]
    if m.get("evalx_fii") is not None:
        notes.append(f"EVAL-X never saw a hider's mask, so it reads no code: its FII is the figure to trust; its F "
                     f"on the result's masks minus its F on code-free masks as sparse: "
                     f"{m['evalx_fidelity_vs_control']:+.4f} (below 0: the masks show less evidence than random "
                     f"pixels of the object)")
    return notes


def _weights_row(m: dict, index: int) -> dict:
    """One row of m["alphas"]: the weights kept when alpha was left, or the final ones."""
    r, final = m["alphas"][index], index == len(m["alphas"]) - 1
    label = "final weights" if final else f"alpha {r['alpha']:.2f}"
    chosen = m["selected"] == ("final" if final else label)
    row = {"weights": label + (" (the result)" if chosen else ""), "alpha": f"{r['alpha']:.2f}",
           "test acc": r["accuracy"], "F": r["fidelity"], "I": r["interpretability"], "FIR": r["fir"], "FII": r["fii"],
           "val FII": r.get("val_fii")}
    if m["test_accuracy_sampled"] is not None:
        row.update({"sampled acc": r.get("accuracy_sampled"), "sampled I": r.get("hidden_sampled")})
    return row


def _value(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"
