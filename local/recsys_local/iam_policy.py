"""IAM policy evaluation as AWS documents it ("Policy evaluation logic", identity-based policies of one account):
an explicit Deny wins, then any Allow, else the request is implicitly denied.

A statement applies when its ``Action`` (or ``NotAction``), its ``Resource`` (or ``NotResource``) and every one of
its ``Condition`` operators match. Actions match case-insensitively with ``*`` and ``?``; resources are ARNs matched
with ``*`` and ``?``. Conditions: the string, ARN, boolean, numeric and ``Null`` operators, their ``IfExists`` forms,
and the ``ForAnyValue:``/``ForAllValues:`` set qualifiers; a key the request's context does not hold makes the
operator false (``Null`` and ``...IfExists`` aside), as in AWS. moto's own check evaluates neither conditions nor
resources outside S3, and no maintained Python library evaluates conditions (policyuniverse parses, parliament
lints): hence this module.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "allow", "explicit deny", "implicit deny"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@functools.cache
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run of characters (``/`` and ``:`` included), ``?`` one character."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(f"^{body}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def matches(glob: str, value: str, ignore_case: bool = False) -> bool:
    return bool(_pattern(glob, ignore_case).match(value))


@dataclass(frozen=True)
class Decision:
    """The outcome for one action on one resource, and the statement that decided it (for the error and the log)."""

    effect: str
    statement: str = ""


@dataclass
class Context:
    """The request's condition keys (lower-cased names, each a list of values)."""

    values: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, pairs: dict[str, Any]) -> Context:
        return cls({key.lower(): [str(v) for v in _as_list(value)] for key, value in pairs.items()})

    def get(self, key: str) -> list[str] | None:
        return self.values.get(key.lower())


#: The condition operators this module evaluates (each also with ``IfExists`` and the ``ForAnyValue:`` /
#: ``ForAllValues:`` qualifiers); any other refuses to evaluate, naming it.
OPERATORS = frozenset(
    {
        "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike",
        "StringNotLike", "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike", "Bool", "Null", "NumericEquals",
        "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan",
        "NumericGreaterThanEquals",
    }
)  # fmt: skip


def problems(name: str, document: dict[str, Any]) -> list[str]:
    """What in a policy document this evaluator (and so the local endpoint) cannot read, each naming the statement:
    an Effect other than Allow or Deny, no Action or NotAction, a condition operator it does not evaluate."""
    found = []
    for index, statement in enumerate(_as_list(document.get("Statement"))):
        where = f"{name}/{statement.get('Sid') or index}" if isinstance(statement, dict) else f"{name}/{index}"
        if not isinstance(statement, dict):
            found.append(f"{where}: a statement must be an object")
            continue
        if statement.get("Effect") not in ("Allow", "Deny"):
            found.append(f"{where}: Effect {statement.get('Effect')!r} (Allow or Deny)")
        if "Action" not in statement and "NotAction" not in statement:
            found.append(f"{where}: no Action or NotAction")
        for operator in statement.get("Condition") or {}:
            base = operator.rpartition(":")[2].removesuffix("IfExists")
            if base not in OPERATORS:
                found.append(f"{where}: condition operator {operator!r} is not evaluated by the local endpoint")
    return found


def _compare(operator: str, wanted: str, value: str) -> bool:
    base = operator
    if base in ("StringEquals", "StringNotEquals"):
        return value == wanted
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return value.lower() == wanted.lower()
    if base in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike"):
        return matches(wanted, value)
    if base in ("ArnEquals", "ArnNotEquals"):
        return matches(wanted, value)  # ArnEquals also takes wildcards, as ArnLike
    if base == "Bool":
        return value.lower() == wanted.lower()
    if base.startswith("Numeric"):
        try:
            left, right = float(value), float(wanted)
        except ValueError:
            return False
        return {
            "NumericEquals": left == right,
            "NumericNotEquals": left == right,
            "NumericLessThan": left < right,
            "NumericLessThanEquals": left <= right,
            "NumericGreaterThan": left > right,
            "NumericGreaterThanEquals": left >= right,
        }.get(base, False)
    raise ValueError(f"condition operator {operator!r} is not supported by the local endpoint")


_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
    "NumericNotEquals",
}


def _condition_holds(operator: str, key: str, wanted: list[str], context: Context) -> bool:
    qualifier, _, operator = operator.rpartition(":")
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    values = context.get(key)
    if operator == "Null":
        is_null = values is None or values == []
        return any((w.lower() == "true") == is_null for w in wanted)
    negated = operator in _NEGATED
    if values is None:  # a missing key matches nothing: a negated operator holds (AWS's "...Not..." on no key)
        return if_exists or qualifier == "ForAllValues" or (negated and not qualifier)

    def one(value: str) -> bool:
        hit = any(_compare(operator, w, value) for w in wanted)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    return any(one(v) for v in values)  # ForAnyValue, and a single-valued key (one value)


