"""Personal models for facial emotion recognition (paper 000, sections 3-4).

    from fer_jax.protocols.personal.study import run_study
    results = run_study(config, workdir)

1. Pre-train twin regressors (valence, arousal; or one joint 2-output net) on the
   AffectNet-like data with `train_and_evaluate`, in workdir/pretrain/<net>
   (resumable like any run). [pretrain.py]
2. Split each net into its frozen conv part and its trainable dense part (the
   model's 'features' / 'head'), extract every personal frame's features once and
   cache them in workdir/features/<net>.npz with a fingerprint of the backbone
   and the data; a cache of another backbone is refused, naming the file.
   [features.py; the personal frames: data.py]
3. Per subject, k folds grouped by clip (`kfold.subject_folds`). Conditions:
   No Transfer (the whole net from random init on the subject's training fold),
   Transfer 0% (the pre-trained net as is), Transfer 100% (its dense part
   fine-tuned on the whole training fold); and the sweep: the dense part
   fine-tuned on a fraction of the training fold chosen by each sampler.
   [data.py: folds; plan.py: the samplers' orders and the models to train]
4. Every trained model of the study is a row of one plan; rows train in chunks
   of stacked models (train/batched.py: vmap over models, scan over steps),
   each chunk saved atomically under workdir/personal/, so a study that is
   stopped resumes with the models it has not finished. [runner.py]
5. RMSE per model, averaged over folds per subject, then mean and spread over
   subjects: results.csv, results.json, models.csv, and plots like the paper's
   Fig. 5 (conditions.png) and Fig. 6 (sweep.png). [report.py; the figures:
   evaluate/plots.py]

`study.py` runs the steps in order; `files.py` holds the atomic writes and the
reads that survive a damaged file.

Several processes (hosts, after `jax.distributed.initialize`, see
launch/personalize.py) run the same study together: pre-training is the
ordinary multi-process train loop; every process loads the personal data;
process 0 extracts the features and writes their cache, which the others then
read (the workdir must be a file system all hosts see, as for the pre-training
checkpoints); the selection orders and the finished models (read from the chunk
files on a resume) are process 0's, broadcast, so every process cuts the same
chunks. Each chunk's models are split over the devices of all processes (each
process builds only its devices' share), the results are all-gathered, and
only process 0 writes chunk files, results, plots and logs (the helpers:
train/distributed.py).

Choices the paper leaves open are config fields (fine-tuning epochs, which
pre-training checkpoint, fold grouping); see configs/personalization/.
"""
