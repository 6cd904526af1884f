#!/usr/bin/env python3
"""The IAM policies of template.yaml's roles as AWS would see them, for one set of parameters.

CloudFormation resolves intrinsics (!Sub, !If, !GetAtt, ...) at deploy time; an IAM evaluator or
linter needs the result. This resolves them for the parameters given (default: the local todo
estate that the tests and the demo build on moto) and prints
`{"parameters": {...}, "roles": {"DeployRole": <policy document>, ...}, "stack": {"ArtifactKeyArn": ...},
"resource_policies": {"ArtifactBucketPolicy": ..., "ArtifactKey": ..., ...}, "trust_policies": {...}}`.

Physical names of the stack's own resources follow what CloudFormation would create for stack
`--stack` in `--account`/`--region` (the artifact bucket is given by `--bucket`, since its real
name is generated).

    scripts/iam_policies.py [--set Name=Value ...] [--bucket B] [--topic-name T] [--role DeployRole]
"""

import argparse
import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
NO_VALUE = object()

# The stand-in id of the stack's KMS key (a real one is a random UUID); testkit/src/iam/mod.rs names
# the same key in the checks it makes for the artifact bucket (ARTIFACT_KEY_ID).
ARTIFACT_KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"

# The stand-in id of a customer KMS key that smoke-test SecureStrings may be encrypted under;
# testkit/src/iam/mod.rs names the same key (SMOKE_SECRET_KEY_ID).
SMOKE_SECRET_KEY_ID = "0987dcba-09fe-87dc-65ba-ab0987654321"

# The local estate the tests and the demo build (testkit/src/names.rs).
ESTATE = {
    "ClusterName": "todo-cluster",
    "RepositoryNames": "todo-frontend,todo-backend",
    "RepositoryArnPrefix": "todo-",
    "TaskRoleArns": "arn:aws:iam::123456789012:role/todo-frontend-task,arn:aws:iam::123456789012:role/todo-backend-task",
    "ExecutionRoleArns": "arn:aws:iam::123456789012:role/todo-frontend-execution,"
    "arn:aws:iam::123456789012:role/todo-backend-execution",
    "SmokeSecretParameterArns": "arn:aws:ssm:ap-southeast-2:123456789012:parameter/pushdeploy/*",
    "SmokeSecretKeyArns": f"arn:aws:kms:ap-southeast-2:123456789012:key/{SMOKE_SECRET_KEY_ID}",
}


