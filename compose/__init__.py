"""Composing: the one engine that turns a request into tokens (the shared, bounded generation loop over the
model server's ensemble) and tokens into a finished track (decode, render). Every front end uses it."""
