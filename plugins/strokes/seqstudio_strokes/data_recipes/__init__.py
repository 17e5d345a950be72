"""The pen-strokes plugin's data recipes (``*.yaml``), shipped as package data and registered for ``seqstudio data``
through the ``seqstudio.recipes`` entry point: a recipe lives with the plugin that reads its data."""
