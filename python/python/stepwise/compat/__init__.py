"""Drop-in replacements for other libraries' APIs.

>>> from stepwise.compat.math_verify import parse, verify
>>> verify(parse("$\\frac12$"), parse("0.5"))
True
"""
