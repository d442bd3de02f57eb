"""AWS WAF at the edge: per-IP rate limits on the routes that guess or send mail, plus AWS's
common rule set in count mode (watched before it may block). One parameter turns it all off.
"""

from __future__ import annotations

from typing import Any

from chalicelib.core.config import Settings

ENABLE_PARAMETER = "EnableWaf"
CONDITION = "WafEnabled"
ACL = "EdgeWebACL"

# rule name -> (path fragment matched in the URI, limit parameter, default per 5 minutes and IP)
RATE_LIMITED = {
    "Register": ("/api/register", "RegisterRateLimit", 100),
    "Login": ("/api/login", "LoginRateLimit", 100),
    "ForgotPassword": ("/api/password/forgot", "ForgotPasswordRateLimit", 20),
    "LoginMfa": ("/api/login/mfa", "LoginMfaRateLimit", 50),
}


def _visibility(name: str) -> dict[str, Any]:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": name}


def _rate_rule(name: str, path: str, parameter: str, priority: int) -> dict[str, Any]:
    """Blocks an IP that sends more than the limit to `path` in five minutes.

    CONTAINS, because API Gateway hands WAF the path with the stage prefix (/prod/api/...).
    """
    scope = {
        "ByteMatchStatement": {
            "SearchString": path,
            "FieldToMatch": {"UriPath": {}},
            "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}],
            "PositionalConstraint": "CONTAINS",
        }
    }
    return {
        "Name": f"{name}PerIp",
        "Priority": priority,
        "Action": {"Block": {}},
        "Statement": {
            "RateBasedStatement": {"Limit": {"Ref": parameter}, "AggregateKeyType": "IP", "ScopeDownStatement": scope}
        },
        "VisibilityConfig": _visibility(f"{name}PerIp"),
    }


def parts(config: Settings) -> dict[str, Any]:
    """Parameters, condition and resources to merge into the template."""
    rules = [
        _rate_rule(name, path, parameter, priority)
        for priority, (name, (path, parameter, _)) in enumerate(RATE_LIMITED.items())
    ]
    rules.append(
        {
            "Name": "AWSCommonRuleSet",
            "Priority": len(rules),
            "OverrideAction": {"Count": {}},
            "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": "AWSManagedRulesCommonRuleSet"}},
            "VisibilityConfig": _visibility("AWSCommonRuleSet"),
        }
    )
    parameters: dict[str, Any] = {
        ENABLE_PARAMETER: {
            "Type": "String",
            "Default": "true",
            "AllowedValues": ["true", "false"],
            "Description": "Put AWS WAF in front of the API (false: no web ACL, no WAF charges).",
        }
    }
    for path, parameter, default in RATE_LIMITED.values():
        parameters[parameter] = {
            "Type": "Number",
            "Default": default,
            "MinValue": 10,
            "Description": f"Requests per 5 minutes and source IP to paths containing {path} before WAF blocks.",
        }
    stage_arn = f"arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}::/restapis/${{RestAPI}}/stages/{config.stage}"
    return {
        "Parameters": parameters,
        "Conditions": {CONDITION: {"Fn::Equals": [{"Ref": ENABLE_PARAMETER}, "true"]}},
        "Resources": {
            ACL: {
                "Type": "AWS::WAFv2::WebACL",
                "Condition": CONDITION,
                "Properties": {
                    "Name": f"{config.resource_prefix}-edge",
                    "Scope": "REGIONAL",
                    "DefaultAction": {"Allow": {}},
                    "Rules": rules,
                    "VisibilityConfig": _visibility(f"{config.resource_prefix}-edge"),
                },
            },
            f"{ACL}Association": {
                "Type": "AWS::WAFv2::WebACLAssociation",
                "Condition": CONDITION,
                "DependsOn": f"RestAPI{config.stage}Stage",
                "Properties": {"ResourceArn": {"Fn::Sub": stage_arn}, "WebACLArn": {"Fn::GetAtt": [ACL, "Arn"]}},
            },
        },
    }


def extend(template: dict[str, Any], config: Settings) -> dict[str, Any]:
    """`template` with the WAF parts added (their keys are new, so a shallow merge per section)."""
    for section, entries in parts(config).items():
        template.setdefault(section, {}).update(entries)
    return template
