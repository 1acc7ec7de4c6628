"""Shared shape of an import: every bad record is collected with its index, field and value, and a
file with any bad record is rejected whole (DESIGN.md invariant 7)."""

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RecordError:
    source: str
    index: int | None
    field: str
    value: object
    message: str

    def __str__(self):
        where = f"{self.source}[{self.index}]" if self.index is not None else self.source
        return f"{where} {self.field}={self.value!r}: {self.message}"


class ImportRejected(Exception):
    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__(f"{len(self.errors)} bad record(s); nothing was imported")

    def lines(self):
        return [str(e) for e in self.errors]


@dataclass
class ImportReport:
    created: dict = field(default_factory=dict)
    updated: dict = field(default_factory=dict)
    unchanged: dict = field(default_factory=dict)
    dry_run: bool = False

    def summary(self):
        kinds = sorted(set(self.created) | set(self.updated) | set(self.unchanged))
        parts = [
            f"{kind}: {self.created.get(kind, 0)} new, {self.updated.get(kind, 0)} updated, "
            f"{self.unchanged.get(kind, 0)} unchanged"
            for kind in kinds
        ]
        prefix = "Dry run, nothing written. Would import " if self.dry_run else "Imported "
        return prefix + ("; ".join(parts) if parts else "nothing")


HEX_SEPARATORS = re.compile(r"[\s:.\-]")


def normalize_hex_id(value) -> str | None:
    """MAC or unit ID in colon, dash, dot or lower-case form -> upper-case hex digits, or None."""
    if not isinstance(value, str):
        return None
    cleaned = HEX_SEPARATORS.sub("", value).upper()
    if cleaned and all(ch in "0123456789ABCDEF" for ch in cleaned):
        return cleaned
    return None
