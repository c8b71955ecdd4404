"""moto[server] with the CloudFront calls it lacks, for tests/service/stores/ (rotation.rs, key_stores.rs).

moto 5.2 serves CloudFront public keys, key groups, distributions and
Secrets Manager. It lacks two calls `cfmint keys rotate` makes, which this
stand-in answers in the AWS API's own request and response shapes, on the
state moto keeps:

- UpdateKeyGroup (PUT /2020-05-31/key-group/{Id}, If-Match): 412
  PreconditionFailed on a stale ETag, TooManyPublicKeysInKeyGroup past 5
  keys; the distributions trusting the group go InProgress for DEPLOY_SECONDS,
  as CloudFront redeploys them.
- ListDistributionsByKeyGroup (GET /2020-05-31/distributionsByKeyGroupId/{Id}).
- Create and Get of cache policies, origin request policies and response
  headers policies (POST /2020-05-31/cache-policy, GET .../cache-policy/{Id},
  and the same under origin-request-policy and response-headers-policy),
  which `cfmint cloudfront check` reads: the configuration as it was sent,
  returned inside the policy with its id.

It also makes DeletePublicKey refuse a key still in a key group
(PublicKeyInUse) and CreatePublicKey refuse a CallerReference already used
(PublicKeyAlreadyExists), as CloudFront does and moto does not, and it injects
faults: POST /__fault {"op": "UpdateKeyGroup", "count": 1} fails the next
matching call with AccessDenied.

Prints the port it listens on, then serves until killed.
"""

import json
import re
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET

from moto.cloudfront.models import cloudfront_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

NS = "http://cloudfront.amazonaws.com/doc/2020-05-31/"
ACCOUNT = "123456789012"
DEPLOY_SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "setup" else 1.0

lock = threading.Lock()
faults = {}
deploying_until = {}
# Per key group: the keys before its last update, and when the update has
# reached every edge. Until then some edges trust the old set, some the new.
edges = {}
calls = []
# Policy kind (its path) -> id -> the configuration element as sent.
policies = {"cache-policy": {}, "origin-request-policy": {}, "response-headers-policy": {}}
POLICY_ELEMENTS = {
    "cache-policy": "CachePolicy",
    "origin-request-policy": "OriginRequestPolicy",
    "response-headers-policy": "ResponseHeadersPolicy",
}


def backend():
    return cloudfront_backends[ACCOUNT]["aws"]


