"""CI workflow files for `shipyard ci init --github | --gitlab`.

Pull requests run pre-merge and post the Markdown comment; merges to the default branch run
post-merge and the production stage; a production decision waiting for approval is approved in a
job bound to the protected `production` environment (GitHub: required reviewers; GitLab: a manual
job of a protected environment), which records the approval (`shipyard approve`) and decides again.
The replay cache and the base-commit baselines (`.shipyard/ci/replay`, `.shipyard/ci/baselines`)
are cached between runs, so a version's model calls are paid for once.

The jobs of one run share the store through `SHIPYARD_DATABASE_URL` (a CI secret / variable naming
the team's PostgreSQL) when it is set; otherwise the production job hands its SQLite store to the
approval job as an artifact."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

GITHUB_PATH = Path(".github/workflows/shipyard.yml")
GITLAB_PATH = Path(".gitlab-ci.yml")
DEFAULT_INSTALL = "pip install shipyard"


@dataclass(frozen=True, slots=True)
class Template:
    path: Path
    text: str


def _q(text: str) -> str:
    """A YAML double-quoted scalar."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def github_workflow(
    *, agent: str, config: str, install: str, python: str = "3.11", branch: str = "main"
) -> str:
    c = f" -c {config}" if config != "shipyard.yaml" else ""
    a = f" --agent {agent}"
    steps = f"      - uses: actions/setup-python@v5\n        with:\n          python-version: {_q(python)}\n"
    steps += f"      - name: Install\n        run: {install}\n"
    setup = "      - uses: actions/checkout@v4\n" + steps
    # pre-merge needs the base branch's history: the merge base and the base commit's tree
    setup_full = "      - uses: actions/checkout@v4\n        with:\n          fetch-depth: 0\n" + steps
    return f"""# Written by `shipyard ci init --github`. Pull requests: pre-merge, with the result as a PR comment.
# Merges to {branch}: post-merge (a staging server), then the production gate. A production decision
# that needs a person waits for the protected `production` environment (Settings > Environments >
# production > Required reviewers); its approval is recorded with `shipyard approve`.
# Set the SHIPYARD_DATABASE_URL secret to share one store (PostgreSQL) between jobs and runs.
name: shipyard

on:
  pull_request:
  push:
    branches: [{branch}]

permissions:
  contents: read

env:
  SHIPYARD_DATABASE_URL: ${{{{ secrets.SHIPYARD_DATABASE_URL }}}}
  COLUMNS: "160"

jobs:
  pre-merge:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    permissions:
      contents: read
      pull-requests: write
    steps:
{setup_full}      - name: Restore the replay cache and base baselines
        uses: actions/cache@v4
        with:
          path: |
            .shipyard/ci/replay
            .shipyard/ci/baselines
          key: shipyard-ci-${{{{ github.event.pull_request.head.sha }}}}
          restore-keys: |
            shipyard-ci-
      - name: shipyard ci run pre-merge
        run: shipyard ci run pre-merge{a}{c} --base "origin/${{{{ github.base_ref }}}}"
      - name: Comment on the pull request
        if: always()
        env:
          GH_TOKEN: ${{{{ github.token }}}}
          PR: ${{{{ github.event.pull_request.number }}}}
        run: |
          if [ -f .shipyard/ci/reports/comment.md ]; then
            gh pr comment "$PR" --body-file .shipyard/ci/reports/comment.md --edit-last \\
              || gh pr comment "$PR" --body-file .shipyard/ci/reports/comment.md
          fi
      - name: Keep the reports
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: shipyard-pre-merge
          include-hidden-files: true  # .shipyard/ is a dot folder
          path: .shipyard/ci/reports/

  post-merge:
    if: github.event_name == 'push'
    runs-on: ubuntu-latest
    steps:
{setup}      - name: shipyard ci run post-merge
        run: shipyard ci run post-merge{a}{c}
      - name: Keep the reports and the staging server's records
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: shipyard-post-merge
          include-hidden-files: true  # .shipyard/ is a dot folder
          path: |
            .shipyard/ci/reports/
            .shipyard/ci/staging/

  production:
    needs: post-merge
    runs-on: ubuntu-latest
    outputs:
      status: ${{{{ steps.gate.outputs.status }}}}
      run: ${{{{ steps.gate.outputs.run }}}}
    steps:
{setup}      - name: shipyard ci run production
        id: gate
        run: |
          set +e
          shipyard ci run production{a}{c}
          code=$?
          set -e
          run=$(python -c "import json; print(json.load(open('.shipyard/ci/reports/summary.json'))['stages'][-1]['run_id'] or '')")
          echo "run=$run" >> "$GITHUB_OUTPUT"
          if [ "$code" -eq 0 ]; then echo "status=pass" >> "$GITHUB_OUTPUT"; exit 0; fi
          if [ "$code" -eq 3 ]; then echo "status=waiting" >> "$GITHUB_OUTPUT"; exit 0; fi
          echo "status=fail" >> "$GITHUB_OUTPUT"
          exit "$code"
      - name: Hand the store to the approval job
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: shipyard-production
          include-hidden-files: true
          path: |
            .shipyard/ci/reports/
            .shipyard/*.db

  approve:
    needs: production
    if: needs.production.outputs.status == 'waiting'
    runs-on: ubuntu-latest
    environment: production
    steps:
{setup}      - uses: actions/download-artifact@v4
        with:
          name: shipyard-production
          path: .shipyard
      - name: Record the approval and decide again
        env:
          RUN: ${{{{ needs.production.outputs.run }}}}
          ACTOR: ${{{{ github.actor }}}}
        run: |
          shipyard approve "$RUN"{c} --by "$ACTOR" --reason "approved in the protected production environment"
          shipyard ci run production{a}{c} --run "$RUN"
"""


