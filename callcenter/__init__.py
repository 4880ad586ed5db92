"""callcenter: the call-center engine for a public-utility service hotline."""

__version__ = "0.1.0"
