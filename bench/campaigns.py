"""Campaign benchmarks (issue 14): CSV import throughput and scheduleCampaign's dry run.

    python bench/campaigns.py            # --rows 10000 --posts 1000 --targets 3 --rounds 3

On a fresh SQLite database each round:
- import N CSV rows (text, three accounts by provider:handle, a publish_at a day or more ahead:
  every row makes a post with three targets and queues it) as a dry run, then applied;
- plan a campaign of P posts × T targets with a dry run of scheduleCampaign (four times a day).
Targets: ≥ 1,000 rows/s applied; the dry run of 1,000 × 3 in ≤ 1 s. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.campaigns import planning  # noqa: E402
from gateway.campaigns.cadence import Cadence, parse_times  # noqa: E402
from gateway.campaigns.campaigns import CampaignFields, create_campaign  # noqa: E402
from gateway.campaigns.imports import import_posts  # noqa: E402
from gateway.core.clock import utcnow  # noqa: E402
from gateway.orgs.organizations import create_organization  # noqa: E402
from gateway.runtime import Runtime  # noqa: E402
from gateway.settings import load_settings  # noqa: E402
from gateway.storage.models import Account  # noqa: E402


def _csv(rows: int, handles: list[str], campaign: str = "", *, scheduled: bool = True) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "accounts", "publish_at", "campaign"])
    start = utcnow() + timedelta(days=1)
    for i in range(rows):
        at = (start + timedelta(minutes=i)).replace(microsecond=0).isoformat()
        writer.writerow([f"Post number {i} of the import", " ".join(f"sandbox:{h}" for h in handles), at if scheduled else "", campaign])
    return buffer.getvalue().encode()


async def _runtime(directory: str) -> Runtime:
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{directory}/bench.db", data_dir=directory, run_scheduler=False)
    runtime = Runtime(settings)
    await runtime.start()
    return runtime


async def _org(runtime: Runtime, accounts: int) -> tuple[str, list[str]]:
    handles = [f"h{i}" for i in range(accounts)]
    async with runtime.database.write() as session:
        org = await create_organization(session, "Bench")
        for handle in handles:
            session.add(Account(id=f"acct_{handle:x<24}", organization_id=org.id, provider="sandbox", external_id=handle, handle=handle))
    return org.id, handles


async def one_round(rows: int, posts: int, targets: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        runtime = await _runtime(directory)
        try:
            org, handles = await _org(runtime, targets)
            raw = _csv(rows, handles)
            started, cpu = time.perf_counter(), time.process_time()
            dry = await import_posts(runtime, org, None, raw, dry_run=True)
            dry_seconds, dry_cpu = time.perf_counter() - started, time.process_time() - cpu
            started, cpu = time.perf_counter(), time.process_time()
            applied = await import_posts(runtime, org, None, raw, dry_run=False)
            apply_seconds, apply_cpu = time.perf_counter() - started, time.process_time() - cpu
            assert not dry.errors and not applied.errors and applied.scheduled == rows, (dry.errors[:3], applied.errors[:3])
        finally:
            await runtime.stop()
    with tempfile.TemporaryDirectory() as directory:
        runtime = await _runtime(directory)
        try:
            org, handles = await _org(runtime, targets)
            async with runtime.database.write() as session:
                campaign, _ = await create_campaign(session, org, CampaignFields(name="Bench", status="active", timezone="Europe/Paris"))
            created = await import_posts(runtime, org, None, _csv(posts, handles, campaign.id, scheduled=False), dry_run=False)
            assert created.created == posts, created.errors[:3]
            cadence = Cadence(times=parse_times(["09:00", "12:00", "15:00", "18:00"]), start_date=date.today() + timedelta(days=1),
                              end_date=date.today() + timedelta(days=300))
            request = planning.PlanRequest(campaign.id, cadence)
            started, cpu = time.perf_counter(), time.process_time()
            plan = await planning.dry_run(runtime, org, request)
            plan_seconds, plan_cpu = time.perf_counter() - started, time.process_time() - cpu
            assert len(plan.targets) == posts * targets and not plan.unplaced
        finally:
            await runtime.stop()
    return {"dry": rows / dry_seconds, "apply": rows / apply_seconds, "plan": plan_seconds,
            "dry_cpu": rows / dry_cpu, "apply_cpu": rows / apply_cpu, "plan_cpu": plan_cpu, "load": os.getloadavg()[0]}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=1_000)
    parser.add_argument("--targets", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = []
    print("| round | import dry run rows/s (per CPU s) | import applied rows/s (per CPU s) | scheduleCampaign dry run s (CPU s) | load avg |")
    print("|---|---:|---:|---:|---:|")
    for number in range(1, args.rounds + 1):
        result = await one_round(args.rows, args.posts, args.targets)
        results.append(result)
        print(f"| {number} | {result['dry']:.0f} ({result['dry_cpu']:.0f}) | {result['apply']:.0f} ({result['apply_cpu']:.0f}) "
              f"| {result['plan']:.3f} ({result['plan_cpu']:.3f}) | {result['load']:.1f} |", flush=True)

    def median(key: str) -> float:
        return statistics.median(r[key] for r in results)

    print(f"| median | {median('dry'):.0f} ({median('dry_cpu'):.0f}) | {median('apply'):.0f} ({median('apply_cpu'):.0f}) "
          f"| {median('plan'):.3f} ({median('plan_cpu'):.3f}) | |")


if __name__ == "__main__":
    asyncio.run(main())
