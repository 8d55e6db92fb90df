// The one client of the page: the server's own EventStoreService over gRPC-Web, on
// the origin the page came from, with the tab's token when one is given.

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { EventStoreService } from "./gen/evenire/v1/evenire_pb.js";

/** Where the token is kept: for this tab only, gone when it closes. */
const TOKEN_KEY = "evenire-token";

export function token(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

export function setToken(value: string): void {
  if (value === "") sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, value);
}

const bearer: Interceptor = (next) => (request) => {
  const current = token();
  if (current !== "") request.header.set("authorization", `Bearer ${current}`);
  return next(request);
};

const transport = createGrpcWebTransport({
  baseUrl: location.origin,
  interceptors: [bearer],
});

export const store = createClient(EventStoreService, transport);

/** What to tell the user of a failed call. */
export function describe(error: unknown): string {
  const e = ConnectError.from(error);
  switch (e.code) {
    case Code.Unauthenticated:
      return "Not signed in: the server wants a token. Give one in the token field above.";
    case Code.PermissionDenied:
      return `This token may not do that: ${e.rawMessage}`;
    case Code.Aborted: {
      // The server names the stream's version in the trailers (docs/operations.md).
      const actual = e.metadata.get("evenire-actual-version");
      return actual === null
        ? `Aborted: ${e.rawMessage}`
        : `Aborted: wrong expected version, the stream is at version ${actual}. ${e.rawMessage}`;
    }
    case Code.Unavailable:
      return `The server is not serving: ${e.rawMessage}`;
    default:
      return `${Code[e.code] ?? e.code}: ${e.rawMessage}`;
  }
}