def gitlab_ci(*, agent: str, config: str, install: str, python: str = "3.11") -> str:
    c = f" -c {config}" if config != "shipyard.yaml" else ""
    a = f" --agent {agent}"
    return f"""# Written by `shipyard ci init --gitlab`. Merge requests: pre-merge, with the result as an MR note
# (needs a SHIPYARD_GITLAB_TOKEN variable with api scope). The default branch: post-merge (a staging
# server), then the production gate; a decision that needs a person waits for the manual `approve`
# job of the protected `production` environment (Settings > CI/CD > Protected environments).
# Set SHIPYARD_DATABASE_URL (a masked variable) to share one store (PostgreSQL) between jobs and runs.
stages: [pre-merge, post-merge, production, approve]

default:
  image: python:{python}
  before_script:
    - {install}

variables:
  COLUMNS: "160"
  GIT_DEPTH: "0"

pre-merge:
  stage: pre-merge
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
  cache:
    key: shipyard-ci
    paths:
      - .shipyard/ci/replay/
      - .shipyard/ci/baselines/
  script:
    - git fetch origin "$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
    - shipyard ci run pre-merge{a}{c} --base "origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
  after_script:
    - >-
      if [ -n "$SHIPYARD_GITLAB_TOKEN" ] && [ -f .shipyard/ci/reports/comment.md ]; then
      python -c "import json,sys; print(json.dumps({{'body': open('.shipyard/ci/reports/comment.md').read()}}))" > note.json &&
      curl --silent --fail --request POST --header "PRIVATE-TOKEN: $SHIPYARD_GITLAB_TOKEN"
      --header "Content-Type: application/json" --data @note.json
      "$CI_API_V4_URL/projects/$CI_PROJECT_ID/merge_requests/$CI_MERGE_REQUEST_IID/notes"; fi
  artifacts:
    when: always
    paths:
      - .shipyard/ci/reports/
    reports:
      junit: .shipyard/ci/reports/*.xml

post-merge:
  stage: post-merge
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
  script:
    - shipyard ci run post-merge{a}{c}
  artifacts:
    when: always
    paths:
      - .shipyard/ci/reports/
      - .shipyard/ci/staging/
    reports:
      junit: .shipyard/ci/reports/*.xml

production:
  stage: production
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
  script:
    - shipyard ci run production{a}{c}
  allow_failure:
    exit_codes: [3]
  artifacts:
    when: always
    paths:
      - .shipyard/ci/reports/
      - .shipyard/*.db
    reports:
      junit: .shipyard/ci/reports/*.xml

approve:
  stage: approve
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
      when: manual
  needs: [production]
  environment:
    name: production
  script:
    - RUN=$(python -c "import json; print(json.load(open('.shipyard/ci/reports/summary.json'))['stages'][-1]['run_id'] or '')")
    - shipyard approve "$RUN"{c} --by "$GITLAB_USER_LOGIN" --reason "approved in the protected production environment"
    - shipyard ci run production{a}{c} --run "$RUN"
"""


def render_templates(
    *,
    github: bool,
    gitlab: bool,
    agent: str,
    project: str = "",
    config: str = "shipyard.yaml",
    install: str = DEFAULT_INSTALL,
) -> list[Template]:
    """The workflow files, paths relative to the repository's top. `project`: the project folder
    inside the repository ("" at its top), where `.shipyard/` lives; `config`: shipyard.yaml's path
    from the repository's top."""
    prefix = project.strip("/") + "/" if project.strip("/") else ""
    out = []
    if github:
        text = github_workflow(agent=agent, config=config, install=install)
        out.append(Template(GITHUB_PATH, text.replace(".shipyard/", prefix + ".shipyard/")))
    if gitlab:
        text = gitlab_ci(agent=agent, config=config, install=install)
        out.append(Template(GITLAB_PATH, text.replace(".shipyard/", prefix + ".shipyard/")))
    return out
