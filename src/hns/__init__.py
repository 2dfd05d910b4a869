"""Hide-and-Seek (Alexandridis et al. 2020; Tagaris & Stafylopatis): a hider masks the
input, a seeker classifies what is left, trained together to classify well while hiding
as much as possible; the mask shows what the classifier needs.

Pipeline (procedures/hns_train.py, docs/hns_train.md):
    pretraining stages: the seeker alone, the hider as an autoencoder,   pretrain (SeekerStage, HiderStage,
    the random-mask evaluators (EVAL-X, realx's judge)                     EvaluatorStage), losses.reconstruction_loss
    hider logits -> binary mask (threshold or sampled, four estimators)   masks
    alpha * CE + (1 - alpha) * kept fraction, alpha lowered on stagnation losses.joint_objective, alpha
    the joint model from fresh or pretrained parts, its state and the     model.HideAndSeek, model.build_joint_model
    weights kept at every alpha
    F, I, FIR, FII; test scores per epoch; per-alpha scores; choice on    scores (epoch_scorer, choose)
    validation FII
    does the mask encode the class? mask only, mask swap, code-free       encoding.diagnostics
    control, EVAL-X
    curves.png, masks.png and modes.png                                    plots.run_figures
The networks themselves are models/hns.py.
"""
