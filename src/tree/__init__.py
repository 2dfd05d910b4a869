"""Soft decision trees (Frosst & Hinton 2017): a network distilled into a tree whose inner
nodes are learned filters and whose leaves are class distributions.

Pipeline (procedures/tree_distill.py, docs/tree_distill.md):
    the tree as one Keras layer                                       models/soft_tree.py
    targets: one-hot, the teacher's softmax at T, or a mix             loss.targets
    path-weighted leaf cross-entropy + the balancing penalty          loss.tree_loss
    does it fit in memory (checked before training)                   memory.check_fits_memory
    accuracy by both prediction rules, agreement, leaves used,        evaluate.evaluate_tree,
    the scikit-learn tree of the same size, one input's decision path evaluate.sklearn_accuracy, evaluate.explain
    the tree, its decision paths, the learning GIF                    plots
"""
