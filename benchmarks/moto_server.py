"""``moto_server`` for the benchmarks: stock moto, with one change to DynamoDB transactions.

Stock moto (5.2.x) backs up a transaction by deep-copying every table it touches, once per item
of the transaction, and rolls back by putting that copy back. That costs O(table size) per
TransactWriteItems (about 40-55 ms per call at 1,000 rows on the benchmark machine, all of it
under the GIL) and, with concurrent writers, a rollback can undo other requests' writes. Real
DynamoDB transactions have neither property, and the broker writes one transaction per session it
creates or ends, so stock moto would turn the cleanup benchmark into a benchmark of moto.

Here a transaction backs up only the items it touches and restores them if it fails, and
transactions and single-item writes are serialized by one lock. Conditions, results and errors
are moto's own. ``python -m benchmarks.moto_server`` takes ``moto_server``'s arguments.
"""

from __future__ import annotations

import copy
import functools
import sys
import threading
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.server import main

_LOCK = threading.RLock()
_stock_transact = DynamoDBBackend.transact_write_items


class _CopyWithoutTables:
    """The ``copy`` module as the stock transaction code sees it: copying a Table is a no-op
    (that whole-table backup is replaced by the per-item backup below); all else is ``copy``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _key(table: Table, op_type: str, op: dict[str, Any]) -> tuple[DynamoType, DynamoType | None]:
    attrs = op["Item"] if op_type == "Put" else op["Key"]
    range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    return DynamoType(attrs[table.hash_key_attr]), range_key


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    with _LOCK:
        backups = []
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName", ""))
            if table is None or op_type not in {"Put", "Update", "Delete", "ConditionCheck"}:
                continue  # moto raises its own error for these
            hash_key, range_key = _key(table, op_type, op)
            backups.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        try:
            _stock_transact(self, transact_items)
        except Exception:
            for table, hash_key, range_key, before in reversed(backups):
                if before is None:
                    table.delete_item(hash_key, range_key)
                elif range_key is None:
                    table.items[hash_key] = before  # type: ignore[assignment]
                else:
                    table.items[hash_key][range_key] = before
            raise


def _serialized(method: Any) -> Any:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return wrapper


def install() -> None:
    dynamodb_models.copy = _CopyWithoutTables()  # type: ignore[attr-defined,assignment]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    for name in ("put_item", "update_item", "delete_item"):
        setattr(DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name)))


if __name__ == "__main__":
    install()
    main(sys.argv[1:])
