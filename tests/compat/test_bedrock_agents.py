"""Bedrock Agents through boto3: the control plane (agents, action groups with function and
OpenAPI schemas, knowledge base associations, preparation, versions, aliases, tags) with
Bedrock's errors, and InvokeAgent / InvokeInlineAgent on the local chat model: tool calls
decoded under the actions' schemas, Lambda action groups with Bedrock's event and response
contract (and its DependencyFailedException when a function fails), return of control,
traces, session attributes, memory summaries and guardrails.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EventStreamError

from conftest import unique
from test_bedrock import pytestmark  # noqa: F401  (skips without a local chat model)
from test_lambda import zip_of

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
ROLE = "arn:aws:iam::000000000000:role/AgentRole"
LAMBDA_ROLE = "arn:aws:iam::000000000000:role/lambda"
INSTRUCTION = "You are a helpful assistant that answers questions about the weather using the tools you have."

WEATHER = {"functions": [{
    "name": "get_weather",
    "description": "Get the current weather of a city.",
    "parameters": {"city": {"type": "string", "description": "The city, e.g. Paris", "required": True}},
}]}

OPENAPI_YAML = """
openapi: 3.0.0
info: {title: Claims API, version: 1.0.0}
paths:
  /claims/{claimId}:
    get:
      operationId: getClaim
      description: Get the status of an insurance claim by its id.
      parameters:
        - name: claimId
          in: path
          required: true
          schema: {type: string}
      responses:
        '200': {description: The claim}
