"""``python -m liverfib.cli``."""

from liverfib.cli import main

main()