def statement_applies(statement: dict[str, Any], action: str, resource: str, context: Context) -> bool:
    if "Action" in statement:
        if not any(matches(a, action, ignore_case=True) for a in _as_list(statement["Action"])):
            return False
    elif any(matches(a, action, ignore_case=True) for a in _as_list(statement.get("NotAction"))):
        return False
    if "Resource" in statement:
        if not any(matches(r, resource) for r in _as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement and any(matches(r, resource) for r in _as_list(statement["NotResource"])):
        return False
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, wanted in keys.items():
            if not _condition_holds(operator, key, [str(w) for w in _as_list(wanted)], context):
                return False
    return True


def statements(policies: Iterable[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """(``<policy name>/<Sid or index>``, statement) of every statement of the named policies."""
    out = []
    for name, document in policies:
        for index, statement in enumerate(_as_list(document.get("Statement"))):
            out.append((f"{name}/{statement.get('Sid') or index}", statement))
    return out


def _decide(applying: Iterable[tuple[str, dict[str, Any]]]) -> Decision:
    """AWS's order over the (name, statement) pairs that apply: a Deny, else an Allow, else implicitly denied."""
    allowed = ""
    for name, statement in applying:
        if statement.get("Effect") == "Deny":
            return Decision(EXPLICIT_DENY, name)
        allowed = allowed or name
    return Decision(ALLOW, allowed) if allowed else Decision(IMPLICIT_DENY)


def evaluate(policies: Iterable[tuple[str, dict[str, Any]]], action: str, resource: str, context: Context) -> Decision:
    """The decision for ``action`` on ``resource``: an applying Deny, else an applying Allow, else implicit deny."""
    return _decide((n, s) for n, s in statements(policies) if statement_applies(s, action, resource, context))


# --- trust policies (a role's resource-based policy for sts:AssumeRole) --------------------------------------------
@dataclass(frozen=True)
class Caller:
    """Who asks to assume a role: an IAM principal of ``account`` (``arns``: a user's ARN, or a role session's ARN and
    its role's; the account's administrator is its root) or an AWS service (``service``: ``glue.amazonaws.com``)."""

    account: str
    arns: tuple[str, ...] = ()
    service: str = ""

    @property
    def name(self) -> str:
        return self.service or (self.arns[0] if self.arns else self.account)


def principal_matches(principal: Any, caller: Caller) -> bool:
    """A trust statement's ``Principal`` names the caller: ``*``; ``{"AWS": ...}`` with the caller's ARN, or its
    account (``arn:<partition>:iam::<account>:root`` or the bare id: any principal of the account that its own
    policies let assume roles); ``{"Service": ...}`` with the caller's service."""
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    if caller.service:
        return caller.service in _as_list(principal.get("Service"))
    for value in _as_list(principal.get("AWS")):
        value = str(value)
        if value == "*" or value in caller.arns or value == caller.account:
            return True
        if re.fullmatch(rf"arn:[a-z-]+:iam::{re.escape(caller.account)}:root", value):
            return True
    return False


def _names(statement: dict[str, Any], caller: Caller) -> bool:
    """The statement's principal covers the caller: its ``Principal`` names it, or (a Deny only) its ``NotPrincipal``
    does not. An Allow with ``NotPrincipal`` covers nobody (stricter than AWS, never looser)."""
    if "Principal" in statement:
        return principal_matches(statement["Principal"], caller)
    if "NotPrincipal" in statement and statement.get("Effect") == "Deny":
        return not principal_matches(statement["NotPrincipal"], caller)
    return False


def evaluate_resource_policy(
    document: dict[str, Any], caller: Caller, action: str, resource: str, context: Context, label: str
) -> Decision:
    """The decision of a resource-based policy (a role's trust policy, a bucket policy, a key policy) on ``caller``
    asking ``action`` on ``resource``: an applying Deny, else an applying Allow, else implicitly denied. A statement
    applies when its principal covers the caller (:func:`_names`) and its action, resource (when it names one) and
    conditions match. ``label`` prefixes the deciding statement."""
    return _decide(
        (f"{label}/{statement.get('Sid') or index}", statement)
        for index, statement in enumerate(_as_list(document.get("Statement")))
        if _names(statement, caller) and statement_applies(statement, action, resource, context)
    )


def evaluate_trust(document: dict[str, Any], caller: Caller, action: str, role_arn: str, context: Context) -> Decision:
    """The decision of a role's trust policy (no ``Resource``: the role itself) on ``caller`` asking ``action``."""
    return evaluate_resource_policy(document, caller, action, role_arn, context, "trust")
