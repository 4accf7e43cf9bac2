import { useSubscription } from "urql";
import { JobEventsDocument, type JobEventsSubscription } from "./gql/graphql";
import type { StartedJob } from "./Composer";
import { Problems } from "./UserErrors";

type JobEvent = JobEventsSubscription["jobEvents"];

// The job's status as its events tell it; the last job.* event wins.
const STATUS_BY_KIND: Record<string, string> = {
  "job.queued": "QUEUED",
  "job.running": "RUNNING",
  "job.succeeded": "SUCCEEDED",
  "job.failed": "FAILED",
  "job.partial": "PARTIAL",
  "job.canceled": "CANCELED",
};

/** Keeps events in seq order, once each: after a reconnect graphql-ws subscribes again from
 *  afterSeq 0, and the stored events it replays are dropped here. */
function addEvent(events: JobEvent[] = [], next: JobEventsSubscription): JobEvent[] {
  const event = next.jobEvents;
  const last = events.at(-1);
  return last && event.seq <= last.seq ? events : [...events, event];
}

/** One job followed live through `jobEvents` until it ends. */
export function JobWatch({ job }: { job: StartedJob }) {
  const [{ data: events = [], error }] = useSubscription(
    { query: JobEventsDocument, variables: { jobId: job.id, afterSeq: 0 } },
    addEvent,
  );
  const status = events.reduce((current, event) => STATUS_BY_KIND[event.kind] ?? current, job.status);
  return (
    <article className="job" data-job-id={job.id} data-status={status}>
      <h3>
        Job <code>{job.id}</code> for post <code>{job.postId}</code>: <output className="job-status">{status}</output>
      </h3>
      <ul className="events">
        {events.map((event) => (
          <li key={event.seq} data-kind={event.kind}>
            <code>{event.seq}</code> {event.kind} <small>{describe(event.payload)}</small>
          </li>
        ))}
      </ul>
      <Problems error={error} />
    </article>
  );
}

/** The payload's fields a person wants first (status, the post's URL, an error), else nothing. */
function describe(payload: unknown): string {
  if (typeof payload !== "object" || payload === null) return "";
  const fields = payload as Record<string, unknown>;
  return ["status", "platformUrl", "errorCode", "errorMessage"]
    .filter((name) => typeof fields[name] === "string")
    .map((name) => `${name}: ${String(fields[name])}`)
    .join(" · ");
}