"""


@pytest.fixture(scope="module")
def ba(make_client):
    return make_client("bedrock-agent")


@pytest.fixture(scope="module")
def bar(make_client):
    # The event stream is checked by hand (the generic validator cannot walk EventStreams).
    return make_client("bedrock-agent-runtime", read_timeout=600, check=False)


@pytest.fixture(scope="module")
def lam(make_client):
    return make_client("lambda")


def _has_python_runtime() -> bool:
    runtimes = Path(os.environ.get("BASALT_RUNTIME_DIR", Path.home() / ".cache/basalt/runtimes"))
    return any(runtimes.glob("python3.*/.installed"))


needs_lambda = pytest.mark.skipif(not _has_python_runtime(), reason="no Lambda Python runtime installed")


def make_agent(ba, instruction=INSTRUCTION, **kw):
    agent = ba.create_agent(agentName=unique("agent"), foundationModel=MODEL, instruction=instruction,
                            agentResourceRoleArn=ROLE, **kw)["agent"]
    return agent["agentId"]


def prepared(ba, agent_id):
    ba.prepare_agent(agentId=agent_id)
    assert ba.get_agent(agentId=agent_id)["agent"]["agentStatus"] == "PREPARED"
    return agent_id


def collect(response):
    """Events of an InvokeAgent stream by kind, and the answer text."""
    out = {"chunk": [], "trace": [], "returnControl": [], "errors": []}
    try:
        for event in response["completion"]:
            for kind, value in event.items():
                if kind in out:
                    out[kind].append(value)
                else:
                    out["errors"].append((kind, value))
    except EventStreamError as e:  # an exception event ends the stream
        out["errors"].append((e.response["Error"]["Code"], e.response["Error"]["Message"]))
    out["text"] = b"".join(c["bytes"] for c in out["chunk"]).decode()
    return out


def test_agent_lifecycle_versions_aliases_and_errors(ba):
    agent_id = make_agent(ba, description="weather", idleSessionTTLInSeconds=900, tags={"team": "ml"})
    agent = ba.get_agent(agentId=agent_id)["agent"]
    assert len(agent_id) == 10 and agent_id.isalnum()
    assert agent["agentArn"] == f"arn:aws:bedrock:us-east-1:000000000000:agent/{agent_id}"
    assert agent["agentStatus"] == "NOT_PREPARED" and agent["agentVersion"] == "DRAFT"
    assert agent["idleSessionTTLInSeconds"] == 900
    types = {c["promptType"] for c in agent["promptOverrideConfiguration"]["promptConfigurations"]}
    assert types == {"PRE_PROCESSING", "ORCHESTRATION", "POST_PROCESSING",
                     "KNOWLEDGE_BASE_RESPONSE_GENERATION", "MEMORY_SUMMARIZATION"}
    assert any(a["agentId"] == agent_id for a in ba.list_agents(maxResults=100)["agentSummaries"])

    group = ba.create_agent_action_group(
        agentId=agent_id, agentVersion="DRAFT", actionGroupName="weather",
        actionGroupExecutor={"customControl": "RETURN_CONTROL"}, functionSchema=WEATHER)["agentActionGroup"]
    assert group["actionGroupState"] == "ENABLED"
    api = ba.create_agent_action_group(
        agentId=agent_id, agentVersion="DRAFT", actionGroupName="claims", description="Claims",
        actionGroupExecutor={"customControl": "RETURN_CONTROL"}, apiSchema={"payload": OPENAPI_YAML})["agentActionGroup"]
    assert api["apiSchema"]["payload"] == OPENAPI_YAML
    names = {g["actionGroupName"] for g in
             ba.list_agent_action_groups(agentId=agent_id, agentVersion="DRAFT")["actionGroupSummaries"]}
    assert names == {"weather", "claims"}

    def code(call, **kw):
        with pytest.raises(ClientError) as e:
            call(**kw)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]

    common = dict(agentId=agent_id, agentVersion="DRAFT", actionGroupExecutor={"customControl": "RETURN_CONTROL"})
    assert code(ba.create_agent_action_group, actionGroupName="both", functionSchema=WEATHER,
                apiSchema={"payload": OPENAPI_YAML}, **common)[0] == "ValidationException"
    assert code(ba.create_agent_action_group, actionGroupName="bad", apiSchema={"payload": "swagger: '2.0'"},
                **common)[0] == "ValidationException"
    assert code(ba.create_agent_action_group, actionGroupName="weather", functionSchema=WEATHER,
                **common)[0] == "ConflictException"
    c, m = code(ba.create_agent_action_group, agentId=agent_id, agentVersion="DRAFT", actionGroupName="code",
                parentActionGroupSignature="AMAZON.CodeInterpreter")
    assert c == "ValidationException" and "CodeInterpreter" in m
    assert code(ba.get_agent, agentId="NOSUCHAGNT")[0] == "ResourceNotFoundException"
    assert code(ba.update_agent, agentId=agent_id, agentName="x", foundationModel=MODEL,
                agentResourceRoleArn=ROLE, instruction="x" * 4001)[0] == "ValidationException"

    # No version without preparation; then an alias freezes version 1.
    assert code(ba.create_agent_alias, agentId=agent_id, agentAliasName="early")[0] == "ValidationException"
    prepared(ba, agent_id)
    alias = ba.create_agent_alias(agentId=agent_id, agentAliasName="live", tags={"stage": "prod"})["agentAlias"]
    assert alias["routingConfiguration"] == [{"agentVersion": "1"}]
    assert alias["agentAliasStatus"] == "PREPARED"
    assert alias["agentAliasArn"].endswith(f":agent-alias/{agent_id}/{alias['agentAliasId']}")
    aliases = {a["agentAliasId"] for a in ba.list_agent_aliases(agentId=agent_id)["agentAliasSummaries"]}
    assert aliases == {"TSTALIASID", alias["agentAliasId"]}
    versions = [v["agentVersion"] for v in ba.list_agent_versions(agentId=agent_id)["agentVersionSummaries"]]
    assert versions == ["DRAFT", "1"]
    v1 = ba.get_agent_version(agentId=agent_id, agentVersion="1")["agentVersion"]
    assert v1["version"] == "1" and v1["instruction"] == INSTRUCTION
    frozen = ba.list_agent_action_groups(agentId=agent_id, agentVersion="1")["actionGroupSummaries"]
    assert len(frozen) == 2

    # Editing the draft needs a new preparation and leaves version 1 as it was.
    ba.update_agent_action_group(agentId=agent_id, agentVersion="DRAFT", actionGroupId=api["actionGroupId"],
                                 actionGroupName="claims", actionGroupState="DISABLED",
                                 actionGroupExecutor={"customControl": "RETURN_CONTROL"},
                                 apiSchema={"payload": OPENAPI_YAML})
    assert ba.get_agent(agentId=agent_id)["agent"]["agentStatus"] == "NOT_PREPARED"
    g1 = ba.get_agent_action_group(agentId=agent_id, agentVersion="1", actionGroupId=api["actionGroupId"])
    assert g1["agentActionGroup"]["actionGroupState"] == "ENABLED"

    assert code(ba.delete_agent_version, agentId=agent_id, agentVersion="1")[0] == "ConflictException"
    arn = ba.get_agent(agentId=agent_id)["agent"]["agentArn"]
    ba.tag_resource(resourceArn=arn, tags={"cost": "1"})
    assert ba.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "ml", "cost": "1"}
    ba.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert ba.list_tags_for_resource(resourceArn=arn)["tags"] == {"cost": "1"}
    assert ba.list_tags_for_resource(resourceArn=alias["agentAliasArn"])["tags"] == {"stage": "prod"}

    assert code(ba.delete_agent, agentId=agent_id)[0] == "ConflictException"
    assert ba.delete_agent(agentId=agent_id, skipResourceInUseCheck=True)["agentStatus"] == "DELETING"
    assert code(ba.get_agent, agentId=agent_id)[0] == "ResourceNotFoundException"


def test_openapi_schema_from_s3_and_knowledge_base_association(ba, s3, bucket, make_client):
    agent_id = make_agent(ba)
    s3.put_object(Bucket=bucket, Key="schemas/claims.yaml", Body=OPENAPI_YAML.encode())
    g = ba.create_agent_action_group(
        agentId=agent_id, agentVersion="DRAFT", actionGroupName="claims",
        actionGroupExecutor={"customControl": "RETURN_CONTROL"},
        apiSchema={"s3": {"s3BucketName": bucket, "s3ObjectKey": "schemas/claims.yaml"}})["agentActionGroup"]
    assert g["apiSchema"]["s3"]["s3ObjectKey"] == "schemas/claims.yaml"
    with pytest.raises(ClientError) as e:
        ba.create_agent_action_group(
            agentId=agent_id, agentVersion="DRAFT", actionGroupName="missing",
            actionGroupExecutor={"customControl": "RETURN_CONTROL"},
            apiSchema={"s3": {"s3BucketName": bucket, "s3ObjectKey": "nope.yaml"}})
    assert e.value.response["Error"]["Code"] == "ValidationException"
    kb = ba.create_knowledge_base(
        name=unique("kb"), roleArn=ROLE,
        knowledgeBaseConfiguration={"type": "VECTOR", "vectorKnowledgeBaseConfiguration": {
            "embeddingModelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"}},
        storageConfiguration={"type": "OPENSEARCH_SERVERLESS", "opensearchServerlessConfiguration": {
            "collectionArn": "arn:aws:aoss:us-east-1:000000000000:collection/kbcoll", "vectorIndexName": "i",
            "fieldMapping": {"vectorField": "v", "textField": "t", "metadataField": "m"}}})["knowledgeBase"]
    a = ba.associate_agent_knowledge_base(agentId=agent_id, agentVersion="DRAFT",
                                          knowledgeBaseId=kb["knowledgeBaseId"],
                                          description="Claims handbook")["agentKnowledgeBase"]
    assert a["knowledgeBaseState"] == "ENABLED"
    listed = ba.list_agent_knowledge_bases(agentId=agent_id, agentVersion="DRAFT")["agentKnowledgeBaseSummaries"]
    assert [x["knowledgeBaseId"] for x in listed] == [kb["knowledgeBaseId"]]
    prepared(ba, agent_id)
    ba.disassociate_agent_knowledge_base(agentId=agent_id, agentVersion="DRAFT",
                                         knowledgeBaseId=kb["knowledgeBaseId"])
    assert ba.list_agent_knowledge_bases(agentId=agent_id, agentVersion="DRAFT")["agentKnowledgeBaseSummaries"] == []
    ba.delete_agent(agentId=agent_id, skipResourceInUseCheck=True)
    ba.delete_knowledge_base(knowledgeBaseId=kb["knowledgeBaseId"])


@pytest.mark.timeout(600)
def test_return_control_hands_the_call_to_the_caller_and_resumes(ba, bar):
    agent_id = make_agent(ba)
    ba.create_agent_action_group(agentId=agent_id, agentVersion="DRAFT", actionGroupName="weather",
                                 actionGroupExecutor={"customControl": "RETURN_CONTROL"}, functionSchema=WEATHER)
    prepared(ba, agent_id)
    r = bar.invoke_agent(agentId=agent_id, agentAliasId="TSTALIASID", sessionId="rc-1", enableTrace=True,
                         inputText="What is the weather in Paris right now?")
    assert r["sessionId"] == "rc-1" and r["contentType"] == "application/json"
    got = collect(r)
    assert not got["errors"], got["errors"]
    assert got["returnControl"], got
    rc = got["returnControl"][0]
    call = rc["invocationInputs"][0]["functionInvocationInput"]
    assert call["actionGroup"] == "weather" and call["function"] == "get_weather"
    assert call["parameters"][0]["name"] == "city" and "paris" in call["parameters"][0]["value"].lower()
    kinds = {next(iter(t["trace"]["orchestrationTrace"])) for t in got["trace"] if "orchestrationTrace" in t["trace"]}
    assert {"modelInvocationInput", "modelInvocationOutput", "invocationInput"} <= kinds
    assert all(t["agentId"] == agent_id and t["sessionId"] == "rc-1" for t in got["trace"])

    r = bar.invoke_agent(agentId=agent_id, agentAliasId="TSTALIASID", sessionId="rc-1", sessionState={
        "invocationId": rc["invocationId"],
        "returnControlInvocationResults": [{"functionResult": {
            "actionGroup": "weather", "function": "get_weather",
            "responseBody": {"TEXT": {"body": "Paris: 18 degrees Celsius and sunny."}}}}]})
    got = collect(r)
    assert not got["errors"], got["errors"]
    assert "18" in got["text"], got["text"]

    # Results for a session that waits for none are refused.
    with pytest.raises(ClientError) as e:
        collect(bar.invoke_agent(agentId=agent_id, agentAliasId="TSTALIASID", sessionId="rc-1", sessionState={
            "invocationId": rc["invocationId"],
            "returnControlInvocationResults": [{"functionResult": {
                "actionGroup": "weather", "function": "get_weather", "responseBody": {"TEXT": {"body": "x"}}}}]}))
    assert e.value.response["Error"]["Code"] == "ValidationException"
    ba.delete_agent(agentId=agent_id, skipResourceInUseCheck=True)


def test_invoke_errors_before_the_stream(ba, bar):
    agent_id = make_agent(ba)
    with pytest.raises(ClientError) as e:
        collect(bar.invoke_agent(agentId=agent_id, agentAliasId="TSTALIASID", sessionId="s-1", inputText="hi"))
    assert e.value.response["Error"]["Code"] == "ValidationException"  # not prepared
    with pytest.raises(ClientError) as e:
        collect(bar.invoke_agent(agentId="NOSUCHAGNT", agentAliasId="TSTALIASID", sessionId="s-1", inputText="hi"))
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        collect(bar.invoke_agent(agentId=agent_id, agentAliasId="NOSUCHALIA", sessionId="s-1", inputText="hi"))
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    ba.delete_agent(agentId=agent_id)


LAMBDA_SRC = '''
import json

def handler(event, context):
    params = {p["name"]: p["value"] for p in event.get("parameters", [])}
    city = params.get("city", "")
    if city.lower().startswith("atlantis"):
        raise ValueError("no such city")
    if city.lower().startswith("gotham"):
        return {"statusCode": 200}
    attrs = dict(event.get("sessionAttributes", {}))
    attrs["calls"] = str(int(attrs.get("calls", "0")) + 1)
    attrs["seen_version"] = event["messageVersion"]
    body = f"{city}: 21 degrees and cloudy (user {attrs.get('user', 'unknown')})."
    return {"messageVersion": "1.0",
            "response": {"actionGroup": event["actionGroup"], "function": event["function"],
                         "functionResponse": {"responseBody": {"TEXT": {"body": body}}}},
            "sessionAttributes": attrs}
'''


@needs_lambda
@pytest.mark.timeout(900)
def test_lambda_action_groups_run_with_bedrocks_contract(ba, bar, lam):
    name = unique("weather-fn")
    arn = lam.create_function(FunctionName=name, Runtime="python3.12", Role=LAMBDA_ROLE, Handler="index.handler",
                              Code={"ZipFile": zip_of({"index.py": LAMBDA_SRC})}, Timeout=30)["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    agent_id = make_agent(ba)
    ba.create_agent_action_group(agentId=agent_id, agentVersion="DRAFT", actionGroupName="weather",
                                 actionGroupExecutor={"lambda": arn}, functionSchema=WEATHER)
    prepared(ba, agent_id)
    r = bar.invoke_agent(agentId=agent_id, agentAliasId="TSTALIASID", sessionId="lam-1", enableTrace=True,
                         sessionState={"sessionAttributes": {"user": "ada"}},
                         inputText="What is the weather in Oslo?")
    got = collect(r)
    assert not got["errors"], got["errors"]
    observations = [t["trace"]["orchestrationTrace"]["observation"] for t in got["trace"]
                    if "observation" in t["trace"].get("orchestrationTrace", {})]
    outputs = [o["actionGroupInvocationOutput"]["text"] for o in observations if o.get("type") == "ACTION_GROUP"]
    assert outputs and "21 degrees" in outputs[0] and "user ada" in outputs[0], observations
    assert "21" in got["text"], got["text"]

    # A function that raises, or answers outside the contract, fails the turn as on Bedrock.
    for city in ("Atlantis", "Gotham"):
        got = collect(bar.invoke_agent(agentId=agent_id, agentAliasId="TSTALIASID", sessionId=f"lam-{city}",
                                       inputText=f"What is the weather in {city}?"))
        assert [k for k, _ in got["errors"]] == ["dependencyFailedException"], got
        assert "weather-fn" in got["errors"][0][1] and not got["chunk"], got
    # A prepared agent whose function was deleted cannot be prepared again.
    lam.delete_function(FunctionName=name)
    with pytest.raises(ClientError) as e:
        ba.prepare_agent(agentId=agent_id)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    ba.delete_agent(agentId=agent_id, skipResourceInUseCheck=True)


@pytest.mark.timeout(600)
def test_inline_agent_returns_control(bar):
    r = bar.invoke_inline_agent(
        sessionId="inline-1", foundationModel=MODEL, instruction=INSTRUCTION,
        inputText="What is the weather in Rome?",
        actionGroups=[{"actionGroupName": "weather", "actionGroupExecutor": {"customControl": "RETURN_CONTROL"},
                       "functionSchema": WEATHER}])
    got = collect(r)
    assert not got["errors"], got["errors"]
    call = got["returnControl"][0]["invocationInputs"][0]["functionInvocationInput"]
    assert call["function"] == "get_weather" and "rome" in call["parameters"][0]["value"].lower()


@pytest.mark.timeout(600)
def test_memory_keeps_session_summaries(ba, bar):
    agent_id = make_agent(ba, memoryConfiguration={"enabledMemoryTypes": ["SESSION_SUMMARY"], "storageDays": 30})
    prepared(ba, agent_id)
    got = collect(bar.invoke_agent(agentId=agent_id, agentAliasId="TSTALIASID", sessionId="mem-1",
                                   memoryId="user-42", inputText="Hello, my name is Ada and I live in Oslo."))
    assert not got["errors"], got["errors"]
    got = collect(bar.invoke_agent(agentId=agent_id, agentAliasId="TSTALIASID", sessionId="mem-1",
                                   memoryId="user-42", endSession=True, inputText="Thanks, goodbye."))
    assert not got["errors"], got["errors"]
    mem = bar.get_agent_memory(agentId=agent_id, agentAliasId="TSTALIASID", memoryId="user-42",
                               memoryType="SESSION_SUMMARY")["memoryContents"]
    assert len(mem) == 1
    s = mem[0]["sessionSummary"]
    assert s["sessionId"] == "mem-1" and s["memoryId"] == "user-42" and s["summaryText"].strip()
    assert s["sessionExpiryTime"] > s["sessionStartTime"]
    bar.delete_agent_memory(agentId=agent_id, agentAliasId="TSTALIASID", memoryId="user-42")
    assert bar.get_agent_memory(agentId=agent_id, agentAliasId="TSTALIASID", memoryId="user-42",
                                memoryType="SESSION_SUMMARY")["memoryContents"] == []
    ba.delete_agent(agentId=agent_id)


@pytest.mark.timeout(600)
def test_guardrail_blocks_the_input(ba, bar, make_client):
    bedrock = make_client("bedrock")
    g = bedrock.create_guardrail(
        name=unique("g"), blockedInputMessaging="I cannot talk about that.",
        blockedOutputsMessaging="I cannot say that.",
        wordPolicyConfig={"wordsConfig": [{"text": "plutonium"}]})
    agent_id = make_agent(ba, guardrailConfiguration={"guardrailIdentifier": g["guardrailId"],
                                                      "guardrailVersion": "DRAFT"})
    prepared(ba, agent_id)
    got = collect(bar.invoke_agent(agentId=agent_id, agentAliasId="TSTALIASID", sessionId="g-1", enableTrace=True,
                                   inputText="Where can I buy plutonium?"))
    assert got["text"] == "I cannot talk about that."
    guard = [t["trace"]["guardrailTrace"] for t in got["trace"] if "guardrailTrace" in t["trace"]]
    assert guard and guard[0]["action"] == "INTERVENED"
    ba.delete_agent(agentId=agent_id)
    bedrock.delete_guardrail(guardrailIdentifier=g["guardrailId"])


@pytest.mark.timeout(600)
def test_streamed_final_response_comes_in_guardrail_intervals(bar):
    def ask(**kw):
        return collect(bar.invoke_inline_agent(
            sessionId=unique("stream"), foundationModel=MODEL, instruction=INSTRUCTION,
            inputText="Say hello and tell me in one sentence what you can do.", **kw))
    whole = ask()
    assert not whole["errors"] and len(whole["chunk"]) == 1, whole
    got = ask(streamingConfigurations={"streamFinalResponse": True, "applyGuardrailInterval": 10})
    assert not got["errors"], got["errors"]
    sizes = [len(c["bytes"].decode()) for c in got["chunk"]]
    assert len(sizes) == -(-len(got["text"]) // 10) and all(s == 10 for s in sizes[:-1]) and sizes[-1] <= 10, sizes


PARSER_SRC = '''
import re

def handler(event, context):
    raw, kind = event["invokeModelRawResponse"], event["promptType"]
    assert event["overrideType"] == "OUTPUT_PARSER" and event["messageVersion"] == "1.0"
    if kind == "POST_PROCESSING":
        return {"messageVersion": "1.0", "promptType": kind,
                "postProcessingParsedResponse": {"responseText": "[parsed] " + raw.strip()}}
    call = re.search(r"get_weather\\(\\s*['\\"]?([A-Za-z ]+?)['\\"]?\\s*\\)", raw)
    if call:
        details = {"invocationType": "ACTION_GROUP", "actionGroupInvocation": {
            "actionGroupName": "weather", "functionName": "get_weather", "verb": "GET",
            "actionGroupInput": {"city": {"value": call.group(1)}}}}
        return {"messageVersion": "1.0", "promptType": kind,
                "orchestrationParsedResponse": {"rationale": "look it up", "responseDetails": details}}
    if "21" in raw:
        details = {"invocationType": "FINISH", "agentFinalResponse": {"responseText": raw.strip()}}
        return {"messageVersion": "1.0", "promptType": kind,
                "orchestrationParsedResponse": {"rationale": "answer", "responseDetails": details}}
    return {"messageVersion": "1.0", "promptType": kind, "orchestrationParsedResponse": {
        "parsingErrorDetails": {"repromptResponse": "Write get_weather(CITY) to look the weather up."}}}
'''

PARSED_TEMPLATE = ("You find out the weather for the user. To look up the weather of a city, reply with only "
                   "get_weather(CITY), for example get_weather(Rome). When you have the result, reply with the "
                   "answer in one sentence.")


@needs_lambda
@pytest.mark.timeout(900)
def test_parser_lambda_reads_the_models_raw_output(ba, bar, lam):
    names = [unique("weather-fn"), unique("parser-fn")]
    arns = []
    for name, src in zip(names, (LAMBDA_SRC, PARSER_SRC)):
        arns.append(lam.create_function(FunctionName=name, Runtime="python3.12", Role=LAMBDA_ROLE,
                                        Handler="index.handler", Code={"ZipFile": zip_of({"index.py": src})},
                                        Timeout=30)["FunctionArn"])
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
    weather, parser = arns
    overrides = {"overrideLambda": parser, "promptConfigurations": [
        {"promptType": "ORCHESTRATION", "promptCreationMode": "OVERRIDDEN", "parserMode": "OVERRIDDEN",
         "promptState": "ENABLED", "basePromptTemplate": PARSED_TEMPLATE,
         "inferenceConfiguration": {"temperature": 0, "maximumLength": 200}},
        {"promptType": "POST_PROCESSING", "promptCreationMode": "DEFAULT", "parserMode": "OVERRIDDEN",
         "promptState": "ENABLED"}]}
    # An overridden parser needs its function.
    with pytest.raises(ClientError) as e:
        collect(bar.invoke_inline_agent(sessionId="np", foundationModel=MODEL, instruction=INSTRUCTION, inputText="hi",
                                        promptOverrideConfiguration={"promptConfigurations": overrides["promptConfigurations"]}))
    assert e.value.response["Error"]["Code"] == "ValidationException"
    agent_id = make_agent(ba, promptOverrideConfiguration=overrides)
    ba.create_agent_action_group(agentId=agent_id, agentVersion="DRAFT", actionGroupName="weather",
                                 actionGroupExecutor={"lambda": weather}, functionSchema=WEATHER)
    prepared(ba, agent_id)
    got = collect(bar.invoke_agent(agentId=agent_id, agentAliasId="TSTALIASID", sessionId=unique("parsed"),
                                   enableTrace=True, inputText="What is the weather in Oslo?"))
    assert not got["errors"], got["errors"]
    orch = [t["trace"]["orchestrationTrace"] for t in got["trace"] if "orchestrationTrace" in t["trace"]]
    inputs = [o["modelInvocationInput"] for o in orch if "modelInvocationInput" in o]
    assert inputs and all(i["parserMode"] == "OVERRIDDEN" and i["overrideLambda"] == parser for i in inputs)
    calls = [o["invocationInput"]["actionGroupInvocationInput"] for o in orch if "invocationInput" in o]
    assert calls and calls[0]["function"] == "get_weather", [o.get("modelInvocationOutput", {}).get("rawResponse") for o in orch]
    assert calls[0]["parameters"][0]["value"].lower() == "oslo"
    assert any(o.get("rationale", {}).get("text") == "look it up" for o in orch)
    # POST_PROCESSING's parser wrote the final answer.
    assert got["text"].startswith("[parsed] "), got["text"]
    ba.delete_agent(agentId=agent_id, skipResourceInUseCheck=True)
    for name in names:
        lam.delete_function(FunctionName=name)
