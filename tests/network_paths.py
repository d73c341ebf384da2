"""Which security groups admit which on which port, read from ``terraform show -json`` of the roots' plans.

A first plan does not know the ids of the groups it creates: an unknown group id is followed through the root's
configuration (the expression's reference, e.g. ``aws_security_group.glue.id``) to the planned group, and every group
is then named by its VPC and name where both are known (a group one root creates and another looks up by name, as the
streaming root finds the vector DB's client group, is one group). Groups the plans only receive as variables (the
source's, the Airflow workers') keep their ids.

A path from group A to group B on a port needs an egress rule of A towards B (or a CIDR) and an ingress rule of B
from A (or a CIDR), as AWS's stateful groups do; the operator's own groups (the workers') are the prerequisites',
so their egress is not in any plan (:func:`admits` checks the ingress side only).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

INGRESS_RULE, EGRESS_RULE = "aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule"
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class Rule:
    direction: str  # "ingress" | "egress"
    group: str  # the group the rule belongs to
    peer: str  # the other group, or a CIDR
    protocol: str
    from_port: int
    to_port: int
    address: str

    def covers(self, port: int) -> bool:
        return self.protocol in ("-1", "all") or (self.protocol == "tcp" and self.from_port <= port <= self.to_port)


def _resources(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from _resources(child)


def _config_module(plan: dict[str, Any], address: str) -> tuple[dict[str, Any], str]:
    """The configuration module of a resource address and the resource's address inside it."""
    module = plan["configuration"]["root_module"]
    parts = address.split(".")
    while parts[0] == "module":
        name = parts[1].split("[")[0]
        module = module["module_calls"][name]["module"]
        parts = parts[2:]
    return module, ".".join(parts).split("[")[0]


class Plans:
    """The resources of several roots' plans, with unknown security group ids resolved to the planned groups."""

    def __init__(self, plans: dict[str, dict[str, Any]]) -> None:
        self.plans = plans
        #: "<root>:<address>" -> (type, values, after_unknown)
        self.values: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
        self.names: dict[str, str] = {}  # a known group id -> its name
        for root, plan in plans.items():
            for address in _unread_rule_forms(plan.get("configuration", {}).get("root_module", {})):
                raise ValueError(
                    f"{root}: {address}: a rule form tests/network_paths.py does not read (the roots use "
                    "aws_vpc_security_group_ingress_rule / egress_rule; applied groups list those as ingress/egress)"
                )
            unknown = {c["address"]: c["change"].get("after_unknown") or {} for c in plan.get("resource_changes", [])}
            sources = [plan.get("planned_values", {}).get("root_module", {})]
            sources.append(plan.get("prior_state", {}).get("values", {}).get("root_module", {}))
            for source in sources:
                for resource in _resources(source):
                    values = resource.get("values") or {}
                    key = f"{root}:{resource['address']}"
                    if key not in self.values:
                        self.values[key] = (resource["type"], values, unknown.get(resource["address"], {}))
                    if resource["type"] == "aws_security_group" and values.get("id") and values.get("name"):
                        self.names[values["id"]] = _key(values)

    def variable(self, root: str, name: str) -> Any:
        return self.plans[root]["variables"][name]["value"]

    def group(self, value: str) -> str:
        """A group as the checks name it: ``sg:<vpc>/<name>`` where both are known, else its id."""
        return self.names.get(value, value)

    def planned_group(self, root: str, address: str) -> str:
        """The key of a group a root's plan creates."""
        values, _ = self.of(root, address)
        return _key(values)

    def of(self, root: str, address: str) -> tuple[dict[str, Any], dict[str, Any]]:
        _, values, unknown = self.values[f"{root}:{address}"]
        return values, unknown

    def resources(self, kind: str) -> list[tuple[str, str]]:
        """(root, address) of every resource (managed or data) of type ``kind``."""
        return [tuple(key.split(":", 1)) for key, (rtype, _, _) in self.values.items() if rtype == kind]  # type: ignore[misc]

    def groups(self, root: str, address: str, *path: str | int) -> list[str]:
        """The security groups an attribute holds (``path``: attribute names, and 0 for a nested block), known, or
        followed through the configuration to the planned groups when the plan does not know them yet."""
        known: Any
        known, flags = self.of(root, address)
        for step in path:
            known = _step(known, step)
            flags = _step(flags, step) if isinstance(flags, (dict, list)) else flags
        unknown = flags is True or (isinstance(flags, list) and any(f is True for f in flags))
        if unknown or known is None:
            return self._followed(root, address, path)
        return [self.group(g) for g in (known if isinstance(known, list) else [known]) if g]

    def _followed(self, root: str, address: str, path: tuple[str | int, ...]) -> list[str]:
        module, local = _config_module(self.plans[root], address)
        config = next(r for r in module.get("resources", []) if r["address"] == local)
        expression: Any = config.get("expressions", {})
        for step in path:
            expression = _step(expression, step)
        found = []
        for reference in (expression or {}).get("references", []):
            parts = reference.split(".")
            if parts[0] == "aws_security_group" and len(parts) >= 2:
                found.append(self.planned_group(root, f"{_module_prefix(address)}aws_security_group.{parts[1]}"))
        if not found:
            raise ValueError(f"{root}: {address} {'.'.join(map(str, path))}: no security group known or referenced")
        return list(dict.fromkeys(found))

    def rules(self) -> list[Rule]:
        found = []
        for kind, direction in ((INGRESS_RULE, "ingress"), (EGRESS_RULE, "egress")):
            for root, address in self.resources(kind):
                values, _ = self.of(root, address)
                (group,) = self.groups(root, address, "security_group_id")
                network = values.get("cidr_ipv4") or values.get("cidr_ipv6") or values.get("prefix_list_id")
                peer = network or self.groups(root, address, "referenced_security_group_id")[0]
                protocol = str(values.get("ip_protocol"))
                ports = int(values.get("from_port") or 0), int(values.get("to_port") or 0)
                found.append(Rule(direction, group, peer, protocol, *ports, f"{root}:{address}"))
        return found


