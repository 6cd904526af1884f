"""A small IAM policy evaluator for the template tests: one policy document, one request.

Scope, deliberately narrow (it raises on anything else rather than guess):
- Effect Allow/Deny; Principal "*", {"AWS": ...} and {"Service": ...}; Action and Resource with the
  wildcards * and ?; no NotAction, NotResource or NotPrincipal.
- Condition operators StringEquals, StringNotEquals, StringLike, StringNotLike, ArnEquals,
  ArnNotEquals, ArnLike, ArnNotLike, Bool and Null, each (but Null) with ...IfExists; single-valued
  context keys only (no ForAnyValue/ForAllValues).

Semantics follow the IAM reference ("Condition operators", "Conditions with multiple context keys or
values"): operators and keys of a block AND together; a positive operator with several values ORs
them, a negated one NORs them; a key absent from the request makes a positive operator false and a
negated one true, ...IfExists true, and Null tests presence. ArnEquals and ArnLike match each of the
six colon-separated parts of the ARN with wildcards.

The request context gets what AWS adds for the caller: aws:PrincipalArn and aws:PrincipalAccount for
an IAM role or user (the role's ARN, not the session's), aws:PrincipalServiceName for a service
principal, which has no aws:PrincipalArn.

In a resource policy, {"AWS": "arn:aws:iam::<account>:root"} names the account: it matches every
principal of that account, whose identity policy must then allow the request too (a KMS key policy
never grants more than that). `decide` reports which statements matched; what an identity policy adds
is the test's to say.
"""

import re
from dataclasses import dataclass, field

POSITIVE = {"StringEquals", "StringLike", "ArnEquals", "ArnLike", "Bool"}
NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike",
           "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}


@dataclass
class Request:
    principal: dict  # {"AWS": "<role or user ARN>"} or {"Service": "events.amazonaws.com"}
    action: str
    resource: str
    context: dict = field(default_factory=dict)

    def full_context(self):
        ctx = dict(self.context)
        if "AWS" in self.principal:
            arn = self.principal["AWS"]
            ctx.setdefault("aws:PrincipalArn", arn)
            ctx.setdefault("aws:PrincipalAccount", arn.split(":")[4])
        else:
            ctx.setdefault("aws:PrincipalServiceName", self.principal["Service"])
        return {k.lower(): v for k, v in ctx.items()}


@dataclass
class Decision:
    denied_by: list
    allowed_by: list

    @property
    def denied(self):
        return bool(self.denied_by)

    @property
    def allowed(self):
        """Allowed by this policy and denied by none of its statements."""
        return bool(self.allowed_by) and not self.denied_by


def as_list(v):
    return v if isinstance(v, list) else [v]


def _glob(pattern, value, case=True):
    """* and ? as IAM reads them (no [ ] classes)."""
    if not case:
        pattern, value = pattern.lower(), value.lower()
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.S) is not None


def arn_match(pattern, value):
    p, v = pattern.split(":", 5), value.split(":", 5)
    if len(p) != 6 or len(v) != 6:
        return False
    return all(_glob(a, b) for a, b in zip(p, v))


def _one(op, policy_value, value):
    if op == "StringEquals":
        return policy_value == value
    if op == "StringLike":
        return _glob(policy_value, value)
    if op in ("ArnEquals", "ArnLike"):
        return arn_match(policy_value, value)
    if op == "Bool":
        return str(policy_value).lower() == str(value).lower()
    raise NotImplementedError(op)


def condition_holds(block, ctx):
    for op, keys in block.items():
        base = op[: -len("IfExists")] if op.endswith("IfExists") and op != "Null" else op
        if_exists = base != op
        for key, values in keys.items():
            values = as_list(values)
            present = key.lower() in ctx
            if base == "Null":
                want_absent = [str(v).lower() == "true" for v in values]
                if not any(w == (not present) for w in want_absent):
                    return False
                continue
            if not present:
                if if_exists or base in NEGATED:
                    continue
                if base in POSITIVE:
                    return False
                raise NotImplementedError(op)
            value = ctx[key.lower()]
            if base in NEGATED:
                if any(_one(NEGATED[base], pv, value) for pv in values):
                    return False
            elif base in POSITIVE:
                if not any(_one(base, pv, value) for pv in values):
                    return False
            else:
                raise NotImplementedError(op)
    return True


def principal_matches(spec, principal):
    if spec == "*":
        return True
    for kind, names in spec.items():
        for name in as_list(names):
            if kind == "Service" and principal.get("Service") == name:
                return True
            if kind == "AWS" and "AWS" in principal:
                arn = principal["AWS"]
                if name == "*" or name == arn:
                    return True
                m = re.fullmatch(r"arn:[^:]+:iam::(\d{12}):root|(\d{12})", name)
                if m and arn.split(":")[4] == (m.group(1) or m.group(2)):
                    return True
            if kind not in ("AWS", "Service"):
                raise NotImplementedError(kind)
    return False


def statement_matches(st, req, resource_policy=True):
    for unsupported in ("NotAction", "NotResource", "NotPrincipal"):
        if unsupported in st:
            raise NotImplementedError(unsupported)
    if resource_policy and not principal_matches(st["Principal"], req.principal):
        return False
    if not any(_glob(a, req.action, case=False) for a in as_list(st["Action"])):
        return False
    # A trust policy names no Resource: the role it is attached to is the resource.
    if "Resource" in st and not any(r == "*" or arn_match(r, req.resource) for r in as_list(st["Resource"])):
        return False
    return condition_holds(st.get("Condition", {}), req.full_context())


def decide(policy, req, resource_policy=True):
    """Which statements of `policy` deny and which allow `req`."""
    denied, allowed = [], []
    for i, st in enumerate(policy["Statement"]):
        if statement_matches(st, req, resource_policy):
            (denied if st["Effect"] == "Deny" else allowed).append(st.get("Sid", f"#{i}"))
    return Decision(denied, allowed)
