"""``python -m avaturn_broker_cli``: the same as the ``avaturn-broker`` console script."""

from avaturn_broker_cli.main import app

app(prog_name="avaturn-broker")
