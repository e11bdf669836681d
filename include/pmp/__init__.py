"""Power Market Pipeline: US wholesale power market data into TimescaleDB via Airflow 3."""

__version__ = "0.1.0"
