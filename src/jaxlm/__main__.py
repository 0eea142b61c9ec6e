"""``python -m jaxlm``: the same as the ``jaxlm`` command."""
from jaxlm.cli import run

run()