class CfnLoader(yaml.SafeLoader):
    """Reads `!Ref x` as {"Ref": x} and `!Sub s` as {"Fn::Sub": s}, so the template is plain data."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    name = suffix.lstrip("!")
    if name == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Ref": value} if name == "Ref" else {"Condition": value} if name == "Condition" else {"Fn::" + name: value}


CfnLoader.add_multi_constructor("!", _tag)


def load_template(path=ROOT / "template.yaml"):
    """The template as plain data, intrinsics as their long forms."""
    return yaml.load(pathlib.Path(path).read_text(), Loader=CfnLoader)


class Stack:
    """A template with parameter values: resolves intrinsics as CloudFormation would."""

    def __init__(self, template, parameters, account="123456789012", region="ap-southeast-2",
                 stack="pushdeploy", bucket="pushdeploy-artifacts", topic_name="pushdeploy-verdicts"):
        self.t = template
        self.account, self.region, self.stack = account, region, stack
        self.params = {}
        for name, spec in template.get("Parameters", {}).items():
            value = parameters.get(name, spec.get("Default"))
            if value is None:
                raise SystemExit(f"iam_policies: parameter {name} has no value and no default (--set {name}=...)")
            value = str(value)
            self.params[name] = value.split(",") if spec["Type"] == "CommaDelimitedList" else value
        arn = f"arn:aws:%s:{region}:{account}:%s"
        self.refs = {
            "ArtifactBucket": bucket,
            "VerdictTopic": arn % ("sns", topic_name),
            "FailedInvocations": f"https://sqs.{region}.amazonaws.com/{account}/{stack}-FailedInvocations",
            "DeployFunction": f"{stack}-deploy",
            "VerifyFunction": f"{stack}-verify",
            "ArtifactKey": ARTIFACT_KEY_ID,
        }
        self.attrs = {
            ("ArtifactBucket", "Arn"): f"arn:aws:s3:::{bucket}",
            ("FailedInvocations", "Arn"): arn % ("sqs", f"{stack}-FailedInvocations"),
            ("DeployFunction", "Arn"): arn % ("lambda", f"function:{stack}-deploy"),
            ("VerifyFunction", "Arn"): arn % ("lambda", f"function:{stack}-verify"),
            ("DeployFunctionEcrPush", "Arn"): arn % ("events", f"rule/{stack}-DeployFunctionEcrPush"),
            ("VerifyFunctionEcsDeployment", "Arn"): arn % ("events", f"rule/{stack}-VerifyFunctionEcsDeployment"),
            ("ArtifactKey", "Arn"): arn % ("kms", f"key/{ARTIFACT_KEY_ID}"),
        }
        for name, res in template["Resources"].items():
            if res["Type"] == "AWS::Logs::LogGroup":
                group = self.resolve(res["Properties"]["LogGroupName"])
                self.refs[name] = group
                # CloudFormation's LogGroup Arn attribute ends in ":*".
                self.attrs[(name, "Arn")] = arn % ("logs", f"log-group:{group}:*")
            if res["Type"] == "AWS::IAM::Role":
                path = self.resolve(res["Properties"].get("Path", "/"))
                self.refs[name] = f"{stack}-{name}"
                self.attrs[(name, "Arn")] = f"arn:aws:iam::{account}:role{path}{stack}-{name}"
            if res["Type"] == "AWS::CloudWatch::Alarm":
                self.attrs[(name, "Arn")] = f"arn:aws:cloudwatch:{region}:{account}:alarm:{stack}-{name}"

    def condition(self, name):
        return self.resolve(self.t["Conditions"][name])

    def ref(self, name):
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::StackName": self.stack,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        for table in (pseudo, self.params, self.refs):
            if name in table:
                return table[name]
        raise KeyError(f"Ref {name}: not a parameter or a resource this renderer knows")

    def sub(self, text, extra):
        def one(m):
            name = m.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name and not name.startswith("AWS::"):
                return self.attrs[tuple(name.split(".", 1))]
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def resolve(self, node):
        if isinstance(node, list):
            return [v for v in (self.resolve(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (k, v), = node.items()
            if k == "Ref":
                return self.ref(v)
            if k == "Condition" and isinstance(v, str):
                return self.condition(v)
            if k == "Fn::GetAtt":
                return self.attrs[tuple(v)]
            if k == "Fn::Sub":
                if isinstance(v, list):
                    return self.sub(v[0], {n: self.resolve(x) for n, x in v[1].items()})
                return self.sub(v, {})
            if k == "Fn::If":
                name, yes, no = v
                return self.resolve(yes if self.condition(name) else no)
            if k == "Fn::Equals":
                a, b = (self.resolve(x) for x in v)
                return a == b
            if k == "Fn::Not":
                return not self.resolve(v[0])
            if k == "Fn::And":
                return all(self.resolve(x) for x in v)
            if k == "Fn::Or":
                return any(self.resolve(x) for x in v)
            if k == "Fn::Join":
                sep, items = v
                return sep.join(str(x) for x in self.resolve(items))
            if k == "Fn::Split":
                sep, text = v
                return self.resolve(text).split(sep)
            if k == "Fn::Select":
                i, items = v
                return self.resolve(items)[int(self.resolve(i))]
        out = {}
        for k, v in node.items():
            r = self.resolve(v)
            if r is not NO_VALUE:
                out[k] = r
        return out

    def exists(self, name):
        """Whether the stack creates resource `name` (its Condition, if any, holds)."""
        cond = self.t["Resources"][name].get("Condition")
        return cond is None or self.condition(cond)

    def resource_policies(self):
        """{logical id: policy document} of the resource policies the stack creates: the bucket
        policy, the key policy, the queue policy and the topic policy (when it creates the topic)."""
        where = {
            "AWS::S3::BucketPolicy": "PolicyDocument",
            "AWS::SQS::QueuePolicy": "PolicyDocument",
            "AWS::SNS::TopicPolicy": "PolicyDocument",
            "AWS::KMS::Key": "KeyPolicy",
        }
        return {name: self.resolve(res["Properties"][where[res["Type"]]])
                for name, res in self.t["Resources"].items() if res["Type"] in where and self.exists(name)}

    def trust_policies(self):
        """{role logical id: its trust policy (AssumeRolePolicyDocument)}."""
        return {name: self.resolve(res["Properties"]["AssumeRolePolicyDocument"])
                for name, res in self.t["Resources"].items() if res["Type"] == "AWS::IAM::Role"}

    def physical(self):
        """The physical ids and ARNs the policies name, e.g. ArtifactKeyArn, DeployRoleArn."""
        out = {f"{name}Arn": value for (name, attr), value in self.attrs.items() if attr == "Arn"}
        out["ArtifactBucketName"] = self.refs["ArtifactBucket"]
        return dict(sorted(out.items()))

    def role_policies(self):
        """{role logical id: policy document}, each role's inline policies merged into one."""
        roles = {}
        for name, res in self.t["Resources"].items():
            if res["Type"] != "AWS::IAM::Role":
                continue
            statements = []
            for policy in res["Properties"].get("Policies", []):
                statements += self.resolve(policy["PolicyDocument"])["Statement"]
            roles[name] = {"Version": "2012-10-17", "Statement": statements}
        return roles


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a template parameter")
    ap.add_argument("--bucket", default="pushdeploy-artifacts", help="the artifact bucket's name")
    ap.add_argument("--topic-name", default="pushdeploy-verdicts", help="name of the topic the stack creates")
    ap.add_argument("--stack", default="pushdeploy")
    ap.add_argument("--role", help="print only this role's policy document")
    args = ap.parse_args(argv)
    params = dict(ESTATE)
    for kv in args.set:
        k, _, v = kv.partition("=")
        params[k] = v
    stack = Stack(load_template(), params, stack=args.stack, bucket=args.bucket, topic_name=args.topic_name)
    roles = stack.role_policies()
    if args.role:
        json.dump(roles[args.role], sys.stdout, indent=2)
    else:
        json.dump({"parameters": stack.params, "roles": roles, "stack": stack.physical(),
                   "resource_policies": stack.resource_policies(), "trust_policies": stack.trust_policies()},
                  sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
