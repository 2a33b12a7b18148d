"""The build layer: immutable query builders that turn into Core statements.

select / insert / update / delete, compound queries, operators, functions, raw SQL,
nested ``find_many``/``include`` specs, and the vector, jsonb and full-text helpers.
It imports ``schema`` and ``codecs``; it never renders SQL text itself and never opens
a connection.
"""
