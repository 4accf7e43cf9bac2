import { useState, type FormEvent } from "react";
import { useMutation, useQuery } from "urql";
import { AccountsDocument, ConnectAccountDocument, ProvidersDocument, type ProvidersQuery } from "./gql/graphql";
import { newIdempotencyKey } from "./settings";
import { Problems } from "./UserErrors";

interface Props {
  selected: ReadonlySet<string>;
  onToggle: (accountId: string, on: boolean) => void;
}

// Root query fields are nullable (a missing scope nulls only its own field), hence NonNullable.
type CredentialsProvider = NonNullable<ProvidersQuery["providers"]>[number];

// The document cache refetches a query when a mutation returns a type the query's result held;
// an empty list holds none, so name the type it lists.
const ACCOUNTS_CONTEXT = { additionalTypenames: ["Account"] };
// One page is plenty for an example; Posts.graphql shows paging on with `after`.
export const ACCOUNTS_PAGE = { first: 50 };

/** The connected accounts to publish to, and a form to connect one more. */
export function Accounts({ selected, onToggle }: Props) {
  const [{ data, error }] = useQuery({ query: AccountsDocument, variables: ACCOUNTS_PAGE, context: ACCOUNTS_CONTEXT });
  const accounts = data?.accounts?.nodes ?? [];
  return (
    <section className="card">
      <h2>2. Accounts</h2>
      <Problems error={error} />
      {accounts.length === 0 ? (
        <p>No account connected yet.</p>
      ) : (
        <fieldset>
          <legend>Publish to</legend>
          {accounts.map((account) => (
            <label key={account.id} className="inline">
              <input
                type="checkbox"
                checked={selected.has(account.id)}
                onChange={(e) => onToggle(account.id, e.target.checked)}
              />
              {account.provider} @{account.handle} <small>({account.status.toLowerCase()})</small>
            </label>
          ))}
        </fieldset>
      )}
      <ConnectForm onConnected={(accountId) => onToggle(accountId, true)} />
    </section>
  );
}

/** Connect an account of a credentials-form provider, with the form the provider declares. */
function ConnectForm({ onConnected }: { onConnected: (accountId: string) => void }) {
  const [{ data }] = useQuery({ query: ProvidersDocument });
  const providers = (data?.providers ?? []).filter((p) => p.auth.kind === "credentials" && p.configured);
  const [providerId, setProviderId] = useState("sandbox");
  const provider = providers.find((p) => p.id === providerId) ?? providers[0];
  if (!provider) return null;
  return (
    <div className="connect">
      <h3>Connect an account</h3>
      <label>
        Platform
        <select value={provider.id} onChange={(e) => setProviderId(e.target.value)}>
          {providers.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
        </select>
      </label>
      {/* Keyed by provider: each platform's form starts from its own defaults. */}
      <CredentialsForm key={provider.id} provider={provider} onConnected={onConnected} />
    </div>
  );
}

function defaults(provider: CredentialsProvider): Record<string, string> {
  return Object.fromEntries(provider.auth.credentialFields.map((field) => [field.name, field.default ?? ""]));
}

function CredentialsForm({ provider, onConnected }: { provider: CredentialsProvider; onConnected: (accountId: string) => void }) {
  const [values, setValues] = useState(() => defaults(provider));
  const [idempotencyKey, setIdempotencyKey] = useState(newIdempotencyKey);
  const [{ data, error, fetching }, connectAccount] = useMutation(ConnectAccountDocument);

  // Field patterns are the provider's (Python) regular expressions, not always valid as an HTML
  // `pattern`; the gateway checks them and answers with userErrors.
  async function submit(event: FormEvent) {
    event.preventDefault();
    // Fields left empty are left out, so the platform's own defaults apply.
    const credentials = Object.fromEntries(Object.entries(values).filter(([, value]) => value !== ""));
    const result = await connectAccount({ provider: provider.id, credentials, idempotencyKey });
    const account = result.data?.connectAccount.account;
    if (account) {
      setIdempotencyKey(newIdempotencyKey());
      onConnected(account.id);
    }
  }

  return (
    <form onSubmit={submit}>
      {provider.auth.credentialFields.map((field) => (
        <label key={field.name}>
          {field.label}
          {field.choices.length > 0 ? (
            <select value={values[field.name]} onChange={(e) => setValues({ ...values, [field.name]: e.target.value })}>
              {field.choices.map((choice) => (
                <option key={choice}>{choice}</option>
              ))}
            </select>
          ) : (
            <input
              type={field.secret ? "password" : "text"}
              inputMode={field.kind === "integer" ? "numeric" : undefined}
              required={field.required}
              value={values[field.name]}
              onChange={(e) => setValues({ ...values, [field.name]: e.target.value })}
            />
          )}
          {field.help && <small>{field.help}</small>}
        </label>
      ))}
      <button type="submit" disabled={fetching}>
        Connect {provider.name}
      </button>
      <Problems errors={data?.connectAccount.userErrors} error={error} />
    </form>
  );
}
