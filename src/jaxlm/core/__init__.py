"""Pure numerical core of jaxlm: no I/O, no sklearn, no plotting.

Imports flow one way: nothing in ``jaxlm.core`` imports any other part of jaxlm.
"""
