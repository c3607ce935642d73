"""dlref: verified JAX reference implementations of deep-learning building blocks."""

__version__ = "0.1.0"

__all__: list[str] = []
