"""The web dashboard: pages rendered on the server from the wire types, a login by one-time token.

``sessions`` (one-time tokens → session cookies with the OS identity of who asked), ``html`` (the
page frame and escaping), ``pages`` (Overview, Queue, Jobs, Job: pure functions of wire types),
``routes`` (the ``/ui`` routes and the server-sent events, over a ``UiSource`` that ``api`` builds).
"""
