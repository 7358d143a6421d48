"""Meta WhatsApp Cloud API: client, payload builders, webhook models, errors.

This package imports nothing from Litestar, Beanie or our domain models, so it can be
used (and tested) on its own.
"""
