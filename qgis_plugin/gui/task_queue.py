"""Which tasks the dock's navigator walks, in which order, and how it names them.

A labeler walks their own open tasks: rejected ones first (the reviewer is waiting), then
those in progress, then those assigned (their own before tiles open to the whole team).
A reviewer walks the submitted tasks in the engine's review order (low-agreement
consensus tiles first, then the oldest submission). Nothing here imports QGIS.
"""

from __future__ import annotations

#: The labeler's open statuses in the navigator's order.
MY_ORDER = ("rejected", "in_progress", "assigned")
#: Statuses as the list says them.
WORDS = {"assigned": "assigned", "in_progress": "in progress", "submitted": "submitted",
         "accepted": "accepted", "rejected": "rejected"}  # fmt: skip


def my_tiles(tasks, name):
    """``name``'s open tasks, and the team's open tiles they hold no copy of (one per tile),
    rejected first, then in progress, then assigned; in task order within each."""
    own = [t for t in tasks if t.labeler == name]
    held = {t.tile_id for t in own}
    team = {}
    for t in tasks:
        if t.labeler is None and t.tile_id not in held:
            team.setdefault(t.tile_id, t)
    chosen = [t for t in own + list(team.values()) if t.status in MY_ORDER]
    return sorted(chosen, key=lambda t: (MY_ORDER.index(t.status), t.labeler is None, t.task_id))


def review_order(store, tasks):
    """The submitted ``tasks`` in the engine's review order
    (:func:`geolabel.consensus.review_queue`: consensus tiles with low agreement first,
    then the oldest submission first)."""
    from geolabel.consensus import review_queue

    shown = {t.task_id for t in tasks}
    return [item.task for item in review_queue(store) if item.task.task_id in shown]


def entry(task, *, reviewing=False):
    """One line of the navigator's list.

    >>> from types import SimpleNamespace as T
    >>> entry(T(tile_id="v_r0_c1", status="rejected", labeler="li", reviewer="zhao", comment="edge missed", copy=1))
    'v_r0_c1 · rejected by zhao: edge missed'
    >>> entry(T(tile_id="v_r0_c2", status="submitted", labeler="li", copy=2), reviewing=True)
    'v_r0_c2 (copy 2) · li · submitted'
    """
    tile = task.tile_id + (f" (copy {task.copy})" if task.copy != 1 else "")
    status = WORDS.get(task.status, task.status)
    if reviewing:
        return f"{tile} · {task.labeler or 'team'} · {status}"
    if task.status == "assigned" and task.labeler is None:
        status += " to the team"
    if task.status == "rejected" and task.reviewer:
        status += f" by {task.reviewer}"
    comment = f": {task.comment}" if task.status == "rejected" and task.comment else ""
    return f"{tile} · {status}{comment}"


def summary(tasks, name, shown):
    """'3 tiles to do · 2 submitted, 1 accepted' for a labeler's tasks."""
    own = [t for t in tasks if t.labeler == name]
    done = [f"{sum(1 for t in own if t.status == s)} {s}" for s in ("submitted", "accepted")]
    return f"{shown} tile{'s' if shown != 1 else ''} to do · {', '.join(done)}"
