"""Multi-agent collaboration through boto3: AssociateAgentCollaborator and its siblings with
Bedrock's errors, collaborators frozen into versions, and supervisors (SUPERVISOR and
SUPERVISOR_ROUTER, stored and inline) whose collaborators run their own turns on the local
model: the collaborator's Lambda is called, its traces reach the caller tagged with its
name and the chain of callers, and its answer becomes the supervisor's."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from conftest import unique
from test_bedrock import pytestmark  # noqa: F401  (skips without a local chat model)
from test_bedrock_agents import (LAMBDA_ROLE, LAMBDA_SRC, MODEL, ROLE, WEATHER, collect,  # noqa: F401
                                 ba, bar, lam, make_agent, needs_lambda, prepared)
from test_lambda import zip_of

SUPERVISOR = ("You are the front desk of a travel company. You answer the customer with the help "
              "of the agents of your team.")
WEATHER_AGENT = "You are a weather assistant that answers questions about the weather using the tools you have."


def code(e):
    return e.value.response["Error"]["Code"]


def alias_of(ba, agent_id):
    prepared(ba, agent_id)
    alias = ba.create_agent_alias(agentId=agent_id, agentAliasName=unique("live"))["agentAlias"]
    return alias["agentAliasArn"]


def test_collaborators_control_plane(ba):
    helper = make_agent(ba, instruction=WEATHER_AGENT)
    helper_arn = alias_of(ba, helper)
    plain = make_agent(ba, instruction=SUPERVISOR)
    sup = make_agent(ba, instruction=SUPERVISOR, agentCollaboration="SUPERVISOR")
    assert ba.get_agent(agentId=sup)["agent"]["agentCollaboration"] == "SUPERVISOR"
    common = dict(agentVersion="DRAFT", collaboratorName="weather",
                  collaborationInstruction="Ask it about the weather of a city.")

    # Only a supervisor has collaborators; a collaborator is another agent's real alias.
    with pytest.raises(ClientError) as e:
        ba.associate_agent_collaborator(agentId=plain, agentDescriptor={"aliasArn": helper_arn}, **common)
    assert code(e) == "ValidationException"
    test_alias = f"arn:aws:bedrock:us-east-1:000000000000:agent-alias/{helper}/TSTALIASID"
    with pytest.raises(ClientError) as e:
        ba.associate_agent_collaborator(agentId=sup, agentDescriptor={"aliasArn": test_alias}, **common)
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        ba.associate_agent_collaborator(agentId=sup, agentDescriptor={
            "aliasArn": f"arn:aws:bedrock:us-east-1:000000000000:agent-alias/{helper}/NOSUCHALIA"}, **common)
    assert code(e) == "ResourceNotFoundException"
    # A supervisor without collaborators cannot be prepared.
    with pytest.raises(ClientError) as e:
        ba.prepare_agent(agentId=sup)
    assert code(e) == "ValidationException"

    c = ba.associate_agent_collaborator(agentId=sup, agentDescriptor={"aliasArn": helper_arn},
                                        relayConversationHistory="TO_COLLABORATOR", **common)["agentCollaborator"]
    cid = c["collaboratorId"]
    assert len(cid) == 10 and c["agentVersion"] == "DRAFT" and c["agentDescriptor"]["aliasArn"] == helper_arn
    assert c["relayConversationHistory"] == "TO_COLLABORATOR"
    assert ba.get_agent(agentId=sup)["agent"]["agentStatus"] == "NOT_PREPARED"
    with pytest.raises(ClientError) as e:
        ba.associate_agent_collaborator(agentId=sup, agentDescriptor={"aliasArn": helper_arn}, **common)
    assert code(e) == "ConflictException"

    got = ba.get_agent_collaborator(agentId=sup, agentVersion="DRAFT", collaboratorId=cid)["agentCollaborator"]
    assert got["collaboratorName"] == "weather" and got["collaborationInstruction"] == common["collaborationInstruction"]
    listed = ba.list_agent_collaborators(agentId=sup, agentVersion="DRAFT")["agentCollaboratorSummaries"]
    assert [s["collaboratorId"] for s in listed] == [cid]
    up = ba.update_agent_collaborator(agentId=sup, agentVersion="DRAFT", collaboratorId=cid,
                                      agentDescriptor={"aliasArn": helper_arn}, collaboratorName="forecast",
                                      collaborationInstruction="Weather questions.")["agentCollaborator"]
    assert up["collaboratorName"] == "forecast" and up["relayConversationHistory"] == "TO_COLLABORATOR"

    # A version freezes the team; the DRAFT goes on changing.
    prepared(ba, sup)
    ba.create_agent_alias(agentId=sup, agentAliasName=unique("v"))
    frozen = ba.list_agent_collaborators(agentId=sup, agentVersion="1")["agentCollaboratorSummaries"]
    assert [s["collaboratorName"] for s in frozen] == ["forecast"]
    ba.disassociate_agent_collaborator(agentId=sup, agentVersion="DRAFT", collaboratorId=cid)
    assert ba.list_agent_collaborators(agentId=sup, agentVersion="DRAFT")["agentCollaboratorSummaries"] == []
    assert ba.get_agent_collaborator(agentId=sup, agentVersion="1", collaboratorId=cid)["agentCollaborator"]
    with pytest.raises(ClientError) as e:
        ba.get_agent_collaborator(agentId=sup, agentVersion="DRAFT", collaboratorId=cid)
    assert code(e) == "ResourceNotFoundException"
    for a in (sup, plain, helper):
        ba.delete_agent(agentId=a, skipResourceInUseCheck=True)


def test_prepare_refuses_teams_basalt_cannot_run(ba):
    def supervisor(*arns):
        sup = make_agent(ba, instruction=SUPERVISOR, agentCollaboration="SUPERVISOR")
        for i, arn in enumerate(arns):
            ba.associate_agent_collaborator(agentId=sup, agentVersion="DRAFT", agentDescriptor={"aliasArn": arn},
                                            collaboratorName=f"c{i}", collaborationInstruction="Helps.")
        return sup

    # A collaborator that returns control to its caller.
    rc = make_agent(ba, instruction=WEATHER_AGENT)
    ba.create_agent_action_group(agentId=rc, agentVersion="DRAFT", actionGroupName="weather",
                                 actionGroupExecutor={"customControl": "RETURN_CONTROL"}, functionSchema=WEATHER)
    with pytest.raises(ClientError) as e:
        ba.prepare_agent(agentId=supervisor(alias_of(ba, rc)))
    assert code(e) == "ValidationException" and "return" in e.value.response["Error"]["Message"]

    # A team that leads back to its supervisor: A -> B -> A.
    helper_arn = alias_of(ba, make_agent(ba, instruction=WEATHER_AGENT))
    a = supervisor(helper_arn)
    a_arn = alias_of(ba, a)
    b_arn = alias_of(ba, supervisor(a_arn))
    ba.associate_agent_collaborator(agentId=a, agentVersion="DRAFT", agentDescriptor={"aliasArn": b_arn},
                                    collaboratorName="back", collaborationInstruction="Helps.")
    with pytest.raises(ClientError) as e:
        ba.prepare_agent(agentId=a)
    assert code(e) == "ValidationException" and "leads back" in e.value.response["Error"]["Message"]
    for arn in (helper_arn, a_arn, b_arn, f"x/{rc}/x"):
        ba.delete_agent(agentId=arn.split("/")[-2], skipResourceInUseCheck=True)


@pytest.fixture(scope="module")
def weather_fn(lam):
    name = unique("weather-fn")
    arn = lam.create_function(FunctionName=name, Runtime="python3.12", Role=LAMBDA_ROLE, Handler="index.handler",
                              Code={"ZipFile": zip_of({"index.py": LAMBDA_SRC})}, Timeout=30)["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    yield arn
    lam.delete_function(FunctionName=name)


def weather_collaborator(ba, fn):
    agent = make_agent(ba, instruction=WEATHER_AGENT)
    ba.create_agent_action_group(agentId=agent, agentVersion="DRAFT", actionGroupName="weather",
                                 actionGroupExecutor={"lambda": fn}, functionSchema=WEATHER)
    return agent, alias_of(ba, agent)


def parts(got, kind):
    return [t for t in got["trace"] if kind in t["trace"]]


@needs_lambda
@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", ["SUPERVISOR", "SUPERVISOR_ROUTER"])
def test_supervisor_runs_its_collaborator(ba, bar, weather_fn, mode):
    helper, helper_arn = weather_collaborator(ba, weather_fn)
    sup = make_agent(ba, instruction=SUPERVISOR, agentCollaboration=mode)
    ba.associate_agent_collaborator(agentId=sup, agentVersion="DRAFT", agentDescriptor={"aliasArn": helper_arn},
                                    collaboratorName="weather_agent",
                                    collaborationInstruction="Knows the current weather of any city.")
    sup_arn = alias_of(ba, sup)
    sup_alias = sup_arn.rsplit("/", 1)[1]
    got = collect(bar.invoke_agent(agentId=sup, agentAliasId=sup_alias, sessionId=unique("team"), enableTrace=True,
                                   sessionState={"sessionAttributes": {"user": "ada"}},
                                   inputText="What is the weather in Oslo?"))
    assert not got["errors"], got["errors"]
    assert "21" in got["text"], got["text"]
    member = "routingClassifierTrace" if mode == "SUPERVISOR_ROUTER" else "orchestrationTrace"
    own = [t["trace"][member] for t in parts(got, member) if t.get("agentId") == sup]
    calls = [s["invocationInput"]["agentCollaboratorInvocationInput"] for s in own
             if s.get("invocationInput", {}).get("invocationType") == "AGENT_COLLABORATOR"]
    assert calls and calls[0]["agentCollaboratorName"] == "weather_agent", own
    assert calls[0]["agentCollaboratorAliasArn"] == helper_arn and "oslo" in calls[0]["input"]["text"].lower()
    outputs = [s["observation"]["agentCollaboratorInvocationOutput"] for s in own
               if s.get("observation", {}).get("type") == "AGENT_COLLABORATOR"]
    assert outputs and "21" in outputs[0]["output"]["text"], own
    # The collaborator's own steps reach the caller, tagged; its Lambda saw the session's attributes.
    theirs = [t for t in got["trace"] if t.get("agentId") == helper]
    assert theirs and all(t["collaboratorName"] == "weather_agent" for t in theirs)
    assert theirs[0]["callerChain"] == [{"agentAliasArn": sup_arn}, {"agentAliasArn": helper_arn}]
    observed = [t["trace"]["orchestrationTrace"]["observation"]["actionGroupInvocationOutput"]["text"]
                for t in theirs if "observation" in t["trace"].get("orchestrationTrace", {})
                and t["trace"]["orchestrationTrace"]["observation"].get("type") == "ACTION_GROUP"]
    assert observed and "user ada" in observed[0], theirs
    for a in (sup, helper):
        ba.delete_agent(agentId=a, skipResourceInUseCheck=True)


@needs_lambda
@pytest.mark.timeout(900)
def test_inline_supervisor_with_an_inline_collaborator(bar, weather_fn):
    got = collect(bar.invoke_inline_agent(
        sessionId=unique("inline-team"), foundationModel=MODEL, instruction=SUPERVISOR, enableTrace=True,
        agentCollaboration="SUPERVISOR", inputText="What is the weather in Lima?",
        collaboratorConfigurations=[{"collaboratorName": "forecaster",
                                     "collaboratorInstruction": "Knows the current weather of any city."}],
        collaborators=[{"agentName": "forecaster", "foundationModel": MODEL, "instruction": WEATHER_AGENT,
                        "actionGroups": [{"actionGroupName": "weather", "actionGroupExecutor": {"lambda": weather_fn},
                                          "functionSchema": WEATHER}]}]))
    assert not got["errors"], got["errors"]
    assert "21" in got["text"], got["text"]
    assert any(t.get("collaboratorName") == "forecaster" for t in got["trace"])
    # Collaborator configurations without a definition or an alias are refused before the stream.
    with pytest.raises(ClientError) as e:
        collect(bar.invoke_inline_agent(
            sessionId="inline-bad", foundationModel=MODEL, instruction=SUPERVISOR, agentCollaboration="SUPERVISOR",
            inputText="hi", collaboratorConfigurations=[{"collaboratorName": "ghost",
                                                         "collaboratorInstruction": "Nobody."}]))
    assert code(e) == "ValidationException"
