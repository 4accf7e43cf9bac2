// One urql client per endpoint and key: queries and mutations over HTTP, subscriptions over
// graphql-ws (the graphql-transport-ws protocol) on the same path.
import { createClient as createWsClient, type Client as WsClient } from "graphql-ws";
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from "urql";
import { websocketUrl } from "./settings";

export interface Connection {
  client: Client;
  websocket: WsClient;
}

export function connect(endpoint: string, key: string): Connection {
  const authorization = `Bearer ${key}`;
  const websocket = createWsClient({
    url: websocketUrl(endpoint),
    // Browsers cannot set headers on a WebSocket: the key travels in connection_init instead.
    connectionParams: { Authorization: authorization },
    lazy: true,
  });
  const client = new Client({
    url: endpoint,
    // urql also accepts text/event-stream by default, and the gateway then answers a query as
    // GraphQL over SSE, with CRLF-framed events that urql's parser does not split. Queries and
    // mutations want one JSON answer; subscriptions go over the WebSocket below.
    fetchOptions: () => ({ headers: { Authorization: authorization, Accept: "application/graphql-response+json, application/json" } }),
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query ?? "" };
          return {
            subscribe: (sink) => ({ unsubscribe: websocket.subscribe(input, sink) }),
          };
        },
      }),
    ],
  });
  return { client, websocket };
}
