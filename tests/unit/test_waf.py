"""The WAF parts of the template: every throttled route has a rule, limits are parameters, one switch."""

from __future__ import annotations

from typing import Any

from chalicelib.core.config import settings
from infra import waf
from infra.template import merge_template


def _acl(template: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = template["Resources"][waf.ACL]
    return resource


def test_each_route_has_a_per_ip_rate_rule_with_its_limit_as_a_parameter() -> None:
    template = merge_template(settings())
    rules = {rule["Name"]: rule for rule in _acl(template)["Properties"]["Rules"]}
    for path in ("/api/register", "/api/login", "/api/password/forgot", "/api/login/mfa"):
        matching = [
            rule
            for rule in rules.values()
            if "RateBasedStatement" in rule["Statement"]
            and rule["Statement"]["RateBasedStatement"]["ScopeDownStatement"]["ByteMatchStatement"]["SearchString"]
            == path
        ]
        assert len(matching) == 1, path
        statement = matching[0]["Statement"]["RateBasedStatement"]
        assert statement["AggregateKeyType"] == "IP" and matching[0]["Action"] == {"Block": {}}
        assert statement["Limit"]["Ref"] in template["Parameters"]


def test_common_rule_set_only_counts_and_priorities_are_unique() -> None:
    rules = _acl(merge_template(settings()))["Properties"]["Rules"]
    common = [rule for rule in rules if "ManagedRuleGroupStatement" in rule["Statement"]]
    assert [rule["Statement"]["ManagedRuleGroupStatement"]["Name"] for rule in common] == [
        "AWSManagedRulesCommonRuleSet"
    ]
    assert common[0]["OverrideAction"] == {"Count": {}}
    assert len({rule["Priority"] for rule in rules}) == len(rules)


def test_one_parameter_switches_the_acl_and_its_association_off() -> None:
    template = merge_template(settings())
    assert template["Conditions"][waf.CONDITION] == {"Fn::Equals": [{"Ref": waf.ENABLE_PARAMETER}, "true"]}
    association = template["Resources"][f"{waf.ACL}Association"]
    assert _acl(template)["Condition"] == association["Condition"] == waf.CONDITION
    assert _acl(template)["Properties"]["Scope"] == "REGIONAL"
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [waf.ACL, "Arn"]}
