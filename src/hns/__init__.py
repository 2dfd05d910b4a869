"""Hide-and-Seek (Alexandridis et al. 2020; Tagaris & Stafylopatis): a hider masks the
input, a seeker classifies what is left, trained together to classify well while hiding
as much as possible; the mask shows what the classifier needs.

Pipeline (procedures/hns_train.py, docs/hns_train.md):
    optional pretraining: the seeker alone, the hider as an autoencoder   pretrain, losses.reconstruction_loss
    hider logits -> binary mask (threshold or sampled, four estimators)   masks
    alpha * CE + (1 - alpha) * kept fraction, alpha lowered on stagnation losses.joint_objective, alpha
    the joint model, its state and the weights kept at every alpha        model.HideAndSeek, model.build_joint_model
    F, I, FIR, FII; per-alpha scores; choice on validation FII            scores
    does the mask encode the class? mask swap, the EVAL-X evaluator       encoding
    masks.png and curves.png                                               plots
The networks themselves are models/hns.py.
"""
