"""The use cases, one module each: create, terminate, read and sweep, plus ``ending``, the
"claim, then end" step that terminate and sweep share. No HTTP and no API Gateway here: they take
domain models and a ``Deadline``, return domain models and raise ``broker.errors``."""
