"""Amazon Bedrock sessions through boto3 (bedrock-agent-runtime CreateSession ...
ListInvocationSteps, tags): the checkpoint store an application's own agent loop keeps its
conversation in. Sessions hold invocations, invocations hold steps of text and image blocks;
an ENDED session can be read but not changed, and only an ENDED session can be deleted."""
from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from botocore.exceptions import ClientError

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


@pytest.fixture(scope="module")
def bar(make_client):
    return make_client("bedrock-agent-runtime")


def code(e):
    return e.value.response["Error"]["Code"]


def test_sessions_invocations_and_steps(bar):
    s = bar.create_session(sessionMetadata={"user": "ada"}, tags={"team": "ml"})
    sid, arn = s["sessionId"], s["sessionArn"]
    assert uuid.UUID(sid) and s["sessionStatus"] == "ACTIVE"
    assert arn == f"arn:aws:bedrock:us-east-1:000000000000:session/{sid}"
    got = bar.get_session(sessionIdentifier=arn)
    assert got["sessionId"] == sid and got["sessionMetadata"] == {"user": "ada"}
    assert got["createdAt"] <= got["lastUpdatedAt"]
    up = bar.update_session(sessionIdentifier=sid, sessionMetadata={"user": "ada", "lang": "en"})
    assert up["sessionStatus"] == "ACTIVE"
    assert bar.get_session(sessionIdentifier=sid)["sessionMetadata"] == {"user": "ada", "lang": "en"}
    assert sid in [x["sessionId"] for x in bar.list_sessions()["sessionSummaries"]]

    inv = bar.create_invocation(sessionIdentifier=sid, description="weather in Seattle")["invocationId"]
    assert uuid.UUID(inv)
    mine = str(uuid.uuid4())
    assert bar.create_invocation(sessionIdentifier=sid, invocationId=mine)["invocationId"] == mine
    with pytest.raises(ClientError) as e:
        bar.create_invocation(sessionIdentifier=sid, invocationId=mine)
    assert code(e) == "ConflictException"
    assert {x["invocationId"] for x in bar.list_invocations(sessionIdentifier=sid)["invocationSummaries"]} == {inv, mine}

    t0 = dt.datetime(2026, 12, 7, 10, 0, 0, tzinfo=dt.timezone.utc)
    steps = []
    for i, payload in enumerate([
        {"contentBlocks": [{"text": "What is the weather in Seattle?"}]},
        {"contentBlocks": [{"text": "Rainy, 12 degrees."}, {"image": {"format": "png", "source": {"bytes": PNG}}}]},
        {"contentBlocks": [{"image": {"format": "jpeg", "source": {"s3Location": {"uri": "s3://bkt/cloud.jpg"}}}}]},
    ]):
        steps.append(bar.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=inv,
                                             invocationStepTime=t0 + dt.timedelta(seconds=i),
                                             payload=payload)["invocationStepId"])
    step = bar.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=inv,
                                   invocationStepId=steps[1])["invocationStep"]
    assert step["invocationId"] == inv and step["sessionId"] == sid
    assert step["invocationStepTime"] == t0 + dt.timedelta(seconds=1)
    blocks = step["payload"]["contentBlocks"]
    assert blocks[0] == {"text": "Rainy, 12 degrees."} and blocks[1]["image"]["source"]["bytes"] == PNG
    # Newest first; a step put again under its id replaces it.
    listed = bar.list_invocation_steps(sessionIdentifier=sid, invocationIdentifier=inv)["invocationStepSummaries"]
    assert [x["invocationStepId"] for x in listed] == steps[::-1]
    bar.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=inv, invocationStepId=steps[0],
                            invocationStepTime=t0, payload={"contentBlocks": [{"text": "edited"}]})
    again = bar.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=inv, invocationStepId=steps[0])
    assert again["invocationStep"]["payload"]["contentBlocks"] == [{"text": "edited"}]
    page = bar.list_invocation_steps(sessionIdentifier=sid, maxResults=2)
    assert len(page["invocationStepSummaries"]) == 2 and page["nextToken"]
    rest = bar.list_invocation_steps(sessionIdentifier=sid, maxResults=2, nextToken=page["nextToken"])
    assert len(rest["invocationStepSummaries"]) == 1 and "nextToken" not in rest
    # A step of another invocation, or of an unknown one.
    with pytest.raises(ClientError) as e:
        bar.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=mine, invocationStepId=steps[0])
    assert code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        bar.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=str(uuid.uuid4()),
                                invocationStepTime=t0, payload={"contentBlocks": [{"text": "x"}]})
    assert code(e) == "ResourceNotFoundException"

    # Tags on the session's ARN.
    bar.tag_resource(resourceArn=arn, tags={"stage": "dev"})
    assert bar.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "ml", "stage": "dev"}
    bar.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert bar.list_tags_for_resource(resourceArn=arn)["tags"] == {"stage": "dev"}

    # An active session cannot be deleted; an ended one is read-only, then deleted.
    with pytest.raises(ClientError) as e:
        bar.delete_session(sessionIdentifier=sid)
    assert code(e) == "ConflictException"
    assert bar.end_session(sessionIdentifier=sid)["sessionStatus"] == "ENDED"
    assert bar.get_session(sessionIdentifier=sid)["sessionStatus"] == "ENDED"
    for call in (lambda: bar.create_invocation(sessionIdentifier=sid),
                 lambda: bar.update_session(sessionIdentifier=sid, sessionMetadata={}),
                 lambda: bar.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=inv, invocationStepTime=t0,
                                                 payload={"contentBlocks": [{"text": "late"}]})):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "ConflictException"
    assert len(bar.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]) == 3
    bar.delete_session(sessionIdentifier=arn)
    for call in (lambda: bar.get_session(sessionIdentifier=sid),
                 lambda: bar.list_invocations(sessionIdentifier=sid),
                 lambda: bar.get_session(sessionIdentifier=str(uuid.uuid4()))):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "ResourceNotFoundException"


def test_sessions_list_newest_first_in_pages(bar):
    ids = []
    for _ in range(3):
        ids.append(bar.create_session()["sessionId"])
        time.sleep(0.005)  # creation times are kept to the millisecond
    seen, token = [], None
    while True:
        page = bar.list_sessions(maxResults=2, **({"nextToken": token} if token else {}))
        seen += [s["sessionId"] for s in page["sessionSummaries"]]
        token = page.get("nextToken")
        if not token:
            break
    mine = [s for s in seen if s in ids]
    assert mine == ids[::-1]
