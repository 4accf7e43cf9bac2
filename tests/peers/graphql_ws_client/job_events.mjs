// Subscribe to one job's events with the npm `graphql-ws` client, as a third party would.
//
//   node job_events.mjs WS_URL API_KEY JOB_ID AFTER_SEQ
//
// Prints each event as one JSON line ({"seq", "kind", "payload", "occurredAt"}) and exits 0 when the
// server completes the subscription (the job ended). Any error, or no completion within
// TIMEOUT_MS, prints one JSON line to stderr and exits non-zero, so a test sees what went wrong.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const TIMEOUT_MS = 60_000;
const QUERY = `subscription JobEvents($jobId: ID!, $afterSeq: Int!) {
  jobEvents(jobId: $jobId, afterSeq: $afterSeq) { seq kind payload occurredAt }
}`;

const [url, key, jobId, afterSeq] = process.argv.slice(2);
if (!url || !key || !jobId || afterSeq === undefined || !/^\d+$/.test(afterSeq)) {
  console.error("usage: node job_events.mjs WS_URL API_KEY JOB_ID AFTER_SEQ");
  process.exit(2);
}

function fail(what, detail) {
  console.error(JSON.stringify({ error: what, detail }));
  process.exit(1);
}

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${key}` },
  retryAttempts: 0, // a test wants the first failure, not a retry that hides it
  lazy: true,
});

const timer = setTimeout(() => fail("timeout", `no completion within ${TIMEOUT_MS} ms`), TIMEOUT_MS);

client.subscribe(
  { query: QUERY, variables: { jobId, afterSeq: Number(afterSeq) } },
  {
    next(result) {
      if (result.errors) fail("graphql", result.errors);
      process.stdout.write(JSON.stringify(result.data.jobEvents) + "\n");
    },
    error(error) {
      // graphql-ws hands over GraphQL errors as an array, a closed socket as its close event.
      const detail = Array.isArray(error) ? error : error && error.code ? { code: error.code, reason: error.reason } : String(error);
      fail("subscription", detail);
    },
    complete() {
      clearTimeout(timer);
      client.dispose(); // closes the socket; node then exits 0 with stdout flushed
    },
  },
);
