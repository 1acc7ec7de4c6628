"""Shared shape of an import: every bad record is collected with its index, field and value, and a
file with any bad record is rejected whole (docs/DESIGN.md invariant 7)."""

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
        shown = repr(self.value)
        if len(shown) > 300:  # a megabyte of bad name is not worth echoing
            shown = shown[:240] + f"... ({len(shown)} characters)"
        return f"{where} {self.field}={shown}: {self.message}"


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


HEX_ID_FORMS = (
    re.compile(r"[0-9A-F]+"),  # 00E0C5C123B1
    re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2})+"),  # 00:E0:C5:C1:23:B1
    re.compile(r"[0-9A-F]{2}(?:-[0-9A-F]{2})+"),  # 00-E0-C5-C1-23-B1
    re.compile(r"[0-9A-F]{4}(?:\.[0-9A-F]{4})+"),  # 00E0.C5C1.23B1
)


def normalize_hex_id(value, spaces=False) -> str | None:
    """MAC or unit ID in plain, colon, dash or dot form, upper or lower case -> upper-case hex
    digits, or None. The groups must be regular (pairs, or fours for the dot form) and use one kind
    of separator: ``00E0C5-C1-23B1`` or ``0:0:E:0:...`` is malformed, not a MAC. With ``spaces``
    (what a person types into a search field) spaces separate too, like colons (pairs:
    ``00 E0 C5 12 34 56``) or dots (fours: ``00E0 C512 3456``); imports take no spaces."""
    if not isinstance(value, str):
        return None
    if spaces and " " in value.strip():
        text = " ".join(value.split())
        return normalize_hex_id(text.replace(" ", ":")) or normalize_hex_id(text.replace(" ", "."))
    if not value.isascii():  # "ﬀ".upper() is "FF": only ASCII hex digits count
        return None
    text = value.strip().upper()
    if not any(form.fullmatch(text) for form in HEX_ID_FORMS):
        return None
    return re.sub(r"[:.\-]", "", text)
