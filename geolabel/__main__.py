"""``python -m geolabel`` runs the CLI."""

from geolabel.cli import main

main(prog_name="geolabel")
