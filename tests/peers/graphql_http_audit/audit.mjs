// Run the GraphQL over HTTP specification's reference audits (npm `graphql-http`'s
// `serverAudits`) against a running server, every request carrying an API key.
//
//   node audit.mjs GRAPHQL_URL API_KEY
//
// Prints one JSON line per audit: {"id", "name", "status", "reason"?, "responseStatus"?,
// "responseContentType"?, "responseBody"?}; `status` is "ok", or "notice" (a MAY not met),
// "warn" (a SHOULD not met) or "error" (a MUST not met). Exits 0 when every audit ran (whatever
// it found: the test judges), non-zero when the suite itself could not run.
import { serverAudits } from "graphql-http";

const TIMEOUT_MS = 60_000;

const [url, key] = process.argv.slice(2);
if (!url || !key) {
  console.error("usage: node audit.mjs GRAPHQL_URL API_KEY");
  process.exit(2);
}

// The audits send their own headers; the key is added to each, as a client of this API would.
function fetchFn(input, init = {}) {
  const headers = new Headers(init.headers || {});
  headers.set("authorization", `Bearer ${key}`);
  return fetch(input, { ...init, headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
}

async function describe(result) {
  const line = { id: result.id, name: result.name, status: result.status };
  if (result.status !== "ok") {
    line.reason = result.reason;
    const response = result.response;
    if (response) {
      line.responseStatus = response.status;
      line.responseContentType = response.headers.get("content-type");
      try {
        line.responseBody = (await response.text()).slice(0, 2000);
      } catch {
        line.responseBody = null; // the audit already read it
      }
    }
  }
  return line;
}

try {
  for (const audit of serverAudits({ url, fetchFn })) {
    console.log(JSON.stringify(await describe(await audit.fn())));
  }
} catch (error) {
  console.error(JSON.stringify({ error: "the audit suite could not run", detail: String(error && error.stack || error) }));
  process.exit(1);
}
