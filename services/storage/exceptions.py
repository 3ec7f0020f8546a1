"""Errors of the storage layer.

StorageError
 ├── BadCursor           a page cursor this service did not issue (Malformed)
 ├── MissingDatabase     no database where one was named (NotFound)
 └── SchemaError         the database's schema cannot be used as it is (Conflict)
      ├── SchemaBehind        older than the code, and this process does not upgrade
      ├── SchemaAhead         at a revision this code does not know (a newer drgwatch)
      └── SchemaUnrecognised  drgwatch tables that match no revision
"""

from __future__ import annotations

from services.errors import Conflict, DrgwatchError, Malformed, NotFound


class StorageError(DrgwatchError):
    pass


class BadCursor(StorageError, Malformed):
    pass


class MissingDatabase(StorageError, NotFound):
    pass


class SchemaError(StorageError, Conflict):
    pass


class SchemaBehind(SchemaError):
    pass


class SchemaAhead(SchemaError):
    pass


class SchemaUnrecognised(SchemaError):
    pass
