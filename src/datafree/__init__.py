"""Data-free distillation: a student distilled without the teacher's training data, on
inputs rebuilt from the teacher's activation statistics (Lopes, Fenu & Starner 2017) or
its BatchNorm statistics (DeepInversion), or made by a generator trained with it.

Pipeline:
    1. statistics of the teacher's activations per class      statistics.layer_statistics  (taps.ActivationTap)
       and their graph-Fourier variant                         statistics.spectral_statistics, spectral/
                                                               procedures/compute_stats.py, docs/compute_stats.md
    2. targets sampled from per-class Gaussians                gaussian.sample, spectral.sample_spectral_targets
       objectives that compare activations with them           objectives (top_layer, all_layers, all_layers_dropout
                                                               with dropout_chain, spectral_*), batchnorm (no stats)
       image priors and a random view at every step            priors
       inputs optimised from noise until they match            reconstruct.InputOptimizer, reconstruct_classes
                                                               procedures/optimize_dataset.py, docs/optimize_dataset.md,
                                                               docs/spectral.md
    3. the student distilled on the reconstruction             procedures/distill.py distill.data=reconstructed
Or, in one step: a generator and the student trained together  generator (DAFL, adversarial)
                                                               procedures/datafree_distill.py, docs/datafree_distill.md
Figures: plots (mean activations per class, reconstructed samples).
"""
