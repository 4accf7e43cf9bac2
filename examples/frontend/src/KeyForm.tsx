import { useState, type FormEvent } from "react";

interface Props {
  endpoint: string;
  onSubmit: (endpoint: string, key: string) => void;
}

/** The endpoint and the API key, typed in by the user; nothing here is built into the bundle. */
export function KeyForm({ endpoint: initialEndpoint, onSubmit }: Props) {
  const [endpoint, setEndpoint] = useState(initialEndpoint);
  const [key, setKey] = useState("");
  function submit(event: FormEvent) {
    event.preventDefault();
    onSubmit(endpoint.trim(), key.trim());
  }
  return (
    <form onSubmit={submit} className="card">
      <h2>1. Your API key</h2>
      <label>
        GraphQL endpoint
        <input type="url" value={endpoint} onChange={(e) => setEndpoint(e.target.value)} required />
      </label>
      <label>
        API key
        <input
          type="password"
          autoComplete="off"
          placeholder="sg_live_…"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          required
        />
      </label>
      <p className="hint">Kept in this tab's sessionStorage only. `socialgate serve --demo` prints one.</p>
      <button type="submit">Use this key</button>
    </form>
  );
}
