"""What the Lambdas run: both handlers and exactly what they import, zipped whole into each function's package
(:mod:`recsys.streaming.packaging`) with the pinned dependencies of ``lambda-requirements.txt``. Nothing here imports
outside this package, the standard library and those dependencies (``tests/unit/test_layers.py``)."""

#: Dimensions of the item and user embeddings (the model's output, the vector columns, the search keys).
EMBEDDING_DIM = 32
