"""The runner's library: a shared engine, one package per method, and the typed config.

Engine (flat modules here, knowing no method):
    loop       the one epoch loop (progress, chunks of compiled steps, NaN check, history,
               TensorBoard, a checkpoint per epoch, resume) that every training run uses
    progress   the console's progress: a live bar on a terminal, plain lines in a file
    fit        Fitter (compiled steps over arrays, handed to the loop; early stopping) and
               the evaluator; batched inference
    checkpoint what a fit keeps to resume: model, optimizer, epoch and early-stopping state
    optim      the one optimizer factory and the steps-per-epoch rule
    runstore   artifact folders keyed by config hash, atomic writes, DONE markers, locks
    runtime    devices, distribution strategy, seeds, determinism, XLA, precision
    artifacts  loading a model file or run folder, checking it fits the data, naming and
               tapping its layers
    history    history.csv rows, written and read back with their types
    augment    training-time augmentation inside the compiled step
    losses     generic cross-entropy (mixup's mixed labels too), accuracy, agreement, the
               softened KL of two models' outputs, the classifier loss
    plots      the atomic figure saver and generic figures
    tables     the one table formatter (console, markdown, csv) and the summary every
               procedure ends with
    sweep      reading a Hydra sweep folder back
    tracking   the `logger` choice, and mirroring a job's finished runs into it
    run_record what a tracker mirrors of a finished run folder
    mlflow_mirror  logger=mlflow: a run folder as an MLflow run
    wandb_mirror   logger=wandb: a run folder as a Weights & Biases run
    errors     the user-facing error types (a leaf: imports nothing of the project)
    cli        TensorFlow-free command-line help and plugin checks
    schema/    TensorFlow-free typed config: one module per section, with its choices and checks

Methods (each __init__ is a map of its pipeline):
    kd/        knowledge distillation (Hinton et al. 2015)          procedures/distill.py
    datafree/  data-free distillation (Lopes et al. 2017; DeepInversion; DAFL, DFAD)
                                                                    procedures/compute_stats.py, optimize_dataset.py,
                                                                    datafree_distill.py
    hns/       Hide-and-Seek                                        procedures/hns_train.py
    tree/      soft decision trees (Frosst & Hinton 2017)           procedures/tree_distill.py

Import rules (one way only; tests/test_layers.py checks them):
    - the engine imports no method package, no `models`, no `datasets`, no `procedures`;
    - a method package imports the engine, `models` and `src.schema`, never another method
      package, `datasets` or `procedures`;
    - `src.schema` and `src.cli` import no TensorFlow or Keras, directly or through the project;
    - `models` and `datasets` import nothing of the project but `src.errors` and `src.schema`;
    - procedures import each other only through `procedures._upstream` (by name);
    - nothing imports `procedures` or `main.py` except main.py, tests and bench.
"""
