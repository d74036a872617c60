"""The embedded sample corpus, shipped as package data (``aranews.sample_data``)."""
