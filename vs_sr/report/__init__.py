"""Reports about the installation: what runs here and what to install."""

from .machine import machine_report

__all__ = ["machine_report"]
