"""seqstudio's shipped models, as package data: one folder per model in the exported layout
(``seqstudio.export``), found through the ``seqstudio.models`` entry point (``seqstudio.models``).

Size budget: 6 MB for all the weights together (half precision; ``tests/test_models.py`` checks it). Each
folder's MODEL.md says how the model was trained; ``make models`` trains them all again and compares.
"""
