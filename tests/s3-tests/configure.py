"""Fills s3tests.conf.in: the port, and the canonical user id and display name that Basalt
answers (in ListBuckets' Owner) for each of the suite's key pairs."""
import configparser
import sys

import boto3
from botocore.config import Config

template, out, port = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(template).read().replace("@PORT@", port)
conf = configparser.ConfigParser()
conf.read_string(text)
for section, tag in (("s3 main", "MAIN"), ("s3 alt", "ALT"), ("s3 tenant", "TENANT")):
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id=conf[section]["access_key"],
        aws_secret_access_key=conf[section]["secret_key"],
        config=Config(retries={"max_attempts": 1}),
    )
    owner = s3.list_buckets()["Owner"]
    text = text.replace(f"@{tag}_ID@", owner["ID"]).replace(
        f"@{tag}_NAME@", owner.get("DisplayName", tag.lower())
    )
open(out, "w").write(text)