def error(status, code, message):
    body = (
        f'<?xml version="1.0"?><ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return Response(body, status=status, content_type="text/xml")


def operation(request):
    target = request.headers.get("X-Amz-Target", "")
    if target:
        return target.split(".")[-1]
    path, method = request.path, request.method
    rules = [
        ("PUT", r"/2020-05-31/key-group/[^/]+$", "UpdateKeyGroup"),
        ("GET", r"/2020-05-31/key-group/[^/]+$", "GetKeyGroup"),
        ("GET", r"/2020-05-31/distributionsByKeyGroupId/[^/]+$", "ListDistributionsByKeyGroup"),
        ("GET", r"/2020-05-31/distribution/[^/]+$", "GetDistribution"),
        ("POST", r"/2020-05-31/public-key$", "CreatePublicKey"),
        ("GET", r"/2020-05-31/public-key$", "ListPublicKeys"),
        ("GET", r"/2020-05-31/public-key/[^/]+$", "GetPublicKey"),
        ("DELETE", r"/2020-05-31/public-key/[^/]+$", "DeletePublicKey"),
    ]
    for rule_method, pattern, name in rules:
        if method == rule_method and re.search(pattern, path):
            return name
    return method + " " + path


def group_ids(dist):
    """The key groups any cache behaviour of the distribution trusts."""
    config = dist.distribution_config
    behaviours = [config.DefaultCacheBehavior] + list(config.CacheBehaviors.get("Items") or [])
    ids = []
    for behaviour in behaviours:
        items = behaviour.trusted_key_groups.items
        if isinstance(items, dict):
            items = items.get("KeyGroup", [])
        if isinstance(items, str):
            items = [items]
        ids.extend(items or [])
    return ids


def update_key_group(request, group_id):
    group = backend().key_groups.get(group_id)
    if group is None:
        return error(404, "NoSuchResource", f"no key group {group_id}")
    if request.headers.get("If-Match") != group.etag:
        return error(412, "PreconditionFailed", "The If-Match version is missing or not valid.")
    config = ET.fromstring(request.get_data())
    name = config.findtext(f"{{{NS}}}Name")
    items = [e.text for e in config.iter(f"{{{NS}}}PublicKey")]
    if len(items) > 5:
        return error(400, "TooManyPublicKeysInKeyGroup", "too many public keys in the key group")
    for item in items:
        if item not in backend().public_keys:
            return error(404, "NoSuchPublicKey", f"no public key {item}")
    edges[group_id] = (list(group.items), time.time() + DEPLOY_SECONDS)
    group.name, group.items = name, items
    group.etag = uuid.uuid4().hex[:14].upper()
    for dist in backend().distributions.values():
        if group_id in group_ids(dist):
            deploying_until[dist.distribution_id] = time.time() + DEPLOY_SECONDS
    keys = "".join(f"<PublicKey>{item}</PublicKey>" for item in items)
    body = (
        f'<?xml version="1.0"?><KeyGroup xmlns="{NS}"><Id>{group_id}</Id>'
        f"<LastModifiedTime>{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}</LastModifiedTime>"
        f"<KeyGroupConfig><Name>{name}</Name><Items>{keys}</Items></KeyGroupConfig></KeyGroup>"
    )
    return Response(body, status=200, content_type="text/xml", headers={"ETag": group.etag})


def policy_answer(kind, policy_id, status):
    element = POLICY_ELEMENTS[kind]
    config, etag = policies[kind][policy_id]
    body = (
        f'<?xml version="1.0"?><{element} xmlns="{NS}"><Id>{policy_id}</Id>'
        f"<LastModifiedTime>{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}</LastModifiedTime>"
        f"{config}</{element}>"
    )
    headers = {"ETag": etag, "Location": f"https://cloudfront.amazonaws.com/2020-05-31/{kind}/{policy_id}"}
    return Response(body, status=status, content_type="text/xml", headers=headers)


def create_policy(request, kind):
    body = request.get_data().decode()
    # The configuration element as sent, without its XML declaration and
    # namespace (the answer's root carries it).
    config = re.sub(r"^<\?xml[^>]*\?>", "", body.strip())
    config = re.sub(r' xmlns="[^"]*"', "", config, count=1)
    policy_id = str(uuid.uuid4())
    with lock:
        policies[kind][policy_id] = (config, uuid.uuid4().hex[:14].upper())
        return policy_answer(kind, policy_id, 201)


def get_policy(kind, policy_id):
    with lock:
        if policy_id not in policies[kind]:
            element = POLICY_ELEMENTS[kind]
            return error(404, f"NoSuch{element}", f"no {kind} {policy_id}")
        return policy_answer(kind, policy_id, 200)


def distributions_by_key_group(group_id):
    ids = [
        d.distribution_id for d in backend().distributions.values() if group_id in group_ids(d)
    ]
    items = "".join(f"<DistributionId>{i}</DistributionId>" for i in ids)
    body = (
        f'<?xml version="1.0"?><DistributionIdList xmlns="{NS}"><Marker></Marker>'
        f"<MaxItems>100</MaxItems><IsTruncated>false</IsTruncated>"
        f"<Quantity>{len(ids)}</Quantity><Items>{items}</Items></DistributionIdList>"
    )
    return Response(body, status=200, content_type="text/xml")


def state(args):
    """What a test checks after a rotation: the group's keys, every public
    key in the account, and the ring as the secret's AWSCURRENT holds it."""
    from moto.secretsmanager.models import secretsmanager_backends

    group = backend().key_groups[args["group"]]
    secret = secretsmanager_backends[ACCOUNT]["us-east-1"].secrets[args["secret"]]
    current = [v for v in secret.versions.values() if "AWSCURRENT" in v["version_stages"]]
    return {
        "group": list(group.items),
        "public_keys": [
            {"id": k.id, "encoded_key": k.encoded_key} for k in backend().public_keys.values()
        ],
        "ring": json.loads(current[0]["secret_string"]),
    }


class StandIn:
    def __init__(self):
        self.moto = DomainDispatcherApplication(create_backend_app)

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path == "/__fault":
            fault = json.loads(request.get_data())
            with lock:
                faults[fault["op"]] = (fault.get("skip", 0), fault.get("lost", False))
            return Response("ok")(environ, start_response)
        if request.path == "/__trusted":
            # The public keys every edge trusts now: what CloudFront verifies
            # a viewer's signature with, wherever the viewer lands. While an
            # update deploys, only keys both in the old set and the new.
            group_id = request.args["group"]
            items = list(backend().key_groups[group_id].items)
            old, until = edges.get(group_id, (items, 0))
            if time.time() < until:
                items = [k for k in items if k in old]
            keys = {k: backend().public_keys[k].encoded_key for k in items}
            return Response(json.dumps(keys), content_type="application/json")(
                environ, start_response
            )
        if request.path == "/__state":
            return Response(json.dumps(state(request.args)), content_type="application/json")(
                environ, start_response
            )
        if request.path == "/__calls":
            with lock:
                return Response(json.dumps(calls), content_type="application/json")(
                    environ, start_response
                )
        op = operation(request)
        failing, lost = False, False
        with lock:
            calls.append(op)
            if op in faults:
                skip, lost = faults[op]
                if skip > 0:
                    faults[op] = (skip - 1, lost)
                else:
                    failing = True
                    del faults[op]
        if failing and lost:
            # The call takes effect and its answer is lost, as when the
            # caller dies the moment it was sent.
            for _ in self.handle(request, environ, lambda *args: None, op):
                pass
        if failing:
            if request.headers.get("X-Amz-Target"):
                body = json.dumps({"__type": "AccessDeniedException", "message": "injected fault"})
                response = Response(body, status=400, content_type="application/x-amz-json-1.1")
            else:
                response = error(403, "AccessDenied", "injected fault")
            return response(environ, start_response)
        return self.handle(request, environ, start_response, op)

    def handle(self, request, environ, start_response, op):
        match = re.search(r"/2020-05-31/key-group/([^/]+)$", request.path)
        if op == "UpdateKeyGroup" and match:
            with lock:
                return update_key_group(request, match.group(1))(environ, start_response)
        match = re.search(
            r"/2020-05-31/(cache-policy|origin-request-policy|response-headers-policy)(?:/([^/]+))?$",
            request.path,
        )
        if match and request.method == "POST" and match.group(2) is None:
            return create_policy(request, match.group(1))(environ, start_response)
        if match and request.method == "GET" and match.group(2):
            return get_policy(match.group(1), match.group(2))(environ, start_response)
        match = re.search(r"/2020-05-31/distributionsByKeyGroupId/([^/]+)$", request.path)
        if op == "ListDistributionsByKeyGroup" and match:
            return distributions_by_key_group(match.group(1))(environ, start_response)
        if op == "CreatePublicKey":
            # CloudFront refuses a second key with the same CallerReference;
            # moto makes a twin.
            body = request.get_data()
            environ["wsgi.input"] = __import__("io").BytesIO(body)
            reference = ET.fromstring(body).findtext(f"{{{NS}}}CallerReference")
            with lock:
                taken = any(k.caller_ref == reference for k in backend().public_keys.values())
            if taken:
                response = error(409, "PublicKeyAlreadyExists", "The public key already exists.")
                return response(environ, start_response)
        match = re.search(r"/2020-05-31/public-key/([^/]+)$", request.path)
        if op == "DeletePublicKey" and match:
            key_id = match.group(1)
            if any(key_id in g.items for g in backend().key_groups.values()):
                response = error(409, "PublicKeyInUse", f"public key {key_id} is in a key group")
                return response(environ, start_response)
        match = re.search(r"/2020-05-31/distribution/([^/]+)$", request.path)
        if op == "GetDistribution" and match:
            return self.distribution(environ, start_response, match.group(1))
        return self.moto(environ, start_response)

    def distribution(self, environ, start_response, dist_id):
        """moto's answer, with the status a redeploy in progress shows."""
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        body = b"".join(self.moto(environ, capture))
        status = "InProgress" if deploying_until.get(dist_id, 0) > time.time() else "Deployed"
        body = re.sub(rb"<Status>[A-Za-z]+</Status>", f"<Status>{status}</Status>".encode(), body)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers)
        return [body]


