"""``python -m jaxlm``: the same as the ``jaxlm`` command."""
from jaxlm.cli.main import run

run()
