"""Engine, pool and the unit of work.

Every transaction goes through `Database.run`: it opens a short session, commits once, and
retries the whole unit on transient database errors. A failure while committing is never
blindly retried, because the write may already be durable: a caller that can tell (it wrote an
idempotency record in the same transaction) passes `resolve`, which looks in a fresh
transaction; otherwise the caller gets a 503 and, with an Idempotency-Key, can safely retry.
"""

from todochat.db.engine import create_engine, postgres_connect_args
from todochat.db.unit_of_work import Database, DatabaseDep, get_database

__all__ = ["Database", "DatabaseDep", "create_engine", "get_database", "postgres_connect_args"]
