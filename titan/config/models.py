"""`[models]`: the base models and how the engine refits them walk-forward.

The engine refits every enabled model every ``refit_every`` candles on the trailing
``train_window`` candles whose labels have resolved (past data only), once at least
``min_train`` such samples exist. Labels look ``horizon`` candles ahead; the ML
classifier's chronological validation tail is separated from its training rows by
`titan.models.dataset.purge_gap` samples.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from titan.config.base import Section

ModelName = Literal[
    "trend_vic",
    "oscillator",
    "volume_metrix",
    "ml_classifier",
    # neural models (architectures and recipe in `[training.neural]`; refit in the
    # background in live runs, see `training.retrain`)
    "lstm",
    "cnn",
    "attention",
    "neural_ensemble",
    "multiscale_cnn",
]
DEFAULT_MODELS: tuple[ModelName, ...] = (
    "trend_vic",
    "oscillator",
    "volume_metrix",
    "ml_classifier",
)


class CalibrationConfig(Section):
    """The rule models' logistic calibration (score -> prob_up)."""

    l2: float = Field(1e-3, ge=0.0, description="L2 penalty on the standardised slope")
    min_samples: int = Field(100, ge=2, description="labelled samples needed to fit")


class LightGBMConfig(Section):
    """ML_Classifier: LightGBM on the flattened feature window."""

    lookback: int = Field(3, ge=1, description="timesteps (lags 0..lookback-1) per window")
    n_estimators: int = Field(200, ge=1, description="boosting rounds (upper bound)")
    learning_rate: float = Field(0.05, gt=0.0)
    num_leaves: int = Field(15, ge=2)
    min_data_in_leaf: int = Field(100, ge=1)
    feature_fraction: float = Field(0.8, gt=0.0, le=1.0)
    bagging_fraction: float = Field(0.8, gt=0.0, le=1.0)
    bagging_freq: int = Field(1, ge=0)
    lambda_l2: float = Field(1.0, ge=0.0)
    valid_fraction: float = Field(
        0.2, ge=0.0, lt=1.0, description="newest fraction held out for early stopping"
    )
    early_stopping_rounds: int = Field(
        10, ge=1, description="rounds without a better tail log loss before stopping"
    )
    max_bin: int = Field(31, ge=2, description="histogram bins per feature")
    bin_construct_sample_cnt: int = Field(
        1000, ge=1, description="training rows sampled to place the bin edges"
    )
    refit_on_all: bool = Field(
        False, description="after early stopping, retrain on all rows (about twice the cost)"
    )
    calibrate: bool = Field(
        False, description="logistic calibration on the validation tail instead of a full refit"
    )
    min_samples: int = Field(500, ge=2, description="labelled samples needed to fit")
    threads: int = Field(1, ge=1, description="LightGBM threads (1 is fastest on 2 cores)")
    seed: int = 0


class ModelsConfig(Section):
    enabled: tuple[ModelName, ...] = DEFAULT_MODELS
    horizon: int = Field(1, ge=1, description="candles ahead the label looks")
    refit_every: int = Field(10_080, ge=1, description="candles between walk-forward refits")
    train_window: int = Field(10_080, ge=2, description="trailing candles trained on")
    min_train: int = Field(2000, ge=2, description="labelled samples before the first fit")
    extra_purge: int = Field(0, ge=0, description="samples added to the derived purge gap")
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    lightgbm: LightGBMConfig = Field(default_factory=LightGBMConfig)

    @field_validator("enabled")
    @classmethod
    def _unique(cls, value: tuple[ModelName, ...]) -> tuple[ModelName, ...]:
        if len(set(value)) != len(value):
            raise ValueError("models.enabled must not repeat a model")
        return value

    @model_validator(mode="after")
    def _min_train_fits(self) -> ModelsConfig:
        if self.min_train > self.train_window:
            raise ValueError(
                f"models.min_train ({self.min_train}) exceeds "
                f"models.train_window ({self.train_window})"
            )
        return self
