#!/usr/bin/python3
"""Test-side S3 checks against the radosgw of lib_radosgw.sh, with boto3.

  s3_check.py --endpoint URL --access-key K --secret-key S COMMAND ARGS
    mb BUCKET                    create a bucket
    count BUCKET PREFIX          "OBJECTS BYTES" under PREFIX (every page)
    keys BUCKET PREFIX           every key under PREFIX, one a line
    get BUCKET KEY               the object's bytes on stdout
    put BUCKET KEY FILE          an unconditional PUT
    put-if-absent BUCKET KEY FILE   PUT with If-None-Match: *; prints the HTTP status
    rm BUCKET KEY                delete one object
"""
import argparse
import sys

import boto3
import botocore.config
import botocore.exceptions


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--secret-key", required=True)
    ap.add_argument("command")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    s3 = boto3.client(
        "s3",
        endpoint_url=a.endpoint,
        aws_access_key_id=a.access_key,
        aws_secret_access_key=a.secret_key,
        region_name="us-east-1",
        config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )
    c, args = a.command, a.args
    if c == "mb":
        s3.create_bucket(Bucket=args[0])
    elif c in ("count", "keys"):
        n = size = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args[0], Prefix=args[1]):
            for o in page.get("Contents", []):
                n += 1
                size += o["Size"]
                if c == "keys":
                    print(o["Key"])
        if c == "count":
            print(n, size)
    elif c == "get":
        sys.stdout.buffer.write(s3.get_object(Bucket=args[0], Key=args[1])["Body"].read())
    elif c == "put":
        with open(args[2], "rb") as f:
            s3.put_object(Bucket=args[0], Key=args[1], Body=f.read())
    elif c == "put-if-absent":
        with open(args[2], "rb") as f:
            body = f.read()

        def add_header(request, **_):
            request.headers["If-None-Match"] = "*"

        s3.meta.events.register("before-sign.s3.PutObject", add_header)
        try:
            s3.put_object(Bucket=args[0], Key=args[1], Body=body)
            print(200)
        except botocore.exceptions.ClientError as e:
            print(e.response["ResponseMetadata"]["HTTPStatusCode"])
    elif c == "rm":
        s3.delete_object(Bucket=args[0], Key=args[1])
    else:
        sys.exit(f"s3_check.py: unknown command '{c}'")


if __name__ == "__main__":
    main()
