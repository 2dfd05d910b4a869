"""Knowledge distillation (Hinton, Vinyals & Dean 2015): a student learns from a teacher's
softened outputs as well as from the labels; distill.method chooses the soft term.

Pipeline (procedures/distill.py, docs/distill.md):
    teacher logits, cached once or computed live on each augmented batch  scores.with_teacher_logits
    loss = ce_weight * CE(y, student) + kd_weight * T^2 * D                 loss.method_loss, loss.make_loss
        D = KL(p_T || q_T) (hinton), alpha TCKD + beta NCKD (dkd), Pearson relations (dist)   loss, dkd, dist
        on standardised logits with distill.standardize                     loss.standardized
        plus a term on named layers: FitNets hints, attention transfer        features
    the student trained by the engine's fit loop                           src/fit.py
    test accuracy, agreement with the teacher, kd_gain, gap recovered      scores.test_metrics, scores.gap_recovered
The from-scratch baseline is a plain train run of the student (procedures/train.py).
"""
