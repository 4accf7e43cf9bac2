// Where the app finds the API and the key. The key is typed in at run time and kept in this tab's
// sessionStorage only: nothing secret is ever part of the bundle.

const KEY_STORAGE = "socialgate.example.key";
const ENDPOINT_PARAM = "endpoint";
// What `socialgate serve` (the README's Quickstart) listens on.
export const DEFAULT_ENDPOINT = "http://127.0.0.1:8000/graphql";

/** The GraphQL endpoint: `?endpoint=` when given, else the Quickstart's server. */
export function initialEndpoint(): string {
  return new URLSearchParams(window.location.search).get(ENDPOINT_PARAM) ?? DEFAULT_ENDPOINT;
}

/** Remember the endpoint in the page's address, so a reload (or a shared link) keeps it. */
export function rememberEndpoint(endpoint: string): void {
  const url = new URL(window.location.href);
  url.searchParams.set(ENDPOINT_PARAM, endpoint);
  window.history.replaceState(null, "", url);
}

export function storedKey(): string | null {
  return window.sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key: string | null): void {
  if (key === null) window.sessionStorage.removeItem(KEY_STORAGE);
  else window.sessionStorage.setItem(KEY_STORAGE, key);
}

/** The WebSocket URL of the same endpoint (subscriptions share the /graphql path). */
export function websocketUrl(endpoint: string): string {
  const url = new URL(endpoint, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

/** A random idempotency key; getRandomValues works outside secure contexts too, unlike randomUUID. */
export function newIdempotencyKey(): string {
  const bytes = window.crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
