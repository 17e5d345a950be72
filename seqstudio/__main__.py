"""``python -m seqstudio`` (what ``torchrun -m seqstudio`` runs)."""

from .cli import main

main()
