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


def tree_with_counts(today) -> tuple[list[dict], dict]:
    """The directory tree with, per directory, its devices and its licensed devices (a valid current
    license), each on its own and with its subdirectories. Devices in the recycle bin are not counted,
    as the UMS tree does not show them. Three queries, whatever the size of the tree.

    Returns (roots, root_counts): nested nodes ``{id, name, own, own_licensed, total, total_licensed,
    children}`` sorted by name, and the counts of devices in no directory."""
    from django.db.models import Count, Exists, OuterRef, Q

    from .models import Device, DeviceLicense, LicenseStatus

    valid = DeviceLicense.objects.filter(device=OuterRef("pk"), status=LicenseStatus.CURRENT).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gte=today)
    )
    counts = {
        d: [n, 0]
        for d, n in Device.objects.filter(moved_to_bin=False)
        .values("directory_id")
        .annotate(n=Count("pk"))
        .values_list("directory_id", "n")
    }
    for d, n in (
        Device.objects.filter(moved_to_bin=False)
        .filter(Exists(valid))
        .values("directory_id")
        .annotate(n=Count("pk"))
        .values_list("directory_id", "n")
    ):
        counts[d][1] = n
    nodes = {
        pk: {"id": pk, "name": name, "parent": parent, "in_bin": in_bin, "children": []}
        for pk, name, parent, in_bin in Directory.objects.values_list(
            "id", "name", "parent_id", "moved_to_bin"
        )
    }
    roots = []
    for node in nodes.values():
        node["own"], node["own_licensed"] = counts.get(node["id"], (0, 0))
        parent = nodes.get(node["parent"])
        (parent["children"] if parent is not None else roots).append(node)

    def finish(node, seen):
        seen.add(node["id"])
        node["children"] = [c for c in node["children"] if c["id"] not in seen]  # a cycle is cut
        node["children"].sort(key=lambda c: (c["name"].lower(), c["id"]))
        node["total"], node["total_licensed"] = node["own"], node["own_licensed"]
        for child in node["children"]:
            finish(child, seen)
            node["total"] += child["total"]
            node["total_licensed"] += child["total_licensed"]

    roots.sort(key=lambda c: (c["name"].lower(), c["id"]))
    seen = set()
    for root in roots:
        finish(root, seen)
    own, licensed = counts.get(None, (0, 0))
    return roots, {"own": own, "own_licensed": licensed}
