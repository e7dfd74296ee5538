"""TransformerFusion: the online-learning meta-model over the base models' outputs.

`TransformerFusion(config, n_models, context_features=(), extra_features=())` turns each
model's `ModelOutput` into a token (prob_up, its logit, confidence, the named extras), adds a
learned per-model identity embedding, an optional context token from a features dict (a
fixed, ordered tuple of names; missing keys are masked to 0 with a presence flag) and a
learned decision token; `TransformerFusionLayer` blocks (pre-LN multi-head self-attention +
ReLU feed-forward, residuals) mix them. The output logit is the attention-weighted mean of
the models' own logits (so the attention weights are exactly how much each model counts)
plus a zero-initialised correction from the decision token's state: untrained, the fusion
answers with the models' consensus rather than a random guess. Inputs
are standardised with statistics of the training region of the buffer (`scaling`).

Predicting
    `forward(outputs, features) -> (p_up, p_down)`; `forward_batch(prob_up (B, M),
    confidence (B, M), extras (B, M, E) | None, context (B, C) | None) -> FusionBatch(prob_up
    (B,), attention (B, M))`. Row i of a batch equals the single forward of row i bit for bit
    (inference pads tiny batches to 8 rows and avoids ops whose rounding depends on the
    batch size). Between training steps the output is a pure function of the inputs.

Fallback (the simple average of the available models' prob_up, NaN-masked; all missing ->
0.5 with zero attention) when disabled, before `min_samples` outcomes, while the network's
latest validation loss does not beat the simple average's on the same held-out samples
(`require_beating_average`, on by default), or when the model count differs from
`n_models`; `fallback_reason` says which, and each reason is logged once as a
`fusion_fallback` event. A missing (NaN) model is masked out of attention, never
treated as 0.5.

Learning
    `update(outputs, features, "UP" | "DOWN")` or `update_batch(...)` (same resulting state as
    the one-by-one calls) appends to a FIFO of `buffer_size` samples; after every
    `train_every`-th sample one mini-batch of `batch_size` is trained, from the moment the
    training region holds a mini-batch (also during the `min_samples` warm-up, so the model
    is trained when it takes over). Anything but "UP"/"DOWN"
    raises ValueError; a wrong model count is counted in `samples_rejected` and logged once;
    a sample with every model missing is skipped (`samples_skipped`).

The seven overfitting defences
    1. dropout (`dropout`) on embeddings, attention output and feed-forward output, training
       only, drawn from the fusion's own seeded generator;
    2. L2: AdamW decoupled weight decay `l2_lambda` on weight matrices (not biases, norms,
       embeddings);
    3. early stopping on validation loss, checked every `val_every` steps once the fusion
       is active and the validation window holds a mini-batch: after
       `early_stopping_patience` validations without an `early_stopping_delta` improvement
       it restores the best weights, sets `is_overfitting` and pauses training until the
       validation window has been replaced by new samples, then resumes with a fresh
       baseline (`titan.fusion.schedule`);
    4. linear LR warm-up from 0 over `warmup_steps`;
    5. cosine decay over `lr_decay_steps` to `min_lr_ratio * learning_rate`, then flat;
    6. global gradient-norm clipping to `gradient_clip`;
    7. a chronological validation split: the newest `val_split` of the buffer, never sampled
       for training (`titan.fusion.buffer`).

`get_training_stats()`, `get_attention_weights()` (mean decision attention per model over
the newest buffered samples), `get_last_attention_weights()`, `save(dir)`/`load(dir)`
(`titan.fusion.persistence`).
"""

from titan.fusion.fusion import FusionBatch, TrainingStats, TransformerFusion, resolve_device
from titan.fusion.layer import TransformerFusionLayer
from titan.fusion.network import FusionNetwork
from titan.fusion.persistence import CheckpointError

__all__ = [
    "CheckpointError",
    "FusionBatch",
    "FusionNetwork",
    "TrainingStats",
    "TransformerFusion",
    "TransformerFusionLayer",
    "resolve_device",
]
