"""Prompt lint: each kind of finding, on deliberately broken bundles."""

from __future__ import annotations

from pathlib import Path

from conftest import TOOLS, BundleMaker
from shipyard.prompts import LintIssue, lint_bundle, load_bundle
from shipyard.tools import ToolRegistry

tools = ToolRegistry()


@tools.tool()
def lookup_order(order_id: str, include_items: bool = False) -> dict[str, str]:
    """Look up an order."""
    return {"order_id": order_id}


@tools.tool()
def process_refund(order_id: str, amount: float) -> str:
    """Refund an order."""
    return "ok"


ALL_DESCRIBED = (
    TOOLS + "process_refund:\n  description: Refund.\n  parameters:\n    order_id: id\n    amount: USD\n"
)
VARS = {"product": "Acme"}


def found(issues: list[LintIssue], severity: str, text: str) -> LintIssue:
    hits = [i for i in issues if i.severity == severity and text in i.message]
    assert hits, f"no {severity} containing {text!r} in:\n" + "\n".join(map(str, issues))
    return hits[0]


def test_a_good_bundle_is_clean(make_bundle: BundleMaker) -> None:
    path = make_bundle(tool_descriptions=ALL_DESCRIBED)
    assert lint_bundle(path, tools=tools, variables=VARS) == []
    assert lint_bundle(load_bundle(path), tools=tools, variables=VARS) == []


def test_missing_folder(tmp_path: Path) -> None:
    [issue] = lint_bundle(tmp_path / "nope")
    assert issue.severity == "error" and "does not exist" in issue.message


def test_missing_and_empty_files(make_bundle: BundleMaker) -> None:
    issues = lint_bundle(make_bundle(system_prompt=None, version="  \n", safety_rules=None), variables=VARS)
    assert found(issues, "error", "system_prompt.txt is missing").file.endswith("system_prompt.txt")
    found(issues, "error", "version.txt is empty")
    found(issues, "warning", "safety_rules.txt is missing")
    issues = lint_bundle(make_bundle("b", system_prompt="\n", tool_descriptions=None), variables=VARS)
    found(issues, "error", "system_prompt.txt is empty")
    found(issues, "warning", "no tool descriptions")
    # errors come before warnings
    assert [i.severity for i in issues] == sorted(i.severity for i in issues)


def test_variables_without_value_with_line_numbers(make_bundle: BundleMaker) -> None:
    path = make_bundle(
        system_prompt="A {{ product }}\nB {{ customer }}\n{{ safety_rules }}\n",
        safety_rules="Only {{ topic }}.\n",
    )
    issues = lint_bundle(path, variables=VARS)
    customer = found(issues, "error", "'customer' has no value")
    assert (customer.line, customer.file.endswith("system_prompt.txt")) == (2, True)
    topic = found(issues, "error", "'topic' has no value")
    assert (topic.line, topic.file.endswith("safety_rules.txt")) == (1, True)
    assert not [i for i in issues if "'product'" in i.message]
    assert len(lint_bundle(path, variables={**VARS, "customer": "c", "topic": "t"})) == 0


def test_safety_rules_placeholder_needs_the_file(make_bundle: BundleMaker) -> None:
    issues = lint_bundle(make_bundle(safety_rules=None), variables=VARS)
    assert found(issues, "error", "{{ safety_rules }} is used").line == 4


def test_safety_rules_never_sent(make_bundle: BundleMaker) -> None:
    issues = lint_bundle(make_bundle(system_prompt="You help with {{ product }}.\n"), variables=VARS)
    found(issues, "warning", "safety_rules.txt is never sent")


def test_unbalanced_and_malformed_braces(make_bundle: BundleMaker) -> None:
    text = (
        "ok {{ product }}\nopen {{ product\nclose }} here\n{{ not valid }}\n{product}\n{{ safety_rules }}\n"
    )
    issues = lint_bundle(make_bundle(system_prompt=text), variables=VARS)
    by_line = {(i.line, i.severity): i.message for i in issues}
    assert "'{{' is never closed" in by_line[(2, "error")] or "not a placeholder" in by_line[(2, "error")]
    assert "'{{ not valid }}' is not a placeholder" in by_line[(4, "error")]
    assert "single braces" in by_line[(5, "warning")]
    issues = lint_bundle(make_bundle("b", system_prompt="a }} b\n{{ safety_rules }}\nc {{ x"), variables=VARS)
    assert found(issues, "error", "'}}' has no opening").line == 1
    assert found(issues, "error", "'{{' is never closed").line == 3


def test_tool_descriptions_against_registered_tools(make_bundle: BundleMaker) -> None:
    text = TOOLS + "    customer: Who ordered\nsend_email:\n  description: Email the customer.\n"
    issues = lint_bundle(make_bundle(tool_descriptions=text), tools=tools, variables=VARS)
    unknown = found(issues, "error", "describes tool 'send_email', which the agent does not register")
    assert unknown.line == 6 and "registered: lookup_order, process_refund" in unknown.message
    param = found(issues, "error", "tool 'lookup_order' has no parameter 'customer'")
    assert param.line == 5
    undescribed = found(issues, "warning", "registered tool 'process_refund' has no description")
    assert undescribed.line is None
    # no tools given: those checks are skipped
    assert not [i for i in lint_bundle(make_bundle("b", tool_descriptions=text), variables=VARS)]


def test_required_parameters_left_undescribed(make_bundle: BundleMaker) -> None:
    text = ALL_DESCRIBED.replace("    amount: USD\n", "") + "\n"
    issues = lint_bundle(make_bundle(tool_descriptions=text), tools=tools, variables=VARS)
    found(issues, "warning", "required parameter process_refund.amount is not described")
    # optional parameters may stay undescribed (include_items has a default)
    assert not [i for i in issues if "include_items" in i.message]


def test_empty_descriptions(make_bundle: BundleMaker) -> None:
    text = ALL_DESCRIBED.replace("Refund.", "''").replace("USD", "''")
    issues = lint_bundle(make_bundle(tool_descriptions=text), tools=tools, variables=VARS)
    found(issues, "error", "tool 'process_refund' has an empty description")
    found(issues, "warning", "parameter process_refund.amount has an empty description")


def test_malformed_tool_descriptions_become_issues_with_lines(make_bundle: BundleMaker) -> None:
    text = "lookup_order:\n  descripton: typo\n"
    issues = lint_bundle(make_bundle(tool_descriptions=text), tools=tools, variables=VARS)
    typo = found(issues, "error", "lookup_order.descripton: unknown key")
    assert typo.line == 2
    found(issues, "error", "lookup_order.description: required field is missing")


def test_version_labels(make_bundle: BundleMaker) -> None:
    for label in ("1.0 beta", "1.0.0+abc", "v@1", "-1", "x" * 65):
        issues = lint_bundle(make_bundle(label.replace(" ", "_")[:20], version=label + "\n"), variables=VARS)
        found(issues, "error", "is not a sensible label")
    issues = lint_bundle(make_bundle("two", version="1.0.0\n1.1.0\n"), variables=VARS)
    found(issues, "error", "must hold one line")
    for good in ("1.0.0", "v2", "2024-06-01.rc_1"):
        assert lint_bundle(make_bundle(f"g{good}", version=f"{good}\n"), variables=VARS) == []
