"""Registers the bundle's custom deadline reference with Airflow (see ``pmp.plugin``)."""

from pmp.plugin import PmpPlugin

__all__ = ["PmpPlugin"]
