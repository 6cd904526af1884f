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


def with_service_arn(arn):
    e = copy.deepcopy(event("ecs-deployment-completed.json"))
    e["resources"] = [arn]
    return e


def short_arn():
    """A service created before ECS's long ARN format: its ARN names no cluster."""
    return with_service_arn(f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/todo-frontend")


def other_cluster():
    return with_service_arn(f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/other-cluster/todo-frontend")


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
        # The short form's prefix (…:service/) cannot tell clusters apart, so another cluster's
        # events reach verify too, which ignores a service its config does not name
        # (tests/it/short_arns.rs).
        [event(n) for n in ECS_EVENTS] + [short_arn(), other_cluster()],
        [event(n) for n in PUSHES]
        + [
            with_service_arn(f"arn:aws:ecs:{REGION}:210987654321:service/todo-frontend"),
            with_service_arn(f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/todo-cluster/todo-frontend"),
            with_service_arn(f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/todo-cluster/abc"),
        ],
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
        if as_list(st["Action"]) == ["ecs:ListTasks"]:
            # The cluster's container instances, and the cluster named by ecs:cluster.
            assert "container-instance/${ClusterName}/*" in st["Resource"]["Fn::Sub"], f"{role}/{st['Sid']}"
            cluster = st["Condition"]["ArnEquals"]["ecs:cluster"]
            assert "cluster/${ClusterName}" in cluster["Fn::Sub"], f"{role}/{st['Sid']}"
        if st["Resource"] == "*":
            # Only where AWS supports no resource-level permissions.
            assert set(as_list(st["Action"])) <= {
                "ecs:DescribeTaskDefinition",
                "ecs:ListTaskDefinitions",
                "ecs:DeregisterTaskDefinition",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTargetGroups",
                "cloudwatch:GetMetricData",
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
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [{
        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": ["ArtifactKey", "Arn"]}},
        "BucketKeyEnabled": True,
    }]
    key = template["Resources"]["ArtifactKey"]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain", "kept as long as the bucket it encrypts"
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
        # A GetObject carries no s3:prefix: only an unconditioned statement turns a missing key's
        # 403 into 404. (Deploy's ListThePauses, conditioned on the pauses' prefix, is for its List.)
        unconditioned = [st for st in lists if "Condition" not in st]
        assert unconditioned, role
        assert all(st["Resource"] == "arn:aws:s3:::pushdeploy-artifacts" for st in lists), role
        assert all(st["Sid"] == "ListThePauses" for st in lists if "Condition" in st), role


def test_ecs_may_invoke_exactly_the_verify_function_as_its_lifecycle_hook(template):
    role = template["Resources"]["HookInvokeRole"]["Properties"]
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert [(st["Effect"], st["Principal"], st["Action"]) for st in trust] == [
        ("Allow", {"Service": "ecs.amazonaws.com"}, "sts:AssumeRole")
    ] * 2, "ECS alone assumes it (its conditions: test_the_hook_role_trusts_ecs_only_for_this_accounts_cluster)"
    hook = rendered()["HookInvokeRole"]
    verify_fn = "arn:aws:lambda:ap-southeast-2:123456789012:function:pushdeploy-verify"
    assert hook["Statement"] == [{"Sid": "InvokeTheVerifyFunction", "Effect": "Allow", "Action": "lambda:InvokeFunction",
                                  "Resource": [verify_fn, f"{verify_fn}:*"]}]
    # A hookTargetArn naming a version or an alias of verify is invoked on that qualified ARN.
    invoke = lambda fn: decide(hook, Request({"Service": "ecs.amazonaws.com"}, "lambda:InvokeFunction", fn), resource_policy=False)  # noqa: E731
    for target in [verify_fn, f"{verify_fn}:live", f"{verify_fn}:7"]:
        assert invoke(target).allowed, target
    for other in [f"{verify_fn}-copy", f"{verify_fn}2:live", verify_fn.replace("verify", "deploy")]:
        assert not invoke(other).allowed, other
    out = template["Outputs"]["HookRoleArn"]
    assert out["Value"] == {"Fn::GetAtt": ["HookInvokeRole", "Arn"]}
    assert out["Export"]["Name"] == {"Fn::Sub": "${AWS::StackName}-HookRoleArn"}
    verify = rendered()["VerifyRole"]["Statement"]
    revisions = [st for st in verify if st.get("Sid") == "ReadTheRevisionAHookChecks"]
    assert revisions and "arn:aws:ecs:ap-southeast-2:123456789012:service-revision/todo-cluster/*" in revisions[0]["Resource"]


def test_the_roles_reach_this_clusters_services_by_either_form_of_their_arn_and_no_other_clusters():
    """A short service ARN (…:service/<name>) names no cluster: the statement for it holds the
    request to this cluster by ecs:cluster, which every one of these actions carries."""
    roles = rendered()
    cluster = lambda name: {"ecs:cluster": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}"}  # noqa: E731
    service = lambda rest: f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{rest}"  # noqa: E731
    on_services = ["ecs:DescribeServices", "ecs:UpdateService", "ecs:ListServiceDeployments", "ecs:DescribeServiceRevisions"]
    for role, actions in {"DeployRole": on_services, "VerifyRole": on_services + ["ecs:DescribeServiceDeployments"]}.items():
        for action in actions:
            def allowed(resource, context):
                req = Request({"AWS": f"arn:aws:iam::{ACCOUNT}:role/{role}"}, action, resource, context)
                return decide(roles[role], req, resource_policy=False).allowed

            assert allowed(service("todo-cluster/todo-backend"), cluster("todo-cluster")), (role, action)
            assert allowed(service("todo-backend"), cluster("todo-cluster")), (role, action)
            assert not allowed(service("todo-backend"), cluster("other-cluster")), (role, action)
            assert not allowed(service("todo-backend"), {}), (role, action)
            assert not allowed(service("other-cluster/todo-backend"), cluster("other-cluster")), (role, action)
            assert not allowed(f"arn:aws:ecs:{REGION}:210987654321:service/todo-backend", cluster("todo-cluster"))


def test_verify_may_take_the_service_lease_it_rolls_back_under():
    verify = rendered()["VerifyRole"]
    leases = [st for st in verify["Statement"] if st.get("Sid") == "ServiceLeases"]
    assert leases and set(as_list(leases[0]["Action"])) == {"s3:GetObject", "s3:PutObject"}
    assert leases[0]["Resource"] == "arn:aws:s3:::pushdeploy-artifacts/leases/*"


SSM_PARAMETERS = "arn:aws:ssm:ap-southeast-2:123456789012:parameter/pushdeploy/*"
SMOKE_KEY = f"arn:aws:kms:ap-southeast-2:123456789012:key/{iam_policies.SMOKE_SECRET_KEY_ID}"


@pytest.mark.parametrize("parameters,keys", [("", ""), (SSM_PARAMETERS, ""), (SSM_PARAMETERS, SMOKE_KEY)])
def test_verify_reads_exactly_the_smoke_secrets_given_and_deploy_none(parameters, keys):
    roles = rendered(SmokeSecretParameterArns=parameters, SmokeSecretKeyArns=keys)
    verify = {st["Sid"]: st for st in roles["VerifyRole"]["Statement"]}
    if parameters:
        assert verify["ReadSmokeTestCredentials"] == {
            "Sid": "ReadSmokeTestCredentials", "Effect": "Allow", "Action": "ssm:GetParameter",
            "Resource": [parameters]}
    else:
        assert "ReadSmokeTestCredentials" not in verify, "an empty list names no parameter (never \"\")"
    if keys:
        assert verify["DecryptSmokeTestCredentialsThroughSsm"] == {
            "Sid": "DecryptSmokeTestCredentialsThroughSsm", "Effect": "Allow", "Action": "kms:Decrypt",
            "Resource": [keys], "Condition": {"StringEquals": {"kms:ViaService": "ssm.ap-southeast-2.amazonaws.com"}}}
    else:
        assert "DecryptSmokeTestCredentialsThroughSsm" not in verify
    assert '""' not in json.dumps(roles)
    deploy = json.dumps(roles["DeployRole"])
    assert "ssm:" not in deploy and SMOKE_KEY not in deploy, "deploy only validates the config's shape"


def test_the_smoke_key_is_used_only_through_ssm_for_the_parameters_given():
    s = stack()
    verify, role = s.role_policies()["VerifyRole"], as_role(s, "VerifyRole")
    parameter = "arn:aws:ssm:ap-southeast-2:123456789012:parameter/pushdeploy/todo/api-token"
    got = decide(verify, Request(role, "ssm:GetParameter", parameter), resource_policy=False)
    assert got.allowed_by == ["ReadSmokeTestCredentials"]
    for elsewhere in ["arn:aws:ssm:ap-southeast-2:123456789012:parameter/prod/db-password",
                      "arn:aws:ssm:ap-southeast-2:123456789012:parameter/pushdeployx/token"]:
        assert not decide(verify, Request(role, "ssm:GetParameter", elsewhere), resource_policy=False).allowed
    via_ssm = {"kms:ViaService": "ssm.ap-southeast-2.amazonaws.com"}
    got = decide(verify, Request(role, "kms:Decrypt", SMOKE_KEY, via_ssm), resource_policy=False)
    assert got.allowed_by == ["DecryptSmokeTestCredentialsThroughSsm"]
    for context in [{}, VIA_S3, {"kms:ViaService": "lambda.ap-southeast-2.amazonaws.com"}]:
        assert not decide(verify, Request(role, "kms:Decrypt", SMOKE_KEY, context), resource_policy=False).allowed


@pytest.mark.parametrize("overrides", [{}, {"TaskRoleArns": "", "ExecutionRoleArns": ""},
                                       {"SmokeSecretParameterArns": "", "SmokeSecretKeyArns": ""},
                                       {"CreateNotificationTopic": "false"},
                                       {"VerifySubnetIds": "subnet-1,subnet-2", "VerifySecurityGroupIds": "sg-1"},
                                       {"OperatorPrincipalArns": "arn:aws:iam::123456789012:role/ci-deployer"}])
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


def test_deploy_knows_whether_verify_runs_in_the_vpc(template):
    """plan warns of a test listener verify cannot reach only when it knows where verify runs:
    exactly "true" with VerifySubnetIds (src/lambda/setup.rs verify_in_vpc reads no other spelling)."""
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["PUSHDEPLOY_VERIFY_IN_VPC"] == {"Fn::If": ["VerifyInVpc", "true", "false"]}
    assert template["Conditions"]["VerifyInVpc"] == {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "VerifySubnetIds"}]}, ""]}]}