def _unread_rule_forms(module: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Configured rules this reader does not read: aws_security_group_rule, a group's inline ingress/egress blocks."""
    for resource in module.get("resources", []):
        inline = resource.get("type") == "aws_security_group" and {"ingress", "egress"} & set(
            resource.get("expressions", {})
        )
        if resource.get("type") == "aws_security_group_rule" or inline:
            yield prefix + resource["address"]
    for name, call in module.get("module_calls", {}).items():
        yield from _unread_rule_forms(call.get("module", {}), f"{prefix}module.{name}.")


def _key(values: dict[str, Any]) -> str:
    """A group by its VPC and name (a group of the same name in another VPC is another group)."""
    return f"sg:{values.get('vpc_id')}/{values['name']}"


def _step(value: Any, step: str | int) -> Any:
    if isinstance(step, int):
        return value[step] if isinstance(value, list) and len(value) > step else None
    return value.get(step) if isinstance(value, dict) else None


def _module_prefix(address: str) -> str:
    parts, prefix = address.split("."), []
    while parts and parts[0] == "module":
        prefix += parts[:2]
        parts = parts[2:]
    return ".".join(prefix) + "." if prefix else ""


def _towards(rule: Rule, peer: str, port: int) -> bool:
    return rule.covers(port) and rule.peer in (peer, ANYWHERE)


def admits(rules: Iterable[Rule], target: str, source: str, port: int) -> list[Rule]:
    """The ingress rules of ``target`` admitting ``source`` on ``port``."""
    return [r for r in rules if r.direction == "ingress" and r.group == target and _towards(r, source, port)]


def sends(rules: Iterable[Rule], source: str, target: str, port: int) -> list[Rule]:
    """The egress rules of ``source`` letting it open ``port`` towards ``target``."""
    return [r for r in rules if r.direction == "egress" and r.group == source and _towards(r, target, port)]


def reaches_networks(rules: Iterable[Rule], source: str, port: int) -> list[Rule]:
    """The egress rules of ``source`` opening ``port`` towards addresses (a CIDR or a prefix list: the AWS services'
    VPC endpoints or NAT), not a group."""
    return [
        r
        for r in rules
        if r.direction == "egress" and r.group == source and r.covers(port) and not r.peer.startswith(("sg:", "sg-"))
    ]


def missing_paths(rules: list[Rule], sources: list[str], targets: list[str], port: int, egress: bool) -> list[str]:
    """What stops a connection from any of ``sources`` (a client's groups) to ``targets`` (the server's groups) on
    ``port``: empty when one source group may send and one target group admits it. ``egress``: the client's groups
    are the roots' (their egress rules are in the plans); else the operator's, whose egress is a prerequisite."""
    for source in sources:
        for target in targets:
            if admits(rules, target, source, port) and (not egress or sends(rules, source, target, port)):
                return []
    return [f"no rule lets {sources} open port {port} on {targets} (ingress{' and egress' if egress else ''})"]
