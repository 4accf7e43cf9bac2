"""Create a post, publish it, and print its job's events as they arrive until the job ends.

    python publish_and_watch.py URL KEY [--account ACCOUNT_ID] [--text TEXT]
    python publish_and_watch.py URL KEY --job JOB_ID [--after-seq SEQ]

URL is the GraphQL endpoint (http://127.0.0.1:8000/graphql for `socialgate serve`), KEY an API
key with the posts:* and jobs:read scopes (and accounts:write when no --account is given: a sandbox
account is connected then). Queries and mutations go over HTTP (gql's httpx transport),
the subscription over a WebSocket speaking graphql-transport-ws. The operations are the
documents in ../documents, the same a frontend uses.

With --job, it only follows that job from after --after-seq: what a client does to resume after
a dropped connection, without missing or repeating an event. It exits 0 when the job succeeded,
1 when it ended otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from pathlib import Path
from typing import Any

from gql import Client, GraphQLRequest, gql
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

DOCUMENTS = Path(__file__).resolve().parent.parent / "documents"
SANDBOX_HANDLE = "python-example"
ENDINGS = {"job.succeeded": "SUCCEEDED", "job.failed": "FAILED", "job.partial": "PARTIAL", "job.canceled": "CANCELED"}


class UserErrors(Exception):
    """A mutation refused its input; nothing was changed."""


def operation(name: str, **variables: Any) -> GraphQLRequest:
    """The document ``name`` from examples/documents, with its variables."""
    return GraphQLRequest(gql((DOCUMENTS / f"{name}.graphql").read_text()), variable_values=variables)


async def mutate(session: Any, name: str, **variables: Any) -> dict[str, Any]:
    """Run a mutation; its payload, or UserErrors naming each problem."""
    result = await session.execute(operation(name, **variables))
    (payload,) = result.values()
    if payload["userErrors"]:
        raise UserErrors("; ".join(f"{error['code']}: {error['message']}" for error in payload["userErrors"]))
    return payload


async def publish(url: str, key: str, account_id: str | None, text: str) -> str:
    """Create the post (connecting a sandbox account first when none is given), publish it; the job's id."""
    transport = HTTPXAsyncTransport(url=url, headers={"Authorization": f"Bearer {key}"})
    async with Client(transport=transport) as session:
        if account_id is None:
            connected = await mutate(session, "ConnectAccount", provider="sandbox", credentials={"handle": SANDBOX_HANDLE})
            account_id = connected["account"]["id"]
            print(f"connected sandbox account {account_id}", flush=True)
        # A fresh idempotency key per post; a retry of this very call would send the same one.
        content = {"text": text, "targets": [{"accountId": account_id}], "idempotencyKey": secrets.token_hex(16)}
        post = (await mutate(session, "CreatePost", input=content))["post"]
        print(f"created post {post['id']}", flush=True)
        job = (await mutate(session, "PublishPost", postId=post["id"]))["job"]
        print(f"publishing as job {job['id']}", flush=True)
        return job["id"]


async def watch(url: str, key: str, job_id: str, after_seq: int) -> str | None:
    """Print the job's events after ``after_seq`` as they arrive; how the job ended, if that came after."""
    transport = WebsocketsTransport(
        url=url.replace("http", "ws", 1),
        # WebSocket clients authenticate in connection_init, not with a header.
        init_payload={"Authorization": f"Bearer {key}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    status = None
    async with Client(transport=transport) as session:
        # The server completes the subscription when the job ends, which ends this loop.
        async for result in session.subscribe(operation("JobEvents", jobId=job_id, afterSeq=after_seq)):
            event = result["jobEvents"]
            print(f"{event['seq']} {event['kind']} {json.dumps(event['payload'], sort_keys=True)}", flush=True)
            status = ENDINGS.get(event["kind"], status)
    return status


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the GraphQL endpoint, e.g. http://127.0.0.1:8000/graphql")
    parser.add_argument("key", help="an API key (sg_live_…)")
    parser.add_argument("--account", help="the account to publish to; default: connect a sandbox account")
    parser.add_argument("--text", default="Hello from the socialgate Python example 👋")
    parser.add_argument("--job", help="only follow this job")
    parser.add_argument("--after-seq", type=int, default=0, help="with --job: the last seq already seen")
    return parser.parse_args(argv)


async def main(argv: list[str]) -> int:
    args = arguments(argv)
    try:
        job_id = args.job or await publish(args.url, args.key, args.account, args.text)
    except UserErrors as refused:
        print(f"refused: {refused}", file=sys.stderr)
        return 2
    status = await watch(args.url, args.key, job_id, args.after_seq)
    print(f"job {job_id} ended: {status or 'before --after-seq'}", flush=True)
    return 0 if status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
