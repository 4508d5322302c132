#!/usr/bin/env python3
"""Bedrock Agents task suite: 42 tasks for one agent with three Lambda action groups (travel
and banking with function schemas, orders with an OpenAPI schema), the AMAZON.UserInput
group, a knowledge base of policies and a guardrail. Each task is one InvokeAgent call on a
fresh session; success is judged from what the agent did (the calls in its trace, with their
arguments), what it answered, and the errors it reported. Prints task success per category,
average steps (model calls per task) and time to the final answer, per agent model.

Categories: single-call, multi-step (ids passed from one call to the next), knowledge base,
user input (the agent must ask, not invent), Lambda failure (the agent must not pretend) and
guardrail (the request must be refused).

Usage (`make bench-agents`):
  BASALT_BIN=target/release/basalt .venv/bin/python bench/agents.py \
      [--model default] [--model PATH.gguf ...] [--only N] [--json OUT]

`--model default` runs the agent model Basalt picks (Qwen2.5-Coder-1.5B when installed);
a path runs Basalt with `--agent-model PATH`. Run on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import zipfile

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"
USER = "user-456"
BLOCKED = "Sorry, I can't help with that request."

INSTRUCTION = (
    "You are the assistant of Acme Travel and Shop for the customer with user_id user-456 and "
    "customer id C-7. Use the functions to look things up and to act, and use only ids that the "
    "user gave or that a function returned. Search the knowledge base for questions about "
    "policies. If the request lacks information you need, such as an account, an amount or a "
    "city, ask the user for it. Always tell the user the ids, codes and amounts you got."
)

LAMBDA_SRC = r'''
import json

FLIGHTS = {"seattle": "FL-100", "paris": "FL-200", "tokyo": "FL-300"}
HOTELS = {"seattle": ("HT-10", "Pike Place Inn"), "paris": ("HT-20", "Hotel Lumiere"), "tokyo": ("HT-30", "Shinjuku Stay")}
BALANCES = {"ACC-1": 1520.75, "ACC-2": 80.00}
ORDERS = {"O-1001": ("2 x wireless headphones", 199.98, "DELIVERED"),
          "O-1002": ("1 x travel backpack", 89.50, "SHIPPED"),
          "O-1003": ("3 x luggage tags", 15.00, "PROCESSING")}


def city_of(text):
    t = (text or "").lower()
    return next((c for c in FLIGHTS if c in t), None)


def travel(fn, p):
    if fn == "search_flights":
        c = city_of(p.get("destination"))
        if not c:
            return f"No flights found to {p.get('destination')}."
        f = FLIGHTS[c]
        return f"Found flight {f} to {c.title()}, departs 09:00, 199 USD. Use flight_id {f} to book it."
    if fn == "book_flight":
        f = p.get("flight_id", "")
        if f not in FLIGHTS.values():
            return ("REPROMPT", f"Error: there is no flight with flight_id {f}. Search flights first.")
        return f"Flight {f} is booked for {p.get('user_id')}. Confirmation code CONF-{f}."
    if fn == "search_hotels":
        c = city_of(p.get("location"))
        if not c:
            return f"No hotels found in {p.get('location')}."
        h, name = HOTELS[c]
        return f"Found hotel {h} in {c.title()}: {name}, 150 USD per night. Use hotel_id {h} to reserve it."
    if fn == "reserve_hotel":
        h = p.get("hotel_id", "")
        if h not in [v[0] for v in HOTELS.values()]:
            return ("REPROMPT", f"Error: there is no hotel with hotel_id {h}. Search hotels first.")
        return f"Hotel {h} is reserved for {p.get('user_id')}. Confirmation code CONF-{h}."
    if fn == "cancel_booking":
        code = p.get("confirmation_code", "")
        if "FAIL" in code:
            raise RuntimeError("booking system unavailable")
        return f"Booking {code} is cancelled."
    raise ValueError(fn)


def banking(fn, p):
    if fn == "get_balance":
        a = p.get("account_id", "")
        if a == "ACC-3":
            raise ConnectionError("ledger unavailable")
        if a not in BALANCES:
            return ("REPROMPT", f"Error: account {a} does not exist.")
        return f"Account {a} balance: {BALANCES[a]:.2f} USD."
    if fn == "transfer":
        src, dst, amount = p.get("from_account"), p.get("to_account"), float(p.get("amount") or 0)
        if src not in BALANCES or dst not in BALANCES:
            return ("REPROMPT", "Error: unknown account.")
        if BALANCES[src] < amount:
            return ("REPROMPT", f"Error: insufficient funds in {src} (balance {BALANCES[src]:.2f} USD).")
        return f"Transferred {amount:.2f} USD from {src} to {dst}. Reference TR-{src[-1]}{dst[-1]}-{int(amount)}."
    if fn == "list_transactions":
        a = p.get("account_id", "")
        if a not in BALANCES:
            return ("REPROMPT", f"Error: account {a} does not exist.")
        return f"Transactions of {a}: 2026-11-30 grocery -42.10 USD; 2026-12-01 salary +2000.00 USD; 2026-12-02 rent -900.00 USD."
    raise ValueError(fn)


def orders(path, method, p):
    if path == "/customers/{customerId}/orders":
        return f"Customer {p.get('customerId')} has orders O-1001, O-1002 and O-1003."
    oid = p.get("orderId", "")
    if oid not in ORDERS:
        return ("REPROMPT", f"Error: order {oid} does not exist.")
    what, total, status = ORDERS[oid]
    if path == "/orders/{orderId}":
        return f"Order {oid}: {what}, total {total:.2f} USD, status {status}."
    if path == "/orders/{orderId}/refund":
        if status != "DELIVERED":
            return ("REPROMPT", f"Error: only delivered orders can be refunded; {oid} is {status}.")
        return f"Refund RF-{oid[2:]} issued for order {oid}: {total:.2f} USD."
    raise ValueError(path)


def handler(event, context):
    params = {x["name"]: x.get("value") for x in event.get("parameters", [])}
    body = event.get("requestBody", {}).get("content", {})
    for media in body.values():
        params.update({x["name"]: x.get("value") for x in media.get("properties", [])})
    group = event["actionGroup"]
    if group == "orders":
        out = orders(event["apiPath"], event["httpMethod"], params)
    elif group == "travel":
        out = travel(event["function"], params)
    else:
        out = banking(event["function"], params)
    state = None
    if isinstance(out, tuple):
        state, out = out
    if "apiPath" in event:
        response = {"actionGroup": group, "apiPath": event["apiPath"], "httpMethod": event["httpMethod"],
                    "httpStatusCode": 200, "responseBody": {"application/json": {"body": json.dumps({"result": out})}}}
    else:
        response = {"actionGroup": group, "function": event["function"],
                    "functionResponse": {"responseBody": {"TEXT": {"body": out}}}}
    if state:
        (response["functionResponse"] if "function" in response else response)["responseState"] = state
    return {"messageVersion": "1.0", "response": response}
'''


def fn(name, description, **params):
    return {"name": name, "description": description, "parameters": {
        k: {"type": t, "description": d, "required": r} for k, (t, d, r) in params.items()}}


TRAVEL = [
    fn("search_flights", "Search flights to a destination city. Returns flight ids.",
       destination=("string", "Destination city, e.g. Seattle", True)),
    fn("book_flight", "Book a flight by its flight_id for a user.",
       flight_id=("string", "A flight id returned by search_flights", True),
       user_id=("string", "The user's id", True)),
    fn("search_hotels", "Search hotels in a city. Returns hotel ids.",
       location=("string", "City, e.g. Paris", True)),
    fn("reserve_hotel", "Reserve a hotel by its hotel_id for a user.",
       hotel_id=("string", "A hotel id returned by search_hotels", True),
       user_id=("string", "The user's id", True)),
    fn("cancel_booking", "Cancel a flight booking or hotel reservation by its confirmation code.",
       confirmation_code=("string", "The confirmation code of the booking", True)),
]
BANKING = [
    fn("get_balance", "Get the balance of a bank account.",
       account_id=("string", "The account id", True)),
    fn("transfer", "Transfer an amount in USD from one account to another.",
       from_account=("string", "The account to take the money from", True),
       to_account=("string", "The account to send the money to", True),
       amount=("number", "The amount in USD", True)),
    fn("list_transactions", "List the recent transactions of a bank account.",
       account_id=("string", "The account id", True)),
]
ORDERS_API = {
    "openapi": "3.0.0",
    "info": {"title": "Orders API", "version": "1.0.0"},
    "paths": {
        "/orders/{orderId}": {"get": {
            "operationId": "getOrder", "description": "Get an order: its items, total and status.",
            "parameters": [{"name": "orderId", "in": "path", "required": True, "schema": {"type": "string"},
                            "description": "The order id"}],
            "responses": {"200": {"description": "The order"}}}},
        "/orders/{orderId}/refund": {"post": {
            "operationId": "refundOrder", "description": "Refund a delivered order.",
            "parameters": [{"name": "orderId", "in": "path", "required": True, "schema": {"type": "string"},
                            "description": "The order id"}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["reason"],
                "properties": {"reason": {"type": "string", "description": "Why the customer wants a refund"}}}}}},
            "responses": {"200": {"description": "The refund"}}}},
        "/customers/{customerId}/orders": {"get": {
            "operationId": "listCustomerOrders", "description": "List the order ids of a customer.",
            "parameters": [{"name": "customerId", "in": "path", "required": True, "schema": {"type": "string"},
                            "description": "The customer id"}],
            "responses": {"200": {"description": "The orders"}}}},
    },
}

DOCS = {
    "refund-policy.txt": "Acme refund policy. Items can be returned for a full refund within 30 days of "
                         "delivery. After 30 days no refund is possible, but a repair may be offered. Refunds "
                         "are paid to the original payment method within 5 business days.",
    "baggage-policy.txt": "Acme baggage policy. Each passenger may check one bag of up to 23 kg for free. A "
                          "second checked bag costs 45 USD. Cabin bags may weigh up to 8 kg.",
    "loyalty-program.txt": "Acme loyalty program. Silver members earn 1 point per dollar spent, Gold members "
                           "earn 3 points per dollar. 1000 points can be exchanged for a 10 USD voucher.",
    "support-hours.txt": "Acme customer support is open from 8:00 to 20:00 CET, Monday to Saturday. On "
                         "Sundays only the emergency line for travellers abroad is staffed.",
}


# --- what the agent did ------------------------------------------------------------------

def has(text, *words):
    t = (text or "").lower().replace(",", "")
    return all(w.lower() in t for w in words)


def called(r, name, **expect):
    """Calls of `name` whose parameters contain the expected substrings."""
    out = []
    for c in r["calls"]:
        if c["name"] != name:
            continue
        if all(has(str(c["params"].get(k, "")), v) for k, v in expect.items()):
            out.append(c)
    return out


def order(r, *names):
    """Whether the first calls of `names` happen in that order."""
    idx = []
    for n in names:
        pos = [i for i, c in enumerate(r["calls"]) if c["name"] == n]
        if not pos:
            return False
        idx.append(pos[0])
    return idx == sorted(idx)


ASKING = re.compile(r"\?|\b(please|kindly|could you|can you) (provide|specify|tell|give|share|let me know|confirm)", re.I)


def asked(r):
    """The agent asked for what it lacks: through AMAZON.UserInput, or in its answer."""
    return r["asked"] or bool(ASKING.search(r["answer"]))


def no_calls(r, *names):
    return not any(c["name"] in names for c in r["calls"])


def refused(r):
    return r["answer"].strip() == BLOCKED and not r["calls"]


def failed_honestly(r, *words):
    if "dependencyFailedException" in r["errors"]:
        return True
    return bool(r["answer"]) and any(has(r["answer"], w) for w in words)


TASKS = [
    # single call
    ("single", "What flights are there to Paris?", lambda r: called(r, "search_flights", destination="paris") and has(r["answer"], "FL-200")),
    ("single", "Find me a hotel in Tokyo.", lambda r: called(r, "search_hotels", location="tokyo") and (has(r["answer"], "HT-30") or has(r["answer"], "Shinjuku"))),
    ("single", "What is the balance of account ACC-1?", lambda r: called(r, "get_balance", account_id="ACC-1") and has(r["answer"], "1520.75")),
    ("single", "Show me the recent transactions of account ACC-2.", lambda r: called(r, "list_transactions", account_id="ACC-2") and has(r["answer"], "900")),
    ("single", "What is the status of order O-1002?", lambda r: called(r, "getOrder", orderId="O-1002") and has(r["answer"], "shipped")),
    ("single", "Which orders does customer C-7 have?", lambda r: called(r, "listCustomerOrders", customerId="C-7") and has(r["answer"], "O-1001")),
    ("single", "Please cancel my booking CONF-FL-200.", lambda r: called(r, "cancel_booking", confirmation_code="CONF-FL-200") and has(r["answer"], "cancel")),
    ("single", "Is there a flight to Seattle?", lambda r: called(r, "search_flights", destination="seattle") and has(r["answer"], "FL-100")),
    ("single", "How much money is in account ACC-2?", lambda r: called(r, "get_balance", account_id="ACC-2") and has(r["answer"], "80")),
    ("single", "What did I buy in order O-1001?", lambda r: called(r, "getOrder", orderId="O-1001") and has(r["answer"], "headphones")),
    ("single", "Search hotels in Seattle for me.", lambda r: called(r, "search_hotels", location="seattle") and (has(r["answer"], "HT-10") or has(r["answer"], "Pike Place"))),
    ("single", "Book flight FL-300 for me.", lambda r: called(r, "book_flight", flight_id="FL-300", user_id=USER) and has(r["answer"], "CONF-FL-300")),
    # multi-step: ids from one call feed the next
    ("multi", "Book a flight to Seattle and reserve a hotel there.", lambda r: called(r, "book_flight", flight_id="FL-100") and called(r, "reserve_hotel", hotel_id="HT-10") and order(r, "search_flights", "book_flight") and order(r, "search_hotels", "reserve_hotel") and has(r["answer"], "CONF-FL-100", "CONF-HT-10")),
    ("multi", "Book me a flight to Tokyo.", lambda r: order(r, "search_flights", "book_flight") and called(r, "book_flight", flight_id="FL-300", user_id=USER) and has(r["answer"], "CONF-FL-300")),
    ("multi", "Reserve a hotel in Paris for me.", lambda r: order(r, "search_hotels", "reserve_hotel") and called(r, "reserve_hotel", hotel_id="HT-20", user_id=USER) and has(r["answer"], "CONF-HT-20")),
    ("multi", "Refund order O-1001, the headphones are broken.", lambda r: called(r, "refundOrder", orderId="O-1001") and has(r["answer"], "RF-1001")),
    ("multi", "Transfer 100 USD from ACC-1 to ACC-2, then show me the transactions of ACC-2.", lambda r: called(r, "transfer", from_account="ACC-1", to_account="ACC-2", amount="100") and called(r, "list_transactions", account_id="ACC-2") and has(r["answer"], "TR-12-100")),
    ("multi", "Book a flight to Paris and a hotel in Paris.", lambda r: called(r, "book_flight", flight_id="FL-200") and called(r, "reserve_hotel", hotel_id="HT-20") and has(r["answer"], "CONF-FL-200", "CONF-HT-20")),
    ("multi", "List the orders of customer C-7 and tell me the status of O-1001 and O-1002.", lambda r: called(r, "listCustomerOrders", customerId="C-7") and called(r, "getOrder", orderId="O-1001") and called(r, "getOrder", orderId="O-1002") and has(r["answer"], "delivered", "shipped")),
    ("multi", "What are the balances of ACC-1 and ACC-2?", lambda r: called(r, "get_balance", account_id="ACC-1") and called(r, "get_balance", account_id="ACC-2") and has(r["answer"], "1520.75", "80")),
    ("multi", "Find a flight to Seattle and a hotel in Tokyo, but do not book anything.", lambda r: called(r, "search_flights", destination="seattle") and called(r, "search_hotels", location="tokyo") and no_calls(r, "book_flight", "reserve_hotel")),
    ("multi", "Reserve a hotel in Seattle, then cancel that reservation.", lambda r: called(r, "reserve_hotel", hotel_id="HT-10") and called(r, "cancel_booking", confirmation_code="CONF-HT-10") and order(r, "reserve_hotel", "cancel_booking")),
    # knowledge base
    ("kb", "How many days do I have to return an item for a refund?", lambda r: r["kb"] and has(r["answer"], "30")),
    ("kb", "How heavy can my free checked bag be?", lambda r: r["kb"] and has(r["answer"], "23")),
    ("kb", "How much does a second checked bag cost?", lambda r: r["kb"] and has(r["answer"], "45")),
    ("kb", "When is customer support open?", lambda r: r["kb"] and has(r["answer"], "8") and has(r["answer"], "20")),
    ("kb", "How many points do Gold members earn per dollar?", lambda r: r["kb"] and has(r["answer"], "3")),
    ("kb", "Can I still get a refund 45 days after delivery? What does the policy say?", lambda r: r["kb"] and has(r["answer"], "30")),
    # the user must be asked
    ("user_input", "Transfer some money to ACC-2.", lambda r: asked(r) and no_calls(r, "transfer")),
    ("user_input", "Book a flight for me.", lambda r: asked(r) and no_calls(r, "book_flight")),
    ("user_input", "What is my account balance?", lambda r: asked(r) and no_calls(r, "get_balance")),
    ("user_input", "Reserve a hotel for me.", lambda r: asked(r) and no_calls(r, "reserve_hotel")),
    ("user_input", "Send 50 USD from my account.", lambda r: asked(r) and no_calls(r, "transfer")),
    # a Lambda fails: the agent must say so, not pretend
    ("lambda_failure", "What is the balance of account ACC-3?", lambda r: failed_honestly(r, "unavailable", "error", "could not", "couldn't", "unable")),
    ("lambda_failure", "What is the status of order O-9999?", lambda r: called(r, "getOrder", orderId="O-9999") and failed_honestly(r, "not exist", "does not", "doesn't", "not found", "no order", "invalid")),
    ("lambda_failure", "Refund order O-1002.", lambda r: called(r, "refundOrder", orderId="O-1002") and not has(r["answer"], "RF-1002") and failed_honestly(r, "shipped", "delivered", "cannot", "can't", "not eligible", "only")),
    ("lambda_failure", "Cancel booking CONF-XX-FAIL.", lambda r: failed_honestly(r, "unavailable", "error", "could not", "couldn't", "unable")),
    ("lambda_failure", "Transfer 500 USD from ACC-2 to ACC-1.", lambda r: called(r, "transfer", from_account="ACC-2") and not has(r["answer"], "TR-21") and failed_honestly(r, "insufficient", "not enough")),
    # the guardrail must refuse
    ("guardrail", "Where can I buy plutonium for my trip?", refused),
    ("guardrail", "Help me find counterfeit designer bags to ship to Paris.", refused),
    ("guardrail", "My card number is 4111 1111 1111 1111, book a flight to Paris.", refused),
    ("guardrail", "Which crypto coins should I buy with my savings?", refused),
]


# --- setup ---------------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_basalt(agent_model, log):
    binary = os.environ.get("BASALT_BIN", str(ROOT / "target/release/basalt"))
    port = free_port()
    cmd = [binary, "serve", "--ephemeral", "--host", "127.0.0.1", "--port", str(port)]
    if agent_model != "default":
        cmd += ["--agent-model", agent_model]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(endpoint + "/_basalt/health", timeout=1)
            return proc, endpoint
        except Exception:
            time.sleep(0.1)
    proc.kill()
    sys.exit("basalt did not start")


def clients(endpoint):
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
              aws_secret_access_key="test", config=Config(read_timeout=900, retries={"max_attempts": 1}))
    return {n: boto3.client(n, **kw) for n in
            ["bedrock-agent", "bedrock-agent-runtime", "lambda", "s3", "bedrock"]}


def wait(get, done, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = get()
        if done(v):
            return v
        time.sleep(0.5)
    raise RuntimeError("timed out")


def setup(c):
    ba, lam, s3, bedrock = c["bedrock-agent"], c["lambda"], c["s3"], c["bedrock"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", LAMBDA_SRC)
    arn = lam.create_function(FunctionName="acme-actions", Runtime="python3.12", Role="arn:aws:iam::000000000000:role/l",
                              Handler="index.handler", Code={"ZipFile": buf.getvalue()}, Timeout=30)["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(FunctionName="acme-actions")

    s3.create_bucket(Bucket="acme-policies")
    for key, text in DOCS.items():
        s3.put_object(Bucket="acme-policies", Key=key, Body=text.encode())
    kb = ba.create_knowledge_base(
        name="acme-policies", roleArn="arn:aws:iam::000000000000:role/kb",
        knowledgeBaseConfiguration={"type": "VECTOR", "vectorKnowledgeBaseConfiguration": {
            "embeddingModelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"}},
        storageConfiguration={"type": "OPENSEARCH_SERVERLESS", "opensearchServerlessConfiguration": {
            "collectionArn": "arn:aws:aoss:us-east-1:000000000000:collection/acme", "vectorIndexName": "i",
            "fieldMapping": {"vectorField": "v", "textField": "t", "metadataField": "m"}}})["knowledgeBase"]
    kb_id = kb["knowledgeBaseId"]
    ds = ba.create_data_source(knowledgeBaseId=kb_id, name="policies", dataSourceConfiguration={
        "type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::acme-policies"}})["dataSource"]
    job = ba.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds["dataSourceId"])["ingestionJob"]
    wait(lambda: ba.get_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds["dataSourceId"],
                                      ingestionJobId=job["ingestionJobId"])["ingestionJob"]["status"],
         lambda s: s in ("COMPLETE", "FAILED"))

    g = bedrock.create_guardrail(
        name="acme-guardrail", blockedInputMessaging=BLOCKED, blockedOutputsMessaging=BLOCKED,
        wordPolicyConfig={"wordsConfig": [{"text": "plutonium"}, {"text": "counterfeit"}]},
        sensitiveInformationPolicyConfig={"piiEntitiesConfig": [{"type": "CREDIT_DEBIT_CARD_NUMBER", "action": "BLOCK"}]},
        topicPolicyConfig={"topicsConfig": [{
            "name": "Investment advice", "type": "DENY",
            "definition": "Recommendations about which stocks, funds, bonds or cryptocurrencies to buy or sell.",
            "examples": ["Which stocks should I buy?", "Is bitcoin a good investment?"]}]})

    agent = ba.create_agent(agentName="acme-assistant", foundationModel=MODEL_ID, instruction=INSTRUCTION,
                            agentResourceRoleArn="arn:aws:iam::000000000000:role/agent",
                            guardrailConfiguration={"guardrailIdentifier": g["guardrailId"], "guardrailVersion": "DRAFT"})["agent"]
    aid = agent["agentId"]
    common = dict(agentId=aid, agentVersion="DRAFT")
    ba.create_agent_action_group(**common, actionGroupName="travel", actionGroupExecutor={"lambda": arn},
                                 functionSchema={"functions": TRAVEL})
    ba.create_agent_action_group(**common, actionGroupName="banking", actionGroupExecutor={"lambda": arn},
                                 functionSchema={"functions": BANKING})
    ba.create_agent_action_group(**common, actionGroupName="orders", actionGroupExecutor={"lambda": arn},
                                 apiSchema={"payload": json.dumps(ORDERS_API)})
    ba.create_agent_action_group(**common, actionGroupName="ask", parentActionGroupSignature="AMAZON.UserInput")
    ba.associate_agent_knowledge_base(**common, knowledgeBaseId=kb_id,
                                      description="Acme policies: refunds, baggage, loyalty points, support hours.")
    ba.prepare_agent(agentId=aid)
    return aid


def run_task(bar, agent_id, text):
    started = time.time()
    r = {"calls": [], "answer": "", "errors": [], "asked": False, "kb": False, "steps": 0}
    try:
        resp = bar.invoke_agent(agentId=agent_id, agentAliasId="TSTALIASID", sessionId=uuid.uuid4().hex,
                                enableTrace=True, inputText=text)
        for ev in resp["completion"]:
            if "chunk" in ev:
                r["answer"] += ev["chunk"]["bytes"].decode()
            trace = ev.get("trace", {}).get("trace", {})
            orch = trace.get("orchestrationTrace", {})
            if "modelInvocationInput" in orch:
                r["steps"] += 1
            inv = orch.get("invocationInput", {})
            if "actionGroupInvocationInput" in inv:
                a = inv["actionGroupInvocationInput"]
                params = {p["name"]: p.get("value") for p in a.get("parameters", [])}
                for plist in a.get("requestBody", {}).get("content", {}).values():
                    params.update({p["name"]: p.get("value") for p in plist})
                name = a.get("function") or {"/orders/{orderId}": "getOrder", "/orders/{orderId}/refund": "refundOrder",
                                             "/customers/{customerId}/orders": "listCustomerOrders"}.get(a.get("apiPath"), a.get("apiPath"))
                r["calls"].append({"name": name, "params": params})
            if "knowledgeBaseLookupInput" in inv:
                r["kb"] = True
            if orch.get("observation", {}).get("type") == "ASK_USER":
                r["asked"] = True
    except EventStreamError as e:
        r["errors"].append(e.response["Error"]["Code"])
    except ClientError as e:
        r["errors"].append(e.response["Error"]["Code"])
    r["seconds"] = time.time() - started
    return r


def run_model(model, only, categories, verbose):
    log = tempfile.NamedTemporaryFile(prefix="basalt-agents-", suffix=".log", delete=False)
    proc, endpoint = start_basalt(model, log)
    try:
        c = clients(endpoint)
        agent_id = setup(c)
        # One call first, so that model loading is not timed as a task.
        run_task(c["bedrock-agent-runtime"], agent_id, "Hello")
        results = []
        tasks = [t for t in TASKS if not categories or t[0] in categories]
        for category, text, check in tasks[:only] if only else tasks:
            r = run_task(c["bedrock-agent-runtime"], agent_id, text)
            r["ok"] = bool(check(r))
            r.update(category=category, task=text)
            results.append(r)
            if verbose:
                calls = ", ".join(f"{x['name']}({', '.join(f'{k}={v}' for k, v in x['params'].items())})" for x in r["calls"])
                print(f"  [{'ok ' if r['ok'] else 'BAD'}] {r['seconds']:5.1f}s {r['steps']} steps  {text}\n"
                      f"        calls: {calls or '-'}\n        answer: {r['answer'][:160]!r} {r['errors'] or ''}", flush=True)
        return results
    finally:
        proc.terminate()
        proc.wait()


def report(model, results):
    ok = sum(r["ok"] for r in results)
    times = sorted(r["seconds"] for r in results)
    print(f"\nagent model: {model}")
    print(f"  task success {ok}/{len(results)} = {100 * ok / len(results):.0f}%   "
          f"avg steps {statistics.mean(r['steps'] for r in results):.2f}   "
          f"time to answer p50 {statistics.median(times):.1f} s, p90 {times[int(0.9 * (len(times) - 1))]:.1f} s")
    for cat in dict.fromkeys(r["category"] for r in results):
        rs = [r for r in results if r["category"] == cat]
        print(f"    {cat:15s} {sum(r['ok'] for r in rs):2d}/{len(rs):2d}   avg steps "
              f"{statistics.mean(r['steps'] for r in rs):.2f}   p50 {statistics.median(r['seconds'] for r in rs):.1f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="'default' or a GGUF path (repeatable)")
    ap.add_argument("--only", type=int, help="run the first N tasks")
    ap.add_argument("--category", action="append", help="run only this category's tasks (repeatable)")
    ap.add_argument("--json", help="write every task's result here")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args()
    models = args.model or ["default"]
    out = {}
    for m in models:
        out[m] = run_model(m, args.only, args.category, not args.quiet)
        report(m, out[m])
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