def test_both_functions_know_verifys_timeout_and_memory_so_they_agree_on_a_valid_config(template):
    """deploy refuses a config verify could not run only if it is told verify's limits."""
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS"] == {"Ref": "VerifyTimeoutSeconds"}
    assert env["PUSHDEPLOY_VERIFY_MEMORY_MB"] == {"Ref": "VerifyMemorySize"}
    verify = template["Resources"]["VerifyFunction"]["Properties"]
    assert verify["Timeout"] == {"Ref": "VerifyTimeoutSeconds"}
    assert verify["MemorySize"] == {"Ref": "VerifyMemorySize"}
    for name in ["DeployFunction", "VerifyFunction"]:
        own = template["Resources"][name]["Properties"].get("Environment", {}).get("Variables", {})
        assert not {"PUSHDEPLOY_VERIFY_TIMEOUT_SECONDS", "PUSHDEPLOY_VERIFY_MEMORY_MB"} & set(own), name


def test_the_functions_know_the_roles_the_stack_passes_so_plan_can_warn_of_another(template):
    """plan and validate warn of a task definition role iam:PassRole is not granted on: the
    functions are told the same two parameters the PassRole statements name (src/rules/pass_role.rs)."""
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["PUSHDEPLOY_TASK_ROLE_ARNS"] == {"Fn::Join": [",", {"Ref": "TaskRoleArns"}]}
    assert env["PUSHDEPLOY_EXECUTION_ROLE_ARNS"] == {"Fn::Join": [",", {"Ref": "ExecutionRoleArns"}]}
    deploy = template["Resources"]["DeployRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    passes = {st["Fn::If"][1]["Sid"]: st["Fn::If"][1]["Resource"] for st in deploy
              if isinstance(st, dict) and "Fn::If" in st and st["Fn::If"][1].get("Action") == "iam:PassRole"}
    assert passes == {"PassTheTaskRolesToEcsTasks": {"Ref": "TaskRoleArns"},
                      "PassTheExecutionRolesToEcsTasks": {"Ref": "ExecutionRoleArns"}}

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


