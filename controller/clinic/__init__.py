"""The clinic database: every station's finished sessions in one PostgreSQL database.

Stations keep writing their own SQLite record (the control loop never waits on a
network); ``sync`` pushes finished sessions to the server, ``source`` reads either store
with the same queries.
"""
