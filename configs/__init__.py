"""Configs shipped as package data (``aranews.configs``): read with ``aranews.resources``."""
