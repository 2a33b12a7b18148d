"""The execute layer: running compiled statements on psycopg 3 and decoding their rows.

The pool, plans, prepared statements, COPY, transactions, the query log and error
translation. It imports ``compile`` (the shapes it runs), ``codecs`` and the build
layer's statement types.
"""
