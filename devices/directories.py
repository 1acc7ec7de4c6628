"""The directory tree, read in one query: subtrees for distribution conditions and filters, paths for
labels."""

from .models import Directory


def parent_map() -> dict:
    return dict(Directory.objects.values_list("id", "parent_id"))


def subtree(directory_ids, parent_of: dict | None = None) -> frozenset:
    """The directories and everything below them: a condition on a directory covers its subtree."""
    parent_of = parent_map() if parent_of is None else parent_of
    chosen = set(directory_ids)
    result = set()
    for d in parent_of:
        node, seen = d, set()
        while node is not None and node not in seen:
            if node in chosen:
                result.add(d)
                break
            seen.add(node)
            node = parent_of.get(node)
    return frozenset(result)


def paths() -> list[tuple[int, str]]:
    """(id, "Berlin / Sales") for every directory, in path order."""
    rows = {
        pk: (name, parent) for pk, name, parent in Directory.objects.values_list("id", "name", "parent_id")
    }

    def path(pk):
        names, seen = [], set()
        while pk is not None and pk in rows and pk not in seen:
            seen.add(pk)
            names.append(rows[pk][0])
            pk = rows[pk][1]
        return " / ".join(reversed(names))

    return sorted(((pk, path(pk)) for pk in rows), key=lambda item: (item[1].lower(), item[0]))