# ---------------------------------------------------------------- nobody else can steer production
# The resource policies as AWS evaluates them (tests/template/iam_eval.py, a small evaluator of the
# operators these policies use). The attacker is an ordinary role of the same account; its identity
# policy may allow anything (s3:*, sqs:*, sns:*, kms:* on *), so what stops it is an explicit Deny
# here, or, for the key, a key policy that never lets an identity policy alone grant its use.

from iam_eval import Request, condition_holds, decide  # noqa: E402

ATTACKER = {"AWS": f"arn:aws:iam::{ACCOUNT}:role/ordinary-app-task"}
ROOT_USER = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
CI = f"arn:aws:iam::{ACCOUNT}:role/ci-deployer"
SSO = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_Deployer_*"
SSO_PERSON = {"AWS": f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/ap-southeast-2/AWSReservedSSO_Deployer_0123abcd"}
OPERATORS = f"{CI},{SSO}"
BUCKET_ARN = "arn:aws:s3:::pushdeploy-artifacts"
VIA_S3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}


def stack(**overrides):
    return iam_policies.Stack(iam_policies.load_template(), dict(iam_policies.ESTATE, **overrides))


def arns(s):
    return s.physical()


def as_role(s, logical):
    return {"AWS": arns(s)[f"{logical}Arn"]}


