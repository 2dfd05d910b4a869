"""Data-free distillation (Lopes, Fenu & Starner 2017): a student is distilled on inputs
rebuilt from a teacher's activation statistics, without its training data.

Pipeline:
    1. statistics of the teacher's activations per class      statistics.layer_statistics  (taps.ActivationTap)
       and their graph-Fourier variant                         statistics.spectral_statistics, spectral/
                                                               procedures/compute_stats.py, docs/compute_stats.md
    2. targets sampled from per-class Gaussians                gaussian.sample, spectral.sample_spectral_targets
       objectives that compare activations with them           objectives (top_layer, all_layers, all_layers_dropout
                                                               with dropout_chain, spectral_*)
       inputs optimised from noise until they match            reconstruct.InputOptimizer, reconstruct_classes
                                                               procedures/optimize_dataset.py, docs/optimize_dataset.md,
                                                               docs/spectral.md
    3. the student distilled on the reconstruction             procedures/distill.py distill.data=reconstructed
Figures: plots (mean activations per class, reconstructed samples).
"""
