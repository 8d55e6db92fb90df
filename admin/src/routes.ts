// The page's addresses: everything after `#`, so that the server serves one page.

export function streamHref(type: string, key: string): string {
  return `#/stream/${encodeURIComponent(type)}/${encodeURIComponent(key)}`;
}

export function appendHref(type: string, key: string): string {
  return `#/append?${new URLSearchParams({ type, key })}`;
}

export type Route =
  | { page: "streams"; query: URLSearchParams }
  | { page: "append"; query: URLSearchParams }
  | { page: "tail"; query: URLSearchParams }
  | { page: "server" }
  | { page: "stream"; type: string; key: string; query: URLSearchParams };

export function route(hash: string): Route {
  const [path, search] = hash.replace(/^#/, "").split("?", 2);
  const query = new URLSearchParams(search ?? "");
  const parts = (path ?? "").split("/").filter((p) => p !== "");
  if (parts[0] === "stream" && parts.length === 3) {
    return { page: "stream", type: decodeURIComponent(parts[1]!), key: decodeURIComponent(parts[2]!), query };
  }
  if (parts[0] === "append") return { page: "append", query };
  if (parts[0] === "tail") return { page: "tail", query };
  if (parts[0] === "server") return { page: "server" };
  return { page: "streams", query };
}
