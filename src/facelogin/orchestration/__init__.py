"""Prefect for the package: the one part of `facelogin` that imports it, always inside functions.

- api: the configured Prefect API, or a temporary local one for one command; whether it answers;
- runs: the sync flow run in this process as a worker runs it, with the parameters the CLI gives;
- triggers: a deployment's run started and followed (`facelogin enroll`);
- deployments: what the operator's commands read from the API (who polls, the last and next runs);
- blocks: settings from the Prefect blocks they name, the one reader for the CLI and the flow.

Importing any of them imports no Prefect: a command answers a wrong path or a bad setting before
Prefect starts. The Prefect glue of the sync itself lives in flows/ and tasks/.
"""
