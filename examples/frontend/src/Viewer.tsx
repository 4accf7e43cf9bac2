import { useQuery } from "urql";
import { ViewerDocument } from "./gql/graphql";
import { Problems } from "./UserErrors";

/** Who the key is: proves the endpoint and the key work before anything else is tried. */
export function Viewer({ onForget }: { onForget: () => void }) {
  const [{ data, error, fetching }] = useQuery({ query: ViewerDocument });
  const viewer = data?.viewer;
  return (
    <section className="card viewer">
      <h2>1. Your API key</h2>
      {fetching && <p>Checking the key…</p>}
      {viewer && (
        <p id="viewer">
          Signed in to <strong>{viewer.organization.name}</strong> with key <code>{viewer.apiKeyId}</code> (
          {viewer.scopes.join(", ")})
        </p>
      )}
      <Problems error={error} />
      <button type="button" onClick={onForget}>
        Forget this key
      </button>
    </section>
  );
}
