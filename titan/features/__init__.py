"""Rolling feature layer: 40 scale-free features per candle, batch and streaming.

- :mod:`titan.features.spec`: the feature set, parameters, normalisation and warm-ups.
- :mod:`titan.features.batch`: pure functions over whole series (TA-Lib + own kernels).
- :mod:`titan.features.streaming`: per-symbol incremental state, one candle at a time.
- :mod:`titan.features.buffers`: bounded per-symbol rings of feature rows for models.

Pure computation: nothing here touches sockets, clocks, files or loggers.
"""

from titan.features.batch import compute_features, normalise, raw_indicators
from titan.features.buffers import FeatureBuffers
from titan.features.frame import feature_frame, feature_matrix
from titan.features.spec import FEATURE_NAMES, NUM_FEATURES, WARMUP, WARMUPS
from titan.features.streaming import StreamingFeatures

__all__ = [
    "FEATURE_NAMES",
    "NUM_FEATURES",
    "WARMUP",
    "WARMUPS",
    "FeatureBuffers",
    "StreamingFeatures",
    "compute_features",
    "feature_frame",
    "feature_matrix",
    "normalise",
    "raw_indicators",
]
