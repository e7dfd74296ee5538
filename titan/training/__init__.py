"""Offline training for the base models: walk-forward evaluation, the on-disk model
registry, reports and background retraining (see docs/neural.md).

- :mod:`titan.training.data`: stored series -> windows, labels, returns.
- :mod:`titan.training.fitting`: build and fit any base model by name.
- :mod:`titan.training.walkforward`: purged walk-forward folds and their scores.
- :mod:`titan.training.online`: the TransformerFusion replayed over the folds' predictions.
- :mod:`titan.training.registry`: versioned, checksummed, atomic checkpoints per model.
- :mod:`titan.training.report`: Markdown + JSON + loss-curve PNG.
- :mod:`titan.training.background`: retrain off the event loop, keep only winners.
- :mod:`titan.training.pipeline`: what `titan train` runs.
"""
