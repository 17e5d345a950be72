"""Built-in generator backends. They register through the ``seqstudio.backends`` entry-point group."""
