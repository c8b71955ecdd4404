"""deploy/cloudformation/ as CloudFormation would create it, on the stand-in:
the template read by cfn-lint's decoder, its parameters and intrinsic
functions resolved, each resource created through the CloudFront API in the
order its references need, its properties mapped onto the API's shapes with
botocore's model (a property the API does not know fails the run).

  python3 cloudformation_deploy.py TEMPLATE ENDPOINT STACK_NAME < parameters.json

Prints {"outputs": {...}, "distribution_id": ..., "saved": {file: document}}.
"""

import json
import re
import sys

from cfnlint.decode import decode

from cloudfront_setup import cloudfront, saved_documents

STACK = "cfmint-test"

# Where a CloudFormation property and its API member differ by more than case.
RENAMES = {"IPV6Enabled": "IsIPV6Enabled", "OriginCustomHeaders": "CustomHeaders"}
# Defaults CloudFormation fills in where the API requires a value.
DEFAULTS = {"CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443}}

# Resource type: (create call, its argument, answer member).
CREATE = {
    "AWS::CloudFront::PublicKey": ("create_public_key", "PublicKeyConfig", "PublicKey"),
    "AWS::CloudFront::KeyGroup": ("create_key_group", "KeyGroupConfig", "KeyGroup"),
    "AWS::CloudFront::CachePolicy": ("create_cache_policy", "CachePolicyConfig", "CachePolicy"),
    "AWS::CloudFront::OriginRequestPolicy": (
        "create_origin_request_policy", "OriginRequestPolicyConfig", "OriginRequestPolicy"),
    "AWS::CloudFront::ResponseHeadersPolicy": (
        "create_response_headers_policy", "ResponseHeadersPolicyConfig", "ResponseHeadersPolicy"),
    "AWS::CloudFront::Distribution": ("create_distribution", "DistributionConfig", "Distribution"),
}


class Stack:
    def __init__(self, template, parameters):
        self.template = template
        self.values = {}
        for name, declared in template.get("Parameters", {}).items():
            if name in parameters:
                self.values[name] = parameters[name]
            elif "Default" in declared:
                self.values[name] = declared["Default"]
            else:
                raise SystemExit(f"parameter {name} has no value and no default")
            allowed = declared.get("AllowedValues")
            if allowed and self.values[name] not in allowed:
                raise SystemExit(f"parameter {name}: {self.values[name]!r} not in {allowed}")
            pattern = declared.get("AllowedPattern")
            if pattern and not re.fullmatch(pattern, self.values[name]):
                raise SystemExit(f"parameter {name} does not match {pattern}")
        self.values["AWS::StackName"] = STACK
        self.values["AWS::Region"] = "us-east-1"
        self.attributes = {}

    def condition(self, name):
        return self.resolve(self.template["Conditions"][name])

    def resolve(self, value):
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                return self.values[arg]
            if key == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(self.lookup(m.group(1))), arg)
            if key == "Fn::GetAtt":
                resource, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attributes[(resource, attribute)]
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                a, b = (self.resolve(v) for v in arg)
                return a == b
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key.startswith("Fn::"):
                raise SystemExit(f"{key} is not rendered here")
        out = {}
        for k, v in value.items():
            v = self.resolve(v)
            if v is not NO_VALUE:
                out[k] = v
        return out

    def lookup(self, name):
        if "." in name:
            return self.attributes[tuple(name.split(".", 1))]
        return self.values[name]


NO_VALUE = object()


def references(value):
    """The resources and parameters a value refers to."""
    if isinstance(value, list):
        return set().union(*(references(v) for v in value)) if value else set()
    if isinstance(value, dict):
        found = set()
        for k, v in value.items():
            if k == "Ref":
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}]+)\}", v)}
            else:
                found |= references(v)
        return found
    return set()


def to_api(value, shape, path):
    """A CloudFormation property value on the API's shape."""
    if shape.type_name == "structure":
        members = shape.members
        if "Quantity" in members and "Items" in members:
            if isinstance(value, list):
                value = {"Items": value}
            out = {"Quantity": len(value.get("Items", []))}
            if "Enabled" in members:
                out["Enabled"] = bool(value.get("Items"))
            for k, v in value.items():
                out[k] = to_api(v, members[k], f"{path}.{k}")
            return out
        value = {**DEFAULTS.get(path.rsplit(".", 1)[-1], {}), **value}
        if "CachedMethods" in value and "CachedMethods" not in members:
            # A sibling of AllowedMethods in CloudFormation, inside it in the API.
            value = dict(value)
            cached = value.pop("CachedMethods")
            value["AllowedMethods"] = {"Items": value["AllowedMethods"], "CachedMethods": {"Items": cached}}
        out = {}
        by_lower = {name.lower(): name for name in members}
        for k, v in value.items():
            name = RENAMES.get(k) or by_lower.get(k.lower())
            if name is None:
                raise SystemExit(f"{path}.{k}: the API has no such member")
            out[name] = to_api(v, members[name], f"{path}.{name}")
        return out
    if shape.type_name == "list":
        return [to_api(v, shape.member, path) for v in value]
    if shape.type_name == "boolean" and isinstance(value, str):
        return value == "true"
    if shape.type_name in ("integer", "long") and isinstance(value, str):
        return int(value)
    return value


def deploy(template_path, endpoint, parameters):
    template, matches = decode(template_path)
    if matches:
        raise SystemExit(f"{template_path}: {matches}")
    stack = Stack(template, parameters)
    client = cloudfront(endpoint)
    model = client.meta.service_model
    resources = dict(template["Resources"])
    made = {}
    while resources:
        ready = [n for n, r in resources.items()
                 if not (references(r) & set(resources)) - {n}]
        if not ready:
            raise SystemExit(f"circular references among {sorted(resources)}")
        for name in ready:
            resource = resources.pop(name)
            call, argument, answer = CREATE[resource["Type"]]
            properties = stack.resolve(resource["Properties"])
            config = properties[argument]
            shape = model.operation_model(
                "".join(p.title() for p in call.split("_"))
            ).input_shape.members[argument]
            config = to_api(config, shape, f"{name}.{argument}")
            if resource["Type"] == "AWS::CloudFront::Distribution":
                config.setdefault("CallerReference", f"{STACK}-{name}")
                config.setdefault("Comment", "")
            result = getattr(client, call)(**{argument: config})[answer]
            stack.values[name] = result["Id"]
            made[name] = result["Id"]
            if "DomainName" in result:
                stack.attributes[(name, "DomainName")] = result["DomainName"]
    outputs = {k: stack.resolve(v["Value"]) for k, v in template.get("Outputs", {}).items()}
    distribution = next(made[n] for n, r in template["Resources"].items()
                        if r["Type"] == "AWS::CloudFront::Distribution")
    return {"outputs": outputs, "distribution_id": distribution,
            "saved": saved_documents(client, distribution)}


def main():
    global STACK
    template_path, endpoint, STACK = sys.argv[1:4]
    print(json.dumps(deploy(template_path, endpoint, json.load(sys.stdin))))


if __name__ == "__main__":
    main()
