"""Trading: orders and fills, sizing, risk limits, portfolio, brokers and the Trader.

The Trader turns forecasts into orders through position sizing and risk limits, sends them
to a `Broker` (the simulated `SimBroker` for backtest and paper; a live ccxt broker
implements the same protocol) and books the fills in a `Portfolio`.
"""

from titan.trading.broker import Broker, BrokerError
from titan.trading.portfolio import Portfolio, Position, RoundTrip
from titan.trading.risk import RiskLimits, RiskReason, RiskVerdict
from titan.trading.sim_broker import SimBroker
from titan.trading.sizing import target_fraction, target_quantity, valid_forecast
from titan.trading.trader import Trader, TradeReport
from titan.trading.types import Fill, Order, order_id

__all__ = [
    "Broker",
    "BrokerError",
    "Fill",
    "Order",
    "Portfolio",
    "Position",
    "RiskLimits",
    "RiskReason",
    "RiskVerdict",
    "RoundTrip",
    "SimBroker",
    "TradeReport",
    "Trader",
    "order_id",
    "target_fraction",
    "target_quantity",
    "valid_forecast",
]
