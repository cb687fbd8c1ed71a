"""Price table and exact cost of one LLM call (being split into modules; see ``table.py``)."""

from .table import Cost, Price, PriceTable, PriceTier

__all__ = ["Cost", "Price", "PriceTier", "PriceTable"]
