"""Neural base models (design: lstm-cnn-attention-ensemble.md) over 30 x 40 feature windows.

- :mod:`~titan.models.neural.lstm`: LSTMModel (602,625 parameters), LSTMEnsemble.
- :mod:`~titan.models.neural.cnn`: CNNModel (130,081), MultiScaleCNN.
- :mod:`~titan.models.neural.attention`: MultiHeadAttention, TransformerBlock,
  AttentionModel (414,081 learned positions; 410,241 fixed: the document's figure).
- :mod:`~titan.models.neural.ensemble`: EnsembleModel (1,145,959 / 1,149,799), StackedEnsemble.
- :mod:`~titan.models.neural.model`: `NeuralModel`, the base-model contract adapter
  (scaling, training, calibrated prob_up, return head, persistence).
- :mod:`~titan.models.neural.meta`: `NeuralEnsemble`, the ensemble's adapter.
- :mod:`~titan.models.neural.fitting`: the training loop (pure computation).
- :mod:`~titan.models.neural.registry`: factories by name for `titan.models.registry`.

Pure computation: nothing here touches sockets, clocks, files or loggers.
"""

from titan.models.neural.meta import NeuralEnsemble
from titan.models.neural.model import NeuralModel
from titan.models.neural.registry import NEURAL_FACTORIES, NEURAL_NAMES, build_neural

__all__ = ["NEURAL_FACTORIES", "NEURAL_NAMES", "NeuralEnsemble", "NeuralModel", "build_neural"]