def setup(port, private_pem_path, public_pem_path, secret_name):
    """Key A as a CloudFront public key, a key group trusting it, a
    distribution whose default behaviour trusts the group, and the key ring
    secret signing with A. Prints the ids as JSON."""
    import boto3

    args = dict(
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    cloudfront = boto3.client("cloudfront", **args)
    public = open(public_pem_path).read()
    key = cloudfront.create_public_key(
        PublicKeyConfig={"CallerReference": secret_name, "Name": "key-a", "EncodedKey": public}
    )["PublicKey"]["Id"]
    group = cloudfront.create_key_group(KeyGroupConfig={"Name": "cfmint", "Items": [key]})
    group_id = group["KeyGroup"]["Id"]
    behaviour = {
        "TargetOriginId": "origin",
        "ViewerProtocolPolicy": "https-only",
        "TrustedKeyGroups": {"Enabled": True, "Quantity": 1, "Items": [group_id]},
        "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
        "MinTTL": 0,
    }
    origin = {"Id": "origin", "DomainName": "origin.example.com",
              "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                     "OriginProtocolPolicy": "https-only"}}
    distribution = cloudfront.create_distribution(DistributionConfig={
        "CallerReference": secret_name,
        "Origins": {"Quantity": 1, "Items": [origin]},
        "DefaultCacheBehavior": behaviour,
        "Comment": "cfmint rotation test",
        "Enabled": True,
    })["Distribution"]["Id"]
    ring = {"active": key, "keys": [{"id": key, "private_key": open(private_pem_path).read()}]}
    boto3.client("secretsmanager", **args).create_secret(
        Name=secret_name, SecretString=json.dumps(ring)
    )
    print(json.dumps({"key_pair_id": key, "key_group_id": group_id,
                      "distribution_id": distribution}))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "setup":
        setup(*sys.argv[2:6])
        return
    server = make_server("127.0.0.1", 0, StandIn(), threaded=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
