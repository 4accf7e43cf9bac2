"""The post's derived status, stored in ``posts.status`` and kept by the database itself.

A post's status follows from its targets' (``posts.STATUS_RULES``, the one mapping). Filtering
on it used to test those rules with correlated ``EXISTS`` over the targets of every post walked,
so a rare status scanned a whole organization (8.4 s among a million posts). It is now a column
with an index, ``(organization_id, status, created_at, id)``, so a status filter is one index
range and its keyset page starts at the cursor.

Targets change status in many places: the engine's claims and outcomes, recovery, the queue's
commands, deletes, approvals, paused campaigns, bulk creation, and whatever a new feature adds.
Rather than trust each of them (and each one to come) to call a function, a trigger on
``targets`` recomputes the post's status after every insert, status change and delete, in the
same statement's transaction. The trigger's SQL is generated here from ``STATUS_RULES``: a new
target status is one more entry in that mapping, plus a migration that calls
``install_status_triggers`` again (``tests/test_post_status.py`` fails until it does).

The trigger reads the post's targets once, counting each status among them in one pass. It used
to ask a correlated ``EXISTS`` per status the rules name, 32 index searches for every target
inserted or changed: 150 µs per target row, a fifth of createPost and publishPost together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import String, and_, case, column, func, literal, literal_column, not_, or_, select, table, true
from sqlalchemy.engine import Dialect

from gateway.content.posts import STATUS_RULES

_TARGETS = table("targets", column("post_id", String), column("status", String))
TRIGGER_NAMES = ("trg_targets_post_status_insert", "trg_targets_post_status_update", "trg_targets_post_status_delete")
PG_FUNCTION = "socialgate_post_status"


def status_of(post_id: Any) -> Any:
    """The post's status as one SQL expression over its targets, for the post ``post_id`` names:
    one aggregate over them (a post without targets counts none of each, as the rules expect)."""

    def has(target_status: str) -> Any:
        return func.count(case((_TARGETS.c.status == target_status, literal(1)))) > 0

    def sql(rule: Callable[..., Any]) -> Any:
        result = rule(has, lambda *xs: and_(*xs), lambda *xs: or_(*xs), not_)
        return true() if result is True else result

    *whens, (last, _rule) = STATUS_RULES
    status = case(*((sql(rule), literal(name)) for name, rule in whens), else_=literal(last))
    return select(status).select_from(_TARGETS).where(_TARGETS.c.post_id == post_id).scalar_subquery()


def _compiled(expression: Any, dialect: Dialect) -> str:
    return str(expression.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def status_update_sql(dialect: Dialect, post_id: str) -> str:
    """``UPDATE posts SET status = …`` for the post ``post_id`` (a column or NEW/OLD reference)."""
    return f"UPDATE posts SET status = {_compiled(status_of(literal_column(post_id)), dialect)} WHERE id = {post_id}"


def status_triggers(dialect: Dialect) -> list[str]:
    """The DDL that keeps ``posts.status``: SQLite triggers, or a PL/pgSQL function and its trigger."""
    if dialect.name == "postgresql":
        return [
            f"""CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN {status_update_sql(dialect, 'OLD.post_id')};
  ELSE {status_update_sql(dialect, 'NEW.post_id')};
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
            f"CREATE TRIGGER {TRIGGER_NAMES[0]} AFTER INSERT OR DELETE OR UPDATE OF status ON targets "
            f"FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()",
        ]
    insert, update, delete = TRIGGER_NAMES
    return [
        f"CREATE TRIGGER {insert} AFTER INSERT ON targets BEGIN {status_update_sql(dialect, 'NEW.post_id')}; END",
        # A target never moves to another post: its own post is the one to recompute.
        f"CREATE TRIGGER {update} AFTER UPDATE OF status ON targets WHEN NEW.status IS NOT OLD.status BEGIN "
        f"{status_update_sql(dialect, 'NEW.post_id')}; END",
        f"CREATE TRIGGER {delete} AFTER DELETE ON targets BEGIN {status_update_sql(dialect, 'OLD.post_id')}; END",
    ]


def drop_status_triggers(dialect: Dialect) -> list[str]:
    if dialect.name == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {TRIGGER_NAMES[0]} ON targets", f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()"]
    return [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGER_NAMES]


def install_status_triggers(execute: Callable[[str], Any], dialect: Dialect) -> None:
    """(Re)install the triggers from the current ``STATUS_RULES`` and recompute every post's status.

    ``execute`` runs one SQL string (a migration's ``op.execute``). A migration that changes the
    mapping calls this again; the old triggers go first.
    """
    for statement in drop_status_triggers(dialect) + status_triggers(dialect):
        execute(statement)
    execute(status_update_sql(dialect, "posts.id").replace(" WHERE id = posts.id", ""))
