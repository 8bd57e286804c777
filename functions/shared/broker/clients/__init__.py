"""Adapters of the upstream APIs. They speak HTTP and raise ``broker.errors`` domain errors."""
