import { useEffect, useMemo, useState } from "react";
import { Provider } from "urql";
import { Accounts } from "./Accounts";
import { connect, type Connection } from "./client";
import { Composer, type StartedJob } from "./Composer";
import { JobWatch } from "./JobWatch";
import { KeyForm } from "./KeyForm";
import { initialEndpoint, rememberEndpoint, storedKey, storeKey } from "./settings";
import { Viewer } from "./Viewer";

export function App() {
  const [endpoint, setEndpoint] = useState(initialEndpoint);
  const [key, setKey] = useState(storedKey);

  function signIn(nextEndpoint: string, nextKey: string) {
    rememberEndpoint(nextEndpoint);
    storeKey(nextKey);
    setEndpoint(nextEndpoint);
    setKey(nextKey);
  }

  function forget() {
    storeKey(null);
    setKey(null);
  }

  return (
    <main>
      <h1>socialgate example</h1>
      {key === null ? (
        <KeyForm endpoint={endpoint} onSubmit={signIn} />
      ) : (
        // Keyed by endpoint and key: a new key starts from a clean cache and a new socket.
        <SignedIn key={`${endpoint} ${key}`} endpoint={endpoint} apiKey={key} onForget={forget} />
      )}
    </main>
  );
}

function SignedIn({ endpoint, apiKey, onForget }: { endpoint: string; apiKey: string; onForget: () => void }) {
  // Made in an effect, so the socket it owns is disposed with it (StrictMode's double mount too).
  const [connection, setConnection] = useState<Connection | null>(null);
  useEffect(() => {
    const next = connect(endpoint, apiKey);
    setConnection(next);
    return () => void next.websocket.dispose();
  }, [endpoint, apiKey]);
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const [jobs, setJobs] = useState<readonly StartedJob[]>([]);
  const accountIds = useMemo(() => [...selected], [selected]);

  function toggle(accountId: string, on: boolean) {
    setSelected((current) => {
      const next = new Set(current);
      if (on) next.add(accountId);
      else next.delete(accountId);
      return next;
    });
  }

  if (connection === null) return null;
  return (
    <Provider value={connection.client}>
      <Viewer onForget={onForget} />
      <Accounts selected={selected} onToggle={toggle} />
      <Composer accountIds={accountIds} onJob={(job) => setJobs((current) => [job, ...current])} />
      <section className="card">
        <h2>4. Jobs, live</h2>
        {jobs.length === 0 ? <p>Publish or schedule a post to watch its job here.</p> : jobs.map((job) => <JobWatch key={job.id} job={job} />)}
      </section>
    </Provider>
  );
}
