"""The SAM template: event patterns route the right events, functions exist, IAM is least-privilege."""

import copy
import json
import pathlib
import re
import sys
import tomllib

import boto3
import pytest

from conftest import ROOT

REGION = "ap-southeast-2"
ACCOUNT = "123456789012"
PARAMS = {
    "ClusterName": "todo-cluster",
    "RepositoryNames": ["todo-frontend", "todo-backend"],
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
}


def resolve(value):
    """Resolves Ref and Sub against PARAMS, enough for event patterns."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return PARAMS[value["Ref"]]
        if set(value) == {"Fn::Sub"}:
            return re.sub(r"\$\{([^}]+)\}", lambda m: PARAMS[m.group(1)], value["Fn::Sub"])
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


def event(name):
    return json.loads((ROOT / "events" / name).read_text())


def variant(name, **detail):
    e = copy.deepcopy(event(name))
    for k, v in detail.items():
        if v is None:
            e["detail"].pop(k, None)
        else:
            e["detail"][k] = v
    return e


def other_cluster():
    e = copy.deepcopy(event("ecs-deployment-completed.json"))
    e["resources"] = [f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/other-cluster/todo-frontend"]
    return e


def rule_patterns(template):
    out = {}
    for name, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for ev_name, ev in res["Properties"].get("Events", {}).items():
            if ev["Type"] == "EventBridgeRule":
                out[f"{name}.{ev_name}"] = resolve(ev["Properties"]["Pattern"])
    return out


PUSHES = ["ecr-push-frontend.json", "ecr-push-backend.json"]
ECS_EVENTS = ["ecs-deployment-in-progress.json", "ecs-deployment-completed.json", "ecs-deployment-failed.json"]

# rule → (events that must match, events that must not)
EXPECTED = {
    "DeployFunction.EcrPush": (
        [event(n) for n in PUSHES],
        [event(n) for n in ECS_EVENTS]
        + [
            variant("ecr-push-frontend.json", **{"action-type": "DELETE"}),
            variant("ecr-push-frontend.json", result="FAILURE"),
            variant("ecr-push-frontend.json", **{"image-tag": None}),
            variant("ecr-push-frontend.json", **{"repository-name": "payments"}),
        ],
    ),
    "VerifyFunction.EcsDeployment": (
        [event(n) for n in ECS_EVENTS],
        [event(n) for n in PUSHES] + [other_cluster()],
    ),
}


def routed(endpoint, pattern, events):
    """Which of `events` a real EventBridge rule (moto's evaluator) delivers to an SQS target."""
    kw = dict(endpoint_url=endpoint, region_name=REGION)
    eb, sqs = boto3.client("events", **kw), boto3.client("sqs", **kw)
    name = f"r{abs(hash(json.dumps(pattern, sort_keys=True))) % 10**8}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    eb.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
    eb.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    matched = []
    for i, e in enumerate(events):
        marker = dict(e["detail"], _probe=i)
        eb.put_events(
            Entries=[
                {
                    "Source": e["source"],
                    "DetailType": e["detail-type"],
                    "Detail": json.dumps(marker),
                    "Resources": e.get("resources", []),
                }
            ]
        )
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        msgs = got.get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            matched.append(json.loads(m["Body"])["detail"]["_probe"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return sorted(matched)


@pytest.mark.parametrize("rule", sorted(EXPECTED))
def test_event_pattern_routes_exactly_the_right_events(template, moto_endpoint, rule):
    pattern = rule_patterns(template)[rule]
    must, must_not = EXPECTED[rule]
    got = routed(moto_endpoint, pattern, must + must_not)
    assert got == list(range(len(must))), f"{rule}: matched {got}, expected the first {len(must)}"


def test_every_rule_in_the_template_is_tested(template):
    assert sorted(rule_patterns(template)) == sorted(EXPECTED)


def test_every_function_is_a_crate_of_the_workspace(template):
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    functions = {n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) == 2
    for name, res in functions.items():
        assert res["Metadata"]["BuildMethod"] == "rust-cargolambda", name
        code = res["Properties"]["CodeUri"]
        manifest = tomllib.loads((ROOT / code / "Cargo.toml").read_text())
        assert (ROOT / code / "src" / "main.rs").exists(), name
        assert code in workspace, f"{code} is not a workspace member"
        assert manifest["package"]["name"] == pathlib.Path(code).name


def statements(template):
    for name, res in template["Resources"].items():
        if res["Type"] == "AWS::IAM::Role":
            for policy in res["Properties"].get("Policies", []):
                for st in policy["PolicyDocument"]["Statement"]:
                    if "Fn::If" in st:  # a conditional statement: check its present branch
                        st = st["Fn::If"][1]
                    yield name, st


def as_list(v):
    return v if isinstance(v, list) else [v]


def test_iam_is_least_privilege(template):
    allowed = list(statements(template))
    assert allowed, "the roles have inline policies"
    for role, st in allowed:
        assert st["Effect"] == "Allow"
        for action in as_list(st["Action"]):
            assert "*" not in action, f"{role}/{st['Sid']}: wildcard action {action}"
        if st["Resource"] == "*":
            # Only where AWS supports no resource-level permissions.
            assert set(as_list(st["Action"])) <= {
                "ecs:DescribeTaskDefinition",
                "ecs:ListTaskDefinitions",
                "ecs:DeregisterTaskDefinition",
                "elasticloadbalancing:DescribeTargetHealth",
                "ec2:DescribeNetworkInterfaces",  # only with VerifySubnetIds
            }, f"{role}/{st['Sid']}"
        if "iam:PassRole" in as_list(st["Action"]):
            assert st["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    text = (ROOT / "template.yaml").read_text()
    assert "FullAccess" not in text
    assert "ManagedPolicyArns" not in text
    for name, res in template["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            assert "Role" in res["Properties"], f"{name} uses its own role, not SAM's default policies"


def test_bucket_is_private_encrypted_versioned_and_tls_only(template):
    bucket = template["Resources"]["ArtifactBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert bucket["LifecycleConfiguration"]["Rules"][0]["NoncurrentVersionExpiration"]
    deny = template["Resources"]["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# ---------------------------------------------------------------- the roles as AWS sees them

sys.path.insert(0, str(ROOT / "scripts"))
import iam_policies  # noqa: E402  (scripts/iam_policies.py: the rendering the guard and the linter read)


def rendered(**overrides):
    params = dict(iam_policies.ESTATE, **overrides)
    return iam_policies.Stack(iam_policies.load_template(), params).role_policies()


@pytest.mark.parametrize("task,execution", [("", ""), ("", "arn:aws:iam::123456789012:role/x-execution"),
                                            ("arn:aws:iam::123456789012:role/x-task", "")])
def test_empty_role_lists_give_a_valid_policy(task, execution):
    deploy = rendered(TaskRoleArns=task, ExecutionRoleArns=execution)["DeployRole"]
    passes = [st for st in deploy["Statement"] if st["Action"] == "iam:PassRole"]
    resources = [r for st in passes for r in as_list(st["Resource"])]
    assert "" not in resources, resources
    assert resources == [r for r in (task, execution) if r]


def test_both_roles_may_list_the_bucket_so_a_missing_key_is_404():
    for role, doc in rendered().items():
        if role == "HookInvokeRole":
            continue
        lists = [st for st in doc["Statement"] if "s3:ListBucket" in as_list(st["Action"])]
        assert lists and all("Condition" not in st for st in lists), role
        assert all(st["Resource"] == "arn:aws:s3:::pushdeploy-artifacts" for st in lists), role


def test_ecs_may_invoke_exactly_the_verify_function_as_its_lifecycle_hook(template):
    role = template["Resources"]["HookInvokeRole"]["Properties"]
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "ecs.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    hook = rendered()["HookInvokeRole"]["Statement"]
    assert hook == [{"Sid": "InvokeTheVerifyFunction", "Effect": "Allow", "Action": "lambda:InvokeFunction",
                     "Resource": "arn:aws:lambda:ap-southeast-2:123456789012:function:pushdeploy-verify"}]
    out = template["Outputs"]["HookRoleArn"]
    assert out["Value"] == {"Fn::GetAtt": ["HookInvokeRole", "Arn"]}
    assert out["Export"]["Name"] == {"Fn::Sub": "${AWS::StackName}-HookRoleArn"}
    verify = rendered()["VerifyRole"]["Statement"]
    revisions = [st for st in verify if st.get("Sid") == "ReadTheRevisionAHookChecks"]
    assert revisions and "arn:aws:ecs:ap-southeast-2:123456789012:service-revision/todo-cluster/*" in revisions[0]["Resource"]


def test_verify_may_take_the_service_lease_it_rolls_back_under():
    verify = rendered()["VerifyRole"]
    leases = [st for st in verify["Statement"] if st.get("Sid") == "ServiceLeases"]
    assert leases and set(as_list(leases[0]["Action"])) == {"s3:GetObject", "s3:PutObject"}
    assert leases[0]["Resource"] == "arn:aws:s3:::pushdeploy-artifacts/leases/*"


@pytest.mark.parametrize("overrides", [{}, {"TaskRoleArns": "", "ExecutionRoleArns": ""},
                                       {"CreateNotificationTopic": "false"},
                                       {"VerifySubnetIds": "subnet-1,subnet-2", "VerifySecurityGroupIds": "sg-1"}])
def test_parliament_finds_nothing_in_either_role(overrides):
    """parliament (a maintained IAM linter) on each rendered policy: zero findings."""
    from parliament import analyze_policy_string

    for role, doc in rendered(**overrides).items():
        findings = analyze_policy_string(json.dumps(doc)).findings
        assert not findings, f"{role}: " + "; ".join(f"{f.issue} {f.detail}" for f in findings)


def test_verify_joins_the_vpc_only_when_given_subnets():
    stack = iam_policies.Stack(iam_policies.load_template(), dict(iam_policies.ESTATE, VerifySubnetIds="subnet-1",
                                                                  VerifySecurityGroupIds="sg-1"))
    fn = stack.resolve(stack.t["Resources"]["VerifyFunction"]["Properties"])
    assert fn["VpcConfig"] == {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}
    assert any(st.get("Sid") == "NetworkInterfacesInTheVpc" for st in stack.role_policies()["VerifyRole"]["Statement"])
    outside = iam_policies.Stack(iam_policies.load_template(), dict(iam_policies.ESTATE))
    assert "VpcConfig" not in outside.resolve(outside.t["Resources"]["VerifyFunction"]["Properties"])
    assert not any(st.get("Sid") == "NetworkInterfacesInTheVpc"
                   for st in outside.role_policies()["VerifyRole"]["Statement"])


def test_alarms_watch_verdicts_errors_and_the_queue_and_tell_the_topic(template):
    res = template["Resources"]
    alarms = {n: r["Properties"] for n, r in res.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == {"DeploymentFailuresAlarm", "DeployErrorsAlarm", "VerifyErrorsAlarm", "FailedInvocationsAlarm"}
    topic = {"Fn::If": ["HasExistingTopic", {"Ref": "NotificationTopicArn"}, {"Ref": "VerdictTopic"}]}
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == {"Fn::If": ["Notifies", [topic], {"Ref": "AWS::NoValue"}]}, name
        assert alarm["TreatMissingData"] == "notBreaching" and alarm["Threshold"] == 0, name
    # The verdict alarm sums pushdeploy's own EMF metrics across services (no dimension).
    stats = [m["MetricStat"]["Metric"] for m in alarms["DeploymentFailuresAlarm"]["Metrics"] if "MetricStat" in m]
    assert {(m["Namespace"], m["MetricName"]) for m in stats} == {
        ("pushdeploy", "RolledBack"), ("pushdeploy", "Failed"), ("pushdeploy", "RollbackFailed")
    }
    assert all("Dimensions" not in m for m in stats)
    for alarm, function in [("DeployErrorsAlarm", "DeployFunction"), ("VerifyErrorsAlarm", "VerifyFunction")]:
        a = alarms[alarm]
        assert (a["Namespace"], a["MetricName"]) == ("AWS/Lambda", "Errors")
        assert a["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    q = alarms["FailedInvocationsAlarm"]
    assert q["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert q["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["FailedInvocations", "QueueName"]}}]


def test_the_dashboard_is_valid_json_showing_every_metric_and_alarm(template):
    body, names = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    filled = re.sub(r"\$\{([^}]+)\}", lambda m: "x" if m.group(1) in names or m.group(1).startswith("AWS::") else m.group(0), body)
    assert "${" not in filled, "every ${...} is a Sub variable or a pseudo parameter"
    widgets = json.loads(filled)["widgets"]
    shown = json.dumps(widgets)
    for metric in ["Deployments", "Verified", "RolledBack", "Failed", "RollbackFailed", "LeadTimeSeconds", "SmokeSeconds"]:
        assert metric in shown, metric
    alarms = [w for w in widgets if w["type"] == "alarm"][0]["properties"]["alarms"]
    assert len(alarms) == 4
    assert set(names) >= {"Deploy", "Verify", "Queue", "FailuresAlarm", "DeployAlarm", "VerifyAlarm", "QueueAlarm"}