def test_the_evaluator_follows_the_iam_references_rules():
    """The rules the policies below lean on, from the IAM reference's "Condition operators"."""
    ctx = {"aws:principalarn": "arn:aws:iam::1:role/a"}
    # A negated operator is true for an absent key; a positive one false; ...IfExists true.
    assert condition_holds({"ArnNotEquals": {"aws:SourceArn": "arn:aws:events:r:1:rule/x"}}, ctx)
    assert not condition_holds({"ArnEquals": {"aws:SourceArn": "arn:aws:events:r:1:rule/x"}}, ctx)
    assert condition_holds({"ArnLikeIfExists": {"aws:SourceArn": "arn:aws:events:r:1:rule/x"}}, ctx)
    # A negated operator with several values is a NOR; a positive one an OR.
    two = ["arn:aws:iam::1:role/a", "arn:aws:iam::1:role/b"]
    assert not condition_holds({"ArnNotEquals": {"aws:PrincipalArn": two}}, ctx)
    assert condition_holds({"ArnEquals": {"aws:PrincipalArn": two}}, ctx)
    # Null "false": present. ArnLike matches each part with wildcards.
    assert not condition_holds({"Null": {"s3:x-amz-server-side-encryption": "false"}}, ctx)
    assert condition_holds({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::1:role/*"}}, ctx)
    assert not condition_holds({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::2:role/*"}}, ctx)
    with pytest.raises(NotImplementedError):
        condition_holds({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "5"})


def put(principal, key, **context):
    return Request(principal, "s3:PutObject", f"{BUCKET_ARN}/{key}", dict({"aws:SecureTransport": "true"}, **context))


RECORD_KEYS = ["deployments/todo-cluster/todo-backend/ecs-svc-1.json", "leases/todo-cluster/todo-backend.json",
               "imagedefinitions/todo-cluster/todo-backend/imagedefinitions.json",
               "hooks/todo-cluster/todo-backend/4bFpJbZo7aXdN7Yn.json"]


def test_only_the_function_roles_write_records_leases_and_artifacts_and_only_operators_the_config():
    s = stack(OperatorPrincipalArns=OPERATORS)
    bucket = s.resource_policies()["ArtifactBucketPolicy"]
    roles = [as_role(s, "DeployRole"), as_role(s, "VerifyRole")]
    operators = [{"AWS": CI}, SSO_PERSON]
    s3_service = {"Service": "s3.amazonaws.com"}  # e.g. replication from another bucket
    for key in RECORD_KEYS:
        for action in ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectTagging",
                       "s3:ReplicateObject"]:
            for who in [ATTACKER, ROOT_USER, s3_service, *operators]:
                req = Request(who, action, f"{BUCKET_ARN}/{key}", {"aws:SecureTransport": "true"})
                assert decide(bucket, req).denied_by == ["OnlyTheFunctionsWriteRecordsLeasesAndArtifacts"], (who, action, key)
        for role in roles:
            assert not decide(bucket, put(role, key)).denied, (role, key)
            assert not decide(bucket, Request(role, "s3:GetObject", f"{BUCKET_ARN}/{key}",
                                              {"aws:SecureTransport": "true"})).denied
    for who in [ATTACKER, ROOT_USER, *roles]:
        assert decide(bucket, put(who, "pushdeploy.toml")).denied_by == ["OnlyOperatorsWriteTheConfig"], who
    for operator in operators:
        assert not decide(bucket, put(operator, "pushdeploy.toml")).denied, operator
    # Reads are not this policy's business (the key policy's): nothing here denies them over TLS.
    assert not decide(bucket, Request(ATTACKER, "s3:GetObject", f"{BUCKET_ARN}/pushdeploy.toml",
                                      {"aws:SecureTransport": "true"})).denied
    # And plain HTTP stays denied to everyone, the roles included.
    plain = Request(roles[0], "s3:GetObject", f"{BUCKET_ARN}/{RECORD_KEYS[0]}", {"aws:SecureTransport": "false"})
    assert decide(bucket, plain).denied_by == ["TlsOnly"]


def test_only_operators_write_the_pauses_and_the_deploy_role_only_reads_them():
    """`pushdeploy pause` keeps one object per pause beside the config: operators write and delete
    them; nobody else, the functions included; the deploy role lists and reads exactly them."""
    s = stack(OperatorPrincipalArns=OPERATORS)
    bucket, deploy = s.resource_policies()["ArtifactBucketPolicy"], s.role_policies()["DeployRole"]
    roles = [as_role(s, "DeployRole"), as_role(s, "VerifyRole")]
    tls = {"aws:SecureTransport": "true"}
    for key in ["pushdeploy.toml.pauses/all.json", "pushdeploy.toml.pauses/service/backend.json"]:
        for action in ["s3:PutObject", "s3:DeleteObject"]:
            for who in [ATTACKER, ROOT_USER, *roles]:
                got = decide(bucket, Request(who, action, f"{BUCKET_ARN}/{key}", tls))
                assert got.denied_by == ["OnlyOperatorsWriteTheConfig"], (who, action, key)
            for operator in [{"AWS": CI}, SSO_PERSON]:
                assert not decide(bucket, Request(operator, action, f"{BUCKET_ARN}/{key}", tls)).denied
        role = roles[0]
        got = decide(deploy, Request(role, "s3:GetObject", f"{BUCKET_ARN}/{key}"), resource_policy=False)
        assert got.allowed_by == ["ReadThePauses"], key
        for action in ["s3:PutObject", "s3:DeleteObject"]:
            assert not decide(deploy, Request(role, action, f"{BUCKET_ARN}/{key}"), resource_policy=False).allowed
    listing = decide(deploy, Request(roles[0], "s3:ListBucket", BUCKET_ARN, {"s3:prefix": "pushdeploy.toml.pauses/"}),
                     resource_policy=False)
    assert "ListThePauses" in listing.allowed_by
    # A config elsewhere: its pauses beside it, read there.
    other = stack(ConfigS3Uri="s3://team-configs/pushdeploy/prod.toml").role_policies()["DeployRole"]
    pauses = "arn:aws:s3:::team-configs/pushdeploy/prod.toml.pauses/all.json"
    assert decide(other, Request(roles[0], "s3:GetObject", pauses), resource_policy=False).allowed_by == ["ReadThePauses"]
    listing = Request(roles[0], "s3:ListBucket", "arn:aws:s3:::team-configs", {"s3:prefix": "pushdeploy/prod.toml.pauses/"})
    assert decide(other, listing, resource_policy=False).allowed_by == ["ListThePauses"]
    elsewhere = Request(roles[0], "s3:ListBucket", "arn:aws:s3:::team-configs", {"s3:prefix": "secrets/"})
    assert not decide(other, elsewhere, resource_policy=False).allowed


def test_an_upload_naming_its_encryption_must_name_the_stacks_key():
    s = stack(OperatorPrincipalArns=CI)
    bucket, key = s.resource_policies()["ArtifactBucketPolicy"], arns(s)["ArtifactKeyArn"]
    operator = {"AWS": CI}
    sse = "s3:x-amz-server-side-encryption"
    # No header: the bucket default (the stack's key), as the functions and `aws s3 cp` upload.
    assert not decide(bucket, put(operator, "pushdeploy.toml")).denied
    assert not decide(bucket, put(operator, "pushdeploy.toml", **{sse: "aws:kms", f"{sse}-aws-kms-key-id": key})).denied
    for headers in [{sse: "AES256"}, {sse: "aws:kms"},  # aws:kms alone is the AWS-managed aws/s3 key
                    {sse: "aws:kms", f"{sse}-aws-kms-key-id": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/another"},
                    {sse: "aws:kms", f"{sse}-aws-kms-key-id": iam_policies.ARTIFACT_KEY_ID}]:  # by id, not ARN
        got = decide(bucket, put(operator, "pushdeploy.toml", **headers))
        assert got.denied_by == ["UploadsNamingAnEncryptionNameTheStacksKey"], headers


def test_without_operators_only_the_root_user_may_write_the_config_and_the_policy_stays_valid():
    s = stack()  # OperatorPrincipalArns left at its default, empty
    assert s.params["OperatorPrincipalArns"] == [""]
    policies = s.resource_policies()
    text = json.dumps(policies)
    assert '""' not in text, "an empty string in a policy is malformed"
    bucket = policies["ArtifactBucketPolicy"]
    config = [st for st in bucket["Statement"] if st.get("Sid") == "OnlyOperatorsWriteTheConfig"]
    assert config[0]["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:root"}}
    assert decide(bucket, put({"AWS": CI}, "pushdeploy.toml")).denied
    assert not decide(bucket, put(ROOT_USER, "pushdeploy.toml")).denied
    # Nobody but the functions may use the key, and only the root user may subscribe.
    assert not any(st.get("Sid") == "OperatorsUseItThroughS3" for st in policies["ArtifactKey"]["Statement"])
    topic, arn = policies["VerdictTopicPolicy"], s.refs["VerdictTopic"]
    assert decide(topic, Request({"AWS": CI}, "sns:Subscribe", arn)).denied
    assert not decide(topic, Request(ROOT_USER, "sns:Subscribe", arn)).denied


def test_a_config_elsewhere_is_not_this_bucket_policys_to_protect():
    s = stack(ConfigS3Uri="s3://team-configs/pushdeploy/prod.toml", OperatorPrincipalArns=CI)
    sids = [st.get("Sid") for st in s.resource_policies()["ArtifactBucketPolicy"]["Statement"]]
    assert "OnlyOperatorsWriteTheConfig" not in sids and "OnlyTheFunctionsWriteRecordsLeasesAndArtifacts" in sids


def key_use(s, principal, action="kms:Decrypt", **context):
    return Request(principal, action, arns(s)["ArtifactKeyArn"], context)


def test_only_the_function_roles_and_operators_use_the_key_and_only_through_s3():
    s = stack(OperatorPrincipalArns=OPERATORS)
    key = s.resource_policies()["ArtifactKey"]
    roles = s.role_policies()
    for logical in ["DeployRole", "VerifyRole"]:
        role = as_role(s, logical)
        for action in ["kms:Decrypt", "kms:GenerateDataKey"]:
            # The key policy lets the account's identity policies grant it to this role, via S3 ...
            assert decide(key, key_use(s, role, action, **VIA_S3)).allowed_by == ["TheFunctionsUseItThroughS3"]
            # ... and the role's own policy does (without it, every GetObject/PutObject is AccessDenied).
            mine = decide(roles[logical], key_use(s, role, action, **VIA_S3), resource_policy=False)
            assert mine.allowed_by == ["UseTheArtifactKeyThroughS3"], logical
            # Never directly.
            assert not decide(key, key_use(s, role, action)).allowed
            assert not decide(roles[logical], key_use(s, role, action), resource_policy=False).allowed
    for operator in [{"AWS": CI}, SSO_PERSON]:
        assert decide(key, key_use(s, operator, "kms:GenerateDataKey", **VIA_S3)).allowed_by == ["OperatorsUseItThroughS3"]
    # An identity policy of kms:* on * gives the attacker (or the root user) no use of the key:
    # the account principal is granted administration only.
    for who in [ATTACKER, ROOT_USER]:
        for action in ["kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:CreateGrant"]:
            assert not decide(key, key_use(s, who, action, **VIA_S3)).allowed, (who, action)
    assert decide(key, key_use(s, ROOT_USER, "kms:PutKeyPolicy")).allowed, "the account can always manage its key"
    # The roles match the key policy's path pattern because of their Path.
    assert arns(s)["DeployRoleArn"].startswith(f"arn:aws:iam::{ACCOUNT}:role/pushdeploy/pushdeploy/")


def test_only_the_functions_and_their_rules_send_to_the_failed_invocations_queue():
    s = stack()
    queue = s.resource_policies()["FailedInvocationsPolicy"]
    q = arns(s)["FailedInvocationsArn"]
    rules = [arns(s)["DeployFunctionEcrPushArn"], arns(s)["VerifyFunctionEcsDeploymentArn"]]
    send = lambda who, **ctx: decide(queue, Request(who, "sqs:SendMessage", q, ctx))  # noqa: E731
    assert send(ATTACKER).denied_by == ["OnlyTheFunctionsAndTheirRulesSend"]
    assert send(ROOT_USER).denied
    for logical in ["DeployRole", "VerifyRole"]:  # Lambda's OnFailure destination, as the execution role
        assert not send(as_role(s, logical)).denied
    events = {"Service": "events.amazonaws.com"}
    for rule in rules:
        got = send(events, **{"aws:SourceArn": rule, "aws:SourceAccount": ACCOUNT})
        assert got.allowed and got.allowed_by == ["EventBridgeDeadLetters"], rule
    another_rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/someone-elses"
    assert send(events, **{"aws:SourceArn": another_rule}).denied
    assert not send(events).allowed
    assert send({"Service": "sns.amazonaws.com"}, **{"aws:SourceArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:t"}).denied


def test_only_the_functions_and_the_stacks_alarms_publish_and_only_operators_subscribe():
    s = stack(OperatorPrincipalArns=OPERATORS)
    topic = s.resource_policies()["VerdictTopicPolicy"]
    arn = s.refs["VerdictTopic"]
    publish = lambda who, **ctx: decide(topic, Request(who, "sns:Publish", arn, ctx))  # noqa: E731
    subscribe = lambda who: decide(topic, Request(who, "sns:Subscribe", arn))  # noqa: E731
    assert publish(ATTACKER).denied_by == ["OnlyTheFunctionsAndTheStacksAlarmsPublish"]
    assert subscribe(ATTACKER).denied_by == ["OnlyOperatorsSubscribe"]
    assert publish(ROOT_USER).denied and subscribe(ROOT_USER).denied
    for logical in ["DeployRole", "VerifyRole"]:
        assert not publish(as_role(s, logical)).denied
        assert subscribe(as_role(s, logical)).denied
    for operator in [{"AWS": CI}, SSO_PERSON]:
        assert not subscribe(operator).denied
        assert publish(operator).denied
    cloudwatch = {"Service": "cloudwatch.amazonaws.com"}
    for alarm in ["DeploymentFailuresAlarm", "DeployErrorsAlarm", "VerifyErrorsAlarm", "FailedInvocationsAlarm"]:
        got = publish(cloudwatch, **{"aws:SourceArn": arns(s)[f"{alarm}Arn"], "aws:SourceAccount": ACCOUNT})
        assert got.allowed and got.allowed_by == ["TheStacksAlarmsPublish"], alarm
    someone_elses = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:pushdeploy VERIFIED"
    assert publish(cloudwatch, **{"aws:SourceArn": someone_elses, "aws:SourceAccount": ACCOUNT}).denied
    # The root user administers the topic.
    assert decide(topic, Request(ROOT_USER, "sns:SetTopicAttributes", arn)).allowed
    # An existing topic is the user's: the stack writes no policy on it (the book's IAM chapter shows the one to apply).
    existing = stack(NotificationTopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT}:team-alerts")
    assert "VerdictTopicPolicy" not in existing.resource_policies()
    assert "VerdictTopicPolicy" not in stack(CreateNotificationTopic="false").resource_policies()


def test_the_hook_role_trusts_ecs_only_for_this_accounts_cluster():
    trust = stack().trust_policies()["HookInvokeRole"]
    st = trust["Statement"][0]
    assert set(st["Condition"]) == {"StringEqualsIfExists", "ArnLikeIfExists"}
    assert st["Condition"]["StringEqualsIfExists"] == {"aws:SourceAccount": ACCOUNT}
    ecs = {"Service": "ecs.amazonaws.com"}
    role = f"arn:aws:iam::{ACCOUNT}:role/pushdeploy-HookInvokeRole"
    assume = lambda who, **ctx: decide(trust, Request(who, "sts:AssumeRole", role, ctx))  # noqa: E731
    ours = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/todo-cluster/todo-backend"
    assert assume(ecs, **{"aws:SourceAccount": ACCOUNT, "aws:SourceArn": ours}).allowed
    deployment = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/todo-cluster/todo-backend/abc"
    assert assume(ecs, **{"aws:SourceAccount": ACCOUNT, "aws:SourceArn": deployment}).allowed
    for ctx in [{"aws:SourceAccount": "210987654321"},
                {"aws:SourceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/other-cluster/todo-backend"},
                {"aws:SourceArn": f"arn:aws:ecs:{REGION}:210987654321:service/todo-cluster/todo-backend"},
                {"aws:SourceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/todo-cluster-2/x"}]:
        assert not assume(ecs, **ctx).allowed, ctx
    # A short-ARN service (created before the long format) names no cluster: this account's and
    # region's short ARNs are trusted, no other account's, and no other cluster's long ARNs.
    short = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/todo-backend"
    assert assume(ecs, **{"aws:SourceAccount": ACCOUNT, "aws:SourceArn": short}).allowed
    for ctx in [{"aws:SourceArn": f"arn:aws:ecs:{REGION}:210987654321:service/todo-backend"},
                {"aws:SourceArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/todo-backend"},
                {"aws:SourceAccount": "210987654321", "aws:SourceArn": short}]:
        assert not assume(ecs, **ctx).allowed, ctx
    # ECS documents neither key for this assumption: without them ECS still may (...IfExists), so a
    # real hook never breaks on them; iam:PassRole (never cross-account) is what names this role.
    assert assume(ecs).allowed
    assert not assume({"Service": "lambda.amazonaws.com"}).allowed and not assume(ATTACKER).allowed


@pytest.mark.parametrize("overrides", [{}, {"OperatorPrincipalArns": OPERATORS}, {"ConfigS3Uri": "s3://b/k.toml"}])
def test_parliament_finds_nothing_in_the_resource_policies(overrides):
    """parliament on the bucket, queue, topic and key policies. A key policy's Resource is "*" (the
    key itself): that one finding, RESOURCE_STAR, is the only one allowed, and only there."""
    from parliament import analyze_policy_string

    for name, doc in stack(**overrides).resource_policies().items():
        findings = analyze_policy_string(json.dumps(doc)).findings
        if name == "ArtifactKey":
            findings = [f for f in findings if f.issue != "RESOURCE_STAR"]
        assert not findings, f"{name}: " + "; ".join(f"{f.issue} {f.detail}" for f in findings)


# ---------------------------------------------------------------- who may invoke the functions

def test_the_functions_have_no_resource_policy_grant_but_their_rules(template):
    """Lambda function policies cannot Deny; what they can do is grant. The template grants exactly
    one thing: each function's EventBridge rule (SAM's EventBridgeRule event creates an
    AWS::Lambda::Permission for events.amazonaws.com with the rule's ARN as SourceArn). No other
    event source, no function URL, no Permission of its own."""
    res = template["Resources"]
    for name, r in res.items():
        assert r["Type"] not in {"AWS::Lambda::Url", "AWS::Lambda::LayerVersionPermission"}, name
        if r["Type"] == "AWS::Lambda::Permission":
            assert r["Properties"].get("SourceArn") and r["Properties"]["Principal"] != "*", name
    for name, r in res.items():
        if r["Type"] == "AWS::Serverless::Function":
            events = r["Properties"].get("Events", {})
            assert events and all(ev["Type"] == "EventBridgeRule" for ev in events.values()), name
            assert "FunctionUrlConfig" not in r["Properties"] and "AutoPublishAlias" not in r["Properties"], name
    assert "FunctionUrlConfig" not in json.dumps(template.get("Globals", {}))


def _python_with_sam_translator():
    import shutil
    import subprocess

    for python in [sys.executable, str(ROOT / ".venv-tools/bin/python"), shutil.which("python3")]:
        if python and pathlib.Path(python).exists():
            if subprocess.run([python, "-c", "import samtranslator"], capture_output=True).returncode == 0:
                return python
    return None


TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
class NoManagedPolicies:
    def load(self): return {}
t = json.load(sys.stdin)
for r in t["Resources"].values():
    if r["Type"] == "AWS::Serverless::Function":
        r["Properties"]["CodeUri"] = "s3://packaged/code.zip"  # what `sam deploy` uploads
json.dump(transform(t, {}, NoManagedPolicies())["Resources"], sys.stdout)
"""


def test_what_sam_generates_grants_invocation_to_the_two_rules_only(template):
    """The same, on SAM's own output (aws-sam-translator, as `sam deploy` transforms the template)."""
    import subprocess

    python = _python_with_sam_translator()
    if python is None:
        pytest.skip("no Python with aws-sam-translator (scripts/setup lambda installs one in .venv-tools)")
    out = subprocess.run([python, "-c", TRANSLATE], input=json.dumps(template), capture_output=True, text=True,
                         env={**__import__("os").environ, "AWS_DEFAULT_REGION": REGION})
    assert out.returncode == 0, out.stderr
    resources = json.loads(out.stdout)
    grants = {n: r["Properties"] for n, r in resources.items()
              if r["Type"] in {"AWS::Lambda::Permission", "AWS::Lambda::Url", "AWS::Lambda::LayerVersionPermission"}}
    assert grants == {
        "DeployFunctionEcrPushPermission": {"Action": "lambda:InvokeFunction", "FunctionName": {"Ref": "DeployFunction"},
                                            "Principal": "events.amazonaws.com",
                                            "SourceArn": {"Fn::GetAtt": ["DeployFunctionEcrPush", "Arn"]}},
        "VerifyFunctionEcsDeploymentPermission": {"Action": "lambda:InvokeFunction",
                                                  "FunctionName": {"Ref": "VerifyFunction"},
                                                  "Principal": "events.amazonaws.com",
                                                  "SourceArn": {"Fn::GetAtt": ["VerifyFunctionEcsDeployment", "Arn"]}},
    }
    assert resources["DeployFunctionEcrPush"]["Type"] == resources["VerifyFunctionEcsDeployment"]["Type"] == "AWS::Events::Rule"


# ---------------------------------------------------------------- the book's policies, filled in

def readme_json_after(heading, nth=0):
    """The nth ```json block after `heading` in the book's IAM chapter."""
    text = (ROOT / "docs" / "src" / "iam.md").read_text()
    after = text[text.index(heading):]
    return re.findall(r"```json\n(.*?)```", after, re.S)[nth]


def filled(block, s, operators):
    values = {
        "<account>": ACCOUNT, "<region>": REGION, "<ClusterName>": "todo-cluster",
        "<ArtifactBucketName>": arns(s)["ArtifactBucketName"], "<ArtifactKeyArn>": arns(s)["ArtifactKeyArn"],
        "<DeployFunctionArn>": arns(s)["DeployFunctionArn"], "<DeployRoleArn>": arns(s)["DeployRoleArn"],
        "<VerifyRoleArn>": arns(s)["VerifyRoleArn"], "<topic ARN>": s.refs["VerdictTopic"],
        "<VerifyFunctionArn>": arns(s)["VerifyFunctionArn"],
        "<FailedInvocationsQueueArn>": arns(s)["FailedInvocationsArn"],
    }
    for k, v in values.items():
        block = block.replace(k, v)
    block = block.replace('"<each OperatorPrincipalArns entry>"', ", ".join(json.dumps(o) for o in operators))
    assert "<" not in block, block
    return json.loads(block)


def test_the_readmes_operator_policy_does_what_it_says_under_the_stacks_policies():
    from parliament import analyze_policy_string

    s = stack(OperatorPrincipalArns=CI)
    policy = filled(readme_json_after("### Granting an operator the manual actions"), s, [CI])
    assert not analyze_policy_string(json.dumps(policy)).findings
    resource = s.resource_policies()
    bucket, key = resource["ArtifactBucketPolicy"], resource["ArtifactKey"]
    operator = {"AWS": CI}
    tls = {"aws:SecureTransport": "true"}
    steps = [
        (Request(operator, "s3:PutObject", f"{BUCKET_ARN}/pushdeploy.toml", tls), bucket),
        (Request(operator, "s3:GetObject", f"{BUCKET_ARN}/deployments/todo-cluster/todo-backend/x.json", tls), bucket),
        (Request(operator, "s3:ListBucket", BUCKET_ARN, tls), bucket),
        (key_use(s, operator, "kms:GenerateDataKey", **VIA_S3), key),
        (key_use(s, operator, "kms:Decrypt", **VIA_S3), key),
        (Request(operator, "lambda:InvokeFunction", arns(s)["DeployFunctionArn"]), None),
    ]
    for req, resource_policy in steps:
        assert decide(policy, req, resource_policy=False).allowed, req
        if resource_policy is not None:
            got = decide(resource_policy, req)
            assert not got.denied, (req, got)
            if resource_policy is key:
                assert got.allowed, "the key policy must allow it too"
    # What it does not give: writing a record.
    assert not decide(policy, Request(operator, "s3:PutObject", f"{BUCKET_ARN}/deployments/x.json"),
                      resource_policy=False).allowed


def test_the_readmes_redrive_statements_read_and_replay_the_queue_but_never_send_to_it():
    from parliament import analyze_policy_string

    s = stack(OperatorPrincipalArns=CI)
    statements = filled(readme_json_after("### Granting an operator the manual actions", nth=1), s, [CI])
    policy = {"Version": "2012-10-17", "Statement": statements}
    assert not analyze_policy_string(json.dumps(policy)).findings
    queue, q = s.resource_policies()["FailedInvocationsPolicy"], arns(s)["FailedInvocationsArn"]
    operator = {"AWS": CI}
    for action in ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]:
        req = Request(operator, action, q)
        assert decide(policy, req, resource_policy=False).allowed, action
        assert not decide(queue, req).denied, action
    for fn in [arns(s)["DeployFunctionArn"], arns(s)["VerifyFunctionArn"]]:
        assert decide(policy, Request(operator, "lambda:InvokeFunction", fn), resource_policy=False).allowed, fn
    # Replaying needs no way to put a message in the queue, and the queue would refuse one anyway.
    send = Request(operator, "sqs:SendMessage", q)
    assert not decide(policy, send, resource_policy=False).allowed
    assert decide(queue, send).denied


def test_the_readmes_policy_for_a_topic_of_your_own_matches_the_stacks():
    s = stack(OperatorPrincipalArns=CI)
    theirs = filled(readme_json_after("**A topic of your own.**"), s, [CI])
    ours = s.resource_policies()["VerdictTopicPolicy"]
    assert [st["Sid"] for st in theirs["Statement"]] == [st["Sid"] for st in ours["Statement"]]
    arn = s.refs["VerdictTopic"]
    cloudwatch = {"Service": "cloudwatch.amazonaws.com"}
    alarm = {"aws:SourceArn": arns(s)["DeploymentFailuresAlarmArn"], "aws:SourceAccount": ACCOUNT}
    for policy in [theirs, ours]:
        assert decide(policy, Request(ATTACKER, "sns:Publish", arn)).denied
        assert decide(policy, Request(ATTACKER, "sns:Subscribe", arn)).denied
        assert not decide(policy, Request(as_role(s, "VerifyRole"), "sns:Publish", arn)).denied
        assert not decide(policy, Request({"AWS": CI}, "sns:Subscribe", arn)).denied
        assert decide(policy, Request(cloudwatch, "sns:Publish", arn, alarm)).allowed


def test_the_readmes_invoke_deny_leaves_operators_and_the_hook_role():
    s = stack()
    st = json.loads(readme_json_after("**What Lambda cannot stop.**").replace(
        '"<each OperatorPrincipalArns entry>"', json.dumps(CI)).replace(
        "<HookRoleArn output>", arns(s)["HookInvokeRoleArn"]).replace("<region>", REGION).replace("<account>", ACCOUNT))
    scp = {"Version": "2012-10-17", "Statement": [st]}
    for fn in [arns(s)["DeployFunctionArn"], arns(s)["VerifyFunctionArn"], arns(s)["VerifyFunctionArn"] + ":1"]:
        assert decide(scp, Request(ATTACKER, "lambda:InvokeFunction", fn), resource_policy=False).denied
        assert not decide(scp, Request({"AWS": CI}, "lambda:InvokeFunction", fn), resource_policy=False).denied
    hook = {"AWS": arns(s)["HookInvokeRoleArn"]}
    assert not decide(scp, Request(hook, "lambda:InvokeFunction", arns(s)["VerifyFunctionArn"]), resource_policy=False).denied


def test_deploy_has_the_measured_memory_and_the_runtimes_own_trust_store(template):
    """BENCHMARKS.md, "A cold deploy with TLS": CPU comes with memory. The trust store is the
    runtime's own: a bundle path set here and missing on the runtime would fail every call."""
    function = template["Globals"]["Function"]
    assert "SSL_CERT_FILE" not in function["Environment"]["Variables"]
    assert template["Resources"]["DeployFunction"]["Properties"]["MemorySize"] == 512
