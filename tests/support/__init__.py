"""Helpers the tests share: waiting, logging in, registering, node settings, topics.

``central.py`` builds central's services as the API tests use them (and the
sender a domain service is given); ``console.py`` signs in on the console in
a browser.

Import the module you need (``from support.waiting import wait_until``);
``tests/`` is on ``sys.path`` because its ``conftest.py`` lives there
(pytest's default ``prepend`` import mode), and mypy finds it the same way.
Fixtures stay in ``tests/conftest.py``; nothing here starts a process.
"""
