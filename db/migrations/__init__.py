"""Alembic migrations (shipped as package data; see `db.engine.upgrade`)."""
