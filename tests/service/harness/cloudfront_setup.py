"""A CloudFront distribution and what it refers to, made through the API on
the stand-in (aws_standin.py), then saved as the AWS CLI saves it.

Reads a JSON description on stdin:

  {"endpoint": "http://127.0.0.1:PORT",
   "public_keys": {"main": "<PEM>"},
   "key_groups": {"cfmint": ["main"]},
   "cache_policies": {"content": <CachePolicyConfig>},
   "origin_request_policies": {"cfmint": <OriginRequestPolicyConfig>},
   "response_headers_policies": {"cors": <ResponseHeadersPolicyConfig>},
   "distribution": <DistributionConfig>}

Strings "@key:NAME", "@group:NAME", "@cache:NAME", "@origin-request:NAME" and
"@response-headers:NAME" anywhere in it are replaced with the ids CloudFront
gave. Prints {"distribution_id", "key_ids", "saved": {file name: document}},
each document what `aws cloudfront get-…` prints for it.
"""

import json
import sys
import uuid

import boto3


def cloudfront(endpoint):
    return boto3.client(
        "cloudfront",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def saved_documents(client, distribution_id):
    """The distribution and everything its behaviors name, by file name, as
    `aws cloudfront get-…` prints each."""

    def saved(answer):
        answer.pop("ResponseMetadata", None)
        return json.loads(json.dumps(answer, default=str))

    documents = {"distribution.json": saved(client.get_distribution(Id=distribution_id))}
    config = documents["distribution.json"]["Distribution"]["DistributionConfig"]
    behaviors = [config["DefaultCacheBehavior"]] + (config.get("CacheBehaviors") or {}).get("Items", [])
    for behavior in behaviors:
        for group in (behavior.get("TrustedKeyGroups") or {}).get("Items", []):
            answer = saved(client.get_key_group(Id=group))
            documents[f"key-group-{group}.json"] = answer
            for key in answer["KeyGroup"]["KeyGroupConfig"]["Items"]:
                documents[f"public-key-{key}.json"] = saved(client.get_public_key(Id=key))
        for member, call, kind in [
            ("CachePolicyId", client.get_cache_policy, "cache-policy"),
            ("OriginRequestPolicyId", client.get_origin_request_policy, "origin-request-policy"),
            ("ResponseHeadersPolicyId", client.get_response_headers_policy, "response-headers-policy"),
        ]:
            if behavior.get(member):
                documents[f"{kind}-{behavior[member]}.json"] = saved(call(Id=behavior[member]))
    return documents


def main():
    spec = json.load(sys.stdin)
    client = cloudfront(spec["endpoint"])
    ids = {}

    def resolve(value):
        if isinstance(value, str) and value.startswith("@") and ":" in value:
            return ids[value[1:]]
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return value

    for name, pem in spec.get("public_keys", {}).items():
        config = {"CallerReference": f"key-{name}-{uuid.uuid4()}", "Name": name, "EncodedKey": pem}
        ids[f"key:{name}"] = client.create_public_key(PublicKeyConfig=config)["PublicKey"]["Id"]
    for name, keys in spec.get("key_groups", {}).items():
        config = {"Name": name, "Items": [ids[f"key:{k}"] for k in keys]}
        ids[f"group:{name}"] = client.create_key_group(KeyGroupConfig=config)["KeyGroup"]["Id"]
    for name, config in spec.get("cache_policies", {}).items():
        answer = client.create_cache_policy(CachePolicyConfig=resolve(config))
        ids[f"cache:{name}"] = answer["CachePolicy"]["Id"]
    for name, config in spec.get("origin_request_policies", {}).items():
        answer = client.create_origin_request_policy(OriginRequestPolicyConfig=resolve(config))
        ids[f"origin-request:{name}"] = answer["OriginRequestPolicy"]["Id"]
    for name, config in spec.get("response_headers_policies", {}).items():
        answer = client.create_response_headers_policy(ResponseHeadersPolicyConfig=resolve(config))
        ids[f"response-headers:{name}"] = answer["ResponseHeadersPolicy"]["Id"]
    config = resolve(spec["distribution"])
    config["CallerReference"] = f"{config.get('CallerReference', 'cfmint')}-{uuid.uuid4()}"
    distribution_id = client.create_distribution(DistributionConfig=config)["Distribution"]["Id"]

    documents = saved_documents(client, distribution_id)
    key_ids = {k[4:]: v for k, v in ids.items() if k.startswith("key:")}
    print(json.dumps({"distribution_id": distribution_id, "key_ids": key_ids, "saved": documents}))


if __name__ == "__main__":
    main()
