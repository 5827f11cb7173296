"""The studio: a web page on top of the batch layer where a person uploads a video, watches it
being upscaled, compares before and after, and downloads the result (`vs-sr studio`)."""

from .app import StudioConfig, create_app

__all__ = ["StudioConfig", "create_app"]
