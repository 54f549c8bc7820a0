"""What a person types: the typer app and the commands behind it.

The top wing: it may import every wing, and it alone may use ``hil`` (``demo``, ``hil season``).
"""
