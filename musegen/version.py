"""musegen's version (`musegen.__version__`): a module of its own, so code that records it (the
tokenizer's config) needs no import of the package front, which loads the Studio lazily."""

__version__ = "0.1.0"
