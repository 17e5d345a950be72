"""``python -m seqstudio`` (what ``torchrun -m seqstudio`` runs)."""

from .cli import main

if __name__ == "__main__":  # guarded: spawned worker processes re-import the main module
    main()
