"""What the daemon's API and the model server share at their HTTP edge: where they listen
(``listen.py``), the cap on a request's head (``heads.py``) and the bearer-token check (``bearer.py``)."""
