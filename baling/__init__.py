"""The ``baling`` command: ``up``, ``central``, ``node`` and ``sim``.

It only assembles the packages; every capability lives in its own package.
"""
