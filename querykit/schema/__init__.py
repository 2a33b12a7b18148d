"""The schema layer: what querykit knows about your Core tables, with no SQL text and no I/O.

The relation graph and its naming rule, and the index helpers. It may import ``codecs``.
"""
